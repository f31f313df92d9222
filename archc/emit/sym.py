"""Symbolic values: a concrete value together with the Python expression that computes it.

The emitter translates each block definition once. Every value it hands to an op's rules is
the value of one real instance (so the rules run unchanged) that also carries its expression
(`node`, an ast expression over the class's params, `let:` values, vars, `c_in` and `i`). The
op rules do arithmetic on these values as on numbers, and the expression follows along:
`Conv2d(in_channels=x[0], ...)` receives `c_in`, `width * 4`, `(k - 1) // 2`.

Values that follow the input's spatial size (`h_in`, a flatten size) are `runtime`: inside a
block they have no `node` (__init__ cannot know them), only `fwd`, their expression in forward.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any


# The spatial sizes of a block's input: names __init__ cannot read (the block learns its input
# size only in forward); they stand in expressions so a caller can put its own sizes in.
PLACEHOLDERS = ("__s0", "__s1", "__s2", "__s")     # __s: some size too involved to write out
UNKNOWN_SIZE = 20                                   # nodes in a size expression before it is __s


def const(v: Any) -> ast.expr:
    if isinstance(v, (list, tuple)):
        elts = [const(x) for x in v]
        return ast.List(elts=elts, ctx=ast.Load()) if isinstance(v, list) else ast.Tuple(elts=elts, ctx=ast.Load())
    return ast.Constant(v)


def name(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Load())


def text(node: ast.expr) -> str:
    return ast.unparse(node)


def names_in(node: ast.expr | None) -> set[str]:
    """The names an expression reads (the functions it calls not counted)."""
    if node is None:
        return set()
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in called}


def size(node: ast.expr) -> int:
    """The number of expression nodes in an expression."""
    return sum(1 for n in ast.walk(node) if isinstance(n, ast.expr))


def is_const(node) -> bool:
    return isinstance(node, ast.Constant)


class Sym:
    """Mixin of the symbolic value types. `symbolic` marks them for OpArgs (validated already in
    their concrete form)."""
    symbolic = True
    node: ast.expr | None
    fwd: ast.expr | None
    runtime: bool

    def _init(self, node, runtime=False, fwd=None):
        self.node, self.runtime, self.fwd = node, runtime, fwd
        return self

    def __repr__(self):
        return text(self.node) if self.node is not None else f"<{self.plain!r} known at run time>"

    __str__ = __repr__

    @property
    def constant(self) -> bool:
        return is_const(self.node)

    @property
    def known(self) -> bool:
        """Whether __init__ can compute it (no part of it follows a block's input size)."""
        return self.node is not None and not (names_in(self.node) & set(PLACEHOLDERS))


def plain(v):
    """The concrete value of a symbolic value (nested)."""
    if isinstance(v, Sym):
        return v.plain
    if isinstance(v, (list, tuple)):
        return type(v)(plain(x) for x in v) if type(v) in (list, tuple) else [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def node_of(v) -> ast.expr | None:
    if isinstance(v, Sym):
        return v.node
    if isinstance(v, (list, tuple)):
        elts = [node_of(x) for x in v]
        if any(e is None for e in elts):
            return None
        return ast.List(elts=elts, ctx=ast.Load()) if isinstance(v, list) else ast.Tuple(elts=elts, ctx=ast.Load())
    return const(v)


def fwd_of(v) -> ast.expr | None:
    return v.fwd if isinstance(v, Sym) and v.runtime else node_of(v)


def is_runtime(v) -> bool:
    if isinstance(v, Sym) and v.runtime:
        return True
    if isinstance(v, (list, tuple)):
        return any(is_runtime(x) for x in v)
    if isinstance(v, dict):
        return any(is_runtime(x) for x in v.values())
    return False


BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.FloorDiv: operator.floordiv, ast.Div: operator.truediv, ast.Mod: operator.mod,
          ast.Pow: operator.pow}


def binop(a, op: type, b):
    value = BINOPS[op](plain(a), plain(b))
    na, nb = node_of(a), node_of(b)
    node = None if na is None or nb is None else simplify(ast.BinOp(na, op(), nb))
    runtime = is_runtime(a) or is_runtime(b)
    if runtime and node is not None and size(node) > UNKNOWN_SIZE \
            and names_in(node) & set(PLACEHOLDERS):
        node = name("__s")
    fwd = None
    if runtime:
        fa, fb = fwd_of(a), fwd_of(b)
        fwd = None if fa is None or fb is None else simplify(ast.BinOp(fa, op(), fb))
    out = make(value, folded(node, value), runtime, folded(fwd, value))
    if hasattr(a, "closed") or hasattr(b, "closed"):
        ca, cb = closed_of(a), closed_of(b)
        out.closed = None if ca is None or cb is None else folded(simplify(ast.BinOp(ca, op(), cb)), value)
    return out


def closed_of(v):
    """A value's expression for the callers of its class: without the locals the class's
    __init__ keeps running values in (`channels`), where the value has one."""
    return getattr(v, "closed", None) or node_of(v) if isinstance(v, Sym) else node_of(v)


def _arith(op: type, reflected: bool = False):
    def method(self, other):
        if isinstance(other, (Sym, int, float)) and not isinstance(other, complex):
            return binop(other, op, self) if reflected else binop(self, op, other)
        return NotImplemented
    return method


class Arith(Sym):
    __add__, __radd__ = _arith(ast.Add), _arith(ast.Add, True)
    __sub__, __rsub__ = _arith(ast.Sub), _arith(ast.Sub, True)
    __mul__, __rmul__ = _arith(ast.Mult), _arith(ast.Mult, True)
    __floordiv__, __rfloordiv__ = _arith(ast.FloorDiv), _arith(ast.FloorDiv, True)
    __truediv__, __rtruediv__ = _arith(ast.Div), _arith(ast.Div, True)
    __mod__, __rmod__ = _arith(ast.Mod), _arith(ast.Mod, True)
    __pow__, __rpow__ = _arith(ast.Pow), _arith(ast.Pow, True)

    def __neg__(self):
        node = None if self.node is None else simplify(ast.UnaryOp(ast.USub(), self.node))
        fwd = None if self.fwd is None else ast.UnaryOp(ast.USub(), self.fwd)
        return make(-self.plain, folded(node, -self.plain), self.runtime, fwd)

    def __pos__(self):
        return self


class SymInt(Arith, int):
    __hash__ = int.__hash__

    @property
    def plain(self):
        return int(self)


class SymFloat(Arith, float):
    __hash__ = float.__hash__

    @property
    def plain(self):
        return float(self)


class SymStr(Sym, str):
    __hash__ = str.__hash__

    @property
    def plain(self):
        return str.__str__(self)


class SymList(Sym, list):
    @property
    def plain(self):
        return [plain(x) for x in self]


class SymBool(Sym):
    """A bool (which Python cannot subclass): truth and equality are the concrete value's."""

    def __init__(self, value: bool):
        self.plain = bool(value)

    def __bool__(self):
        return self.plain

    def __eq__(self, other):
        return self.plain == plain(other)

    def __hash__(self):
        return hash(self.plain)


def make(value, node, runtime: bool = False, fwd=None):
    """A symbolic value of `value`'s type with expression `node` (None: unknown in __init__)."""
    if isinstance(value, Sym):
        value = value.plain
    if value is None:
        return None
    if isinstance(value, bool):
        return SymBool(value)._init(node, runtime, fwd)
    if isinstance(value, int):
        return SymInt(value)._init(node, runtime, fwd)
    if isinstance(value, float):
        return SymFloat(value)._init(node, runtime, fwd)
    if isinstance(value, str):
        return SymStr(value)._init(node, runtime, fwd)
    if isinstance(value, (list, tuple)):
        def part(j):
            if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) == len(value):
                return node.elts[j]
            return None if node is None else ast.Subscript(node, ast.Constant(j), ast.Load())
        items = [make(v, part(j), runtime, None if fwd is None else ast.Subscript(fwd, ast.Constant(j), ast.Load()))
                 if v is not None else None for j, v in enumerate(value)]
        return SymList(items)._init(node, runtime, fwd)
    if isinstance(value, dict):
        return {k: make(v, None if node is None else ast.Subscript(node, ast.Constant(k), ast.Load()), runtime)
                for k, v in value.items()}
    return value


