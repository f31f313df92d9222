"""One layer item of a spec, normalised: op or block or structure, its args and wiring keys."""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from archc import ops
from archc.errors import SpecError, did_you_mean
from archc.spec.load import Source

WIRING = ("name", "id", "from", "repeat", "first", "when", "init")
STRUCTURES = ("seq", "residual", "parallel")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")     # matched whole (fullmatch): "a\n" is no name
# Attribute names nn.Module already uses; a layer named so would shadow them.
MODULE_ATTRS = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda
double dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter
get_submodule half ipu load_state_dict modules mtia named_buffers named_children named_modules
named_parameters parameters register_backward_hook register_buffer register_forward_hook
register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook
register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu
zero_grad self torch nn F x
""".split())
# what nn.Sequential.add_module refuses: the attributes a Sequential already has
SEQUENTIAL_ATTRS = (MODULE_ATTRS - {"self", "torch", "nn", "F", "x"}) | {"append", "extend", "insert", "pop"}


@dataclass
class At:
    """A place in a source file: resolves to a Location on demand (positions are looked up lazily)."""
    src: Source
    path: tuple = ()

    def __truediv__(self, part) -> "At":
        return At(self.src, self.path + (part,))

    def loc(self, key: bool = False):
        return self.src.loc(self.path, key=key)

    def error(self, msg: str, key: bool = False) -> SpecError:
        return SpecError(msg, self.loc(key))


@dataclass
class Item:
    kind: str                 # the op, block or structure name
    args: Any                 # mapping, short-form scalar/list, or None
    at: At                    # where the item is
    args_at: At               # where its args are
    wiring: dict[str, Any] = field(default_factory=dict)
    wiring_at: dict[str, At] = field(default_factory=dict)


def parse_item(raw: Any, at: At) -> Item:
    """`relu` | `{conv: {...}, name: .., repeat: ..}` | `{conv: {out: 6, name: c1}}` -> Item."""
    if isinstance(raw, str):
        return Item(raw, None, at, at)
    if not isinstance(raw, dict):
        raise at.error(f"expected a layer (an op name, or a mapping 'op: args'), got {raw!r}")
    keys = [k for k in raw if k not in WIRING]
    if len(keys) != 1:
        what = f"several: {', '.join(map(str, keys))}" if keys else "none"
        where = (at / keys[1]) if len(keys) > 1 else at     # point at the first extra key
        raise where.error(f"a layer mapping needs exactly one op, block or {'/'.join(STRUCTURES)} key, "
                          f"found {what}", key=len(keys) > 1)
    kind = keys[0]
    args = raw[kind]
    item = Item(str(kind), args, at, at / kind)
    for k in WIRING:
        if k in raw:
            item.wiring[k], item.wiring_at[k] = raw[k], at / k
    if "first" in raw and "repeat" not in raw:
        raise (at / "first").error("'first' overrides the first of a 'repeat': add 'repeat: N' or "
                                   "move these args into the layer", key=True)
    # `conv: {out: 6, name: conv1}` - wiring keys may also sit among the args
    if isinstance(args, dict) and kind not in STRUCTURES:
        rest = {}
        for k, v in args.items():
            # `init` among the args is the layer's tensors' init when a mapping (prelu's own
            # `init: 0.25` is its starting slope, an arg)
            if k in ("name", "id", "from") or (k == "init" and isinstance(v, dict)):
                if k in item.wiring:
                    raise (item.args_at / k).error(f"'{k}' given twice", key=True)
                item.wiring[k], item.wiring_at[k] = v, item.args_at / k
            else:
                rest[k] = v
        item.args = rest
    return item


def check_name(name: Any, at: At, attribute: bool = True) -> str:
    """Layer names become Python attribute names in generated code: validate them strictly. A
    child of a seq (`attribute=False`) is only ever a key of its nn.Sequential, so any string
    that `add_module` takes will do (torchvision's RegNet names its blocks `block1-0`)."""
    if attribute:
        if not isinstance(name, str) or not IDENT.fullmatch(name) or keyword.iskeyword(name):
            if isinstance(name, str) and keyword.iskeyword(name):
                raise at.error(f"name '{name}' is a Python keyword; choose another name")
            raise at.error(f"name must be a Python identifier, got {name!r}")
    elif not isinstance(name, str) or not name or "." in name or not name.isprintable():
        raise at.error(f"name of a seq child must be a non-empty printable string without '.', got {name!r}")
    if name in (MODULE_ATTRS if attribute else SEQUENTIAL_ATTRS):
        raise at.error(f"name '{name}' is reserved (an nn.Module attribute or a name the generated code uses)")
    return name


def explicit_names(items: list, at: At) -> set[str]:
    """Literal names written in a class scope, including inline residual/parallel parts, so that
    automatic names never take a name the user wrote further down."""
    found: set[str] = set()

    def walk(raw):
        if isinstance(raw, list):
            for r in raw:
                walk(r)
        elif isinstance(raw, dict):
            for k in ("name",):
                if isinstance(raw.get(k), str):
                    found.add(raw[k])
            for k, v in raw.items():
                if k in ("residual", "body", "post", "shortcut") or (k not in WIRING and isinstance(v, dict)):
                    walk(v)
                if k == "parallel" and isinstance(v, dict) and isinstance(v.get("branches"), dict):
                    found.update(map(str, v["branches"]))
                if k == "parallel" and isinstance(v, dict) and isinstance(v.get("module_list"), str):
                    found.add(v["module_list"])
    walk(items)
    return found


def reads_input(raw: Any) -> bool:
    """Whether some layer takes `from: input`, so the forward must keep its input variable."""
    if isinstance(raw, list):
        return any(reads_input(r) for r in raw)
    if isinstance(raw, dict):
        ref = raw.get("from")
        refs = ref if isinstance(ref, list) else [ref]
        # a literal `input`, or an expression that may yield it (`${['a', 'input'] if c else ...}`)
        if any(isinstance(r, str) and (r == "input" or ("$" in r and "input" in r)) for r in refs):
            return True
        return any(reads_input(v) for v in raw.values())
    return False


def tree_at(src: Source, path: tuple) -> Any:
    node = src.tree
    for part in path:
        node = node[part]
    return node


def args_mapping(item: Item, short: str | None, raw: Any) -> dict:
    """A layer's args as a mapping: none, the mapping written, or its short form's one value."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if short is None:
        raise item.args_at.error(f"'{item.kind}' takes no short form; write '{item.kind}: {{...}}'")
    return {short: raw}


def shortcut_first(raw) -> bool:
    """A residual whose `shortcut:` is written before its `body:` registers the shortcut's
    modules first (torchvision's RegNet: `proj`, then `f`); else the body's come first."""
    keys = list(raw) if isinstance(raw, dict) else []
    return "shortcut" in keys and "body" in keys and keys.index("shortcut") < keys.index("body")


def unknown_kind(item: Item, blocks) -> SpecError:
    """A layer whose key is no op, block or structure: said at the key, with the nearest name."""
    names = list(ops.REGISTRY) + list(blocks.names()) + list(STRUCTURES)
    hint = did_you_mean(item.kind, names)
    what = "block" if any(hint == did_you_mean(b, [b]) for b in blocks.names()) else "op"
    return item.args_at.error(f"unknown {what} '{item.kind}'{hint}", key=True)


def parameter_placement(item: Item, op) -> SpecError:
    """An op that forward must reach by name (a parameter of its class, or a module called with
    more than its input), met where only modules that take `m(x)` can go."""
    what = "a parameter of the class it sits in, not a module" if op.holds_parameter else \
        "a module forward calls with more than its input, which an nn.Sequential cannot do"
    return item.at.error(f"'{item.kind}' is {what}: write it unrepeated in a block's layers (or a residual "
                         f"body) or at the top level, not in a seq, a repeat, a parallel branch or a shortcut",
                         key=True)
