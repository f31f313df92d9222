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

from archc import limits
from archc.errors import SpecError, did_you_mean


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round v to a multiple of divisor, never going below 90% of v (MobileNet/EfficientNet)."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _round(x, ndigits=None):
    # round(5, -10**9) would compute 10**(10**9); no number here has more than ~1,300 digits
    if isinstance(ndigits, int) and abs(ndigits) > 2000:
        raise ExprError(f"round: ndigits {ndigits} is out of range")
    return round(x) if ndigits is None else round(x, ndigits)


def _range(*args):
    # a list, within the item limit before it is built: range(10**9) fails at once
    r = range(*args)
    if len(r) > limits.current().expr_items:
        raise _too_large(len(r))
    return list(r)


def _sum(items):
    # numbers only: summing lists would concatenate them quadratically
    if not isinstance(items, (list, tuple)) or not all(isinstance(v, (int, float)) for v in items):
        raise ExprError(f"sum takes a list of numbers, got {str(items)[:60]}")
    return sum(items)


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "round": _round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "len": len, "sqrt": math.sqrt, "sum": _sum,
    "log": math.log, "log2": math.log2, "exp": math.exp, "range": _range,
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
NAME = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")     # matched whole
INTERP = re.compile(r"\$\{([^{}]*)\}")


class ExprError(Exception):
    pass


# Constructs refused outright (named in the message), found before anything is evaluated.
FORBIDDEN = {
    ast.Attribute: "attribute access", ast.Lambda: "a lambda",
    ast.SetComp: "a set comprehension (write a list: [...])", ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator (write a list: [...])",
    ast.NamedExpr: "an assignment (:=)", ast.Starred: "unpacking (*)", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.JoinedStr: "an f-string",
}


MAX_BITS = 4096   # integers met while evaluating (results must also fit the int_bits limit)
FORMAT_SPEC = re.compile(r"%[#0 +\-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?([diouxXeEfFgGcrsa%])")


def size(v: Any, cap: int) -> int:
    """Characters of a string, items of a list (nested lists counted in full, each time they
    appear), 1 for anything else; counting stops just past `cap`."""
    total, todo = 0, [v]
    while todo and total <= cap:
        x = todo.pop()
        if isinstance(x, str):
            total += len(x)
        elif isinstance(x, (list, tuple)):
            total += len(x)
            todo.extend(y for y in x if isinstance(y, (list, tuple, str)))
        else:
            total += 1
    return total