def folded(node, value):
    """A node without names is its value: `64 * 4` is written 256 (floats keep their expression)."""
    if node is None or names_in(node):
        return node
    if isinstance(value, (bool, int, str)) or (isinstance(value, list) and all(isinstance(x, int) for x in value)):
        return const(value)
    return node


# -- simplification --------------------------------------------------------------------------------

def _int_const(node) -> bool:
    return is_const(node) and isinstance(node.value, int) and not isinstance(node.value, bool)


def _num(node, v) -> bool:
    return is_const(node) and not isinstance(node.value, bool) and node.value == v


def simplify(node: ast.expr) -> ast.expr:
    """Local rewrites that keep the meaning: x * 1, x + 0, `a if True else b`, `not (a == b)`."""
    if isinstance(node, ast.BinOp):
        l, r, op = node.left, node.right, node.op
        if isinstance(op, ast.Mult) and _num(r, 1) or isinstance(op, (ast.Add, ast.Sub)) and _num(r, 0) \
                or isinstance(op, ast.FloorDiv) and _num(r, 1):
            return l
        if isinstance(op, ast.Mult) and _num(l, 1) or isinstance(op, ast.Add) and _num(l, 0):
            return r
        # (x + 1) - 2 -> x - 1: constant terms gathered
        if isinstance(op, (ast.Add, ast.Sub)) and _int_const(r) and isinstance(l, ast.BinOp) \
                and isinstance(l.op, (ast.Add, ast.Sub)) and _int_const(l.right):
            total = (l.right.value if isinstance(l.op, ast.Add) else -l.right.value) + \
                (r.value if isinstance(op, ast.Add) else -r.value)
            if total == 0:
                return l.left
            return ast.BinOp(l.left, ast.Add() if total > 0 else ast.Sub(), ast.Constant(abs(total)))
        # (x * 2) * 4 -> x * 8: constant factors gathered (ints only: exact)
        if isinstance(op, ast.Mult) and isinstance(l, ast.BinOp) and isinstance(l.op, ast.Mult) \
                and _int_const(l.right) and _int_const(r):
            return ast.BinOp(l.left, ast.Mult(), ast.Constant(l.right.value * r.value))
    if isinstance(node, ast.IfExp) and is_const(node.test):
        return node.body if node.test.value else node.orelse
    if isinstance(node, ast.IfExp) and ast.dump(node.body) == ast.dump(node.orelse):
        return node.body
    if isinstance(node, ast.IfExp) and isinstance(node.orelse, ast.IfExp) \
            and ast.dump(node.orelse.test) == ast.dump(node.test):      # a if c else (b if c else d)
        return simplify(ast.IfExp(node.test, node.body, node.orelse.orelse))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        x = node.operand
        if is_const(x):
            return ast.Constant(not x.value)
        if isinstance(x, ast.Compare) and len(x.ops) == 1 and type(x.ops[0]) in NEGATE:
            return ast.Compare(x.left, [NEGATE[type(x.ops[0])]()], x.comparators)
        if isinstance(x, ast.UnaryOp) and isinstance(x.op, ast.Not):
            return x.operand
        if isinstance(x, ast.BoolOp):     # De Morgan: not (a or b) -> not a and not b
            other = ast.And() if isinstance(x.op, ast.Or) else ast.Or()
            return simplify(ast.BoolOp(other, [simplify(ast.UnaryOp(ast.Not(), v)) for v in x.values]))
    if isinstance(node, ast.BoolOp):
        keep, absorbing = [], isinstance(node.op, ast.Or)   # `or` with a true part is true
        for v in node.values:
            if is_const(v):
                if bool(v.value) == absorbing:
                    return ast.Constant(absorbing)
                continue
            keep.append(v)
        if not keep:
            return ast.Constant(not absorbing)
        return keep[0] if len(keep) == 1 else ast.BoolOp(node.op, keep)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("round", "int") \
            and len(node.args) == 1 and is_int(node.args[0]):
        return node.args[0]
    return node


