"""One class per block definition: the definition translated for each instance it has (each
with its own values), every translation required to read the same; its signature is the block's
params with their defaults, the input channels where it uses them, and the vars it reads."""
from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from archc.emit.body import Writer
from archc.emit.code import INDENT, Code, literal
from archc.emit.entries import write_entries
from archc.emit.scope import ClassState, Names, T, closed_of, emit_error, expand_lets
from archc.emit.value_params import value_params
from archc.emit.sym import PLACEHOLDERS, Named, make, name, names_in, plain, text
from archc.emit.values import Env, sym
from archc.errors import ShapeError
from archc.spec.blocks import REQUIRED, param_decl
from archc.spec.expand import shape_facts
from archc.spec.layers import explicit_names, reads_input, tree_at

LARGE = 512        # a spatial size any block fits, for code of branches not taken

# names the generated file binds at module level; a class must not shadow them
RESERVED_CLASS_NAMES = frozenset({"F", "OrderedDict", "torch", "nn", "Final"})


def camel(name: str) -> str:
    """A block or network name as a class name: `inverted_residual` -> `InvertedResidual`
    (`none` -> `NoneBlock`: never a keyword)."""
    parts = re.split(r"[_\-\s]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    out = out if out and out[0].isalpha() else "Block" + out
    return out + "Block" if keyword.iskeyword(out) else out


# characters a docstring cannot hold as themselves: NUL, CR, and lone surrogates (not UTF-8)
_UNWRITABLE = re.compile("[\\x00\\r\\ud800-\\udfff]")


def docstring(text_: str) -> str:
    """Spec text (`doc:`, file and block names) as the inside of a triple-quoted docstring: quotes
    and backslashes escaped, so nothing from a spec can close the string and become code, and
    characters that cannot be written as UTF-8 source as escapes. Every spec string that reaches
    generated source as text goes through here (the rest is written with repr or ast.unparse)."""
    text_ = text_.replace("\\", "\\\\").replace('"', '\\"')
    return _UNWRITABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text_)


@dataclass
class ClassInfo:
    """A generated class as its callers see it."""
    name: str
    block: str
    text: str
    takes: tuple[str, ...]              # the input dims its constructor takes (c_in, or the block's `input:`)
    vars: list[str]
    parts: Any = None
    out_channels: str | None = None     # its output channels, in its own __init__'s terms
    exposes: bool = False               # callers read them from `self.out_channels`

    def final(self) -> str:
        if not self.exposes:
            return self.text
        self.parts.init_tail = [f"{INDENT * 2}self.out_channels = {self.out_channels}"]
        return render_class(self.name, self.parts)


@dataclass
class Face:
    """One instance of a block as its caller sees it: output shape, its channels and when its
    spatial size changes as expressions of the block's params, `c_in` and vars."""
    out: tuple
    out_node: ast.expr | None
    changes: ast.expr | None
    spatial: tuple = ()          # output sizes as expressions of the input's (placeholders)


@dataclass
class Parts:
    """A class's code before rendering."""
    base: str
    doc: str
    params: list[tuple[str, Any]] = field(default_factory=list)   # (name, default or REQUIRED)
    kwonly: list[tuple[str, Any]] = field(default_factory=list)
    pre: list[str] = field(default_factory=list)        # before super().__init__ (a static Sequential)
    init: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)
    constants: list[str] = field(default_factory=list)
    super_call: str = "super().__init__()"
    extra_methods: list[str] = field(default_factory=list)   # e.g. _init_weights (root class)
    init_tail: list[str] = field(default_factory=list)       # last lines of __init__
    inputs: tuple[str, ...] = ("x",)                          # forward's arguments


class Text(str):
    """A default written as code (a module constant's name), not as a literal."""


def default_text(d) -> str:
    return str(d) if isinstance(d, Text) else literal(d)


