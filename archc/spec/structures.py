"""The expander's structures in a class: `residual:` (body, shortcut, merge, post) and `parallel:`
(branches as attributes, or numbered in one nn.ModuleList), turned into IR nodes and modules.
Mixed into the Expander, which gives chain, child, seq and op_node."""
from __future__ import annotations

from typing import Any

from archc.ir.graph import Module
from archc.ops.base import Shape
from archc.spec.expr import resolve
from archc.spec.layers import At, Item, check_name, parse_item, shortcut_first
from archc.spec.schema import ParallelDef, ResidualDef, validate
from archc.spec.scope import ClassScope, Value


class Structures:
    def residual(self, scope: ClassScope, raw, at: At, value: Value, var: str) -> Value:
        spec = validate(ResidualDef, raw, at.src, at.path, "residual")
        body_var = var if var != value.var else scope.fresh("out")
        first = len(scope.module.children)
        out = self.chain(scope, spec.body, at / "body", value, body_var)
        short = value
        # concat keeps every channel (DenseNet): only the other dims must agree for the identity
        differs = out.shape[1:] != value.shape[1:] if spec.merge == "concat" else out.shape != value.shape
        if differs:
            sc, sc_at = spec.shortcut, at / "shortcut"
            if isinstance(sc, str):     # `shortcut: $kind` from a block param: 'auto' or 'none'
                sc = resolve(sc, scope.env, sc_at)
            if sc is None:
                raise sc_at.error(f"residual body changes shape {list(value.shape)} -> {list(out.shape)}: "
                                  f"give a 'shortcut' (layers, or 'auto'), or 'shortcut: none' to drop it")
            if sc != "none":
                short = self.shortcut(scope, sc, sc_at, value, out.shape)
                if shortcut_first(raw):     # registered before the body, as written (RegNet's proj)
                    scope.module.children.insert(first, scope.module.children.pop())
            else:
                short = None    # 'none': no shortcut where the shape changes; `post` still applies
        if short is not None:
            merge_item = Item(spec.merge, None, at, at)
            # add/mul: body first, as torchvision writes `out += identity`; concat: the input's
            # channels first, then the new ones (DenseNet's torch.cat([x, new], 1))
            pair, names = ([short, out], ["shortcut", "body"]) if spec.merge == "concat" else \
                ([out, short], ["body", "shortcut"])
            node = self.op_node(merge_item, scope.prefix + scope.auto(spec.merge), pair, scope.env, names)
            merged = Value(body_var, node.index, node.out)
        else:
            merged = out
        if spec.post is not None:
            merged = self.chain(scope, spec.post, at / "post", merged, body_var)
        return merged

    def shortcut(self, scope: ClassScope, sc, at: At, value: Value, want: Shape) -> Value:
        name = "downsample"
        if sc == "auto":
            stride = max(1, value.shape[1] // want[1]) if len(want) > 1 else 1
            sc = [{"conv": {"out": want[0], "k": 1, "stride": stride, "bias": False}}, "bn"]
        if isinstance(sc, dict) and "layers" in sc:
            name = check_name(resolve(sc.get("name", name), scope.env, at), at)
            sc, at = sc["layers"], at / "layers"
        name = scope.claim(name, at)
        if isinstance(sc, list):
            child, last = self.seq(sc, at, name, scope.prefix + name, value, scope.env)
        else:
            child, last = self.child(parse_item(sc, at), name, scope.prefix + name, value, scope.env)
        if last.shape != want:
            raise at.error(f"shortcut gives {list(last.shape)} but the body gives {list(want)}: shapes differ")
        scope.module.children.append(child)
        var = scope.fresh("identity")
        return Value(var, last.node, last.shape)

    def parallel(self, scope: ClassScope, raw, at: At, value: Value, var: str) -> Value:
        spec = validate(ParallelDef, raw, at.src, at.path, "parallel")
        outs = []
        branches = parallel_branches(spec, at)
        holder, prefix, listed = scope.module, scope.prefix, None
        if spec.module_list is not None:        # the branches numbered in one nn.ModuleList
            listed = scope.claim(check_name(spec.module_list, at / "module_list"), at / "module_list")
            holder = Module(listed, "list", loc=at)
            scope.module.children.append(holder)
            prefix = f"{scope.prefix}{listed}."
        for key, body, b_at in branches:
            name = key if listed else scope.claim(check_name(key, b_at), b_at)
            if isinstance(body, list) and len(body) != 1:
                child, last = self.seq(body, b_at, name, prefix + name, value, scope.env)
            else:
                one, one_at = (body[0], b_at / 0) if isinstance(body, list) else (body, b_at)
                child, last = self.child(parse_item(one, one_at), name, prefix + name, value, scope.env)
            holder.children.append(child)
            bvar = scope.fresh(f"{listed}{name}" if listed else name)
            outs.append(Value(bvar, last.node, last.shape))
        merge_item = Item(spec.merge, None, at, at)
        node = self.op_node(merge_item, scope.prefix + scope.auto(spec.merge), outs, scope.env,
                            [key for key, _, _ in branches])
        return Value(var, node.index, node.out)


def parallel_branches(spec, at: At) -> list[tuple[str, Any, At]]:
    """A parallel's branches as (name, body, where): keys of a mapping, else branch1, branch2...,
    or 0, 1, ... in a `module_list`."""
    if isinstance(spec.branches, dict):
        if spec.module_list is not None:
            raise (at / "module_list").error("'module_list' numbers a list of branches from 0; the branches "
                                             "here are a mapping (write them as a list)", key=True)
        return [(k, b, at / "branches" / k) for k, b in spec.branches.items()]
    if spec.module_list is not None:
        return [(str(i), b, at / "branches" / i) for i, b in enumerate(spec.branches)]
    return [(f"branch{i + 1}", b, at / "branches" / i) for i, b in enumerate(spec.branches)]
