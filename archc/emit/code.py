"""Writing Python: indented lines, calls wrapped to the line length, op constructors (Ctor) with
their symbolic arguments, literals."""
from __future__ import annotations

import ast
from contextlib import contextmanager
from typing import Any

from archc.emit.sym import Sym, is_const, names_in, text
from archc.ops.base import Ctor

INDENT = "    "
WIDTH = 100


class Choice:
    """A value that depends on a string param or let: `nn.ReLU() if act == 'relu' else
    nn.Hardswish()`. The last case is the fallback; the cases cover every value it can take."""

    def __init__(self, cases: list[tuple[ast.expr, Any]]):
        self.cases = cases


def merge_values(cases: list[tuple[ast.expr, Any]]):
    """One value for several cases, the choice pushed as deep as the cases differ."""
    first = cases[0][1]
    rendered = {value_text(v) if not isinstance(v, Ctor) else repr(ctor_key(v)) for _, v in cases}
    if len(rendered) == 1:
        return first
    if all(isinstance(v, Ctor) for _, v in cases) and len({(v.callee, v.npos, tuple(k for k, _ in v.args))
                                                              for _, v in cases}) == 1:
        args = [(key, merge_values([(c, dict(v.args)[key]) for c, v in cases])) for key, _ in first.args]
        return Ctor(first.callee, args, first.npos, first.defaults, first.support)
    return Choice(cases)


def ctor_key(c):
    return (c.callee, tuple((k, ctor_key(v) if isinstance(v, Ctor) else value_text(v)) for k, v in c.args))


class NeedsRuntime(Exception):
    """A constructor argument follows the input's size, which __init__ does not know."""


class Code:
    """Lines of a function body, with nested blocks."""

    def __init__(self, depth: int = 2):
        self.lines: list[str] = []
        self.depth = depth
        self.base = depth
        self.holds: dict[str, str] = {}    # local -> expression it holds (at the base level)

    def assign(self, target: str, node: ast.expr) -> None:
        """`target = <expression>`, wrapped to the line length; nothing where it holds it already."""
        value = text(node)
        if self.depth == self.base and self.holds.get(target) == value:
            return
        self.add(f"{target} = {wrap(node, len(INDENT) * self.depth + len(target) + 3)}")
        if self.depth == self.base and "self" not in names_in(node):    # not what changes as it builds
            self.holds[target] = value
        else:
            self.holds.pop(target, None)

    def add(self, line: str) -> None:
        pad = INDENT * self.depth
        self.lines.extend(pad + part if part else part for part in line.split("\n"))

    def extend(self, other: "Code") -> None:
        self.lines.extend(other.lines)

    @contextmanager
    def block(self, header: str):
        if header.startswith("if ") and header.endswith(":") and \
                len(INDENT) * self.depth + len(header) > WIDTH:          # a long condition, wrapped
            header = "if " + wrap(ast.parse(header[3:-1], mode="eval").body, len(INDENT) * self.depth + 3) + ":"
        self.add(header)
        self.depth += 1
        start = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == start:
                self.add("pass")
            self.depth -= 1

    def __bool__(self):
        return bool(self.lines)


def wrap(node: ast.expr, first: int) -> str:
    """An expression on one line if it fits, else a list or call broken after its bracket."""
    one = text(node)
    if first + len(one) <= WIDTH:
        return one
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        opening, closing = ("[", "]") if isinstance(node, ast.List) else ("(", ")")
        body = filled([text(e) + "," for e in node.elts], INDENT)
        return opening + "\n" + "\n".join(body) + "\n" + closing
    if isinstance(node, ast.Call):
        args = [text(a) for a in node.args] + [f"{k.arg}={text(k.value)}" for k in node.keywords]
        return call(text(node.func), args, 0, first)
    if isinstance(node, ast.BoolOp):
        op = " and " if isinstance(node.op, ast.And) else " or "
        parts = [text(v) if not isinstance(v, ast.BoolOp) else f"({text(v)})" for v in node.values]
        return "(\n" + INDENT + f"\n{INDENT}{op.strip()} ".join(parts) + "\n)"
    return one


