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

# the expression helpers, read by the emitter's other files from here too
from archc.emit.nodes import const, copy, is_const, name, names_in, same, simplify, size, substitute, text  # noqa: F401

# The spatial sizes of a block's input: names __init__ cannot read (the block learns its input
# size only in forward); they stand in expressions so a caller can put its own sizes in.
PLACEHOLDERS = ("__s0", "__s1", "__s2", "__s")     # __s: some size too involved to write out
SIZES = frozenset(PLACEHOLDERS)
UNKNOWN_SIZE = 20                                   # nodes in a size expression before it is __s


class Sym:
    """Mixin of the symbolic value types. `symbolic` marks them for OpArgs (validated already in
    their concrete form)."""
    symbolic = True
    node: ast.expr | None
    fwd: ast.expr | None
    runtime: bool

    def _init(self, node, runtime=False, fwd=None, names=None):
        self.node, self.runtime, self.fwd = node, runtime, fwd
        self._names = names
        return self

    @property
    def names(self) -> set[str]:
        """names_in(node), found once (binop asks it of both operands of every operation)."""
        if self._names is None:
            self._names = names_in(self.node)
        return self._names

    def __repr__(self):
        return text(self.node) if self.node is not None else f"<{self.plain!r} known at run time>"

    __str__ = __repr__

    @property
    def constant(self) -> bool:
        return is_const(self.node)

    @property
    def known(self) -> bool:
        """Whether __init__ can compute it (no part of it follows a block's input size)."""
        return self.node is not None and not (self.names & SIZES)


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


def names_of(v) -> set[str]:
    return v.names if isinstance(v, Sym) else names_in(node_of(v)) if isinstance(v, (list, tuple)) else set()


def binop(a, op: type, b):
    value = BINOPS[op](plain(a), plain(b))
    na, nb = node_of(a), node_of(b)
    node = None if na is None or nb is None else simplify(ast.BinOp(na, op(), nb))
    # simplify only drops constants from a BinOp: the names are both operands'
    names = names_of(a) | names_of(b) if node is not None else None
    runtime = is_runtime(a) or is_runtime(b)
    if runtime and node is not None and names & SIZES and size(node) > UNKNOWN_SIZE:
        node, names = name("__s"), {"__s"}
    fwd = None
    if runtime:
        fa, fb = fwd_of(a), fwd_of(b)
        fwd = None if fa is None or fb is None else simplify(ast.BinOp(fa, op(), fb))
    node = folded(node, value, names)
    out = make(value, node, runtime, folded(fwd, value), names=names if node is not None else None)
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


def make(value, node, runtime: bool = False, fwd=None, names=None):
    """A symbolic value of `value`'s type with expression `node` (None: unknown in __init__);
    `names`: names_in(node) where the caller knows them."""
    if isinstance(value, Sym):
        value = value.plain
    if value is None:
        return None
    if isinstance(value, bool):
        return SymBool(value)._init(node, runtime, fwd)
    if isinstance(value, int):
        return SymInt(value)._init(node, runtime, fwd, names)
    if isinstance(value, float):
        return SymFloat(value)._init(node, runtime, fwd, names)
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


def folded(node, value, names=None):
    """A node without names is its value: `64 * 4` is written 256 (floats keep their expression)."""
    if node is None or (names_in(node) if names is None else names):
        return node
    if isinstance(value, (bool, int, str)) or (isinstance(value, list) and all(isinstance(x, int) for x in value)):
        return const(value)
    return node


@dataclass
class Named:
    """What a spec name stands for in the class being written: its value in this instance and
    its expression in __init__ (node) and, for runtime values, in forward (fwd)."""
    value: Any
    node: ast.expr | None
    runtime: bool = False
    fwd: ast.expr | None = None
