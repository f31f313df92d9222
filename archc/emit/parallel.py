"""A `parallel:` in a class: its branches as attributes (or numbered in one nn.ModuleList, as
torchvision's ASPP keeps `convs`), each run on the same input, then the merge."""
from __future__ import annotations

import ast

from archc import ops
from archc.emit.code import module_list
from archc.emit.entries import Mod, any_of, shaped
from archc.emit.scope import Names, T, emit_error
from archc.emit.sym import plain
from archc.emit.values import Env
from archc.spec.layers import At, Item, check_name, parse_item
from archc.spec.schema import ParallelDef, validate
from archc.spec.structures import parallel_branches


class ParallelWriter:
    """Mixed into the class-body writer (which gives seq, module, assign, call, st)."""

    def parallel(self, sc: Names, raw, at: At, t: T, var: str, env: Env) -> T:
        spec = validate(ParallelDef, raw, at.src, at.path, "parallel")
        listed = None
        if spec.module_list is not None:
            listed = sc.claim(check_name(spec.module_list, at / "module_list"), at / "module_list")
        outs, mods = [], []
        for key, body, b_at in parallel_branches(spec, at):
            attr = key if listed else sc.claim(check_name(key, b_at), b_at)
            path = f"{sc.prefix}{listed}.{key}" if listed else sc.prefix + attr
            if isinstance(body, list) and len(body) != 1:
                mod = self.seq(body, b_at, t, env, path)
            else:
                one, one_at = (body[0], b_at / 0) if isinstance(body, list) else (body, b_at)
                mod = self.module(parse_item(one, one_at), t, env, path)
            if listed:
                if mod.render is None:      # a seq with its own `if`/`for`, or a forward-only layer
                    raise emit_error(b_at, f"a branch of module_list '{listed}' must be one module the "
                                           f"code can construct in a list (no 'when:' or 'repeat' inside)")
                mods.append(mod)
                outs.append(T(f"{listed}[{key}]", mod.out, any_of([t.moved, mod.changes])))
                continue
            self.assign(attr, mod)
            bvar = sc.fresh(attr)
            self.st.step(bvar, [t.var], f"{bvar} = {self.call(attr, mod, t.var)}")
            outs.append(T(bvar, mod.out, any_of([t.moved, mod.changes])))
        op = ops.get(spec.merge)
        a = self.op_args(Item(spec.merge, None, at, at), op, env)
        shape = shaped(op.infer(a, [o.shape for o in outs]))
        sc.auto(spec.merge, at, module=False)
        if listed:
            self.assign(listed, Mod(None, None, lambda d, f: module_list([m.render(d + 1, 0) for m in mods], d)))
            lvar = sc.fresh(listed)
            self.st.step(lvar, [t.var], f"{lvar} = [branch({t.var}) for branch in self.{listed}]")
            self.st.step(var, [lvar], f"{var} = {op.expr_over(a, lvar, len(outs))}")
        else:
            self.st.step(var, [o.var for o in outs], op.statement(a, var, [o.var for o in outs]))
        return T(var, shape, merged_moved(outs, shape))


def merged_moved(ins: list[T], out: tuple) -> ast.expr | None:
    """A merge's output moves with the inputs of its own size (a 1x1 gate broadcasts)."""
    same = [x for x in ins if tuple(map(plain, x.shape[1:])) == tuple(map(plain, out[1:]))]
    return any_of([x.moved for x in same or ins])
