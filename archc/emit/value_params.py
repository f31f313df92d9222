"""Block params whose values the generated class never depends on.

A block's class is translated once per instance with distinct values, and every translation must
read the same (classes.BlockClasses). Stochastic depth gives each instance its own rate, so a
network of 80 blocks meant 80 translations of one definition (EfficientNetV2-L's build: 4.8 s).
A param used only as the whole value of an arg that no op rule reads but `module`, which writes
it as given (`p: $sd_prob`: Op.value_args), or passed whole to such a param of an inner block,
cannot change the class: instances that differ only in such params share one translation. Any
other use, anywhere in the definition (a `let`, a `when`, an expression, an arg that shapes read),
keeps the param out.
"""
from __future__ import annotations

import re

from archc.ops import REGISTRY
from archc.spec.layers import tree_at

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE = re.compile(r"\s*\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\})\s*")
SKIPPED = ("params", "doc", "input")    # declarations and text, no references


def value_params(blocks, block: str, known: dict[str, frozenset]) -> frozenset[str]:
    """The params of `block` that only reach value args (memoised in `known`)."""
    if block in known:
        return known[block]
    known[block] = frozenset()      # while walking: a cycle (an error elsewhere) shares nothing
    bdef, bat = blocks.defs[block]
    definition = tree_at(bat.src, bat.path)
    kept = set(bdef.params)
    # (node, where): where is None, ("call", holds, short arg) for what an op or block key
    # holds, or ("arg", may carry a param) for one arg's value
    stack = [(v, None) for k, v in definition.items() if k not in SKIPPED] if isinstance(definition, dict) else []
    while stack and kept:
        node, where = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if where is not None and where[0] == "call":
                    stack.append((v, ("arg", where[1](k))))
                else:
                    stack.append((v, _call(blocks, k, known)))
        elif isinstance(node, list):
            stack.extend((v, None) for v in node)
        elif isinstance(node, str):
            if where is not None and where[0] == "call":
                where = ("arg", where[2] is not None and where[1](where[2]))
            whole = _WHOLE.fullmatch(node)
            whole = whole and (whole.group(1) or whole.group(2))
            carried = where is not None and where[1]
            kept -= {p for p in _WORD.findall(node) if p in kept and not (carried and p == whole)}
    known[block] = frozenset(kept)
    return known[block]


def _call(blocks, key, known):
    """What `key: ...` holds where key names an op or a block: which args carry values through."""
    if not isinstance(key, str):
        return None
    op = REGISTRY.get(key)
    if op is not None:
        return ("call", lambda arg: arg in op.value_args, op.short)
    if blocks.has(key):
        inner = value_params(blocks, key, known)
        return ("call", lambda arg: arg in inner, blocks.short_param(key))
    return None