NEGATE = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE,
          ast.LtE: ast.Gt}
INT_NAMES = {"c_in", "channels", "i"}    # names that always hold ints in generated code


def is_int(node) -> bool:
    if is_const(node):
        return isinstance(node.value, int) and not isinstance(node.value, bool)
    if isinstance(node, ast.Name):
        return node.id in INT_NAMES
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
        return is_int(node.left) and is_int(node.right)
    return False


def deep_simplify(node: ast.expr) -> ast.expr:
    class S(ast.NodeTransformer):
        def generic_visit(self, n):
            super().generic_visit(n)
            return simplify(n) if isinstance(n, ast.expr) else n
    return S().visit(node)


def substitute(node: ast.expr | None, mapping: dict[str, ast.expr]) -> ast.expr | None:
    """`node` with names replaced by expressions, simplified and constant parts folded."""
    if node is None:
        return None

    class R(ast.NodeTransformer):
        def visit_Name(self, n):
            return mapping.get(n.id, n)
    out = deep_simplify(R().visit(copy(node)))
    return fold_constants(out)


def copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body if node is not None else None


def fold_constants(node: ast.expr) -> ast.expr:
    """Fold every name-free part whose value is an int, bool or str."""
    from archc.spec.expr import ExprError, evaluate

    class F(ast.NodeTransformer):
        def generic_visit(self, n):
            super().generic_visit(n)
            if isinstance(n, ast.expr) and not isinstance(n, (ast.Constant, ast.Name)) and not names_in(n) \
                    and not isinstance(n, (ast.List, ast.Tuple, ast.JoinedStr, ast.FormattedValue)):
                try:
                    v = evaluate(ast.unparse(n), {})
                except ExprError:
                    return n
                if isinstance(v, (bool, int, str)):
                    return ast.Constant(v)
            return simplify(n) if isinstance(n, ast.expr) else n
    return F().visit(node)


@dataclass
class Named:
    """What a spec name stands for in the class being written: its value in this instance and
    its expression in __init__ (node) and, for runtime values, in forward (fwd)."""
    value: Any
    node: ast.expr | None
    runtime: bool = False
    fwd: ast.expr | None = None
