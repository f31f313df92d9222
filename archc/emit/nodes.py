"""Python expressions as ast nodes, for the generated code: building and reading them, and
rewrites that keep their meaning (`x * 1` -> `x`, `a and s or b and s` -> `(a or b) and s`)."""
from __future__ import annotations

import ast
from typing import Any

from archc.spec.expr import depth


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
    called, out = set(), set()
    for n in ast.walk(node):        # breadth first: a call is met before its function's name
        if isinstance(n, ast.Call):
            called.add(id(n.func))
        elif isinstance(n, ast.Name) and id(n) not in called:
            out.add(n.id)
    return out


def size(node: ast.expr) -> int:
    """The number of expression nodes in an expression."""
    return sum(1 for n in ast.walk(node) if isinstance(n, ast.expr))


def same(a, b) -> bool:
    """ast.dump(a) == ast.dump(b), without writing either out: stops at the first difference
    (the emitter asks it of every conditional it simplifies). Walked without recursion."""
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, ast.AST):
            todo.extend((getattr(x, f, None), getattr(y, f, None)) for f in x._fields)
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            todo.extend(zip(x, y))
        elif repr(x) != repr(y) if isinstance(x, float) else x != y:
            return False
    return True


def is_const(node) -> bool:
    return isinstance(node, ast.Constant)


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
    if isinstance(node, ast.IfExp) and same(node.body, node.orelse):
        return node.body
    if isinstance(node, ast.IfExp) and isinstance(node.orelse, ast.IfExp) \
            and same(node.orelse.test, node.test):      # a if c else (b if c else d)
        return simplify(ast.IfExp(node.test, node.body, node.orelse.orelse))
    if isinstance(node, ast.IfExp) and isinstance(node.orelse, ast.IfExp) \
            and same(node.orelse.body, node.body):      # a if c else (a if d else b)
        test = simplify(ast.BoolOp(ast.Or(), [node.test, node.orelse.test]))
        return simplify(ast.IfExp(test, node.body, node.orelse.orelse))
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
        for v in flat(node):
            if is_const(v):
                if bool(v.value) == absorbing:
                    return ast.Constant(absorbing)
                continue
            if not any(same(v, k) for k in keep):         # `a or a` -> `a`
                keep.append(v)
        if not keep:
            return ast.Constant(not absorbing)
        if len(keep) == 1:
            return keep[0]
        return factored(keep) if absorbing else ast.BoolOp(node.op, keep)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("round", "int") \
            and len(node.args) == 1 and is_int(node.args[0]):
        return node.args[0]
    return node


def flat(node: ast.BoolOp) -> list[ast.expr]:
    """The operands of `a or (b or c)`: a, b, c."""
    out = []
    for v in node.values:
        out += flat(v) if isinstance(v, ast.BoolOp) and type(v.op) is type(node.op) else [v]
    return out


def factored(parts: list[ast.expr]) -> ast.expr:
    """`a and s or b and s` -> `(a or b) and s`: a condition every alternative shares, once."""
    conj = [flat(p) if isinstance(p, ast.BoolOp) and isinstance(p.op, ast.And) else [p] for p in parts]
    common = [c for c in conj[0] if all(any(ast.dump(c) == ast.dump(d) for d in other) for other in conj[1:])]
    if not common:
        return ast.BoolOp(ast.Or(), parts)
    keys = {ast.dump(c) for c in common}
    rests = [[d for d in cs if ast.dump(d) not in keys] for cs in conj]
    if any(not r for r in rests):          # one alternative is the common part alone: it absorbs
        return simplify(ast.BoolOp(ast.And(), common))
    alts = [r[0] if len(r) == 1 else ast.BoolOp(ast.And(), r) for r in rests]
    return simplify(ast.BoolOp(ast.And(), [simplify(ast.BoolOp(ast.Or(), alts)), *common]))


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
    out = R().visit(copy(node))
    if depth(out) > MAX_DEPTH:      # sizes through a long chain of blocks: no expression (the
        return None                 # callers say so, located) rather than a recursion error
    return fold_constants(deep_simplify(out))


# deepest expression the writer builds (the zoo's reach 41: ResNet-152's sizes); the recursive
# ast walks stay far from Python's stack limit
MAX_DEPTH = 150


def copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body if node is not None else None


def fold_constants(node: ast.expr) -> ast.expr:
    """Fold every name-free part whose value is an int, bool or str."""
    from archc.spec.expr import ExprError, evaluate

    named: set[int] = set()     # ids of the nodes that read a name (names_in, found bottom-up:
    keep: list = []             # asking names_in at every node was quadratic); kept alive for their ids

    class F(ast.NodeTransformer):
        def generic_visit(self, n):
            super().generic_visit(n)
            reads = isinstance(n, ast.Name) or any(
                id(c) in named for c in ast.iter_child_nodes(n)
                if not (isinstance(n, ast.Call) and c is n.func and isinstance(c, ast.Name)))
            out = self.fold(n, reads)
            if reads:
                named.add(id(out))
                keep.append(out)
            return out

        def fold(self, n, reads: bool):
            if isinstance(n, ast.expr) and not isinstance(n, (ast.Constant, ast.Name)) and not reads \
                    and not isinstance(n, (ast.List, ast.Tuple, ast.JoinedStr, ast.FormattedValue)):
                try:
                    v = evaluate(ast.unparse(n), {})
                except ExprError:
                    return n
                if isinstance(v, (bool, int, str)):
                    return ast.Constant(v)
            return simplify(n) if isinstance(n, ast.expr) else n
    return F().visit(node)
