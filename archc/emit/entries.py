"""What a generated constructor is made of: a module to build (Mod), the statements that fill an
nn.Sequential (Entry: a child, an `if`, a `for`, a local), and the conditions joining them."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable

from archc.emit.code import INDENT, Code
from archc.emit.sym import Sym, SymList, copy, is_const, make, names_in, node_of, size, text
from archc.spec.layers import Item

FALSE, TRUE = ast.Constant(False), ast.Constant(True)
LONG = 8           # nodes in a channel expression before it goes into a local
CHILD = "__child"  # the module just built, in an expression of what it gives (its out_channels)


def involved(node: ast.expr) -> bool:
    return any(isinstance(n, ast.IfExp) for n in ast.walk(node)) or size(node) > 4 * LONG


@dataclass
class Mod:
    """A module to construct: `render(depth, first)` gives its constructor expression, or
    `entries` the statements that fill an nn.Sequential."""
    out: tuple
    changes: ast.expr | None            # when the spatial size changes (None: cannot say)
    render: Callable[[int, int], str] | None = None
    entries: list["Entry"] | None = None
    functional: str | None = None       # a forward expression over `{x}` (runtime arguments)
    applies: str | None = None          # forward over `{p}` (the attribute) and `{x}` when not `p(x)`
    tail: list[str] = field(default_factory=list)   # a seq block's forward after its children
    # a class's own seq: its children's ids, {id: (children up to it, tensor there)}, and how
    # many children it has (None: not a constant)
    taps: dict = field(default_factory=dict)
    length: int | None = None


@dataclass
class Entry:
    """One statement of an nn.Sequential being filled: a child, an `if` or a `for`."""
    kind: str                           # 'mod' | 'if' | 'for' | 'line' (header = node)
    mod: Mod | None = None
    child: ast.expr | None = None       # the child's name; None: numbered
    header: str = ""
    body: list["Entry"] = field(default_factory=list)
    node: ast.expr | None = None
    at: Any = None                      # the layer's place in the spec, for messages
    count: ast.expr | None = None       # a 'for': how many times it runs


def known_length(entries: list[Entry]) -> int | None:
    """The children these statements add, where that is a constant (no `if`, constant loops)."""
    total = 0
    for e in entries:
        if e.kind == "mod":
            total += 1
        elif e.kind == "for":
            inner = known_length(e.body)
            if inner is None or e.count is None or not is_const(e.count):
                return None
            total += e.count.value * inner
        elif e.kind != "line":
            return None
    return total


def functional_entry(entries: list[Entry]) -> Entry | None:
    """A layer only forward can run (its args follow the input size), among an nn.Sequential's."""
    for e in entries:
        if e.kind == "mod" and e.mod.functional is not None:
            return e
        found = functional_entry(e.body)
        if found is not None:
            return found
    return None


def shaped(shape) -> tuple:
    """An op's output shape, every size symbolic (a size the op makes up is a constant)."""
    return tuple(d if isinstance(d, Sym) else make(d, ast.Constant(d)) for d in shape)


def attach(v, s):
    """A validated arg value carrying the expression of the spec value it came from."""
    if isinstance(s, list) and isinstance(v, list) and len(s) == len(v):
        items = [attach(x, y) for x, y in zip(v, s)]
        return SymList(items)._init(node_of(s), any(getattr(x, "runtime", False) for x in items))
    if isinstance(s, Sym) and not isinstance(v, dict):
        return make(v, s.node, s.runtime, s.fwd)
    return v


def any_of(conds: list[ast.expr | None]) -> ast.expr | None:
    if any(c is None for c in conds):
        return None
    keep = [c for c in conds if not (is_const(c) and c.value is False)]
    if any(is_const(c) and c.value is True for c in keep):
        return TRUE
    return FALSE if not keep else keep[0] if len(keep) == 1 else ast.BoolOp(ast.Or(), keep)


def all_of(conds: list[ast.expr]) -> ast.expr:
    keep = [c for c in conds if not (is_const(c) and c.value is True)]
    if any(is_const(c) and c.value is False for c in keep):
        return FALSE
    return TRUE if not keep else keep[0] if len(keep) == 1 else ast.BoolOp(ast.And(), keep)



SEQ = "__seq"     # the nn.Sequential being filled, in a line of its statements


def replace_name(node: ast.expr, key: str, by: ast.expr) -> ast.expr:
    class R(ast.NodeTransformer):
        def visit_Name(self, n):
            return by if n.id == key else n
    return R().visit(copy(node))


def render_entries(entries: list[Entry], target: str = "self.x", depth: int = 0) -> str:
    code = Code(depth)
    write_entries(code, entries, target)
    return "\n".join(code.lines)


def write_entries(code: Code, entries: list[Entry], target: str) -> None:
    merged: list[Entry] = []          # `if c:` blocks one after another under one `if c:`
    for e in entries:
        if e.kind == "if" and merged and merged[-1].kind == "if" and merged[-1].header == e.header:
            merged[-1] = Entry("if", header=e.header, body=merged[-1].body + e.body)
        else:
            merged.append(e)
    for e in merged:
        if e.kind == "line":
            code.assign(e.header, replace_name(e.node, SEQ, ast.parse(target, mode="eval").body))
        elif e.kind in ("if", "for"):
            with code.block(e.header):
                write_entries(code, e.body, target)
            last = e.body[-1] if e.body else None
            if e.kind == "for" and code.depth == code.base and last is not None and last.kind == "line":
                code.holds[last.header] = text(last.node)
        else:
            m = e.mod
            expr = None
            if m.render is None:     # an nn.Sequential with its own `if` / `for`: built first
                expr = "block" if target != "block" else "inner"
                code.add(f"{expr} = nn.Sequential()")
                write_entries(code, m.entries, expr)
            head = f"{target}.append(" if e.child is None else f"{target}.add_module({text(e.child)}, "
            code.add(head + (expr or m.render(0, len(head) + len(INDENT) * code.depth)) + ")")


def when_names(item: Item) -> set[str]:
    """The names a `when:` reads (whether it reads the copy index `i`): before anything evaluates
    it, so a bad expression is located here (a repeat of no copies never evaluated it)."""
    from archc.spec.expr import INTERP, NAME, ExprError, parse
    raw = item.wiring.get("when")
    if not isinstance(raw, str):
        return set()
    m = NAME.match(raw)
    if m:
        return {m.group(1)}
    try:
        return {n for e in INTERP.findall(raw) for n in names_in(parse(e).body)}
    except ExprError as e:
        raise item.wiring_at["when"].error(str(e)) from None


def domain(node: ast.expr, lets: dict[str, ast.expr]) -> list | None:
    """The values a string expression can take, where they are spelled out in it."""
    if is_const(node):
        return [node.value]
    if isinstance(node, ast.IfExp):
        a, b = domain(node.body, lets), domain(node.orelse, lets)
        return None if a is None or b is None else a + [x for x in b if x not in a]
    if isinstance(node, ast.Name) and node.id in lets:
        return domain(lets[node.id], lets)
    return None


def supports(value) -> list[str]:
    """The helper sources a constructor needs, its nested ones included."""
    from archc.emit.code import Choice
    from archc.ops.base import Ctor
    if isinstance(value, Ctor):
        return list(value.support) + [s for _, v in value.args for s in supports(v)]
    if isinstance(value, Choice):
        return [s for _, v in value.cases for s in supports(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in supports(v)]
    return []
