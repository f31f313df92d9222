"""Turning block instances into classes: one class per block definition (per structural variant),
with the constructor literals that differ between instances lifted into `__init__` params that
are named after the block's own params where the values say so (`width`, `c_in`, `width * 4`)."""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from archc.ir.graph import Module

HOLE = re.compile(r"\x00(\d+)\x00")


@dataclass
class Hole:
    """A literal in generated code: inlined when all instances agree, else a constructor param."""
    kw: str | None          # keyword name, or None when positional
    ctx: str                # attribute path + arg name, for fallback param names
    value: Any
    default: Any = ...      # `...`: no default, always written


MISSING = object()   # the value of a literal an instance does not have (its optional child is absent)


class CannotMerge(Exception):
    """Two variants of a block cannot share one class cleanly."""


@dataclass
class Entry:
    """Where one child's constructor sits in a template: init lines [l0, l1), holes [h0, h1)."""
    attr: str
    l0: int
    l1: int
    h0: int
    h1: int


@dataclass
class Template:
    base: str                       # 'nn.Module' or 'nn.Sequential'
    init: list[str]                 # lines of __init__ body, with hole markers
    forward: list[str]
    holes: list[Hole]
    entries: list[Entry] = field(default_factory=list)

    def key(self):
        return (self.base, tuple(self.init), tuple(self.forward),
                tuple((h.kw, h.ctx, h.default is ...) for h in self.holes))


@dataclass
class ClassInfo:
    name: str
    template: Template
    params: list[str] = field(default_factory=list)            # constructor params, in order
    hole_text: dict[int, str] = field(default_factory=dict)    # hole -> param expression
    constant: dict[int, Any] = field(default_factory=dict)     # hole -> inlined value
    param_of_hole: dict[int, str] = field(default_factory=dict)
    flags: dict[int, dict[str, bool]] = field(default_factory=dict)   # id(instance) -> flag values


def same(a, b) -> bool:
    return type(a) is type(b) and a == b


