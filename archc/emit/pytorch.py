"""The one emitter: Network -> readable, standalone PyTorch source. The in-memory module is this
same source, executed (build_module)."""
from __future__ import annotations

import keyword
import re
from typing import Any

from archc.emit.init import init_code
from archc.emit.classes import (CannotMerge, ClassInfo, Entry, Hole, Template, aligned, camel, fill,
                                instance_args, lift, merged, optional_child)
from archc.errors import SpecError
from archc.ir.graph import Module, Network, Step
from archc.ops.base import Ctor
from archc.perf import paused_gc

INDENT = "    "
# names the generated module already binds; a block class must not shadow them
RESERVED_CLASS_NAMES = frozenset({"F", "OrderedDict", "torch", "nn"})


# characters a docstring cannot hold as themselves: NUL, CR, and lone surrogates (not UTF-8)
_UNWRITABLE = re.compile("[\\x00\\r\\ud800-\\udfff]")


def docstring(text: str) -> str:
    """Spec text (`doc:`, file and block names) as the inside of a triple-quoted docstring: quotes
    and backslashes escaped, so nothing from a spec can close the string and become code, and
    characters that cannot be written as UTF-8 source as escapes."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return _UNWRITABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text)


def class_identifier(name: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise SpecError(f"cannot name a generated class {name!r}: block names must be identifiers")
    return name


class Emitter:
    def __init__(self, net: Network, reserved: frozenset[str] = frozenset()):
        self.net = net
        self.support: dict[str, None] = {}
        self.instances: dict[str, list[Module]] = {}
        self.order: list[str] = []                    # class definitions, dependencies first
        self.classes: dict[int, tuple[ClassInfo, Template]] = {}
        self.defs: dict[str, list[ClassInfo]] = {}
        self.taken = {camel(net.name), *RESERVED_CLASS_NAMES, *reserved}
        self.collect(net.root)

    def collect(self, m: Module) -> None:
        for c in m.children:
            self.collect(c)
        if m.kind == "class" and m.block is not None:
            self.instances.setdefault(m.block, []).append(m)

    # -- rendering of constructor expressions, with hole markers ----------------------------
    def hole(self, holes: list[Hole], value, kw, ctx, default=...) -> str:
        holes.append(Hole(kw, ctx, value, default))
        return f"\x00{len(holes) - 1}\x00"

    def ctor(self, c: Ctor, holes: list[Hole], ctx: str, depth: int) -> str:
        for s in c.support:
            self.support[s] = None
        if c.callee == "nn.Sequential":
            return self.sequential([(n, v) for n, v in c.args], holes, ctx, depth)
        parts = []
        for j, (name, value) in enumerate(c.args):
            kw = None if j < c.npos else name
            if isinstance(value, Ctor):
                text = self.ctor(value, holes, f"{ctx}_{name}", depth)
                parts.append(f"{kw}={text}" if kw else text)
            else:
                parts.append(self.hole(holes, value, kw, f"{ctx}_{name}", c.defaults.get(name, ...)))
        return f"{c.callee}({', '.join(parts)})"

    def sequential(self, children: list[tuple[str, Any]], holes, ctx: str, depth: int,
                   call: str = "nn.Sequential") -> str:
        pad = INDENT * (depth + 1)
        numbered = all(n == str(j) for j, (n, _) in enumerate(children))
        texts = []
        for n, c in children:
            text = self.ctor(c, holes, f"{ctx}_{n}", depth + 1) if isinstance(c, Ctor) \
                else self.expr(c, holes, f"{ctx}_{n}", depth + 1)
            texts.append(f"{pad}{text}," if numbered else f"{pad}({n!r}, {text}),")
        body = "\n".join(texts)
        if numbered:
            return f"{call}(\n{body}\n{INDENT * depth})"
        return f"{call}(OrderedDict([\n{body}\n{INDENT * depth}]))"

    def expr(self, m: Module, holes: list[Hole], ctx: str, depth: int) -> str:
        """Constructor expression of a module: an op's module, an nn.Sequential, a block class."""
        if m.kind == "op":
            c = m.node.op.module(m.node.args, m.node.in_shapes, m.node.out)
            return self.ctor(c, holes, ctx, depth)
        if m.kind == "seq":
            return self.sequential([(c.attr, c) for c in m.children], holes, ctx, depth)
        info, tpl = self.class_of(m)
        args = instance_args(info, m, tpl)
        parts = [self.hole(holes, v, None if j == 0 and p == "c_in" else p, f"{ctx}_{p}")
                 for j, (p, v) in enumerate(args)]
        return f"{info.name}({', '.join(parts)})"

    # -- classes -----------------------------------------------------------------------------
    def template(self, m: Module) -> Template:
        holes: list[Hole] = []
        if m.block_kind == "seq":
            body = self.sequential([(c.attr, c) for c in m.children], holes, "", 2, call="super().__init__")
            return Template("nn.Sequential", body.split("\n"), [], holes)
        init, entries = [], []
        for c in m.children:
            l0, h0 = len(init), len(holes)
            text = self.expr(c, holes, c.attr, 2)
            init.extend(f"self.{c.attr} = {text}".split("\n"))
            entries.append(Entry(c.attr, l0, len(init), h0, len(holes)))
        return Template("nn.Module", init, self.forward(m), holes, entries)

    def forward(self, m: Module) -> list[str]:
        lines = []
        for step in m.steps:
            line = self.step(step)
            if line is None:
                continue
            if step.train_only:
                lines += ["if self.training:", INDENT + line]
            else:
                lines.append(line)
        evals = [v for v, t in m.outputs if not t]
        alls = [v for v, _ in m.outputs]
        ret = evals[0] if len(evals) == 1 else f"({', '.join(evals)})"
        if len(alls) != len(evals):
            lines.append(f"return ({', '.join(alls)}) if self.training else {ret}")
        else:
            lines.append(f"return {ret}")
        return lines

    def step(self, s: Step) -> str | None:
        if s.attr is not None:
            return f"{s.dst} = self.{s.attr}({s.srcs[0]})"
        if s.node is not None:
            return s.node.op.statement(s.node.args, s.dst, s.srcs)
        return None if s.dst == s.srcs[0] else f"{s.dst} = {s.srcs[0]}"

    def class_of(self, m: Module) -> tuple[ClassInfo, Template]:
        if id(m) not in self.classes:
            self.define(m.block)
        return self.classes[id(m)]

    def define(self, block: str) -> None:
        groups: dict[Any, list[tuple[Module, Template]]] = {}
        for inst in self.instances[block]:
            tpl = self.template(inst)
            groups.setdefault(tpl.key(), []).append((inst, tpl))
        base = class_identifier(camel(block))
        infos = []
        for members, flags, tpl in self.merge_variants(list(groups.values()), block):
            name = base if base not in self.taken else next(
                f"{base}{k}" for k in range(2, 999) if f"{base}{k}" not in self.taken)
            self.taken.add(name)
            info = lift(name, members, list(members[0][0].params), flags, tpl) if flags else \
                lift(name, members, list(members[0][0].params))
            infos.append(info)
            for inst, t in members:
                self.classes[id(inst)] = (info, t)
        self.defs[block] = infos
        self.order.append(block)

    def merge_variants(self, groups: list[list[tuple[Module, Template]]], block: str):
        """Variants of one block that differ only by an optional child (ResNet's `downsample`)
        share one class with a flag param; the others stay separate, numbered classes."""
        out = []
        pending = list(groups)
        while pending:
            a = pending.pop(0)
            for b in pending:
                for big, small in ((a, b), (b, a)):
                    d = optional_child(big[0][1], small[0][1])
                    if d is None or d in big[0][0].params:
                        continue
                    tpl = merged(big[0][1], d)
                    members = big + [(m, aligned(t, big[0][1], d)) for m, t in small]
                    has = {id(m) for m, _ in big}
                    flags = {id(m): {d: id(m) in has} for m, _ in members}
                    try:
                        lift("probe", members, list(members[0][0].params), flags, tpl)
                    except CannotMerge:
                        continue
                    pending.remove(b)
                    out.append((members, flags, tpl))
                    break
                else:
                    continue
                break
            else:
                out.append((a, None, None))
        return out

    def render_class(self, info: ClassInfo, doc: str, init: list[str] | None = None) -> str:
        """A class; `init`, the body of an `_init_weights` method its `__init__` ends by calling."""
        tpl = info.template
        sig = ", ".join(["self", *info.params])
        out = [f"class {info.name}({tpl.base}):"]
        if doc:
            out.append(f'{INDENT}"""{docstring(doc)}"""')
            out.append("")
        out.append(f"{INDENT}def __init__({sig}):")
        body = fill(info, tpl.init, tpl.holes)
        if tpl.base == "nn.Module":
            out.append(f"{INDENT * 2}super().__init__()")
        # continuation lines of multi-line constructors carry their own indentation already
        out += [line if line.startswith(" ") else INDENT * 2 + line for line in body]
        if init:
            out += [f"{INDENT * 2}self._init_weights()", "", f"{INDENT}def _init_weights(self):"]
            out += [INDENT * 2 + line for line in init]
        if tpl.forward:
            out.append("")
            out.append(f"{INDENT}def forward(self, x):")
            out += [INDENT * 2 + line for line in tpl.forward]
        return "\n".join(out)

    def source(self) -> str:
        root = self.net.root
        root_tpl = self.template(root)
        root_info = lift(camel(self.net.name), [(root, root_tpl)], [])
        classes = []
        for block in self.order:
            for info in self.defs[block]:
                classes.append(self.render_class(info, f"Block '{block}' of {self.net.name}."))
        doc = (self.net.doc or self.net.name).rstrip()
        doc += "" if doc.endswith((".", "!", "?")) else "."
        init = init_code(self.net, {b: [i.name for i in infos] for b, infos in self.defs.items()})
        classes.append(self.render_class(root_info, f"{doc} Input: [N, {', '.join(map(str, self.net.input))}].",
                                         init.lines if init else None))
        stdlib = [*(["from collections import OrderedDict"] if "OrderedDict(" in "".join(classes) else []),
                  *(["from fnmatch import fnmatchcase"] if init and init.needs_fnmatch else []),
                  *(["import math"] if init and (init.needs_math or init.helpers) else [])]
        head = [f'"""{self.net.name}: generated by archc from {docstring(self.net.file.split("/")[-1])}.',
                "", "Standalone: needs only torch. Edit freely.", '"""',
                *stdlib, *([""] if stdlib else []),
                "import torch", "import torch.nn.functional as F", "from torch import nn"]
        helpers = list(init.helpers) if init else []
        parts = ["\n".join(head), *[s.strip("\n") for s in [*self.support, *helpers]], *classes]
        return "\n\n\n".join(parts) + "\n"


