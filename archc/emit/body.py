"""The body of a class with a forward: layers (a chain, or a DAG through id/from), residual and
parallel structures, each written once from its definition. `when:` becomes an optional child
(None) tested in forward; `from:` expressions become conditional expressions over tensors."""
from __future__ import annotations

import ast
import re

from archc import ops
from archc.emit.code import INDENT
from archc.emit.entries import FALSE, TRUE, Entry, Mod, all_of, any_of, shaped, write_entries
from archc.emit.modules import ModuleWriter
from archc.emit.parallel import ParallelWriter, merged_moved
from archc.emit.scope import Names, Step, T, assume, either, emit_error, merge_shape, own_channels
from archc.emit.sym import Named, Sym
from archc.emit.sym import is_const, make, name, names_in, node_of, plain, same, text
from archc.emit.values import Env, sym, truth
from archc.errors import did_you_mean
from archc.spec.expand import per_copy_names
from archc.spec.layers import At, Item, check_name, parse_item, shortcut_first
from archc.spec.schema import ResidualDef, validate

ASSIGNED = re.compile(r"\s*([A-Za-z_]\w*) = ")     # an __init__ line setting a local
WORD = re.compile(r"[A-Za-z_]\w*")


def neq(a, b) -> ast.expr:
    if a.node is not None and b.node is not None and same(a.node, b.node):
        return FALSE
    if a.node is None or b.node is None:
        return ast.Constant(plain(a) != plain(b))
    if is_const(a.node) and is_const(b.node):
        return ast.Constant(a.node.value != b.node.value)
    return ast.Compare(a.node, [ast.NotEq()], [b.node])


def negate(node: ast.expr) -> ast.expr:
    from archc.emit.sym import simplify
    return simplify(ast.UnaryOp(ast.Not(), node))