def _too_large(n: int) -> ExprError:
    e = limits.too_large("expr_items", "expression result too large", n)
    return ExprError(e.message)


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse arithmetic whose result would be huge before computing it."""
    cap = limits.current().expr_items

    def bits(v):
        return abs(int(v)).bit_length() if isinstance(v, int) else 0
    if isinstance(op, ast.Pow) and isinstance(right, int) and right > 0 and bits(left) * right > MAX_BITS:
        raise ExprError("number too large")
    if isinstance(op, ast.Mult):
        if bits(left) + bits(right) > MAX_BITS:
            raise ExprError("number too large")
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (str, list)) and isinstance(n, int) and n > 0:
                one = size(seq, cap)
                if one * n > cap:
                    raise _too_large(one * n)
    if isinstance(op, ast.Add) and isinstance(left, (str, list)) and isinstance(right, (str, list)):
        both = size(left, cap) + size(right, cap)
        if both > cap:
            raise _too_large(both)
    if isinstance(op, ast.Mod) and isinstance(left, str):
        # '%0999999999d' % 1 is a gigabyte: bound the widths and precisions written first
        wide = sum(int(w) if w and w.isdigit() else cap + 1 if w == "*" else 0
                   for m in FORMAT_SPEC.finditer(left) for w in m.groups()[:2])
        if len(left) + wide > cap:
            raise _too_large(len(left) + wide)


def _checked(v: Any) -> Any:
    """A value built by an expression (a list display, a call's result), within the limits."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v).bit_length() > MAX_BITS:
        raise ExprError("number too large")
    if isinstance(v, (str, list)):
        cap = limits.current().expr_items
        n = size(v, cap)
        if n > cap:
            raise _too_large(n)
    return v


class _Steps:
    """Items all the comprehensions of one evaluation have gone through, against expr_items:
    nested comprehensions cannot multiply into a hang."""
    count = 0


def _comprehension(node: ast.ListComp, names: Mapping[str, Any]) -> list:
    cap = limits.current().expr_items
    out: list = []
    built = [0]     # items of the result so far, nested lists and strings counted in full

    def loop(k: int, scope: dict) -> None:
        if k == len(node.generators):
            v = _eval(node.elt, scope)
            out.append(v)
            built[0] += size(v, cap) if isinstance(v, (list, tuple, str)) else 1
            if built[0] > cap:      # before the next item: many large items would blow memory up
                raise _too_large(built[0])
            return
        gen = node.generators[k]
        items = _eval(gen.iter, scope)
        if not isinstance(items, (list, tuple, str)):
            raise ExprError(f"'{ast.unparse(gen.iter)}' is not a list to go through")
        inner = dict(scope)
        for v in items:
            _Steps.count += 1
            if _Steps.count > cap:
                raise _too_large(_Steps.count)
            inner[gen.target.id] = v
            if all(_eval(c, inner) for c in gen.ifs):
                loop(k + 1, inner)
    loop(0, dict(names))
    return _checked(out)


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
        return _checked(BINOPS[type(node.op)](left, right))
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
        return _checked([_eval(e, names) for e in node.elts])
    if isinstance(node, ast.ListComp):
        return _comprehension(node, names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ExprError(f"unknown function '{node.func.id}'{did_you_mean(node.func.id, FUNCTIONS)}; "
                            f"allowed: {', '.join(sorted(FUNCTIONS))}")
        return _checked(fn(*(_eval(a, names) for a in node.args)))
    what = type(node).__name__
    raise ExprError(f"'{ast.unparse(node)}' is not allowed in an expression ({what})")


def depth(tree: ast.AST) -> int:
    """Nesting depth of a syntax tree, found without recursion."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in ast.iter_child_nodes(node))
    return deepest


@lru_cache(maxsize=4096)
def parse(text: str) -> ast.Expression:
    """Parse and screen an expression once per distinct text (a block's expressions repeat in
    every instance of the block). Length and depth are bounded before anything recurses."""
    lim = limits.current()
    if len(text) > lim.expr_chars:
        raise ExprError(limits.too_large("expr_chars", "expression too long", len(text)).message)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise ExprError(f"invalid expression '{shown}': {e.msg}") from None
    except (RecursionError, MemoryError):       # Python's parser guards its own stack
        raise ExprError(limits.too_large("expr_depth", "expression nested too deeply").message) from None
    if depth(tree) > lim.expr_depth + 1:        # + 1: the Expression node around the body
        raise ExprError(limits.too_large("expr_depth", "expression nested too deeply").message)
    for node in ast.walk(tree):
        if type(node) in FORBIDDEN:
            part, whole = ast.unparse(node), ast.unparse(tree.body)
            raise ExprError(f"{FORBIDDEN[type(node)]} is not allowed in an expression: '{part}'"
                            + (f" in '{whole}'" if part != whole else ""))
        if isinstance(node, ast.comprehension) and (not isinstance(node.target, ast.Name) or node.is_async):
            raise ExprError(f"a comprehension goes through a list with one name ('for j in ...'), "
                            f"got 'for {ast.unparse(node.target)} in'")
    return tree


def bound_names(tree: ast.AST) -> set[str]:
    """Names a comprehension binds (`j` in `[w * j for j in range(n)]`)."""
    return {g.target.id for n in ast.walk(tree) if isinstance(n, ast.ListComp) for g in n.generators}


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """Evaluate one expression (the part inside `${...}`); an integer result must fit the
    int_bits limit (it becomes a size, a count or a literal of the generated code)."""
    tree = parse(text)
    hidden = bound_names(tree) & set(names)
    if hidden:      # the generated code substitutes spec names: a loop name must not hide one
        raise ExprError(f"the comprehension's name '{min(hidden)}' hides the name '{min(hidden)}' of the "
                        f"spec; choose another")
    _Steps.count = 0
    try:
        value = _eval(tree.body, names)
    except ExprError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError, OverflowError) as e:
        raise ExprError(f"cannot evaluate '{text}': {e}") from None
    for v in value if isinstance(value, list) else (value,):
        if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > limits.current().int_bits:
            raise ExprError(limits.too_large("int_bits", f"expression result too large: an integer of "
                                             f"{v.bit_length()} bits").message)
    return value


def resolve(value: Any, names: Mapping[str, Any], loc=None) -> Any:
    """Resolve `$name`, `${expr}` and interpolated strings in a scalar; other values pass.
    `loc` is a Location, or anything with a `loc()` method, looked up only on error."""
    if not isinstance(value, str) or "$" not in value:
        return value
    if hasattr(loc, "loc"):
        loc = loc.loc()
    try:
        m = NAME.fullmatch(value)
        if m:
            return _eval(ast.Name(id=m.group(1)), names)
        whole = INTERP.fullmatch(value)
        if whole:
            return evaluate(whole.group(1), names)
        if "${" in value:
            return _checked(INTERP.sub(lambda m: str(evaluate(m.group(1), names)), value))
    except ExprError as e:
        raise SpecError(str(e), loc) from None
    if value.startswith("$$"):
        return value[1:]   # escape: "$$x" is the literal string "$x"
    raise SpecError(f"'{value}' is not a reference: write $name or ${{expression}}", loc)
