"""Child modules written from a definition: an op's module, a block's class called with the
instance's arguments, an nn.Sequential (one expression, or built with `if` and `for`), and the
copies of a `repeat` as a loop over `i`."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable

from archc import ops
from archc.emit.code import INDENT, Code, NeedsRuntime, call, ctor_text, sequential
from archc.emit.scope import ClassState, T, closed_of, emit_error, merge_shape
from archc.emit.sym import (PLACEHOLDERS, Named, Sym, SymList, size, is_const, make, name, names_in, node_of, plain, substitute,
                            text)
from archc.emit.values import Env, condition, sym
from archc.errors import ShapeError
from archc.spec.expand import per_copy_names
from archc.spec.layers import STRUCTURES, Item, check_name
from archc.spec.schema import validate

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


@dataclass
class Entry:
    """One statement of an nn.Sequential being filled: a child, an `if` or a `for`."""
    kind: str                           # 'mod' | 'if' | 'for' | 'line' (header = node)
    mod: Mod | None = None
    child: ast.expr | None = None       # the child's name; None: numbered
    header: str = ""
    body: list["Entry"] = field(default_factory=list)
    node: ast.expr | None = None


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


class ModuleWriter:
    def __init__(self, em, st: ClassState):
        self.em = em
        self.st = st

    # -- shapes ---------------------------------------------------------------------------------
    def spatial(self, values, nodes=None) -> tuple:
        """Spatial sizes: known to the network's __init__ (its input size is given); a block's are
        placeholders (or, after a child, expressions of them)."""
        if nodes is None:
            nodes = [ast.Constant(plain(v)) if self.st.root else name(PLACEHOLDERS[j]) for j, v in enumerate(values)]
        return tuple(make(v, n, runtime=True) for v, n in zip(values, nodes))

    # -- an op -------------------------------------------------------------------------------------
    def op_module(self, item: Item, op, t: T, env: Env, raw=None) -> Mod:
        a = self.op_args(item, op, env, raw)
        try:
            out = shaped(op.infer(a, [t.shape]))
        except ShapeError:      # a branch not taken here, at a size it does not fit (see block_class)
            t = T(t.var, (t.shape[0], *(make(512, d.node, True) for d in t.shape[1:])), t.moved)
            out = shaped(op.infer(a, [t.shape]))
        ctor = self.op_ctor(item, op, a, t, out)
        if ctor is None:
            raise emit_error(item.at, f"op '{item.kind}' has no module")
        for s in supports(ctor):
            self.em.support[s.strip("\n")] = None
        mod = Mod(out, self.op_changes(op, a, t, out), lambda d, f: ctor_text(ctor, d, f))
        try:
            ctor_text(ctor, 0)
        except NeedsRuntime:
            if type(op).expr is ops.Op.expr:
                where = "a block's" if not self.st.root else "the network's"
                raise emit_error(item.at, f"'{item.kind}' needs {where} input size to be built, which the "
                                          f"generated class only learns in forward") from None
            fwd = op.Args.model_construct(**{k: self.forward_value(getattr(a, k)) for k in type(a).model_fields})
            mod.functional = op.expr(fwd, ["{x}"])
            mod.render = None
        return mod

    def op_ctor(self, item: Item, op, a, t: T, out):
        """op.module for these args; where a string arg varies (an activation chosen by a let),
        the module for each value it can take, joined by conditions."""
        varying = [(k, v) for k in type(a).model_fields if isinstance(v := getattr(a, k), str)
                   and isinstance(v, Sym) and v.node is not None and not v.constant]
        if not varying:
            return op.module(a, [t.shape], out)
        if len(varying) > 1:
            raise emit_error(item.at, f"several string args vary here: {', '.join(k for k, _ in varying)}")
        key, v = varying[0]
        values = domain(v.node, self.st.lets)
        if values is None:
            raise emit_error(item.at, f"'{key}: {text(v.node)}' can take values the code cannot list; "
                                      f"write its choices as a 'let' (`a if c else b`)")
        cases = []
        for value in values:
            av = a.model_copy(update={key: make(value, ast.Constant(value))})
            test = ast.Compare(v.node, [ast.Eq()], [ast.Constant(value)])
            cases.append((test, op.module(av, [t.shape], tuple(op.infer(av, [t.shape])))))
        from archc.emit.code import merge_values
        return merge_values(cases)

    def op_args(self, item: Item, op, env: Env, raw=None):
        raw = sym(item.args if raw is None else raw, env, item.args_at)
        if raw is None:
            raw = {}
        elif not isinstance(raw, dict):
            raw = {op.short: raw}
        concrete = validate(op.Args, plain(raw), item.args_at.src, item.args_at.path, f"layer ({item.kind})")
        return op.Args.model_construct(**{k: attach(getattr(concrete, k), raw.get(k))
                                          for k in type(concrete).model_fields})

    def forward_value(self, v):
        """An arg as forward computes it: input sizes from the input, the rest from attributes."""
        if isinstance(v, list):
            items = [self.forward_value(x) for x in v]
            return make(plain(v), ast.List(elts=[node_of(x) for x in items], ctx=ast.Load()))
        if isinstance(v, Sym):
            node = v.fwd if v.runtime and v.fwd is not None else v.node
            return make(v.plain, ast.parse(self.st.forward_text(node), mode="eval").body)
        return v

    def op_changes(self, op, a, t: T, out) -> ast.expr:
        """When this op changes the spatial size: where its stride is a param and the op keeps
        the size at stride 1, `stride != 1`; otherwise whether it does here (a constant)."""
        if len(out) != len(t.shape):
            return TRUE
        keeps = tuple(map(plain, out[1:])) == tuple(map(plain, t.shape[1:]))
        stride = getattr(a, "stride", None)
        if isinstance(stride, Sym) and stride.node is not None and not stride.constant:
            concrete = type(a).model_construct(**{k: plain(getattr(a, k)) for k in type(a).model_fields})
            one = concrete.model_copy(update={"stride": 1})
            x = tuple(map(plain, t.shape))
            if tuple(op.infer(one, [x]))[1:] == x[1:]:
                return ast.Compare(stride.node, [ast.NotEq()], [ast.Constant(1)])
        return ast.Constant(not keeps)

    # -- a block -----------------------------------------------------------------------------------
    def block_module(self, item: Item, t: T, env: Env, raw=None) -> Mod:
        blocks = self.em.blocks
        bdef, _ = blocks.defs[item.kind]
        given = sym(item.args if raw is None else raw, env, item.args_at)
        if given is None:
            given = {}
        elif not isinstance(given, dict):
            given = {blocks.short_param(item.kind): given}
        concrete = blocks.params(item.kind, Item(item.kind, plain(given), item.at, item.args_at), {})
        info, face = self.em.block_class(item.kind, concrete, tuple(map(plain, t.shape)), item.at)
        mapping = {"c_in": t.shape[0].node}
        for p in bdef.params:
            mapping[p] = node_of(given[p]) if p in given else ast.Constant(concrete[p])
        for v in info.vars:
            mapping[v] = env.names[v].node
        for j, d in enumerate(t.shape[1:]):
            mapping[PLACEHOLDERS[j]] = d.node
        args = [text(mapping["c_in"])] if info.takes_c_in else []
        args += [f"{p}={text(mapping[p])}" for p in bdef.params if p in given]
        args += [f"{v}={text(mapping[v])}" for v in info.vars]
        if any(mapping[k] is None for k in ["c_in"] * info.takes_c_in + list(info.vars)):
            raise emit_error(item.at, f"block '{item.kind}' is called with a value known only at run time")
        closed = substitute(face.out_node, mapping) if face.out_node is not None else None
        if closed is not None and not names_in(closed) & set(PLACEHOLDERS) and not involved(closed):
            channels = make(face.out[0], closed)
        else:       # a long or conditional expression: the child says it (torchvision's `inplanes`)
            if info.out_channels is None:
                raise emit_error(item.at, f"the output channels of block '{item.kind}' have no expression here")
            info.exposes = True
            channels = make(face.out[0], ast.Attribute(name(CHILD), "out_channels", ast.Load()))
            if closed is not None:
                channels.closed = closed
        if self.st.root:        # the network's sizes are known: the child's, for this input
            dims = None
        else:
            dims = [substitute(n, mapping) if n is not None and all(mapping.get(k) is not None for k in names_in(n)
                                                                     if k in PLACEHOLDERS) else None
                    for n in face.spatial]
        out = (channels, *self.spatial(face.out[1:], dims))
        changes = substitute(face.changes, mapping) if face.changes is not None else None
        return Mod(out, changes, lambda d, f: call(info.name, args, d, f))

    # -- any child ---------------------------------------------------------------------------------
    def module(self, item: Item, t: T, env: Env, at_name: str, repeatable: bool = True) -> Mod:
        if repeatable and "repeat" in item.wiring:
            return self.repeated(item, t, env)
        if item.kind == "seq":
            return self.seq(item.args, item.args_at, t, env, at_name)
        if item.kind in STRUCTURES:
            raise item.at.error(f"an inline '{item.kind}' must sit in a block or at the top level; "
                                f"to repeat it or nest it in a seq, make it a block")
        if self.em.blocks.has(item.kind):
            return self.block_module(item, t, env)
        op = ops.get(item.kind)
        return self.op_module(item, op, t, env)

    # -- nn.Sequential -----------------------------------------------------------------------------
    def seq(self, raws, at, t: T, env: Env, path: str) -> Mod:
        if not isinstance(raws, list):
            raise at.error(f"expected a list of layers, got {raws!r}")
        entries: list[Entry] = []
        out, changes = self.fill(entries, set(), raws, at, t, env, path)
        return self.sequential_mod(entries, out, changes)

    def sequential_mod(self, entries: list[Entry], out: T, changes) -> Mod:
        static = all(e.kind == "mod" and e.mod.render is not None for e in entries)
        if static:
            kids = [(None if e.child is None else e.child.value, e.mod) for e in entries]

            def render(d, f, kids=kids):
                return sequential([(n, m.render(d + 1, 0)) for n, m in kids], d)
            return Mod(out.shape, changes, render)
        return Mod(out.shape, changes, entries=entries)

    def fill(self, entries: list[Entry], names: set, raws, at, t: T, env: Env, path: str, top: bool = True):
        """Items of an nn.Sequential; `top`: its own statements, not inside an `if` or a loop."""
        changes: list = []
        for j, raw in enumerate(raws):
            item = self.em.parse(raw, at, j)
            if top and "when" not in item.wiring:
                t = self.materialize(entries, t)
            for k in ("id", "from"):
                if k in item.wiring:
                    raise item.wiring_at[k].error(f"'{k}' is not available inside a seq (a plain chain); "
                                                  f"use a block with 'layers:' for DAG wiring", key=True)
            splice = item.kind == "seq" and "name" not in item.wiring and "repeat" in item.wiring
            if "repeat" in item.wiring and ("name" not in item.wiring or per_copy_names(item)):
                def copies(ents, it, x):
                    return self.loop(ents, it, x, env, lambda e2, one, ienv, y: self.fill_one(
                        e2, names, one, ienv, y, path, splice))
                t, c = self.hoisted(entries, item, t, env, copies)
            else:
                t, c = self.fill_one(entries, names, item, env, t, path, splice, top)
            changes.append(c)
        return t, any_of(changes)

    def fill_one(self, entries, names, item: Item, env: Env, t: T, path: str, splice: bool, top: bool = False):
        on, cond = self.when(item, env)
        if cond is FALSE:
            return t, FALSE
        target = entries if cond is TRUE else []
        if splice:
            out, changes = self.fill(target, names, item.args, item.args_at, t, env, path,
                                     top=top and cond is TRUE)
        else:
            child = None
            if "name" in item.wiring:
                name_at = item.wiring_at["name"]
                s = sym(item.wiring["name"], env, name_at)
                check_name(s.plain, name_at, attribute=False)
                if s.plain in names and is_const(s.node):
                    raise name_at.error(f"duplicate name '{s.plain}' in '{path}'")
                names.add(s.plain)
                child = s.node
            from archc.emit.body import assume
            mod = self.module(item, assume(t, cond), env, path)
            target.append(Entry("mod", mod, child))
            out, changes = T(t.var, mod.out), mod.changes
            if CHILD in names_in(out.shape[0].node):      # `channels = self.features[-1].out_channels`
                var = self.st.local("channels", "c", "ch")
                self.st.busy.discard(var)
                last = ast.Subscript(name(SEQ), ast.UnaryOp(ast.USub(), ast.Constant(1)), ast.Load())
                target.append(Entry("line", header=var, node=replace_name(out.shape[0].node, CHILD, last)))
                ch = make(plain(out.shape[0]), name(var))
                if hasattr(out.shape[0], "closed"):
                    ch.closed = out.shape[0].closed
                out = T(out.var, (ch, *out.shape[1:]), out.moved)
        if cond is TRUE:
            return out, changes
        entries.append(Entry("if", header=f"if {text(cond)}:", body=target))
        return T(t.var, merge_shape(cond, out.shape, t.shape, self.st.lets, on)), \
            all_of([cond, changes]) if changes is not None else None

    def materialize(self, entries: list[Entry], t: T) -> T:
        """Channels written as a long expression go into a local first (torchvision's
        `num_features = ...`): `channels = (c + n * growth) // 2`."""
        node = t.shape[0].node
        if node is None or size(node) <= LONG or names_in(node) & set(PLACEHOLDERS):
            return t
        var = self.st.local("channels", "c", "ch")
        self.st.busy.discard(var)
        entries.append(Entry("line", header=var, node=node))
        channels = make(plain(t.shape[0]), name(var))
        channels.closed = closed_of(t.shape[0])
        return T(t.var, (channels, *t.shape[1:]), t.moved)

    def hoisted(self, entries, item: Item, t: T, env: Env, inner):
        """A repeat's `when:` that does not read `i` guards the whole loop: `if c: for i in ...`."""
        if "when" not in item.wiring or "i" in when_names(item):
            return inner(entries, item, t)
        on, cond = self.when(item, env)
        if cond is FALSE:
            return t, FALSE
        bare = Item(item.kind, item.args, item.at, item.args_at,
                    {k: v for k, v in item.wiring.items() if k != "when"}, item.wiring_at)
        if cond is TRUE:
            return inner(entries, bare, t)
        target: list[Entry] = []
        out, changes = inner(target, bare, t)
        before = t
        if target and target[0].kind == "line":     # a running variable: set before the `if`, so
            first = target.pop(0)                    # that it holds the channels either way
            entries.append(first)
            kept = make(plain(t.shape[0]), name(first.header))
            kept.closed = closed_of(t.shape[0])
            before = T(t.var, (kept, *t.shape[1:]), t.moved)
        entries.append(Entry("if", header=f"if {text(cond)}:", body=target))
        return T(t.var, merge_shape(cond, out.shape, before.shape, self.st.lets, on)), \
            all_of([cond, changes]) if changes is not None else None

    def when(self, item: Item, env: Env):
        """(enabled here, condition node): TRUE / FALSE where it does not vary."""
        if "when" not in item.wiring:
            return True, TRUE
        on, node = condition(item.wiring["when"], env, item.wiring_at["when"])
        return on, node

    # -- repeat ------------------------------------------------------------------------------------
    def repeated(self, item: Item, t: T, env: Env) -> Mod:
        """A repeat in a class: its copies numbered in one nn.Sequential."""
        entries: list[Entry] = []
        out, changes = self.hoisted(entries, item, t, env, lambda ents, it, x: self.loop(
            ents, it, x, env, lambda e2, one, ienv, y: self.copy(e2, one, ienv, y)))
        return self.sequential_mod(entries, out, changes) if entries else Mod(t.shape, FALSE, lambda d, f: "nn.Sequential()")

    def copy(self, entries, item: Item, env: Env, t: T):
        on, cond = self.when(item, env)
        mod = self.module(item, t, env, "", repeatable=False)
        if cond is TRUE:
            entries.append(Entry("mod", mod))
            return T(t.var, mod.out), mod.changes
        entries.append(Entry("if", header=f"if {text(cond)}:", body=[Entry("mod", mod)]))
        return T(t.var, merge_shape(cond, mod.out, t.shape, self.st.lets, on)), None

    def loop(self, entries: list[Entry], item: Item, t: T, env: Env, body):
        """`for i in range(n)` around the copies; the channels they pass on in a local variable
        where they change from copy to copy."""
        at = item.wiring_at["repeat"]
        n = sym(item.wiring["repeat"], env, at)
        if not isinstance(plain(n), int) or isinstance(plain(n), bool) or plain(n) < 0:
            raise at.error(f"repeat must be a non-negative integer, got {plain(n)!r}")
        first = item.wiring.get("first")
        if first is not None and not isinstance(first, dict):
            raise item.wiring_at["first"].error(f"'first' must be a mapping of args, got {first!r}")
        index = self.st.local("i", "j", "k")
        dropped = ("repeat", "first", "id", "from") + (() if per_copy_names(item) else ("name",))
        wiring = {k: v for k, v in item.wiring.items() if k not in dropped}
        running = self.st.local("channels", "c", "ch")
        try:
            # with the channels in a running variable: do the copies change them at all?
            probe = self.copies(item, n, first, wiring, index, t, env, body, running, only_first=True)
            node = probe[1].shape[0].node
            start = t.shape[0].node
            if node is not None and start is not None and index not in names_in(node) \
                    and ast.dump(substitute(node, {running: start})) == ast.dump(substitute(start, {})):
                self.st.busy.discard(running)
                running = None
            ents, out, changes, outs, texts = self.copies(item, n, first, wiring, index, t, env, body, running)
        finally:
            self.st.busy.discard(index)
        if len(set(texts)) > 1:
            other = next(x for x in texts if x != texts[0])
            raise emit_error(item.at, f"the copies of this repeat are written differently:\n{texts[0]}\n---\n{other}")
        n_text = text(n.node) if n.node is not None else str(plain(n))
        update = out.shape[0].node
        if running is not None:
            self.st.busy.discard(running)
            if text(t.shape[0].node) != running:
                entries.append(Entry("line", header=running, node=t.shape[0].node))
            if update is not None and text(update) != running:
                ents = ents + [Entry("line", header=running, node=update)]
        entries.append(Entry("for", header=f"for {index} in range({n_text}):", body=ents))
        if plain(n) == 0:
            return t, FALSE
        closed = self.closed_form(closed_of(t.shape[0]), update, running, index, n)
        changes = self.loop_changes(changes, index, n)
        last = outs[-1].shape
        dims = t.shape[1:] if changes is FALSE else tuple(make(plain(d), None, True) for d in last[1:])
        channels = make(plain(last[0]), name(running) if running is not None else closed)
        channels.closed = closed       # for callers of this class: the running variable is its own
        shape = (channels, *dims)
        return T(t.var, shape), changes

    def loop_changes(self, changes, index: str, n):
        """Whether any copy changes the spatial size; copies may differ only by `i == 0`."""
        if changes is None:
            return None
        if index in names_in(changes):
            at = [substitute(changes, {index: ast.Constant(k)}) for k in (0, 1, 2)]
            if any(index in names_in(c) for c in at) or ast.dump(at[1]) != ast.dump(at[2]):
                return None
            more = ast.Compare(n.node, [ast.Gt()], [ast.Constant(1)]) if n.node is not None else \
                ast.Constant(plain(n) > 1)
            changes = any_of([at[0], all_of([substitute(more, {}), at[1]])])
        if n.node is not None and not is_const(n.node):
            return all_of([ast.Compare(n.node, [ast.Gt()], [ast.Constant(0)]), changes])
        return changes if plain(n) > 0 else FALSE

    def copies(self, item, n, first, wiring, index, t: T, env: Env, body, running, only_first=False):
        """Each copy written (with its own concrete values): the texts must all be the same."""
        texts, outs, written = [], [], None
        cur = t
        for i in range(1 if only_first else max(plain(n), 1)):
            ienv = env.child()
            ienv.set("i", Named(i, name(index)))
            args = self.first_args(item, first, i, ienv, index)
            one = Item(item.kind, args, item.at, item.args_at, wiring, item.wiring_at)
            x = cur if running is None else T(cur.var, (make(plain(cur.shape[0]), name(running)), *cur.shape[1:]))
            ents: list[Entry] = []
            out, changes = body(ents, one, ienv, x)
            node = out.shape[0].node
            texts.append(render_entries(ents) + "\n# -> " + (text(node) if node is not None else "?"))
            if written is None:
                written = (ents, out, changes)
            outs.append(out)
            cur = out
        return written[0], written[1], written[2], outs, texts

    def closed_form(self, start, update, var, index, n):
        """The channels after the loop, as an expression of what is known before it."""
        if update is None:
            return None
        if var is None or var not in names_in(update):
            if index in names_in(update):
                return substitute(update, {index: ast.BinOp(n.node, ast.Sub(), ast.Constant(1))})
            return update
        if isinstance(update, ast.BinOp) and isinstance(update.op, ast.Add) \
                and isinstance(update.left, ast.Name) and update.left.id == var \
                and not ({var, index} & names_in(update.right)):
            return substitute(ast.BinOp(start, ast.Add(), ast.BinOp(n.node, ast.Mult(), update.right)), {})
        return None

    def first_args(self, item: Item, first, i: int, env: Env, index: str):
        """The copy's args: `first:` values as `a if i == 0 else b`."""
        args = item.args
        if not first:
            return args
        base = args if isinstance(args, dict) else ({} if args is None else None)
        if base is None:
            short = self.em.blocks.short_param(item.kind) if self.em.blocks.has(item.kind) \
                else getattr(ops.get(item.kind), "short", None)
            base = {short: args} if short else {}
        merged = dict(base)
        test = ast.Compare(name(index), [ast.Eq()], [ast.Constant(0)])
        for k, v in first.items():
            f = sym(v, env)
            b = sym(base[k], env) if k in base else make(self.default_of(item, k), ast.Constant(self.default_of(item, k)))
            merged[k] = make(plain(f) if i == 0 else plain(b), ast.IfExp(test, node_of(f), node_of(b)))
        return merged

    def default_of(self, item: Item, key: str):
        if self.em.blocks.has(item.kind):
            from archc.spec.blocks import param_decl
            return param_decl(self.em.blocks.defs[item.kind][0].params[key])[1]
        f = ops.get(item.kind).Args.model_fields[key]
        return f.default


SEQ = "__seq"     # the nn.Sequential being filled, in a line of its statements


def replace_name(node: ast.expr, key: str, by: ast.expr) -> ast.expr:
    class R(ast.NodeTransformer):
        def visit_Name(self, n):
            return by if n.id == key else n
    return R().visit(ast.parse(text(node), mode="eval").body)


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
    from archc.spec.expr import INTERP, NAME, parse
    raw = item.wiring.get("when")
    if not isinstance(raw, str):
        return set()
    m = NAME.match(raw)
    if m:
        return {m.group(1)}
    return {n for e in INTERP.findall(raw) for n in names_in(parse(e).body)}


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
