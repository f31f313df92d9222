"""The network as a whole: the top-level class, its outputs, and which layers run only in training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archc.errors import SpecError, did_you_mean
from archc.ir.graph import Module, Network, Node
from archc.ops.base import Shape
from archc.spec.blocks import BlockTable
from archc.spec.expand import ClassScope, Expander, Value, shape_facts
from archc.spec.expr import resolve
from archc.spec.layers import At
from archc.spec.init import rules, spec_init
from archc.ir.init import InitSpec, block_instances, plan
from archc.ir.inplace import mark_in_place


@dataclass(frozen=True)
class Definition:
    """What a network was compiled from: the emitter writes its code from these definitions."""
    spec: Any          # the validated SpecModel
    src: Any           # its Source (for locations)
    blocks: BlockTable


def network_from(spec, src, env: dict, blocks: BlockTable, input_shape: Shape, variant) -> Network:
    exp = Expander(blocks, env)
    root = Module(spec.name, "class", loc=src.loc())
    at = At(src, ("layers",))
    scope = exp.new_scope(root, "", {**env, "c_in": input_shape[0], **shape_facts(input_shape)}, spec.layers, at)
    x = Value("x", -1, tuple(input_shape))
    scope.ids["input"] = x
    last = exp.chain(scope, spec.layers, at, x, scope.chain_var)
    outputs = resolve_outputs(spec.outputs, scope, last, At(src, ("outputs",)))
    mark_train_only(exp.nodes, outputs)
    net = Network(spec.name, spec.doc, tuple(input_shape), exp.nodes, root,
                  [(n, exp.nodes[v.node] if v.node >= 0 else None, t) for n, v, t in outputs],
                  vars=dict(env), variant=variant, train=spec.train, file=src.file,
                  definition=Definition(spec, src, blocks))
    mark_in_place(net)
    net.init = init_of(spec, src, env, blocks, root)
    if net.init or any(n.init for n in net.nodes):
        plan(net)       # a scheme that cannot start its tensor is an error now, not in torch
    return net


def init_of(spec, src, env: dict, blocks: BlockTable, root: Module) -> InitSpec:
    """The spec's init rules (its preset's first) and the rules of every block it uses."""
    from archc.spec.expand import resolve_tree
    at = At(src, ("init",))
    init = spec_init(resolve_tree(spec.init, env, at), at)
    for inst, _ in block_instances(root):
        if inst.block not in init.blocks:
            bdef, bat = blocks.defs[inst.block]
            raw = resolve_tree(bdef.init, env, bat / "init") if bdef.init is not None else []
            init.blocks[inst.block] = rules(raw, bat / "init")
    return init


def resolve_outputs(raw, scope: ClassScope, last: Value, at: At):
    """`outputs: [logits, {id: aux1, train_only: true}]` -> (name, Value, train_only)."""
    if raw is None:
        return [("output", last, False)]
    out = []
    for j, o in enumerate(raw):
        o_at = at / j
        train = False
        if isinstance(o, dict):
            unknown = set(o) - {"id", "name", "train_only", "when"}
            if unknown or "id" not in o:
                raise o_at.error("an output is an id, or a mapping {id, name, train_only, when}")
            if not isinstance(o["id"], str) or not isinstance(o.get("name", ""), str):   # even where off
                raise o_at.error(f"an output is an id, or a mapping {{id, name, train_only, when}}; got {o!r}")
            if "when" in o:        # an output of some variants only (GoogLeNet's aux heads)
                cond = resolve(o["when"], scope.env, o_at / "when")
                if not isinstance(cond, bool):
                    raise (o_at / "when").error(f"'when' must be true or false, got {cond!r}")
                if not cond:
                    continue
            ident, train, name = o["id"], bool(o.get("train_only", False)), o.get("name", o["id"])
        else:
            ident = name = o
        if not isinstance(ident, str) or not isinstance(name, str):
            raise o_at.error(f"an output is an id, or a mapping {{id, name, train_only, when}}; got {o!r}")
        if ident not in scope.ids:
            raise o_at.error(f"unknown output id '{ident}'{did_you_mean(ident, scope.ids)}")
        out.append((str(name), scope.ids[ident], train))
    if all(t for _, _, t in out):
        raise at.error("every output is train_only: at least one must be an inference output")
    return out


def ancestors(nodes: list[Node], starts: list[int]) -> set[int]:
    seen: set[int] = set()
    todo = list(starts)
    while todo:
        i = todo.pop()
        if i >= 0 and i not in seen:
            seen.add(i)
            todo.extend(nodes[i].inputs)
    return seen


def mark_train_only(nodes: list[Node], outputs) -> None:
    """Nodes feeding only training-time outputs do not run in eval mode (nor count in MACs)."""
    needed = ancestors(nodes, [v.node for _, v, t in outputs if not t])
    used = ancestors(nodes, [v.node for _, v, _ in outputs])
    dead = [n for n in nodes if n.index not in used]
    if dead:
        raise SpecError(f"layer '{dead[0].name}' ({dead[0].op.name}) feeds no output: remove it, "
                        f"wire it with 'from:', or list its 'id' in 'outputs'", dead[0].loc)
    for n in nodes:
        n.train_only = n.index not in needed
