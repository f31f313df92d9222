"""The pieces of one generated class: its tensors, its attribute names (as the expander names
them), its forward steps, and the small proofs that keep channel expressions short."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from archc.emit.code import INDENT, Code
from archc.emit.entries import CHILD, TRUE, replace_name
from archc.emit.sym import closed_of, copy, plain, is_const, make, name, names_in, same, simplify, substitute, text
from archc.emit.values import Env
from archc.errors import SpecError
from archc.spec.expr import bound_names

RUNTIME_NAMES = ("h_in", "w_in", "l_in")


def emit_error(at, msg: str) -> SpecError:
    loc = at.loc() if hasattr(at, "loc") else at
    return SpecError(f"cannot write PyTorch code for this: {msg}", loc)


@dataclass
class T:
    """A tensor in forward: the variable holding it, its shape (channels first, symbolic), and
    when its spatial size differs from that of the input of the class (or residual body)."""
    var: str
    shape: tuple
    moved: ast.expr = field(default_factory=lambda: ast.Constant(False))


@dataclass
class Step:
    """One statement of forward (already rendered, relative indentation), with what it reads and
    writes so training-only steps can be found."""
    dst: str
    srcs: list[str]
    lines: list[str]
    guarded: bool = False        # may not assign dst (inside an `if`)
    train_only: bool = False


@dataclass
class Names:
    """Attribute names and forward variables of one class, exactly as the expander gives them."""
    reserved: set[str]
    taken: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)    # bases counted under a condition
    ids: dict[str, T] = field(default_factory=dict)
    vars: set[str] = field(default_factory=lambda: {"x"})
    chain_var: str = "x"
    prefix: str = ""

    def auto(self, base: str, at, conditional: bool = False, module: bool = True) -> str:
        base = base if base.isidentifier() else "layer"
        if module and base in self.uncertain:
            raise emit_error(at, f"the automatic name of this '{base}' depends on a 'when' above it; "
                                 f"give it a 'name'")
        if conditional:
            self.uncertain.add(base)
        k = self.counters.get(base, 1)
        while f"{base}{k}" in self.taken or f"{base}{k}" in self.reserved:
            k += 1
        self.counters[base] = k + 1
        self.taken.add(f"{base}{k}")
        return f"{base}{k}"

    def claim(self, n: str, at) -> str:
        if n in self.taken:
            raise at.error(f"duplicate name '{n}' in '{self.prefix.rstrip('.') or 'the network'}'")
        self.taken.add(n)
        return n

    def fresh(self, base: str) -> str:
        n, k = base, 1
        while n in self.vars or n in self.ids:
            k += 1
            n = f"{base}{k}"
        self.vars.add(n)
        return n


class ClassState:
    """What is being written for one class: __init__ lines, forward steps, the names in scope."""

    def __init__(self, env: Env, root: bool):
        self.env = env
        self.root = root
        self.init = Code()
        self.steps: list[Step] = []
        self.lets: dict[str, ast.expr] = {}
        self.constants: dict[str, None] = {}     # __init__ names forward reads as self.<name>
        self.attrs: set[str] = set()             # child module attributes
        self.locals: set[str] = set()            # __init__ locals the writer introduced
        self.runtime_used: set[str] = set()
        self.flags: list[str] = []               # bools forward tests: TorchScript constants
        self.busy: set[str] = set()              # loop locals in use by an enclosing loop

    def local(self, *choices: str) -> str:
        """A local of __init__ for the writer's own bookkeeping (a loop index, running channels):
        never a spec name, nor one an enclosing loop is using. Release it when done."""
        taken = (set(self.env.names) - {"i"}) | self.busy | self.attrs
        pick = next((c for c in choices if c not in taken), None)
        k = 2
        while pick is None:
            pick = f"{choices[0]}{k}" if f"{choices[0]}{k}" not in taken else None
            k += 1
        self.locals.add(pick)
        self.busy.add(pick)
        return pick

    def forward_text(self, node: ast.expr, keep: tuple = ()) -> str:
        """An __init__ expression as forward sees it: names become attributes stored in __init__,
        except the input sizes forward reads from its input (and `keep`: forward's own names)."""
        tree = copy(node)
        keep = (*keep, *bound_names(tree))      # a comprehension's own name stays local

        class R(ast.NodeTransformer):
            def visit_Name(s, n):
                if n.id in keep:
                    return n
                if n.id in RUNTIME_NAMES:
                    self.runtime_used.add(n.id)
                    return n
                if n.id in ("True", "False", "None"):
                    return n
                self.constants[n.id] = None
                return ast.Attribute(value=name("self"), attr=n.id, ctx=ast.Load())
        return text(R().visit(tree))

    def step(self, dst: str, srcs: list[str], line: str, guard: str | None = None,
             else_line: str | None = None) -> None:
        if guard is None:
            self.steps.append(Step(dst, srcs, [line]))
            return
        lines = [f"if {guard}:", INDENT + line]
        if else_line is not None:
            lines += ["else:", INDENT + else_line]
        self.steps.append(Step(dst, srcs, lines, guarded=else_line is None))


def merge_branch(cond: ast.expr, then, other, lets: dict[str, ast.expr], on: bool):
    """The value after `if cond: <then>` falling back to `other` (`on`: whether cond holds in this
    instance): `then` alone where the two agree whenever cond is false (MobileNet's expansion:
    `hidden` equals `c_in` when t == 1)."""
    out = _merge(cond, then.node, other.node, lets, then.plain if on else other.plain, then.runtime or other.runtime)
    if hasattr(then, "closed") or hasattr(other, "closed"):
        out.closed = _merge(cond, closed_of(then), closed_of(other), lets, out.plain, out.runtime).node
    return out


def _merge(cond, tn, en, lets, value, runtime):
    if tn is not None and en is not None and (same(tn, en) or implied_equal(cond, tn, en, lets)):
        return make(value, tn, runtime)
    node = None if tn is None or en is None else simplify(ast.IfExp(cond, tn, en))   # `a if c else (b if c else d)`
    return make(value, node, runtime)


def merge_shape(cond: ast.expr, then: tuple, other: tuple, lets, on: bool) -> tuple:
    if len(then) != len(other):
        return then if on else other
    return tuple(merge_branch(cond, a, b, lets, on) for a, b in zip(then, other))


IMPLIED: dict[tuple, bool] = {}     # the same question recurs for every instance of a definition


def implied_equal(cond: ast.expr, a: ast.expr, b: ast.expr, lets: dict[str, ast.expr]) -> bool:
    """a == b wherever cond is false, shown by substituting what `not cond` says into both."""
    key = (ast.dump(cond), ast.dump(a), ast.dump(b), tuple((k, ast.dump(v)) for k, v in lets.items()))
    if key not in IMPLIED:
        if len(IMPLIED) > 10_000:
            IMPLIED.clear()
        IMPLIED[key] = _implied_equal(cond, a, b, lets)
    return IMPLIED[key]


def _implied_equal(cond: ast.expr, a: ast.expr, b: ast.expr, lets: dict[str, ast.expr]) -> bool:
    facts = []
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.NotEq):
        left, right = cond.left, cond.comparators[0]
        for x, y in ((left, right), (right, left)):
            if isinstance(x, ast.Name):
                facts.append({x.id: y})
    elif isinstance(cond, ast.Name):
        facts.append({cond.id: ast.Constant(False)})
    elif isinstance(cond, ast.UnaryOp) and isinstance(cond.op, ast.Not) and isinstance(cond.operand, ast.Name):
        facts.append({cond.operand.id: ast.Constant(True)})
    for fact in facts:
        x, y = expand_lets(a, lets, fact), expand_lets(b, lets, fact)
        if same(x, y):
            return True
    return False