def signature(params, kwonly) -> list[str]:
    """`c_in, t, c, stride=1, *, width_mult`; a required param after a defaulted one makes the
    rest keyword-only (calls pass block params by name)."""
    out, star, seen_default = [], False, False
    for p, d in params:
        if d is REQUIRED and seen_default and not star:
            out.append("*")
            star = True
        seen_default |= d is not REQUIRED
        out.append(p if d is REQUIRED else f"{p}={default_text(d)}")
    if kwonly and not star:
        out.append("*")
    out += [p if d is REQUIRED else f"{p}={default_text(d)}" for p, d in kwonly]
    return out


def doc_lines(doc: str, pad: str) -> list[str]:
    """A docstring wrapped to the line length."""
    import textwrap
    from archc.emit.code import WIDTH
    lines = []          # (text, indented): the spec's own line breaks are kept as they are
    for j, line in enumerate(docstring(doc).split("\n")):
        line = re.sub(r"\[[^\]\n]*\]", lambda m: m.group(0).replace(" ", "\x00"), line)   # [N, 3, 224, 224] whole
        width = WIDTH - len(pad) - 6
        parts = [line] if len(line) <= width else \
            textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False)
        parts = [p.replace("\x00", " ") for p in parts]
        lines += [(p.rstrip() if k < len(parts) - 1 else p, j == 0 or k > 0) for k, p in enumerate(parts)]
    lines[0] = ('"""' + lines[0][0], True)
    lines[-1] = (lines[-1][0] + '"""', lines[-1][1])
    return [(pad if indented else "") + ln for ln, indented in lines]


def render_class(name_: str, parts: Parts) -> str:
    from archc.emit.code import call
    out = [f"class {name_}({parts.base}):"]
    if parts.doc:
        out += doc_lines(parts.doc, INDENT)
        out.append("")
    if parts.constants:
        out.append(f"{INDENT}__constants__ = [{', '.join(repr(c) for c in parts.constants)}]")
        out.append("")
    sig = call("def __init__", ["self", *signature(parts.params, parts.kwonly)], 1)
    out += [INDENT + ln for ln in sig.split("\n")]
    out[-1] += ":"
    body = list(parts.pre)
    body += [INDENT * 2 + ln if ln else ln for ln in parts.super_call.split("\n")]
    body += parts.init + parts.init_tail
    out += without_dead_stores(body)
    for m in parts.extra_methods:         # right after __init__, which calls them
        out += [""] + [INDENT + ln if ln else ln for ln in m.strip("\n").split("\n")]
    if parts.forward:
        out += ["", f"{INDENT}def forward(self, {', '.join(parts.inputs)}):"] + parts.forward
    return "\n".join(out)


def without_dead_stores(body: list[str]) -> list[str]:
    """__init__'s lines less the arithmetic assigned to a local nothing reads (a running size
    kept for later layers that, in this class, none needed: Swin's map height)."""
    pad = INDENT * 2
    try:
        tree = ast.parse("\n".join(ln[len(pad):] if ln.startswith(pad) else ln.strip() for ln in body))
    except SyntaxError:
        return body
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    dead = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and stmt.targets[0].id not in read and not any(isinstance(n, ast.Call) for n in ast.walk(stmt.value)):
            dead.update(range(stmt.lineno - 1, stmt.end_lineno))
    return [ln for j, ln in enumerate(body) if j not in dead]


def forward_lines(st: ClassState, ret: list[str]) -> list[str]:
    pad = INDENT * 2
    lines = []
    if st.runtime_used:
        dims = {"h_in": -2, "w_in": -1, "l_in": -1}
        for n in ("h_in", "w_in", "l_in"):
            if n in st.runtime_used:
                lines.append(f"{pad}{n} = x.shape[{dims[n]}]")
    for s in st.steps:
        body = s.lines
        if s.train_only:
            body = ["if self.training:"] + [INDENT + ln for ln in body]
        lines += [pad + ln for ln in body]
    lines += [pad + ln for ln in ret]
    return lines


def large(shape: tuple) -> tuple:
    """The shape with every spatial size one that any block fits."""
    return (shape[0],) + (LARGE,) * (len(shape) - 1)


