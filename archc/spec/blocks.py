"""Block definitions: typed params, `use:` imports of block files, instantiation, cycles."""
from __future__ import annotations

import keyword
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archc.errors import did_you_mean
from archc.ir.graph import Module
from archc.spec.expr import resolve
from archc.spec.files import roots, shown, use_target
from archc.spec.layers import At, Item, tree_at
from archc.spec.load import Source, load_file
from archc.spec.schema import BlockDef, BlocksFile, validate

if TYPE_CHECKING:
    from archc.spec.expand import Expander, Value

BLOCK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")   # becomes a class name in generated code
TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "list": list, "any": object}
REQUIRED = object()


def type_names(text: str) -> list[str] | None:
    """`"int"` or `"int | list"` -> the names, when every part is a known type; else None."""
    names = [t.strip() for t in text.split("|")]
    return names if all(t in TYPES for t in names) else None


def param_decl(decl) -> tuple[list[str], Any]:
    """A block param declaration -> (allowed type names, default or REQUIRED).
    `int` / `int | list`: required; `{type: int | list, default: 1}`: typed with a default;
    any other value: the default, its type the param's type (null: any type)."""
    if isinstance(decl, str) and type_names(decl):
        return type_names(decl), REQUIRED
    if isinstance(decl, dict) and set(decl) <= {"type", "default"} and "type" in decl \
            and isinstance(decl["type"], str) and type_names(decl["type"]):
        return type_names(decl["type"]), decl.get("default", REQUIRED)
    if decl is None:
        return ["any"], None
    kind = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}.get(type(decl), "any")
    return [kind], decl


def fits(value, type_name: str) -> bool:
    want = TYPES[type_name]
    if isinstance(value, bool) and type_name not in ("bool", "any"):
        return False      # True is an int to Python, not to a spec
    return isinstance(value, want)


def checked_name(name: str, at: At, bdef: BlockDef | None = None) -> At:
    """A block's name is its class name in generated code: letters, digits, '_' and '-' only;
    its params and lets are Python names there (arguments and locals of __init__)."""
    if not BLOCK_NAME.fullmatch(name):
        raise at.error(f"block name must be an identifier (letters, digits, '_', '-'), got {name!r}", key=True)
    for group in ("params", "let") if bdef is not None else ():
        for key in getattr(bdef, group):
            if not str(key).isidentifier() or keyword.iskeyword(key) or key == "self":
                raise (at / group / key).error(
                    f"block '{name}': {group} name {key!r} must be a Python identifier other than a "
                    f"keyword or 'self' (it is a name in the generated code)", key=True)
    for j, key in enumerate(bdef.input or () if bdef is not None else ()):
        if not key.isidentifier() or keyword.iskeyword(key) or key == "self" or key in bdef.params \
                or key in bdef.input[:j]:
            raise (at / "input" / j).error(
                f"block '{name}': an input dim's name must be a Python identifier, not a keyword, 'self', "
                f"a param or another dim's name (it is an argument in the generated code), got {key!r}")
    if bdef is not None and bdef.input == []:
        raise (at / "input").error(f"block '{name}': 'input' names each dim of the block's input, got none")
    if bdef is not None and bdef.inputs is not None:
        check_inputs(name, bdef, at)
    return at


def check_inputs(name: str, bdef: BlockDef, at: At) -> None:
    """`inputs: [low, high]`: a block of several inputs, each an id of its `layers:`."""
    if len(bdef.inputs) < 2:
        raise (at / "inputs").error(f"block '{name}': 'inputs' names two or more inputs (one is the "
                                    f"block's plain input), got {len(bdef.inputs)}")
    if bdef.input is not None:
        raise (at / "inputs").error(f"block '{name}' has 'input' (the dims of one input) and 'inputs' "
                                    f"(several inputs); give one of them", key=True)
    if bdef.body_kind != "layers":
        raise (at / "inputs").error(f"block '{name}': a block of several inputs wires them with 'from:' "
                                    f"in a 'layers:' body, not '{bdef.body_kind}:'", key=True)
    for j, key in enumerate(bdef.inputs):
        if not key.isidentifier() or keyword.iskeyword(key) or key in ("self", "input", "x", "h") \
                or key in bdef.params or key in bdef.inputs[:j] or f"{key}_channels" in bdef.params:
            raise (at / "inputs" / j).error(
                f"block '{name}': an input's name must be a Python identifier, not a keyword, 'self', 'input', "
                f"'x' or 'h' (forward's running variables), a param (nor make one with '_channels') or "
                f"another input's name, got {key!r}")


