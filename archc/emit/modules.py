"""Child modules written from a definition: an op's module, a block's class called with the
instance's arguments, an nn.Sequential (one expression, or built statement by statement)."""
from __future__ import annotations

import ast

from archc import limits, ops
from archc.emit.code import Choice, NeedsRuntime, call, ctor_text, sequential
from archc.emit.init_rules import record_module
from archc.emit.entries import (CHILD, FALSE, LONG, SEQ, TRUE, Entry, Mod, all_of, any_of, attach, domain,
                                functional_entry, involved, known_length, replace_name, shaped, supports)
from archc.emit.loops import LoopWriter
from archc.emit.scope import ClassState, T, assume, closed_of, emit_error, merge_shape
from archc.emit.sym import PLACEHOLDERS, SIZES, Sym, is_const, make, name, names_in, node_of, plain, size, substitute, text
from archc.emit.values import Env, sym
from archc.errors import ShapeError
from archc.ir.inplace import layer_key
from archc.spec.blocks import several_inputs
from archc.spec.expand import SEQ_FROM, per_copy_names, tap_id
from archc.spec.layers import STRUCTURES, Item, args_mapping, check_name, parameter_placement, unknown_kind
from archc.spec.schema import validate


class ModuleWriter(LoopWriter):
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
            try:
                out = shaped(op.infer(a, [t.shape]))
            except ShapeError as e:     # not even at a large size: the layer cannot be written
                raise emit_error(item.at, str(e)) from None
        ctor = self.op_ctor(item, op, a, t, out)
        if ctor is None and type(op).expr is not ops.Op.expr:     # forward's own expression: `x[:, 0]`
            mod = Mod(out, self.op_changes(op, a, t, out), None)
            mod.functional = op.expr(self.forward_args(op, a), ["{x}"])
            return mod
        if ctor is None:
            raise emit_error(item.at, f"op '{item.kind}' has no module")
        for s in supports(ctor):
            self.em.support[s.strip("\n")] = None
        for one in ctor.cases if isinstance(ctor, Choice) else [ctor]:
            record_module(self.em, one[1] if isinstance(one, tuple) else one, op.tensors(a, [t.shape], out))
        mod = Mod(out, self.op_changes(op, a, t, out), lambda d, f: ctor_text(ctor, d, f))
        mod.applies = op.applied(a, "{p}", "{x}")
        try:
            ctor_text(ctor, 0)
        except NeedsRuntime:
            if type(op).expr is ops.Op.expr:
                where = "a block's" if not self.st.root else "the network's"
                raise emit_error(item.at, f"'{item.kind}' needs {where} input size to be built, which the "
                                          f"generated class only learns in forward") from None
            mod.functional = op.expr(self.forward_args(op, a), ["{x}"])
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
        raw = args_mapping(item, op.short, sym(item.args if raw is None else raw, env, item.args_at))
        concrete = validate(op.Args, plain(raw), item.args_at.src, item.args_at.path, f"layer ({item.kind})")
        if layer_key(op.name, item.at) in self.em.net.in_place and "inplace" not in raw:
            # the IR proved every instance of this layer may overwrite its input
            raw = {**raw, "inplace": True}
            concrete = concrete.model_copy(update={"inplace": True})
        return op.Args.model_construct(**{k: attach(getattr(concrete, k), raw.get(k))
                                          for k in type(concrete).model_fields})

    def forward_args(self, op, a):
        return op.Args.model_construct(**{k: self.forward_value(getattr(a, k)) for k in type(a).model_fields})

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
                # a list (`[1, stride, stride]`): some element not 1
                parts = stride.node.elts if isinstance(stride.node, (ast.List, ast.Tuple)) else [stride.node]
                tests, seen = [], set()
                for p in parts:
                    test = ast.Constant(p.value != 1) if is_const(p) else ast.Compare(p, [ast.NotEq()], [ast.Constant(1)])
                    if text(test) not in seen:
                        seen.add(text(test))
                        tests.append(test)
                return any_of(tests)
        return ast.Constant(not keeps)

    # -- a block -----------------------------------------------------------------------------------
    def block_module(self, item: Item, t: T | list[T], env: Env, raw=None) -> Mod:
        """A block instance; `t`: its input, or the list of them for a block of several inputs."""
        blocks = self.em.blocks
        bdef, _ = blocks.defs[item.kind]
        ts = t if isinstance(t, list) else [t]
        if isinstance(t, list) or bdef.inputs:
            several_inputs(item.kind, bdef, ts, item.at)      # their number, as the expander checks it
        given = sym(item.args if raw is None else raw, env, item.args_at)
        if given is None:
            given = {}
        elif not isinstance(given, dict):
            given = {blocks.short_param(item.kind): given}
        concrete = blocks.params(item.kind, Item(item.kind, plain(given), item.at, item.args_at), {})
        shapes = [tuple(map(plain, x.shape)) for x in ts]
        info, face = self.em.block_class(item.kind, concrete, tuple(shapes) if bdef.inputs else shapes[0], item.at)
        if bdef.inputs:
            mapping = {f"{k}_channels": x.shape[0].node for k, x in zip(bdef.inputs, ts)}
        elif bdef.input:
            mapping = {k: d.node for k, d in zip(bdef.input, t.shape)}
        else:
            mapping = {"c_in": t.shape[0].node}
            for j, d in enumerate(t.shape[1:]):
                mapping[PLACEHOLDERS[j]] = d.node
        for p in bdef.params:
            mapping[p] = node_of(given[p]) if p in given else ast.Constant(concrete[p])
        for v in info.vars:
            mapping[v] = env.names[v].node
        passed = [*info.takes, *(p for p in bdef.params if p in given), *info.vars]
        if any(mapping[k] is None or names_in(mapping[k]) & SIZES for k in passed):
            raise emit_error(item.at, f"block '{item.kind}' is called with a value known only at run time "
                                      f"(a size of this block's input other than c_in: name its dims with 'input:')")
        args = [text(mapping[k]) for k in info.takes]
        args += [f"{p}={text(mapping[p])}" for p in bdef.params if p in given]
        args += [f"{v}={text(mapping[v])}" for v in info.vars]
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
        if self.st.root and not bdef.input:     # the network's sizes are known: the child's, for this input
            dims = None
        elif bdef.inputs:                       # only forward knows them
            dims = [None] * len(face.spatial)
        else:
            dims = [substitute(n, mapping) if n is not None and all(mapping.get(k) is not None for k in names_in(n)
                                                                     if k in PLACEHOLDERS) else None
                    for n in face.spatial]
        out = (channels, *self.spatial(face.out[1:], dims))
        changes = substitute(face.changes, mapping) if face.changes is not None else None
        return Mod(out, changes, lambda d, f: call(info.name, args, d, f))

    # -- any child ---------------------------------------------------------------------------------
    def module(self, item: Item, t: T, env: Env, at_name: str, repeatable: bool = True,
               direct: bool = False, taps: dict | None = None) -> Mod:
        self.em.visits += 1
        if self.em.visits > limits.current().written_layers:
            # a definition is written once per distinct instance, each repeat copy and its off
            # branches too: a layer costs writing ~100x what it costs expanding, hence its own limit
            raise limits.too_large("written_layers", "writing the code goes through too many layers (each block "
                                   "definition once per distinct instance, layers left out by 'when:' "
                                   "included)", loc=item.at.loc())
        if repeatable and "repeat" in item.wiring:
            return self.repeated(item, t, env)
        if item.kind == "seq":
            return self.seq(item.args, item.args_at, t, env, at_name, taps=taps)
        if item.kind in STRUCTURES:
            raise item.at.error(f"an inline '{item.kind}' must sit in a block or at the top level; "
                                f"to repeat it or nest it in a seq, make it a block")
        if self.em.blocks.has(item.kind):
            return self.block_module(item, t, env)
        op = ops.get(item.kind)
        if op is None:          # in a layer the built network leaves out: first met here
            raise unknown_kind(item, self.em.blocks)
        if op.direct_only and not direct:
            raise parameter_placement(item, op)
        return self.op_module(item, op, t, env)

    # -- nn.Sequential -----------------------------------------------------------------------------
    def seq(self, raws, at, t: T, env: Env, path: str, tail: bool = False, taps: dict | None = None) -> Mod:
        """An nn.Sequential; `tail`: a seq block's own, whose last layers may be ones only forward
        can run (`upsample` to the input's size: torchvision's ASPPPooling); `taps`: a class's own
        seq, whose children's ids it fills."""
        if not isinstance(raws, list):
            raise at.error(f"expected a list of layers, got {raws!r}")
        entries: list[Entry] = []
        out, changes = self.fill(entries, set(), raws, at, t, env, path, taps=taps)
        last: list[Entry] = []
        while tail and entries and entries[-1].kind == "mod" and entries[-1].mod.functional is not None:
            last.insert(0, entries.pop())
        mod = self.sequential_mod(entries, out, changes)
        mod.tail = [e.mod.functional for e in last]
        mod.taps, mod.length = taps or {}, known_length(entries)
        return mod

    def sequential_mod(self, entries: list[Entry], out: T, changes) -> Mod:
        bad = functional_entry(entries)
        if bad is not None:
            raise emit_error(bad.at, "this layer is an expression in forward (it has no module, or needs its "
                                     "input's size, which only forward knows), so an nn.Sequential cannot hold "
                                     "it: in a block's 'seq:' it can come last (the block's forward runs it, as "
                                     "torchvision's ASPPPooling does), or use a block with 'layers:'")
        static = all(e.kind == "mod" and e.mod.render is not None for e in entries)
        if static:
            kids = [(None if e.child is None else e.child.value, e.mod) for e in entries]

            def render(d, f, kids=kids):
                return sequential([(n, m.render(d + 1, 0)) for n, m in kids], d)
            return Mod(out.shape, changes, render)
        return Mod(out.shape, changes, entries=entries)

    def fill(self, entries: list[Entry], names: set, raws, at, t: T, env: Env, path: str, top: bool = True,
             taps: dict | None = None):
        """Items of an nn.Sequential; `top`: its own statements, not inside an `if` or a loop."""
        changes: list = []
        moved = t.moved
        for j, raw in enumerate(raws):
            item = self.em.parse(raw, at, j)
            if top and "when" not in item.wiring:
                t = self.materialize(entries, t)
            if "from" in item.wiring:
                raise item.wiring_at["from"].error(SEQ_FROM, key=True)
            tap = tap_id(item, plain(sym(item.wiring["id"], env, item.wiring_at["id"])), taps) \
                if "id" in item.wiring else None
            splice = item.kind == "seq" and "name" not in item.wiring and "repeat" in item.wiring
            if "repeat" in item.wiring and ("name" not in item.wiring or per_copy_names(item)):
                def copies(ents, it, x):
                    return self.loop(ents, it, x, env, lambda e2, one, ienv, y: self.fill_one(
                        e2, names, one, ienv, y, path, splice))
                t, c = self.hoisted(entries, item, t, env, copies)
            else:
                t, c = self.fill_one(entries, names, item, env, t, path, splice, top)
            changes.append(c)
            if tap is not None:
                position = known_length(entries)
                taps[tap] = (position, self.tap(entries, item, tap, position,
                                                T(t.var, t.shape, any_of([moved, *changes]))))
        return t, any_of(changes)

    def tap(self, entries: list[Entry], item: Item, ident: str, position: int | None, t: T) -> T:
        """The tensor an id inside a seq names: forward keeps it after this child, found by its
        position (the children before it), a constant; its channels kept in their own local where
        they are the seq's running one, which later children change."""
        if position is None:
            raise emit_error(item.wiring_at["id"], "an 'id' inside a seq must follow a constant number of "
                                                   "children (forward finds it by its position): this one "
                                                   "follows a 'when:' or a repeat whose count is not a constant")
        node = t.shape[0].node
        if node is None or not names_in(node) & self.st.locals:
            return t
        var = self.st.local(f"{ident}_channels")     # kept busy: read later in __init__
        entries.append(Entry("line", header=var, node=node))
        channels = make(plain(t.shape[0]), name(var))
        channels.closed = closed_of(t.shape[0])
        return T(t.var, (channels, *t.shape[1:]), t.moved)

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
            mod = self.module(item, assume(t, cond), env, path)
            target.append(Entry("mod", mod, child, at=item.at))
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