def camel(name: str) -> str:
    parts = re.split(r"[_\-\s]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    return out if out and out[0].isalpha() else "Block" + out


def lift(name: str, instances: list[tuple[Module, Template]], block_params: list[str],
         flags: dict[int, dict[str, bool]] | None = None, tpl: Template | None = None) -> ClassInfo:
    """Decide, for one group of structurally identical instances, which literals become params.
    With `flags` (merged variants), a literal may be MISSING in the instances lacking its child;
    it must then be inlined or named after a param, else CannotMerge."""
    tpl = tpl or instances[0][1]
    info = ClassInfo(name, tpl, flags=dict(flags or {}))
    flag_names = list(next(iter(info.flags.values()), {}))
    every = [[t.holes[h].value for _, t in instances] for h in range(len(tpl.holes))]
    every_facts = [{"c_in": m.c_in, **m.params} for m, _ in instances]
    order = ["c_in"] + block_params
    used: dict[str, None] = {}
    fallback_names: dict[str, tuple] = {}
    for h, all_vals in enumerate(every):
        known = [(f, v) for f, v in zip(every_facts, all_vals) if v is not MISSING]
        facts, vals = [f for f, _ in known], [v for _, v in known]
        if all(same(v, vals[0]) for v in vals):
            info.constant[h] = vals[0]
            continue
        text = None
        # where c_in and a block param both fit (`out == c_in` in every instance), an input-size
        # arg takes c_in and any other arg the param: Conv2d(c_in, out), not Conv2d(c_in, c_in)
        ctx = tpl.holes[h].ctx
        reads_in = ctx.endswith(("in_channels", "in_features", "_c_in")) or ctx == "c_in"
        for p in (order if reads_in else block_params + ["c_in"]):
            if all(p in f and same(f[p], v) for f, v in zip(facts, vals)):
                text, used[p] = p, None
                break
        if text is None:
            # multiples: the block's own params before c_in (`width * 4` as the spec writes it, not
            # `c_in * 2`), and among them the smallest factor (`width * 4`, not `stride * 64`)
            best = None
            for p in block_params + ["c_in"]:
                if p == "c_in" and best is not None:
                    break
                pv = [f.get(p) for f in facts]
                if all(isinstance(x, int) and not isinstance(x, bool) and x for x in pv) and \
                        all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
                    k = vals[0] // pv[0]
                    if k > 1 and all(v == x * k for v, x in zip(vals, pv)) and (best is None or k < best[1]):
                        best = (p, k)
            if best is not None:
                text, used[best[0]] = f"{best[0]} * {best[1]}", None
        if text is None and len(vals) != len(all_vals):
            raise CannotMerge(tpl.holes[h].ctx)
        if text is None:
            # an identifier even for numbered nn.Sequential children ('0_padding' -> 'padding'),
            # and never a block param's name (that param would pass its own value instead)
            base = re.sub(r"^[\d_]+", "", re.sub(r"\W+", "_", tpl.holes[h].ctx)).strip("_") or "arg"
            text = base
            n = 2
            while text in order or keyword.iskeyword(text) or text == "self" or \
                    (text in fallback_names and fallback_names[text] != tuple(map(repr, vals))):
                text, n = f"{base}_{n}", n + 1
            fallback_names[text] = tuple(map(repr, vals))
            used[text] = None
        info.hole_text[h] = text
    info.params = [p for p in order if p in used] + flag_names + [p for p in used if p not in order]
    return info


def instance_args(info: ClassInfo, module: Module, tpl: Template) -> list[tuple[str, Any]]:
    """The constructor arguments one instance passes to its class."""
    facts = {"c_in": module.c_in, **module.params, **info.flags.get(id(module), {})}
    out = []
    for p in info.params:
        if p in facts:
            out.append((p, facts[p]))
        else:
            h = next(h for h, t in info.hole_text.items() if t == p)
            out.append((p, tpl.holes[h].value))
    return out


def fill(info: ClassInfo, lines: list[str], holes: list[Hole]) -> list[str]:
    """Replace hole markers with literals or param names; drop keyword args left at default."""
    def sub(m):
        h = int(m.group(1))
        hole = holes[h]
        if h in info.constant:
            if hole.default is not ... and same(hole.default, info.constant[h]):
                return "\x01"
            text = literal(info.constant[h])
        else:
            text = info.hole_text[h]
        return f"{hole.kw}={text}" if hole.kw else text
    out = []
    for line in lines:
        line = HOLE.sub(sub, line)
        line = re.sub(r",\s*\x01", "", line)
        line = re.sub(r"\x01,\s*", "", line).replace("\x01", "")
        out.append(line)
    return out


def literal(v: Any) -> str:
    if isinstance(v, float):
        r = repr(v)
        return r if "e" not in r else f"{v:g}"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(literal(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def optional_child(a: Template, b: Template) -> str | None:
    """The one child `a` has and `b` lacks, when that is their only difference and `a` merely
    calls it (`v = self.d(src)`): torchvision's `downsample=None` pattern. Else None."""
    a_attrs, b_attrs = [e.attr for e in a.entries], [e.attr for e in b.entries]
    extra = [x for x in a_attrs if x not in b_attrs]
    if a.base != b.base or len(extra) != 1 or [x for x in a_attrs if x != extra[0]] != b_attrs:
        return None
    d = extra[0]
    e = next(e for e in a.entries if e.attr == d)
    if [HOLE.sub("", x) for x in a.init[:e.l0] + a.init[e.l1:]] != [HOLE.sub("", x) for x in b.init]:
        return None
    calls = [(j, m) for j, line in enumerate(a.forward)
             if (m := re.fullmatch(rf"(\w+) = self\.{d}\((\w+)\)", line))]
    if len(calls) != 1:
        return None
    j, m = calls[0]
    rest = [re.sub(rf"\b{m[1]}\b", m[2], x) for x in a.forward[:j] + a.forward[j + 1:]]
    return d if rest == b.forward and not any(f"self.{d}" in x for x in rest) else None


def merged(a: Template, d: str) -> Template:
    """`a` with child `d` made optional: built when the flag `d` is true, else None."""
    e = next(e for e in a.entries if e.attr == d)
    init = list(a.init)
    init[e.l1 - 1] += f" if {d} else None"
    forward = []
    for line in a.forward:
        m = re.fullmatch(rf"(\w+) = self\.{d}\((\w+)\)", line)
        forward.append(f"{m[1]} = {m[2]} if self.{d} is None else self.{d}({m[2]})" if m else line)
    return Template(a.base, init, forward, a.holes, a.entries)


def aligned(b: Template, a: Template, d: str) -> Template:
    """`b`'s literals laid out as `a`'s, MISSING where `a`'s optional child `d` has its own."""
    e = next(e for e in a.entries if e.attr == d)
    holes = b.holes[:e.h0] + [Hole(h.kw, h.ctx, MISSING, h.default) for h in a.holes[e.h0:e.h1]] + b.holes[e.h0:]
    return Template(b.base, b.init, b.forward, holes, b.entries)
