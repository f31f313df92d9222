"""Python expressions as ast nodes, for the generated code: building and reading them, and
rewrites that keep their meaning (`x * 1` -> `x`, `a and s or b and s` -> `(a or b) and s`)."""
from __future__ import annotations

import ast
from typing import Any


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
    out: set[str] = set()
    todo = [node] if node is not None else []
    while todo:                 # the emitter asks this of every value it computes: no ast.walk
        n = todo.pop()
        kind = type(n)
        if kind is ast.Name:
            out.add(n.id)
        elif kind is ast.Call:
            todo.extend(n.args)
            todo.extend(k.value for k in n.keywords)
            if type(n.func) is not ast.Name:
                todo.append(n.func)
        elif kind is not ast.Constant:
            todo.extend(_children(n))
    return out


def _children(n: ast.AST) -> list[ast.AST]:
    out = []
    for f in n._fields:
        v = getattr(n, f, None)
        if isinstance(v, ast.AST):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, ast.AST))
    return out


def size(node: ast.expr) -> int:
    """The number of expression nodes in an expression."""
    total, todo = 0, [node]
    while todo:
        n = todo.pop()
        total += isinstance(n, ast.expr)
        if type(n) is not ast.Constant and type(n) is not ast.Name:
            todo.extend(_children(n))
    return total


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
        # x - (y - 1) -> x - y + 1: a constant out of a subtracted sum (a conv's size arithmetic)
        if isinstance(op, ast.Sub) and isinstance(r, ast.BinOp) and isinstance(r.op, (ast.Add, ast.Sub)) \
                and _int_const(r.right) and r.right.value != 0:
            c = r.right.value if isinstance(r.op, ast.Sub) else -r.right.value
            return simplify(ast.BinOp(ast.BinOp(l, ast.Sub(), r.left), ast.Add() if c > 0 else ast.Sub(),
                                      ast.Constant(abs(c))))
        # (x - y) // y + 1 -> x // y: floor(a - 1) + 1 = floor(a) (a patch-sized stride's output)
        if isinstance(op, ast.Add) and _num(r, 1) and isinstance(l, ast.BinOp) and isinstance(l.op, ast.FloorDiv) \
                and isinstance(l.left, ast.BinOp) and isinstance(l.left.op, ast.Sub) and same(l.left.right, l.right):
            return ast.BinOp(l.left.left, ast.FloorDiv(), l.right)
        # (x * 2) * 4 -> x * 8, 2 * (2 * x) -> 4 * x: constant factors gathered (ints only: exact)
        if isinstance(op, ast.Mult) and isinstance(l, ast.BinOp) and isinstance(l.op, ast.Mult) \
                and _int_const(l.right) and _int_const(r):
            return ast.BinOp(l.left, ast.Mult(), ast.Constant(l.right.value * r.value))
        if isinstance(op, ast.Mult) and isinstance(r, ast.BinOp) and isinstance(r.op, ast.Mult) \
                and _int_const(r.left) and _int_const(l):
            return ast.BinOp(ast.Constant(l.value * r.left.value), ast.Mult(), r.right)
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
    common = [c for c in conj[0] if all(any(same(c, d) for d in other) for other in conj[1:])]
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


def substitute(node: ast.expr | None, mapping: dict[str, ast.expr]) -> ast.expr | None:
    """`node` with names replaced by expressions, simplified and constant parts folded: a new
    tree (neither `node` nor the mapping's expressions change)."""
    if node is None:
        return None
    try:
        out, deepest = _rewritten(node, mapping)
    except _Unknown:
        return None
    if deepest > MAX_DEPTH:         # sizes through a long chain of blocks: no expression (the
        return None                 # callers say so, located) rather than a recursion error
    return fold_constants(out)


class _Unknown(Exception):
    """A name the mapping has no expression for (None)."""


PARTS = (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)   # no children