def literal(v: Any) -> str:
    if isinstance(v, float):
        r = repr(v)
        return r if "e" not in r else f"{v:g}"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(literal(x) for x in v)
        if isinstance(v, list):
            return f"[{inner}]"
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def whole_list(items) -> str | None:
    """`(k[0], k[1])` taken apart from a list param `k` is `k` itself (torch takes either)."""
    nodes = [getattr(x, "node", None) for x in items]
    if not nodes or any(not isinstance(n, ast.Subscript) for n in nodes):
        return None
    bases = {ast.dump(n.value) for n in nodes}
    idx = [n.slice.value if is_const(n.slice) else None for n in nodes]
    if len(bases) == 1 and idx == list(range(len(items))):
        return text(nodes[0].value)
    return None


def value_text(v: Any) -> str:
    if isinstance(v, Sym):
        if not v.known:
            raise NeedsRuntime(repr(v))
        return text(v.node)
    if isinstance(v, (list, tuple)) and any(isinstance(x, Sym) for x in v):
        joined = whole_list(v)
        if joined is not None:
            return joined
        inner = ", ".join(value_text(x) for x in v)
        if isinstance(v, list):
            return f"[{inner}]"
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, Ctor):
        return ctor_text(v, 0)
    if isinstance(v, Choice):
        parts = [f"{value_text(x)} if {text(c)} else " for c, x in v.cases[:-1]]
        return "".join(parts) + value_text(v.cases[-1][1])
    return literal(v)


def at_default(v: Any, default: Any) -> bool:
    if default is ...:
        return False
    if isinstance(v, Sym):
        return v.constant and type(v.plain) is type(default) and v.plain == default
    if isinstance(v, (list, tuple)):
        return False
    return type(v) is type(default) and v == default


def call(callee: str, args: list[str], depth: int, first: int = 0) -> str:
    """`callee(a, b)` on one line if it fits (`first`: columns taken before it), else wrapped
    after the parenthesis and filled at one more indent."""
    one = f"{callee}({', '.join(args)})"
    if len(INDENT) * depth + first + len(one) <= WIDTH or not args:
        return one
    pieces = [a + ("," if j < len(args) - 1 else ")") for j, a in enumerate(args)]
    return f"{callee}(\n" + "\n".join(filled(pieces, INDENT * (depth + 1)))


def filled(pieces: list[str], pad: str) -> list[str]:
    """Pieces joined by spaces into lines of at most WIDTH columns, each starting with pad."""
    lines, line = [], pad
    for piece in pieces:
        if line != pad and len(line) + 1 + len(piece) > WIDTH:
            lines.append(line.rstrip())
            line = pad
        line += ("" if line == pad else " ") + piece
    lines.append(line)
    return lines


def ctor_args(c: Ctor) -> list[str]:
    out = []
    for j, (key, value) in enumerate(c.args):
        if j >= c.npos and at_default(value, c.defaults.get(key, ...)):
            continue
        t = value_text(value)
        out.append(t if j < c.npos else f"{key}={t}")
    return out


def ctor_text(c: Ctor, depth: int, first: int = 0) -> str:
    """A constructor call; an nn.Sequential of several modules one child a line."""
    if c.callee == "nn.Sequential":
        return sequential([(n, ctor_text(v, depth + 1) if isinstance(v, Ctor) else value_text(v))
                           for n, v in c.args], depth)
    return call(c.callee, ctor_args(c), depth, first)


def sequential(children: list[tuple[str | None, str]], depth: int, callee: str = "nn.Sequential") -> str:
    """nn.Sequential(a, b) of numbered children, or of an OrderedDict of named ones."""
    numbered = all(n is None or n == str(j) for j, (n, _) in enumerate(children))
    if numbered and len(children) <= 1:
        return f"{callee}({children[0][1] if children else ''})"
    pad = INDENT * (depth + 1)
    rows = [f"{pad}{t}," if numbered else f"{pad}({n!r}, {t})," for n, t in children]
    body = "\n".join(rows)
    if numbered:
        return f"{callee}(\n{body}\n{INDENT * depth})"
    return f"{callee}(OrderedDict([\n{body}\n{INDENT * depth}]))"


def module_list(items: list[str], depth: int) -> str:
    """nn.ModuleList([a, b, ...]), one item a line."""
    pad = INDENT * (depth + 1)
    return "nn.ModuleList([\n" + "\n".join(f"{pad}{t}," for t in items) + f"\n{INDENT * depth}])"