class BlockClasses:
    """The block classes of one emission, translated on demand and memoised per instance."""

    def block_class(self, block: str, params: dict, in_shape: tuple, at) -> tuple[ClassInfo, Face]:
        if block not in self.first_seen:
            self.first_seen.append(block)
        if self.stack:
            self.inside.setdefault(block, set()).add(self.stack[-1])
        shared = value_params(self.blocks, block, self.value_params)
        key = (block, repr(sorted((k, "<value>" if k in shared else v) for k, v in params.items())), in_shape)
        hit = self.faces.get(key)
        if hit is not None:
            return hit
        if block in self.stack:
            raise at.error(f"block cycle: {' -> '.join(self.stack + [block])}")
        self.stack.append(block)
        try:
            try:
                info, face = self.translate(block, params, in_shape)
            except ShapeError:
                # the instance is in a branch not taken here (the expansion succeeded), at a size
                # the block does not fit: its code does not depend on the size, so write it at one
                # where it does
                info, face = self.translate(block, params, tuple(large(s) for s in in_shape)
                                            if self.blocks.defs[block][0].inputs else large(in_shape))
        finally:
            self.stack.pop()
        known = self.classes.get(block)
        if known is None:
            self.classes[block] = info
            self.order.append(block)
        elif known.text != info.text:
            raise emit_error(at, f"block '{block}' is written differently for two of its instances "
                                 f"(a value the code depends on is not an expression of its params):\n"
                                 f"{diff(known.text, info.text)}")
        self.faces[key] = (self.classes[block], face)
        return self.faces[key]

    def translate(self, block: str, params: dict, in_shape: tuple) -> tuple[ClassInfo, Face]:
        bdef, bat = self.blocks.defs[block]
        names = {v: Named(val, name(v)) for v, val in self.vars.items()}
        names.update({p: Named(val, name(p)) for p, val in params.items()})
        dims = tuple(bdef.input or ("c_in",))       # the input dims its constructor may take
        several = bdef.inputs is not None           # in_shape: one shape per input
        if several:
            dims = tuple(f"{k}_channels" for k in bdef.inputs)
            names.update({k: Named(s[0], name(k)) for k, s in zip(dims, in_shape)})
        elif bdef.input:
            names.update({k: Named(v, name(k)) for k, v in zip(bdef.input, in_shape)})
        else:
            names["c_in"] = Named(in_shape[0], name("c_in"))
            for k, v in shape_facts(in_shape).items():
                if k != "c_in":
                    names[k] = Named(v, None, True, name(k))
        env = Env(names)
        st = ClassState(env, root=False)
        w = Writer(self, st)
        lets = Code()
        for k, expr in bdef.let.items():
            if k in params or k in ("c_in", "h_in", "w_in", "l_in", *dims):
                raise (bat / "let" / k).error(f"'let' name '{k}' shadows a param or shape fact", key=True)
            s = sym(expr, env, bat / "let" / k)
            if getattr(s, "node", None) is None:
                raise emit_error(bat / "let" / k, f"'let' value '{k}' follows the input size")
            lets.assign(k, s.node)
            env.set(k, Named(plain(s), name(k)))
            st.lets[k] = s.node
        if several:         # sizes other than the channels: only forward knows them
            inputs = {k: T(k, (make(s[0], name(c)), *(make(v, None, True) for v in s[1:])))
                      for k, c, s in zip(bdef.inputs, dims, in_shape)}
            x = inputs[bdef.inputs[0]]
        else:
            x = T("x", tuple(make(v, name(k)) for k, v in zip(bdef.input, in_shape)) if bdef.input else
                  (make(in_shape[0], name("c_in")), *w.spatial(in_shape[1:])))
        kind = bdef.body_kind
        parts = Parts("nn.Module", bdef.doc or f"Block '{block}' of {self.net.name}.")
        if kind == "seq":
            mod = w.seq(bdef.seq, bat / "seq", x, env, block, tail=True)
            out, changes = mod.out, mod.changes
            parts.base = "nn.Sequential"
            if mod.render is not None:
                parts.pre = lets.lines
                parts.super_call = "super().__init__(" + mod.render(0, 8)[len("nn.Sequential("):]
            else:
                body = Code()
                body.lines = list(lets.lines)
                write_entries(body, mod.entries, "self")
                parts.init = body.lines
            if mod.tail:            # the children in order, then what only forward can run
                loop = ["for module in self:", f"{INDENT}x = module(x)"]
                parts.forward = forward_lines(st, loop + [f"x = {f.replace('{x}', 'x')}" for f in mod.tail[:-1]]
                                              + [f"return {mod.tail[-1].replace('{x}', 'x')}"])
        else:
            raws = bdef.layers if kind == "layers" else tree_at(bat.src, bat.path + (kind,))
            sc = Names(explicit_names(raws, bat / kind))
            if reads_input(raws):
                sc.chain_var = "h"
                sc.vars.add("h")
            if several:
                sc.ids.update(inputs)
                sc.vars.update(inputs)
                parts.inputs = tuple(inputs)
            else:
                sc.ids["input"] = x
            if kind == "layers":
                last = w.chain(sc, bdef.layers, bat / "layers", x, sc.chain_var, env)
            elif kind == "residual":
                last = w.residual(sc, tree_at(bat.src, bat.path + ("residual",)), bat / "residual", x,
                                  sc.chain_var, env)
            else:
                last = w.parallel(sc, tree_at(bat.src, bat.path + ("parallel",)), bat / "parallel", x,
                                  sc.chain_var, env)
            out, changes = last.shape, last.moved
            parts.init = lets.lines + st.init.lines
            parts.forward = forward_lines(st, [f"return {last.var}"])
        self.store_constants(st, parts)
        params_decl = [(p, param_decl(d)[1]) for p, d in bdef.params.items()]
        cls = self.class_name(block)
        parts.params = params_decl
        used = init_names(render_class(cls, parts))
        takes = tuple(k for k in dims if k in used)
        var_list = [v for v in self.vars if v in used and v not in params and v not in takes]
        parts.params = [(k, REQUIRED) for k in takes] + params_decl
        parts.kwonly = [(v, REQUIRED) for v in var_list]
        own = out[0].node
        info = ClassInfo(cls, block, render_class(cls, parts), takes, var_list, parts,
                         text(own) if own is not None and own is out[0].node and not names_in(own) & set(PLACEHOLDERS)
                         else None)
        allowed = {*dims, *params, *var_list, *PLACEHOLDERS}

        def outward(node):
            node = expand_lets(node, st.lets) if node is not None else None
            return node if node is not None and names_in(node) <= allowed else None
        spatial = tuple(outward(d.node) for d in out[1:])
        channels = closed_of(out[0])
        face = Face(tuple(map(plain, out)), outward(channels), outward(changes), spatial)
        sizes = dict(zip(dims, (s[0] for s in in_shape))) if several else dict(zip(bdef.input, in_shape)) \
            if bdef.input else dict(zip(PLACEHOLDERS, map(plain, in_shape[1:])))
        self.verify(face, {**env.concrete(), **sizes}, bat)
        return info, face

    def verify(self, face: Face, values: dict, at) -> None:
        """The interface's expressions give this instance's values, or the code would be wrong."""
        from archc.spec.expr import ExprError, evaluate
        for node, want in [(face.out_node, face.out[0])] + list(zip(face.spatial, face.out[1:])):
            if node is None or "__s" in names_in(node):
                continue
            try:
                got = evaluate(text(node), values)
            except ExprError:
                got = None
            if got != want:
                raise emit_error(at, f"'{text(node)}' gives {got!r} here, not {want!r}")

    def store_constants(self, st: ClassState, parts: Parts) -> None:
        """Values forward reads (conditions, flags) become attributes, constants to TorchScript."""
        stores = [f"{INDENT * 2}self.{c} = {c}" for c in st.constants if c not in st.flags]
        if stores:
            parts.init = parts.init + stores
        parts.constants = list(st.flags) + [c for c in st.constants if c not in st.flags]


def init_names(rendered: str) -> set[str]:
    """The names the __init__ of a rendered class reads."""
    cls = ast.parse(rendered).body[0]
    init = next(f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    return {n.id for stmt in init.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}


def diff(a: str, b: str) -> str:
    import difflib
    return "\n".join(difflib.unified_diff(a.split("\n"), b.split("\n"), lineterm="", n=1))
