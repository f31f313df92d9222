"""Repeats and conditions of a definition as Python: `for i in range(n)` around the copies (the
channels they pass on in a running local), `first:` as `a if i == 0 else b`, `when:` as `if`."""
from __future__ import annotations

import ast

from archc import ops
from archc.emit.entries import FALSE, TRUE, Entry, Mod, all_of, any_of, render_entries, when_names
from archc.emit.scope import T, closed_of, emit_error, merge_shape
from archc.emit.sym import Named, is_const, make, name, names_in, node_of, plain, same, substitute, text
from archc.emit.values import Env, condition, sym
from archc.errors import did_you_mean
from archc.spec.expand import per_copy_names
from archc.spec.layers import Item


class LoopWriter:
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
            entries.append(Entry("mod", mod, at=item.at))
            return T(t.var, mod.out), mod.changes
        entries.append(Entry("if", header=f"if {text(cond)}:", body=[Entry("mod", mod, at=item.at)]))
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
                    and same(substitute(node, {running: start}), substitute(start, {})):
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
        entries.append(Entry("for", header=f"for {index} in range({n_text}):", body=ents,
                             count=n.node if n.node is not None else ast.Constant(plain(n))))
        if plain(n) == 0:
            return t, FALSE
        closed = self.closed_form(closed_of(t.shape[0]), update, running, index, n)
        changes = self.loop_changes(changes, index, n)
        last = outs[-1].shape
        keeps = all(a.node is not None and b.node is not None and same(a.node, b.node)
                    for a, b in zip(last[1:], t.shape[1:]))      # a block whose `input:` names its dims
        dims = t.shape[1:] if changes is FALSE or keeps else tuple(make(plain(d), None, True) for d in last[1:])
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
            if any(index in names_in(c) for c in at) or not same(at[1], at[2]):
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
            if k not in base:
                d = self.default_of(item, k, item.wiring_at["first"] / k)
            b = sym(base[k], env) if k in base else make(d, ast.Constant(d))
            merged[k] = make(plain(f) if i == 0 else plain(b), ast.IfExp(test, node_of(f), node_of(b)))
        return merged

    def default_of(self, item: Item, key: str, at):
        """The default of `key` for what `first:` overrides (a repeat of no copies is never
        built, so an unknown key is first met here)."""
        if self.em.blocks.has(item.kind):
            from archc.spec.blocks import param_decl
            params = self.em.blocks.defs[item.kind][0].params
            if key in params:
                return param_decl(params[key])[1]
        else:
            op = ops.get(item.kind)
            fields = op.Args.model_fields if op is not None else {}
            if key in fields:
                return fields[key].default
            params = fields
        raise at.error(f"'first' sets '{key}', which '{item.kind}' does not take{did_you_mean(key, params)}",
                       key=True)


