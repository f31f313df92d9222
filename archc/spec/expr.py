"""A small, whitelisted expression interpreter over Python's expression grammar.

`$name` is a whole-value reference, `"${expr}"` an expression, and `"conv${i + 1}"` interpolates
into a string. Only literals, names from the given scope, arithmetic, comparisons, boolean
logic, conditionals, indexing, list/tuple displays and the functions in FUNCTIONS are allowed;
anything else is a SpecError. Nothing is ever passed to eval.
"""
from __future__ import annotations

import ast
import math
import operator
import re
from functools import lru_cache
from typing import Any, Mapping

from archc.errors import SpecError, did_you_mean


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round v to a multiple of divisor, never going below 90% of v (MobileNet/EfficientNet)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "round": round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "len": len, "sqrt": math.sqrt,
    "make_divisible": make_divisible,
}

BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_}
COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
INTERP = re.compile(r"\$\{([^{}]*)\}")


class ExprError(Exception):
    pass


# Constructs refused outright (named in the message), found before anything is evaluated.
FORBIDDEN = {
    ast.Attribute: "attribute access", ast.Lambda: "a lambda", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.NamedExpr: "an assignment (:=)", ast.Starred: "unpacking (*)", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.JoinedStr: "an f-string",
}


MAX_BITS, MAX_LEN = 4096, 100_000   # bounds on what an expression may build (no memory bombs)


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse arithmetic whose result would be huge before computing it."""
    def bits(v):
        return abs(int(v)).bit_length() if isinstance(v, int) else 0
    if isinstance(op, ast.Pow) and isinstance(right, int) and right > 0 and bits(left) * right > MAX_BITS:
        raise ExprError("number too large")
    if isinstance(op, ast.Mult):
        if bits(left) + bits(right) > MAX_BITS:
            raise ExprError("number too large")
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(n, int) and len(seq) * n > MAX_LEN:
                raise ExprError("result too large")
    if isinstance(op, ast.Add) and isinstance(left, (str, list)) and isinstance(right, (str, list)) \
            and len(left) + len(right) > MAX_LEN:
        raise ExprError("result too large")


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in ("true", "false"):
            return node.id == "true"
        raise ExprError(f"unknown name '{node.id}'{did_you_mean(node.id, names)}")
    if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise ExprError("exponent too large")
        _check_size(node.op, left, right)
        return BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand, names))
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, names) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, names)
            if not COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, names) else node.orelse, names)
    if isinstance(node, ast.Subscript):
        return _eval(node.value, names)[_eval(node.slice, names)]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, names) for e in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ExprError(f"unknown function '{node.func.id}'{did_you_mean(node.func.id, FUNCTIONS)}; "
                            f"allowed: {', '.join(sorted(FUNCTIONS))}")
        return fn(*(_eval(a, names) for a in node.args))
    what = type(node).__name__
    raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression ({what})")


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.Expression:
    """Parse and screen an expression once per distinct text (a block's expressions repeat in
    every instance of the block)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"invalid expression '{text}': {e.msg}") from None
    for node in ast.walk(tree):
        if type(node) in FORBIDDEN:
            part, whole = ast.unparse(node), ast.unparse(tree.body)
            raise ExprError(f"{FORBIDDEN[type(node)]} is not allowed in an expression: '{part}'"
                            + (f" in '{whole}'" if part != whole else ""))
    return tree


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """Evaluate one expression (the part inside `${...}`)."""
    tree = parse(text)
    try:
        return _eval(tree.body, names)
    except ExprError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError, OverflowError) as e:
        raise ExprError(f"cannot evaluate '{text}': {e}") from None


def resolve(value: Any, names: Mapping[str, Any], loc=None) -> Any:
    """Resolve `$name`, `${expr}` and interpolated strings in a scalar; other values pass.
    `loc` is a Location, or anything with a `loc()` method, looked up only on error."""
    if not isinstance(value, str) or "$" not in value:
        return value
    if hasattr(loc, "loc"):
        loc = loc.loc()
    try:
        m = NAME.match(value)
        if m:
            return _eval(ast.Name(id=m.group(1)), names)
        whole = INTERP.fullmatch(value)
        if whole:
            return evaluate(whole.group(1), names)
        if "${" in value:
            return INTERP.sub(lambda m: str(evaluate(m.group(1), names)), value)
    except ExprError as e:
        raise SpecError(str(e), loc) from None
    if value.startswith("$$"):
        return value[1:]   # escape: "$$x" is the literal string "$x"
    raise SpecError(f"'{value}' is not a reference: write $name or ${{expression}}", loc)