def expand_lets(node: ast.expr, lets: dict[str, ast.expr], extra: dict[str, ast.expr] | None = None) -> ast.expr:
    """`node` with `extra` substituted, then let names replaced by their definitions (and
    `extra` again, for what they bring in)."""
    for _ in range(len(lets) + 1):
        node = substitute(node, extra or {})
        used = names_in(node) & set(lets)
        if not used:
            break
        node = substitute(node, {k: lets[k] for k in used})
    return node


def either(cond: ast.expr, then: ast.expr | None, other: ast.expr | None) -> ast.expr | None:
    """The condition `then` where cond holds, else `other` (both conditions)."""
    if then is None or other is None:
        return None
    if same(then, other):
        return then
    yes = simplify(ast.BoolOp(ast.And(), [cond, then]))
    if is_const(other) and other.value is False:
        return yes
    return simplify(ast.BoolOp(ast.Or(), [yes, simplify(ast.BoolOp(ast.And(), [simplify(ast.UnaryOp(ast.Not(), cond)), other]))]))

def assume(t: T, cond: ast.expr) -> T:
    """`t` as code under `if cond:` sees it: values chosen by the same condition are its branch."""
    if cond is TRUE:
        return t

    def pruned(node):
        return None if node is None else substitute(under(cond, node), {})

    def one(d):
        if d.node is None:
            return d
        out = make(plain(d), pruned(d.node), d.runtime)
        if hasattr(d, "closed"):
            out.closed = pruned(d.closed)
        return out
    return T(t.var, tuple(one(d) for d in t.shape), t.moved)


def under(cond: ast.expr, node: ast.expr) -> ast.expr:
    """`node` where `cond` holds: a test equal to cond is true; `x == 'b'` is false where cond
    says `x == 'a'` (one string param chooses between branches)."""
    eq = cond.left.id if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq) \
        and isinstance(cond.left, ast.Name) and is_const(cond.comparators[0]) else None

    class A(ast.NodeTransformer):
        def visit_IfExp(self, n):
            self.generic_visit(n)
            t = n.test
            if same(t, cond):
                return n.body
            if eq and isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq) \
                    and isinstance(t.left, ast.Name) and t.left.id == eq and is_const(t.comparators[0]) \
                    and t.comparators[0].value != cond.comparators[0].value:
                return n.orelse
            return n
    return A().visit(copy(node))


def own_channels(shape: tuple, attr: str) -> tuple:
    """`self.<attr>.out_channels` for a child that says its channels itself."""
    d = shape[0]
    if d.node is None or CHILD not in names_in(d.node):
        return shape
    node = replace_name(d.node, CHILD, ast.Attribute(name("self"), attr, ast.Load()))
    ch = make(plain(d), node)
    if hasattr(d, "closed"):
        ch.closed = d.closed
    return (ch, *shape[1:])
