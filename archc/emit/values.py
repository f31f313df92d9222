"""Spec values made symbolic: `$name`, `${expr}` and `"conv${i + 1}"` evaluated for one instance
(with the spec's own interpreter) and translated into the Python expression that computes them
in the generated class, names mapped to what they are there."""
from __future__ import annotations

import ast
from typing import Any

from archc.errors import SpecError

from archc.emit.sym import (Named, folded, make, names_in, substitute)
from archc.spec.expr import INTERP, NAME, parse, resolve

# spec functions that are not Python builtins: imported from math, or a helper emitted once
MATH = {"ceil", "floor", "sqrt", "log", "log2", "exp"}
HELPERS = {"make_divisible"}


class Env:
    """The names an expression of the class being written can use."""

    def __init__(self, names: dict[str, Named]):
        self.names = dict(names)

    def child(self) -> "Env":
        return Env(self.names)

    def set(self, key: str, named: Named) -> None:
        self.names[key] = named

    def concrete(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.names.items()}


def spec_node(tree: ast.expr, env: Env, which: str = "node") -> ast.expr | None:
    """An expression tree of the spec with each name replaced by its expression in the class."""
    mapping = {}
    for n in names_in(tree):
        if n in env.names:
            named = env.names[n]
            node = named.fwd if (which == "fwd" and named.runtime) else named.node
            if node is None:
                return None
            mapping[n] = node
        elif n in ("true", "false"):
            mapping[n] = ast.Constant(n == "true")
    out = substitute(tree, mapping)
    return listed_ranges(out) if out is not None and calls_range(tree) else out


def calls_range(tree: ast.expr) -> bool:
    """Whether a spec expression calls `range` (looked for in the spec's own small tree)."""
    return any(is_range(n) for n in ast.walk(tree))


def is_range(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"


def listed_ranges(node: ast.expr) -> ast.expr:
    """The spec's `range` gives a list: `list(range(n))` in the code, but where a comprehension
    goes through it (`for j in range(n)`, as a person writes it)."""
    class L(ast.NodeTransformer):
        def visit_comprehension(self, c):
            if not is_range(c.iter):
                return self.generic_visit(c)
            c.iter.args = [self.visit(a) for a in c.iter.args]
            c.ifs = [self.visit(x) for x in c.ifs]
            return c

        def visit_Call(self, n):
            self.generic_visit(n)
            return ast.Call(ast.Name("list", ast.Load()), [n], []) if is_range(n) else n
    return L().visit(node)


def uses_runtime(tree: ast.expr, env: Env) -> bool:
    return any(env.names[n].runtime for n in names_in(tree) if n in env.names)


def expression(text: str, env: Env):
    """(value, node, runtime, fwd) of the text inside `${...}`."""
    from archc.spec.expr import evaluate
    value = evaluate(text, env.concrete())
    tree = parse(text).body
    runtime = uses_runtime(tree, env)
    node = spec_node(tree, env)
    fwd = spec_node(tree, env, "fwd") if runtime else None
    return value, folded(node, value), runtime, folded(fwd, value)


def sym(value: Any, env: Env, at=None):
    """A spec value (scalar, list or mapping) with its `$` references resolved symbolically."""
    from archc.emit.sym import Sym
    if isinstance(value, Sym):
        return value
    if isinstance(value, dict):
        return {k: sym(v, env, at / k if at is not None else None) for k, v in value.items()}
    if isinstance(value, list):
        items = [sym(v, env, at / j if at is not None else None) for j, v in enumerate(value)]
        from archc.emit.sym import SymList, node_of, plain
        nodes = [node_of(x) for x in items]
        node = None if any(n is None for n in nodes) else ast.List(elts=nodes, ctx=ast.Load())
        out = SymList(items)._init(node, any(getattr(x, "runtime", False) for x in items))
        return out if all(x is not None for x in items) else plain(items)
    if not isinstance(value, str) or "$" not in value:
        return make(value, ast.Constant(value)) if value is not None else None
    from archc.spec.expr import ExprError
    try:
        return _sym_text(value, env, at)
    except ExprError as e:          # as the expander reports it: at the value
        raise (at.error(str(e)) if at is not None else SpecError(str(e))) from None


def _sym_text(value: str, env: Env, at):
    m = NAME.match(value)
    if m:
        key = m.group(1)
        if key in env.names:
            named = env.names[key]
            return make(named.value, named.node, named.runtime, named.fwd)
        return make(*expression(key, env)[:2])          # true / false, or an error as the spec gives it
    whole = INTERP.fullmatch(value)
    if whole:
        v, node, runtime, fwd = expression(whole.group(1), env)
        return make(v, node, runtime, fwd)
    if "${" in value:
        return make(resolve(value, env.concrete(), at), fstring(value, env))
    return make(resolve(value, env.concrete(), at), ast.Constant(resolve(value, env.concrete(), at)))


def fstring(value: str, env: Env) -> ast.expr:
    """`"denselayer${i + 1}"` -> f"denselayer{i + 1}" (a constant when nothing in it varies)."""
    parts, pos = [], 0
    for m in INTERP.finditer(value):
        if m.start() > pos:
            parts.append(ast.Constant(value[pos:m.start()]))
        node = spec_node(parse(m.group(1)).body, env)
        parts.append(ast.FormattedValue(node, -1, None))
        pos = m.end()
    if pos < len(value):
        parts.append(ast.Constant(value[pos:]))
    if all(isinstance(p, ast.Constant) or isinstance(p.value, ast.Constant) for p in parts):
        return ast.Constant("".join(str(p.value if isinstance(p, ast.Constant) else p.value.value) for p in parts))
    return ast.JoinedStr(parts)


def condition(value: Any, env: Env, at):
    """A `when:` value as (concrete bool, node); the node is a Constant where it does not vary."""
    s = sym(value, env, at)
    if not isinstance(getattr(s, "plain", s), bool):
        raise at.error(f"'when' must be true or false, got {getattr(s, 'plain', s)!r}")
    return bool(s), s.node


def truth(node: ast.expr, env: Env) -> bool:
    """The value of a condition the writer built (over spec names) in this instance."""
    from archc.spec.expr import evaluate
    from archc.emit.sym import text
    return bool(evaluate(text(node), env.concrete()))