def _rewritten(n: ast.AST, mapping: dict | None) -> tuple[ast.AST, int]:
    """`copy(n)` with the mapping's names replaced (their expressions not searched again), each
    expression simplified bottom-up; and the depth (as expr.depth counts it) that tree had
    before simplifying. One walk: the emitter substitutes thousands of times per network."""
    kind = type(n)
    if kind is ast.Name:
        if mapping and n.id in mapping:
            if mapping[n.id] is None:
                raise _Unknown
            return _rewritten(mapping[n.id], None)
        return copy(n), 2                       # a Name and its ctx
    if kind is ast.Constant:
        c = copy(n)
        return (c, 1) if type(c) is ast.Constant else _rewritten(c, None)
    fields, deepest = {}, 0
    for f in n._fields:
        v = getattr(n, f, None)
        if isinstance(v, PARTS):
            deepest = max(deepest, 1)
        elif isinstance(v, ast.AST):
            v, d = _rewritten(v, mapping)
            deepest = max(deepest, d)
        elif isinstance(v, list):
            items = []
            for x in v:
                if isinstance(x, ast.AST) and not isinstance(x, PARTS):
                    x, d = _rewritten(x, mapping)
                    deepest = max(deepest, d)
                elif isinstance(x, ast.AST):
                    deepest = max(deepest, 1)
                items.append(x)
            v = items
        fields[f] = v
    out = kind(**fields)
    return (simplify(out) if isinstance(out, ast.expr) else out), deepest + 1


# deepest expression the writer builds (the zoo's reach 41: ResNet-152's sizes); the recursive
# ast walks stay far from Python's stack limit
MAX_DEPTH = 150


def copy(node):
    """A fresh tree equal to the one `ast.parse(ast.unparse(node))` gives (a negative number is
    `-n`, as parsing writes it), built directly: parsing was most of the emitter's time."""
    if node is None:
        return None
    if type(node) is ast.Constant:
        v = node.value
        if type(v) in (int, float) and v == v and (v < 0 or str(v) == "-0.0"):
            return ast.UnaryOp(ast.USub(), ast.Constant(-v))
        if type(v) in (int, float, str, bool, type(None)) and v == v:
            return ast.Constant(v)
        return ast.parse(ast.unparse(node), mode="eval").body      # nan, tuples: as parsing writes them
    if type(node) is ast.Name:
        return ast.Name(node.id, ast.Store() if isinstance(node.ctx, ast.Store) else ast.Load())
    fields = {}
    for f in node._fields:
        v = getattr(node, f, None)
        if isinstance(v, ast.AST):
            v = v if isinstance(v, PARTS) else copy(v)
        elif isinstance(v, list):
            v = [copy(x) if isinstance(x, ast.AST) and not isinstance(x, PARTS) else x for x in v]
        fields[f] = v
    return type(node)(**fields)


def fold_constants(node: ast.expr) -> ast.expr:
    """Fold every name-free part whose value is an int, bool or str (in place)."""
    return _folded(node)[0]


def _folded(n: ast.AST) -> tuple[ast.AST, bool]:
    """n folded bottom-up, and whether it reads a name (a called function's name not counted)."""
    kind = type(n)
    if kind is ast.Name:
        return n, True
    if kind is ast.Constant or isinstance(n, PARTS):
        return n, False
    reads = False
    for f in n._fields:
        v = getattr(n, f, None)
        if isinstance(v, ast.AST) and not isinstance(v, PARTS):
            v, r = _folded(v)
            setattr(n, f, v)
            reads = reads or r and not (kind is ast.Call and f == "func" and type(v) is ast.Name)
        elif isinstance(v, list):
            items = []
            for x in v:
                if isinstance(x, ast.AST) and not isinstance(x, PARTS):
                    x, r = _folded(x)
                    reads = reads or r
                items.append(x)
            setattr(n, f, items)
    if not isinstance(n, ast.expr):
        return n, reads
    if not reads and kind not in (ast.List, ast.Tuple, ast.JoinedStr, ast.FormattedValue):
        v = _int_arith(n)
        if v is None:
            from archc.spec.expr import ExprError, evaluate
            try:
                v = evaluate(ast.unparse(n), {})
            except ExprError:
                return n, reads
        if isinstance(v, (bool, int, str)):
            return ast.Constant(v), reads
    return simplify(n), reads


INT_ARITH = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
             ast.FloorDiv: lambda a, b: a // b if b else None, ast.Mod: lambda a, b: a % b if b else None}


def _int_arith(n: ast.expr) -> int | None:
    """`3 * 4`, `-2`: what evaluate() gives for int arithmetic on two constants, without writing
    the expression out and parsing it again (anything else, or out of range: None)."""
    from archc import limits
    if type(n) is ast.BinOp and type(n.op) in INT_ARITH and _int_const(n.left) and _int_const(n.right):
        v = INT_ARITH[type(n.op)](n.left.value, n.right.value)
    elif type(n) is ast.UnaryOp and type(n.op) is ast.USub and _int_const(n.operand):
        v = -n.operand.value
    else:
        return None
    return v if v is not None and v.bit_length() <= limits.current().int_bits else None
