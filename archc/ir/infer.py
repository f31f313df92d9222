"""Inference of one node: shape, state tensors, MACs and FLOPs from its op's rules.

The expander calls this as it creates each node, so the whole network is inferred in one
topological pass (blocks need their input shape to expand: `c_in`, residual shortcuts)."""
from __future__ import annotations

import re
from typing import Callable

from archc.errors import Location, ShapeError, SpecError
from archc.ir.graph import Node
from archc.ops.base import Shape


def infer_node(node: Node, in_shapes: list[Shape], sources: list[str] | None = None,
               arg_loc: Callable[[str], Location | None] | None = None) -> Node:
    """`sources` names the inputs of a merge (ids, branch names) for its messages; `arg_loc(field)`
    is where an arg was written, so an error about one arg points at its value."""
    op = node.op
    node.in_shapes = list(in_shapes)
    try:
        if op.arity is not None and len(in_shapes) != op.arity:
            raise ShapeError(f"takes {op.arity} input(s), got {len(in_shapes)}")
        if op.arity is None and len(in_shapes) < 2:
            raise ShapeError(f"merges two or more inputs, got {len(in_shapes)}: use 'from: [a, b]'")
        node.out = tuple(op.infer(node.args, in_shapes))
        node.tensors = op.tensors(node.args, in_shapes, node.out)
        node.macs = op.macs(node.args, in_shapes, node.out)
        node.flops = op.flops(node.args, in_shapes, node.out)
    except ShapeError as e:
        raise shape_error(node, in_shapes, e.message, sources, arg_loc) from None
    return node


# Leading words of an op's message that name the arg at fault ('kernel 5 is larger ...').
_ARG_WORDS = (("kernel pad", "pad"), ("pool pad", "pad"), ("pool kernel", "k"), ("kernel", "k"))
_MERGE_MSG = re.compile(r"^'(\w+)' merges (.*): ([^:]*)$")


def shape_error(node: Node, in_shapes: list[Shape], msg: str, sources, arg_loc) -> SpecError:
    """The op's ShapeError as a located SpecError naming the layer (SPEC section 5)."""
    op = node.op
    m = _MERGE_MSG.match(msg)
    if m and sources and len(sources) == len(in_shapes):    # name where each merged shape comes from
        parts = " with ".join(f"{list(s)} from '{n}'" for s, n in zip(in_shapes, sources))
        return SpecError(f"'{m[1]}' merges {parts}: {m[3]}", node.loc)
    field = _arg_field(msg, op)
    loc = arg_loc(field) if field and arg_loc else None
    if loc is not None:
        return SpecError(f"layer '{node.name}' ({op.name}): {msg}", loc)
    if msg.startswith("cannot "):
        return SpecError(f"layer '{node.name}' ({op.name}) {msg}", node.loc)
    if not msg.startswith("'") and "input" not in msg:
        shapes = " and ".join(str(list(s)) for s in in_shapes)
        msg = f"cannot take input {shapes}: {msg}"
    return SpecError(f"layer '{node.name}' ({op.name}): {msg}", node.loc)


def _arg_field(msg: str, op) -> str | None:
    fields = getattr(op.Args, "model_fields", {})
    low = msg.lower()
    for words, field in _ARG_WORDS:
        if low.startswith(words) and field in fields:
            return field
    m = re.match(r"[a-z_]+", low)
    return m.group() if m and m.group() in fields else None