def emit_source(net: Network) -> str:
    with paused_gc():
        return _emit_source(net)


def _emit_source(net: Network) -> str:
    em = Emitter(net)
    src = em.source()
    # a block class named like a helper class (block 'global_avg_pool' vs GlobalAvgPool): emit again
    # with the helpers' names reserved, so the block class takes a numbered name instead
    helpers = {line.split("(")[0].split(":")[0][6:] for s in em.support for line in s.split("\n")
               if line.startswith("class ")}
    if helpers & {info.name for infos in em.defs.values() for info in infos}:
        src = Emitter(net, frozenset(helpers)).source()
    return src


def class_name(net: Network) -> str:
    return camel(net.name)


def build_module(net: Network, weights=None):
    """Execute the emitted source and instantiate the network class (torch imported here)."""
    import hashlib
    import linecache
    import types
    src = emit_source(net)
    mod = types.ModuleType(f"archc_generated_{net.name.replace('-', '_')}")
    mod.__file__ = f"<archc:{net.name}:{hashlib.sha1(src.encode()).hexdigest()[:10]}>"
    # the source, findable by inspect: tracebacks show generated lines, torch.jit.script can read it
    linecache.cache[mod.__file__] = (len(src), None, src.splitlines(True), mod.__file__)
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    model = getattr(mod, class_name(net))()
    model._archc_source = src
    if weights is not None:
        from archc.emit.weights import load_weights
        load_weights(model, weights)
    return model