def several_inputs(name: str, bdef: BlockDef, values: list, at: At) -> dict[str, int]:
    """The names a block of several inputs sees for them: each input's channels, `low_channels`."""
    if bdef.inputs is None:
        raise at.error(f"block '{name}' takes one input, got {len(values)}")
    if len(values) != len(bdef.inputs):
        raise at.error(f"block '{name}' takes {len(bdef.inputs)} inputs ({', '.join(bdef.inputs)}), "
                       f"got {len(values)}: give them in order with 'from: [...]' (in a block's layers or "
                       f"at the top level)")
    return {f"{k}_channels": v.shape[0] for k, v in zip(bdef.inputs, values) if v.shape}


def input_facts(name: str, bdef: BlockDef, shape: tuple, at: At) -> dict[str, int]:
    """The names a block's expressions see for its input: the ones its `input:` gives each dim
    (a transformer's `[seq_length, hidden_dim]`), or c_in and h_in/w_in/l_in."""
    from archc.spec.expand import shape_facts
    if bdef.input is None:
        return shape_facts(shape)
    if len(bdef.input) != len(shape):
        raise at.error(f"block '{name}' names {len(bdef.input)} input dims ({', '.join(bdef.input)}); "
                       f"its input here is {list(shape)}")
    return dict(zip(bdef.input, shape))