class Writer(ModuleWriter, ParallelWriter):
    # -- module attributes -----------------------------------------------------------------------
    def assign(self, attr: str, mod: Mod, cond: ast.expr = TRUE) -> None:
        """`self.attr = <module>` in __init__; None where `cond` is false."""
        init = self.st.init
        if mod.functional is not None:
            return
        self.st.attrs.add(attr)
        head = f"self.{attr} = "
        if mod.render is not None:
            first = len(head) + len(INDENT) * init.depth
            expr = mod.render(0, first)
            if cond is TRUE:
                init.add(head + expr)
            elif "\n" not in expr and len(expr) + first + len(text(cond)) + 14 <= 100:
                init.add(f"{head}{expr} if {text(cond)} else None")
            else:
                init.add(f"{head}None")
                with init.block(f"if {text(cond)}:"):
                    init.add(head + mod.render(0, first + 4))
            return
        if cond is not TRUE:
            init.add(f"{head}None")
            with init.block(f"if {text(cond)}:"):
                self.fill_attr(attr, mod)
        else:
            self.fill_attr(attr, mod)

    def fill_attr(self, attr: str, mod: Mod) -> None:
        self.st.init.add(f"self.{attr} = nn.Sequential()")
        write_entries(self.st.init, mod.entries, f"self.{attr}")

    def call(self, attr: str, mod: Mod, src: str) -> str:
        if mod.applies is not None:
            return mod.applies.replace("{p}", f"self.{attr}").replace("{x}", src)
        return mod.functional.replace("{x}", src) if mod.functional is not None else f"self.{attr}({src})"

    # -- items of a class --------------------------------------------------------------------------
    def chain(self, sc: Names, raws, at: At, t: T, var: str, env: Env) -> T:
        items = [self.em.parse(raws, at)] if not isinstance(raws, list) else \
            [self.em.parse(r, at, i) for i, r in enumerate(raws)]
        for item in items:
            t = self.class_item(sc, item, t, var, env)
        return t

    def class_item(self, sc: Names, item: Item, t: T, var: str, env: Env) -> T:
        if per_copy_names(item):
            for k in ("id", "from"):
                if k in item.wiring:
                    raise item.wiring_at[k].error(f"'{k}' cannot go with a repeat whose copies are named "
                                                  f"one by one; wire the layers around it", key=True)
            return self.named_copies(sc, item, t, var, env)
        cond = TRUE
        if "repeat" not in item.wiring:
            _, cond = self.when(item, env)
            if cond is FALSE:
                return t
        ins = self.sources(sc, item, t, env)
        out_var = var
        if "id" in item.wiring:
            ident = check_name(plain(sym(item.wiring["id"], env, item.wiring_at["id"])), item.wiring_at["id"])
            if ident in sc.ids:
                raise item.wiring_at["id"].error(f"duplicate id '{ident}'")
            out_var = ident if ident not in sc.vars else sc.fresh(ident)
            sc.vars.add(out_var)
        if item.kind in ("residual", "parallel") and "repeat" not in item.wiring:
            if cond is not TRUE:
                raise emit_error(item.at, f"an inline '{item.kind}' under 'when:'; make it a block")
            fn = self.residual if item.kind == "residual" else self.parallel
            result = fn(sc, item.args, item.args_at, ins[0][0], out_var, env)
        else:
            op = ops.get(item.kind)
            if op is not None and op.arity is None and not self.em.blocks.has(item.kind):
                sc.auto(item.kind, item.at, conditional=cond is not TRUE, module=False) \
                    if "name" not in item.wiring else self.layer_name(sc, item, env, cond)
                a = self.op_args(item, op, env)
                out = shaped(op.infer(a, [x.shape for x, _ in ins])) if truth(cond, env) else ins[0][0].shape
                line = op.statement(a, out_var, [src for _, src in ins])
                self.step(out_var, ins, line, cond, t, "id" not in item.wiring)
                result = T(out_var, out, merged_moved([x for x, _ in ins], out))
            else:
                several = self.em.blocks.takes_several(item.kind)
                if len(ins) != 1 and not several:
                    raise item.wiring_at["from"].error(f"'{item.kind}' takes one input, got {len(ins)}")
                attr = self.layer_name(sc, item, env, cond)
                src, x = ins[0][1], assume(ins[0][0], cond)
                if several:
                    src, x = ", ".join(s for _, s in ins), [assume(i, cond) for i, _ in ins]
                taps = {} if item.kind == "seq" and not {"repeat", "when"} & set(item.wiring) else None
                mod = self.module(item, x, env, sc.prefix + attr, direct=True, taps=taps)
                if mod.applies is not None and cond is not TRUE:
                    raise emit_error(item.at, f"'{item.kind}' under 'when:': a layer forward calls by its "
                                              f"own rule cannot be left out by a condition in the generated "
                                              f"class; make it a block")
                mod.out = own_channels(mod.out, attr)
                self.assign(attr, mod, cond)
                if mod.taps:
                    result = self.cut_steps(sc, attr, mod, src, out_var, var, any_of([ins[0][0].moved, mod.changes]))
                else:
                    self.module_step(out_var, attr, mod, src, cond, t, "id" not in item.wiring)
                    result = T(out_var, mod.out, any_of([ins[0][0].moved, mod.changes]))
            if cond is not TRUE:
                result = T(result.var, merge_shape(cond, result.shape, t.shape, self.st.lets, truth(cond, env)),
                           either(cond, result.moved, t.moved))
        if "id" in item.wiring:
            sc.ids[ident] = result
        return result

    def cut_steps(self, sc: Names, attr: str, mod: Mod, src: str, out_var: str, chain: str, moved) -> T:
        """A seq whose children have ids: forward runs its children in a loop and keeps the tensor
        after each of those (torchvision's IntermediateLayerGetter; slices of an nn.Sequential
        are not callable in TorchScript)."""
        taps = []
        for tap, (pos, t) in mod.taps.items():
            var = tap if tap not in sc.vars else sc.fresh(tap)
            sc.vars.add(var)
            sc.ids[tap] = T(var, t.shape, t.moved)
            taps.append((var, pos))
        if len(taps) == 1 and taps[0][1] == mod.length and out_var == chain:   # the last child's
            self.st.step(taps[0][0], [src], f"{taps[0][0]} = self.{attr}({src})")
            return T(taps[0][0], mod.out, moved)
        index, layer = sc.fresh("i"), sc.fresh("layer")
        if out_var != src:
            self.st.step(out_var, [src], f"{out_var} = {src}")
        for var, _ in taps:         # assigned on every path, as TorchScript wants
            self.st.step(var, [out_var], f"{var} = {out_var}")
        lines = [f"for {index}, {layer} in enumerate(self.{attr}):", f"{INDENT}{out_var} = {layer}({out_var})"]
        for j, (var, pos) in enumerate(taps):
            lines += [f"{INDENT}{'if' if j == 0 else 'elif'} {index} == {pos - 1}:", f"{INDENT * 2}{var} = {out_var}"]
        self.st.steps.append(Step(out_var, [out_var], lines, guarded=True))
        return T(out_var, mod.out, moved)

    def step(self, dst: str, ins, line: str, cond: ast.expr, prev: T, chain: bool = True) -> None:
        """A forward line; under a condition, the chain variable keeps the value before it where
        the condition does not hold (an id is only read where it does)."""
        srcs = [v for x, src in ins for v in names_in(ast.parse(src, mode="eval").body)]
        if cond is TRUE:
            self.st.step(dst, srcs, line)
            return
        guard = self.st.forward_text(cond)
        keep = chain and dst != prev.var
        self.st.step(dst, srcs + [prev.var] * keep, line, guard, f"{dst} = {prev.var}" if keep else None)

    def module_step(self, dst: str, attr: str, mod: Mod, src: str, cond: ast.expr, prev: T,
                    chain: bool = True) -> None:
        line = f"{dst} = {self.call(attr, mod, src)}"
        srcs = [src] if src.isidentifier() else sorted(names_in(ast.parse(src, mode="eval").body))
        if cond is TRUE:
            self.st.step(dst, srcs, line)
        elif mod.functional is not None:
            self.step(dst, [(None, src)], line, cond, prev, chain)
        elif not chain or dst == prev.var:
            self.st.step(dst, srcs, line, f"self.{attr} is not None")
        else:
            self.st.step(dst, srcs + [prev.var], f"{dst} = {prev.var} if self.{attr} is None else "
                                                 f"self.{attr}({src})")

    def layer_name(self, sc: Names, item: Item, env: Env, cond=TRUE) -> str:
        if "name" in item.wiring:
            at = item.wiring_at["name"]
            return sc.claim(check_name(plain(sym(item.wiring["name"], env, at)), at), at)
        return sc.auto(item.kind, item.at, conditional=cond is not TRUE)

    def sources(self, sc: Names, item: Item, t: T, env: Env) -> list[tuple[T, str]]:
        """The inputs of an item with their forward expressions (`from:` may choose by a condition)."""
        if "from" not in item.wiring:
            return [(t, t.var)]
        at = item.wiring_at["from"]
        s = sym(item.wiring["from"], env, at)
        value = plain(s)
        refs = value if isinstance(value, list) else [value]
        for r in refs:
            if not isinstance(r, str):          # as the expander says it
                raise at.error(f"'from' takes an id or a list of ids, got {value!r}")
            if r not in sc.ids:
                raise at.error(f"unknown id '{r}'{did_you_mean(r, sc.ids)}; known here: {', '.join(sc.ids) or 'none'}")
        node = node_of(s)
        parts = split_list(node, len(refs)) if isinstance(value, list) else [node]
        if parts is None:
            raise emit_error(at, "a 'from:' expression that is not a list of ids or conditions over ids")
        return [self.source(sc, part, r, at, env) for part, r in zip(parts, refs)]

    def source(self, sc: Names, node: ast.expr, ref: str, at, env: Env) -> tuple[T, str]:
        if is_const(node):
            x = sc.ids[node.value]
            return x, x.var
        if isinstance(node, ast.IfExp):
            a, ta = self.source(sc, node.body, ref, at, env)
            b, tb = self.source(sc, node.orelse, ref, at, env)
            chosen = sc.ids[ref]
            shape = merge_shape(node.test, a.shape, b.shape, self.st.lets, truth(node.test, env))
            return T(chosen.var, shape), \
                f"({ta} if {self.st.forward_text(node.test)} else {tb})"
        raise emit_error(at, f"'from: {text(node)}' cannot be written as a choice between tensors")

    # -- repeats whose copies are named one by one -----------------------------------------------
    def named_copies(self, sc: Names, item: Item, t: T, var: str, env: Env) -> T:
        """`name: "unit${i + 1}"`: each copy an attribute of the class, called in turn."""
        entries: list[Entry] = []
        names: set = set()
        out, changes = self.hoisted(entries, item, t, env, lambda ents, it, x: self.loop(
            ents, it, x, env, lambda e2, one, ienv, y: self.fill_one(e2, names, one, ienv, y, sc.prefix, False)))
        write_entries(self.st.init, entries, "self")
        loops = [e for e in entries if e.kind == "for"] or \
            [e for g in entries if g.kind == "if" for e in g.body if e.kind == "for"]
        index = loops[0].header.split()[1]
        ienv = env.child()
        ienv.set("i", Named(0, name(index)))
        attr = sym(item.wiring["name"], ienv, item.wiring_at["name"]).node
        n = sym(item.wiring["repeat"], env, item.wiring_at["repeat"])
        call = f"{var} = getattr(self, {self.st.forward_text(attr, (index,))})({var})"
        body = [call]
        if "when" in item.wiring:
            _, cond = self.when(item, ienv)
            if cond is not TRUE:
                body = [f"if {self.st.forward_text(cond, (index,))}:", INDENT + call]
        lines = ([f"{var} = {t.var}"] if var != t.var else []) + \
            [f"for {index} in range({self.st.forward_text(n.node)}):"] + [INDENT + ln for ln in body]
        self.st.steps.append(Step(var, [t.var], lines, guarded=True))
        return T(var, out.shape, any_of([t.moved, changes]))

    # -- residual ----------------------------------------------------------------------------------
    def residual(self, sc: Names, raw, at: At, t: T, var: str, env: Env) -> T:
        spec = validate(ResidualDef, raw, at.src, at.path, "residual")
        body_var = var if var != t.var else sc.fresh("out")
        first = len(self.st.init.lines)
        out = self.chain(sc, spec.body, at / "body", T(t.var, t.shape), body_var, env)
        spatial = out.moved
        if spatial is None:
            raise emit_error(at, "cannot tell when this residual's body changes the spatial size")
        differs = spatial if spec.merge == "concat" else any_of([spatial, neq(t.shape[0], out.shape[0])])
        sc_raw, sc_at = spec.shortcut, at / "shortcut"
        kind = sc_raw
        if isinstance(sc_raw, str):
            s = sym(sc_raw, env, sc_at)
            kind = plain(s) if s.node is None or is_const(s.node) else s
        if isinstance(kind, Sym):        # a param: 'auto' or 'none'
            if plain(kind) not in ("auto", "none"):
                raise sc_at.error(f"shortcut must be layers, 'auto' or 'none', got {plain(kind)!r}")
            is_auto = ast.Compare(kind.node, [ast.Eq()], [ast.Constant("auto")])
            short_cond, merge_cond = all_of([is_auto, differs]), any_of([negate(differs), is_auto])
            kind = "auto"
        elif kind is None:
            short_cond, merge_cond = FALSE, TRUE
        elif kind == "none":
            short_cond, merge_cond = FALSE, negate(differs)
        elif isinstance(kind, str) and kind != "auto":
            raise sc_at.error(f"shortcut must be layers, 'auto' or 'none', got {kind!r}")
        else:
            short_cond, merge_cond = differs, TRUE
        short = (t, t.var)
        if short_cond is not FALSE:
            made = len(self.st.init.lines)
            short = self.shortcut(sc, kind, sc_at, t, out, env, short_cond, spatial)
            if shortcut_first(raw):
                self.move_up(first, made, sc_at)
        if merge_cond is not FALSE:
            merge = Item(spec.merge, None, at, at)
            op = ops.get(spec.merge)
            a = self.op_args(merge, op, env)
            x, src = short
            pair = [(x, src), (out, out.var)] if spec.merge == "concat" else [(out, out.var), (x, src)]
            shape = shaped(op.infer(a, [p[0].shape for p in pair])) if truth(merge_cond, env) else out.shape
            sc.auto(spec.merge, at, conditional=merge_cond is not TRUE, module=False)
            line = op.statement(a, body_var, [p[1] for p in pair])
            if merge_cond is TRUE:
                self.st.step(body_var, [p[1] for p in pair], line)
                merged = T(body_var, shape)
            else:
                flag = self.flag("use_res_connect", merge_cond)
                self.st.step(body_var, [p[1] for p in pair], line, f"self.{flag}")
                merged = T(body_var, merge_shape(merge_cond, shape, out.shape, self.st.lets, truth(merge_cond, env)))
        else:
            merged = out
        merged = T(merged.var, merged.shape, any_of([t.moved, spatial]))
        if spec.post is not None:
            merged = self.chain(sc, spec.post, at / "post", merged, body_var, env)
        return merged

    def move_up(self, first: int, made: int, at: At) -> None:
        """Put the __init__ lines from `made` on (the shortcut's) before those from `first` (the
        body's), so that the shortcut's modules register first, as the spec writes them."""
        lines = self.st.init.lines
        body, short = lines[first:made], lines[made:]
        assigned = {m.group(1) for ln in body for m in [ASSIGNED.match(ln)] if m}
        used = {w for ln in short for w in WORD.findall(ln)}
        if assigned & used:
            raise emit_error(at, f"cannot write the shortcut before the body: it uses "
                                 f"'{min(assigned & used)}', which the body's code sets; write 'body:' first")
        lines[first:] = short + body
        self.st.init.holds.clear()

    def flag(self, base: str, cond: ast.expr) -> str:
        """A bool computed in __init__ that forward tests (a constant to TorchScript)."""
        attr = base
        k = 2
        while attr in self.st.attrs or attr in self.st.env.names:
            attr, k = f"{base}{k}", k + 1
        self.st.attrs.add(attr)
        self.st.init.assign(f"self.{attr}", cond)
        self.st.flags.append(attr)
        return attr

    def shortcut(self, sc: Names, kind, at: At, t: T, want: T, env: Env, cond: ast.expr, spatial) -> tuple[T, str]:
        attr = "downsample"
        if kind == "auto":
            stride = self.auto_stride(spatial, t, want, at)
            kind = [{"conv": {"out": want.shape[0], "k": 1, "stride": stride, "bias": False}}, "bn"]
        if isinstance(kind, dict) and "layers" in kind:
            attr = check_name(plain(sym(kind.get("name", attr), env, at)), at)
            kind, at = kind["layers"], at / "layers"
        attr = sc.claim(attr, at)
        if isinstance(kind, list):
            mod = self.seq(kind, at, t, env, sc.prefix + attr)
        else:
            mod = self.module(parse_item(kind, at), t, env, sc.prefix + attr)
        if tuple(map(plain, mod.out)) != tuple(map(plain, want.shape)):
            raise at.error(f"shortcut gives {list(map(plain, mod.out))} but the body gives "
                           f"{list(map(plain, want.shape))}: shapes differ")
        self.assign(attr, mod, cond)
        ident = sc.fresh("identity")
        if cond is TRUE:
            self.st.step(ident, [t.var], f"{ident} = self.{attr}({t.var})")
            return T(ident, mod.out), ident
        self.st.step(ident, [t.var], f"{ident} = {t.var} if self.{attr} is None else self.{attr}({t.var})")
        return T(ident, want.shape), ident

    def auto_stride(self, spatial, t: T, want: T, at):
        """`auto`'s 1x1 conv takes the stride of the body's strided op."""
        concrete = max(1, plain(t.shape[1]) // plain(want.shape[1])) if len(want.shape) > 1 else 1
        strides = [n.left for n in ast.walk(spatial) if isinstance(n, ast.Compare)
                   and isinstance(n.ops[0], ast.NotEq) and is_const(n.comparators[0]) and n.comparators[0].value == 1]
        if len(strides) == 1:
            return make(concrete, strides[0])
        if not names_in(spatial):
            return concrete
        raise emit_error(at, "'shortcut: auto' with a body whose stride is not one param")


def split_list(node, n: int):
    """A `from:` node as one node per id: a list display, or a condition between two lists."""
    if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) == n:
        return node.elts
    if isinstance(node, ast.IfExp):
        a, b = split_list(node.body, n), split_list(node.orelse, n)
        if a is not None and b is not None:
            return [ast.IfExp(node.test, x, y) if not same(x, y) else x for x, y in zip(a, b)]
    return None