class BlockTable:
    """Every block visible to a spec: its own and those of the files it `use:`s, transitively."""

    def __init__(self):
        self.defs: dict[str, tuple[BlockDef, At]] = {}
        self.roots: list[Path] = []       # folders `use:` may read from

    @classmethod
    def build(cls, blocks: dict[str, BlockDef], uses: list[str], src: Source) -> "BlockTable":
        table = cls()
        table.roots = roots(src.file) if uses else []
        table._import(uses, src, [str(Path(os.path.realpath(src.file)))])
        for name, bdef in blocks.items():
            table.defs[name] = (bdef, checked_name(name, At(src, ("blocks", name)), bdef))
        return table

    def _import(self, uses: list[str], src: Source, chain: list[str]) -> None:
        base = Path(src.file).parent
        for j, rel in enumerate(uses):
            at = At(src, ("use", j))
            name = shown(rel)
            path, refused = use_target(rel, base, self.roots)
            if refused:
                raise at.error(f"block file '{name}': {refused}")
            key = os.path.realpath(path)
            if key in chain:
                raise at.error(f"'use' cycle: {' -> '.join(Path(c).name for c in chain)} -> {path.name}")
            if not os.path.lexists(path):
                raise at.error(f"no such block file '{name}' (looked in {base or '.'})")
            sub = load_file(str(path), at.loc(), f"block file '{name}'")
            spec = validate(BlocksFile, sub.tree, sub, (), "block file")
            self._import(spec.use, sub, chain + [key])
            for name, bdef in spec.blocks.items():
                self.defs[name] = (bdef, checked_name(name, At(sub, ("blocks", name)), bdef))

    def has(self, name: str) -> bool:
        return name in self.defs

    def names(self):
        return self.defs.keys()

    def takes_several(self, name: str) -> bool:
        """A block of several inputs (`inputs: [low, high]`)."""
        return name in self.defs and self.defs[name][0].inputs is not None

    def short_param(self, name: str) -> str | None:
        """The param a short form fills (`inception: 64`): the block's one required param."""
        required = [p for p, v in self.defs[name][0].params.items() if param_decl(v)[1] is REQUIRED]
        return required[0] if len(required) == 1 else None

    def params(self, name: str, item: Item, env: dict) -> dict[str, Any]:
        """Instance args checked against the block's typed params; defaults filled in."""
        from archc.spec.expand import resolve_tree
        bdef, bat = self.defs[name]
        raw = resolve_tree(item.args, env, item.args_at)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            short = self.short_param(name)
            if short is None:
                raise item.args_at.error(f"block '{name}' takes named params: {', '.join(bdef.params) or 'none'}")
            raw = {short: raw}
        out = {}
        for key, value in raw.items():
            if key not in bdef.params:
                raise (item.args_at / key).error(
                    f"block '{name}' has no param '{key}'{did_you_mean(key, bdef.params)}; "
                    f"params: {', '.join(bdef.params) or 'none'}", key=True)
        for p, decl in bdef.params.items():
            types, default = param_decl(decl)
            if p in raw:
                value = raw[p]
                if not any(fits(value, t) for t in types):
                    raise (item.args_at / p).error(f"block '{name}' param '{p}' expects "
                                                   f"{' | '.join(types)}, got {value!r}")
                out[p] = value
            elif default is REQUIRED:
                raise item.args_at.error(f"block '{name}' needs param '{p}' ({' | '.join(types)})")
            else:
                out[p] = default
        return out

    def instantiate(self, exp: "Expander", item: Item, attr: str, path: str, value: "Value",
                    env: dict) -> tuple[Module, "Value"]:
        from archc.spec.expand import Value
        name = item.kind
        if name in exp.stack:
            raise item.at.error(f"block cycle: {' -> '.join(exp.stack + [name])}")
        bdef, bat = self.defs[name]
        params = self.params(name, item, env)
        if isinstance(value, list) or bdef.inputs is not None:
            values = value if isinstance(value, list) else [value]
            facts = several_inputs(name, bdef, values, item.at)
        else:
            facts = input_facts(name, bdef, value.shape, item.at)
        benv = {**exp.env, **{k: v for k, v in env.items() if k == "i"}, **params, **facts}
        for k, expr in bdef.let.items():     # in order: a `let` may use the ones before it
            if k in benv and k not in exp.env:
                raise (bat / "let" / k).error(f"'let' name '{k}' shadows a param or shape fact", key=True)
            benv[k] = resolve(expr, benv, (bat / "let" / k))
        kind = bdef.body_kind
        mod = Module(attr, "class", block=name, loc=item.at)
        exp.stack.append(name)
        try:
            if kind == "seq":
                seq, out = exp.seq(bdef.seq, bat / "seq", attr, path, value, benv)
                mod.children = seq.children
                return mod, out
            raws = bdef.layers if kind == "layers" else tree_at(bat.src, bat.path + (kind,))
            scope = exp.new_scope(mod, path + ".", benv, raws, bat / kind)
            if bdef.inputs is not None:         # each input an id; the chain starts at the first
                for k, v in zip(bdef.inputs, values):
                    scope.ids[k] = Value(k, v.node, v.shape)
                    scope.vars.add(k)
                x = scope.ids[bdef.inputs[0]]
            else:
                x = Value("x", value.node, value.shape)
                scope.ids["input"] = x
            if kind == "layers":
                out = exp.chain(scope, bdef.layers, bat / "layers", x, scope.chain_var)
            elif kind == "residual":
                out = exp.residual(scope, tree_at(bat.src, bat.path + ("residual",)), bat / "residual", x,
                                   scope.chain_var)
            else:
                out = exp.parallel(scope, tree_at(bat.src, bat.path + ("parallel",)), bat / "parallel", x,
                                   scope.chain_var)
            return mod, Value("x", out.node, out.shape)
        finally:
            exp.stack.pop()
