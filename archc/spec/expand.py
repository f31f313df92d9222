"""Expansion: vars, variants, expressions, blocks, repeat and DAG wiring turned into IR nodes
(inferred as they are created) and the module tree of the emitted code; residual and parallel
are in structures.py, the class scope's bookkeeping in scope.py."""
from __future__ import annotations

from typing import Any

from archc import ops
from archc.errors import did_you_mean
from archc.ir.graph import Module, Node
from archc.ir.infer import infer_node
from archc.ops.base import Shape
from archc.spec.blocks import BlockTable
from archc.spec.budget import Budget
from archc.spec.expr import resolve
from archc.spec.init import tensors_of
from archc.spec.layers import (STRUCTURES, At, Item, args_mapping, check_name, explicit_names, parameter_placement,
                               parse_item, reads_input, unknown_kind)
from archc.spec.repeats import instances, per_copy_names
from archc.spec.schema import validate
from archc.spec.scope import ClassScope, Value
from archc.spec.structures import Structures


def resolve_tree(value: Any, env: dict, at: At) -> Any:
    """Resolve every `$`-expression in a nested args value."""
    if isinstance(value, dict):
        return {k: resolve_tree(v, env, at / k) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_tree(v, env, at / i) for i, v in enumerate(value)]
    return resolve(value, env, at)


class Expander(Structures):
    def __init__(self, blocks: BlockTable, env: dict[str, Any]):
        self.blocks = blocks
        self.env = env
        self.nodes: list[Node] = []
        self.stack: list[str] = []      # blocks being instantiated, for cycle errors
        self.scans: dict[int, tuple[set[str], bool]] = {}   # by id of a raw body (alive all along)
        self.items: dict[int, Item] = {}                     # by id of a raw layer mapping
        self.budget = Budget()                               # layers, copies, nesting: the limits

    def parse(self, raw, at: At, index: int | None = None) -> Item:
        """parse_item, once per layer mapping: a block's body is the same raw tree in every instance
        (Items are never changed after parsing; each repeat copy is a new Item)."""
        if not isinstance(raw, dict):
            return parse_item(raw, at if index is None else at / index)
        hit = self.items.get(id(raw))
        if hit is None:
            hit = self.items[id(raw)] = parse_item(raw, at if index is None else at / index)
        return hit

    def new_scope(self, module: Module, prefix: str, env: dict, raws, at: At) -> ClassScope:
        """A class to fill. A block's body is scanned for names once, not once per instance."""
        hit = self.scans.get(id(raws))
        if hit is None:
            hit = self.scans[id(raws)] = (explicit_names(raws, at), reads_input(raws))
        scope = ClassScope(module, prefix, env, hit[0])
        if hit[1]:    # some layer reads `input`: keep `x` intact for it
            scope.chain_var = "h"
            scope.vars.add("h")
        return scope

    # -- nodes -------------------------------------------------------------------------------
    def op_node(self, item: Item, name: str, inputs: list[Value], env: dict,
                sources: list[str] | None = None) -> Node:
        self.budget.layer(item.at)
        op = ops.get(item.kind)
        raw = args_mapping(item, op.short, resolve_tree(item.args, env, item.args_at))
        args = validate(op.Args, raw, item.args_at.src, item.args_at.path, f"layer '{name}' ({item.kind})")
        node = Node(len(self.nodes), name, op, args, [v.node for v in inputs], item.at)
        infer_node(node, [v.shape for v in inputs], sources, lambda f: arg_loc(item, op, f))
        if "init" in item.wiring:
            node.init = layer_init(item, node, env)
        self.nodes.append(node)
        return node

    # -- items in a class scope (explicit forward) -------------------------------------------
    def chain(self, scope: ClassScope, raws: list, at: At, value: Value, var: str) -> Value:
        if not isinstance(raws, list):
            raws, at = [raws], at
            items = [self.parse(raws[0], at)]
        else:
            items = [self.parse(r, at, i) for i, r in enumerate(raws)]
        for item in items:
            value = self.class_item(scope, item, value, var)
        return value

    def sources(self, scope: ClassScope, item: Item, value: Value) -> list[Value]:
        if "from" not in item.wiring:
            return [value]
        ref = resolve(item.wiring["from"], scope.env, item.wiring_at["from"])
        refs = ref if isinstance(ref, list) else [ref]
        out = []
        for r in refs:
            if not isinstance(r, str):
                raise item.wiring_at["from"].error(f"'from' takes an id or a list of ids, got {ref!r}")
            if r not in scope.ids:
                raise item.wiring_at["from"].error(f"unknown id '{r}'{did_you_mean(r, scope.ids)}; "
                                                   f"known here: {', '.join(scope.ids) or 'none'}")
            out.append(scope.ids[r])
        return out

    def enabled(self, item: Item, env: dict) -> bool:
        """`when: expr` keeps a layer only where the expression holds (MobileNet's t != 1)."""
        if "when" not in item.wiring:
            return True
        at = item.wiring_at["when"]
        cond = resolve(item.wiring["when"], env, at)
        if not isinstance(cond, bool):
            raise at.error(f"'when' must be true or false, got {cond!r}")
        return cond

    def class_item(self, scope: ClassScope, item: Item, value: Value, var: str,
                   env: dict | None = None) -> Value:
        env = scope.env if env is None else env
        if per_copy_names(item):       # `name: "layer${i + 1}"`: the copies join this class
            for k in ("id", "from"):
                if k in item.wiring:
                    raise item.wiring_at[k].error(f"'{k}' cannot go with a repeat whose copies are named "
                                                  f"one by one; wire the layers around it", key=True)
            for one, ienv in instances(self, item, env):
                value = self.class_item(scope, one, value, var, ienv)
            return value
        if "repeat" not in item.wiring and not self.enabled(item, env):
            return value
        ins = self.sources(scope, item, value)
        out_var = var
        if "id" in item.wiring:
            ident = check_name(resolve(item.wiring["id"], env, item.wiring_at["id"]), item.wiring_at["id"])
            if ident in scope.ids:
                raise item.wiring_at["id"].error(f"duplicate id '{ident}'")
            out_var = ident if ident not in scope.vars else scope.fresh(ident)
            scope.vars.add(out_var)
        if item.kind in ("residual", "parallel") and "repeat" not in item.wiring:
            if "init" in item.wiring:
                raise item.wiring_at["init"].error(f"'init' goes on a layer that holds tensors, not on "
                                                   f"'{item.kind}'", key=True)
            with self.budget.nested(item.at):
                result = (self.residual if item.kind == "residual" else self.parallel)(
                    scope, item.args, item.args_at, ins[0], out_var)
        else:
            op = ops.get(item.kind)
            # a merge: a step, no module (a block of the same name shadows the op, as in child())
            if op is not None and op.arity is None and not self.blocks.has(item.kind):
                name = self.layer_name(scope, item, env)
                names = [next((k for k, v in scope.ids.items() if v is i), i.var) for i in ins]
                node = self.op_node(item, scope.prefix + name, ins, env, names)
                result = Value(out_var, node.index, node.out)
            else:
                several = self.blocks.takes_several(item.kind)
                if len(ins) != 1 and not several:
                    raise item.wiring_at["from"].error(f"'{item.kind}' takes one input, got {len(ins)}")
                if several and "repeat" in item.wiring:
                    raise item.wiring_at["repeat"].error(f"block '{item.kind}' takes several inputs: it cannot "
                                                         f"repeat (a copy feeds the next one input)", key=True)
                name = self.layer_name(scope, item, env)
                taps = {} if item.kind == "seq" and not {"repeat", "when"} & set(item.wiring) else None
                child, last = self.child(item, name, scope.prefix + name, ins if several else ins[0], env,
                                         repeatable=True, direct=True, taps=taps)
                scope.module.children.append(child)
                result = Value(out_var, last.node, last.shape)
                for tap, (v, at) in (taps or {}).items():
                    if tap in scope.ids or "id" in item.wiring and tap == ident:
                        raise at.error(f"duplicate id '{tap}'")
                    var = tap if tap not in scope.vars else scope.fresh(tap)
                    scope.vars.add(var)
                    scope.ids[tap] = Value(var, v.node, v.shape)
        if "id" in item.wiring:
            scope.ids[ident] = result
        return result

    def layer_name(self, scope: ClassScope, item: Item, env: dict) -> str:
        if "name" in item.wiring:
            at = item.wiring_at["name"]
            return scope.claim(check_name(resolve(item.wiring["name"], env, at), at), at)
        return scope.auto(item.kind)

    # -- modules (a child attribute, or an element of an nn.Sequential) ----------------------
    def child(self, item: Item, attr: str, path: str, value: Value, env: dict,
              repeatable: bool = True, direct: bool = False, taps: dict | None = None) -> tuple[Module, Value]:
        """The module for one item: an op's module, a block instance, or an nn.Sequential.
        `direct`: the item is a class's own layer, where a parameter (`layer_scale`) may go;
        `taps`: where a seq's children's ids go (a class's own seq), else None."""
        if "init" in item.wiring and (item.kind in STRUCTURES or self.blocks.has(item.kind)):
            raise item.wiring_at["init"].error(
                f"'init' goes on a layer that holds tensors (conv, linear, bn, ...), not on "
                f"'{item.kind}'; for a block, give its definition init rules", key=True)
        with self.budget.nested(item.at):
            return self._child(item, attr, path, value, env, repeatable, direct, taps)

    def _child(self, item: Item, attr: str, path: str, value: Value, env: dict,
               repeatable: bool, direct: bool = False, taps: dict | None = None) -> tuple[Module, Value]:
        if repeatable and "repeat" in item.wiring:
            return self.repeated(item, attr, path, value, env)
        if item.kind == "seq":
            return self.seq(item.args, item.args_at, attr, path, value, env, taps)
        if item.kind in STRUCTURES:
            raise item.at.error(f"an inline '{item.kind}' must sit in a block or at the top level; "
                                f"to repeat it or nest it in a seq, make it a block")
        if self.blocks.has(item.kind):
            return self.blocks.instantiate(self, item, attr, path, value, env)
        op = ops.get(item.kind)
        if op is None:
            raise unknown_kind(item, self.blocks)
        if op.arity is None:
            raise item.at.error(f"'{item.kind}' merges several inputs: it needs 'from: [a, b]' in a block "
                                f"or at the top level, not inside a seq")
        if op.direct_only and not direct:
            raise parameter_placement(item, op)
        node = self.op_node(item, path, [value], env)
        return Module(attr, "op", node=node, loc=node.at), Value("x", node.index, node.out)

    def repeated(self, item: Item, attr: str, path: str, value: Value, env: dict) -> tuple[Module, Value]:
        mod = Module(attr, "seq", loc=item.at)
        for i, (one, ienv) in enumerate(instances(self, item, env)):
            child, value = self.child(one, str(i), f"{path}.{i}", value, ienv, repeatable=False)
            mod.children.append(child)
        return mod, value

    def seq(self, raws, at: At, attr: str, path: str, value: Value, env: dict,
            taps: dict | None = None) -> tuple[Module, Value]:
        """An nn.Sequential: unnamed children are numbered, and a repeat inside flattens into it; a
        repeated unnamed `seq:` splices its layers in (VGG's conv-relu pairs, repeated per stage).
        A child's `id` goes into `taps` (LR-ASPP's `low`: the backbone's output at 1/8)."""
        mod = Module(attr, "seq", loc=at)
        value = self.fill(mod, set(), raws, at, path, value, env, taps)
        if not mod.children:
            raise at.error("an empty seq: give at least one layer")
        return mod, value

    def fill(self, mod: Module, names: set[str], raws, at: At, path: str, value: Value, env: dict,
             taps: dict | None = None) -> Value:
        if not isinstance(raws, list):
            raise at.error(f"expected a list of layers, got {raws!r}")
        for j, raw in enumerate(raws):
            item = self.parse(raw, at, j)
            if "from" in item.wiring:
                raise item.wiring_at["from"].error(SEQ_FROM, key=True)
            tap = tap_id(item, resolve(item.wiring["id"], env, item.wiring_at["id"]), taps) \
                if "id" in item.wiring else None
            # a repeat flattens its copies into the seq; a repeated group flattens its layers
            splice = item.kind == "seq" and "name" not in item.wiring and "repeat" in item.wiring
            if "repeat" in item.wiring and ("name" not in item.wiring or per_copy_names(item)):
                pairs = instances(self, item, env)      # lazily: each copy is built before the next
            else:
                pairs = iter([(item, env)])
            for one, ienv in pairs:
                if not self.enabled(one, ienv):
                    continue
                if splice:
                    with self.budget.nested(one.at):
                        value = self.fill(mod, names, one.args, one.args_at, path, value, ienv)
                    continue
                name = str(len(mod.children))
                if "name" in one.wiring:
                    name_at = one.wiring_at["name"]
                    name = check_name(resolve(one.wiring["name"], ienv, name_at), name_at, attribute=False)
                if name in names:
                    raise (one.wiring_at.get("name") or one.at).error(f"duplicate name '{name}' in '{path}'")
                names.add(name)
                child, value = self.child(one, name, f"{path}.{name}", value, ienv)
                mod.children.append(child)
            if tap is not None:
                taps[tap] = (value, item.wiring_at["id"])
        return value


SEQ_FROM = "'from' is not available inside a seq (a plain chain); use a block with 'layers:' for DAG wiring"


def tap_id(item: Item, value, taps: dict | None) -> str:
    """The id on a seq's child: a tensor the class reads later (the seq runs in two slices)."""
    at = item.wiring_at["id"]
    if taps is None:
        raise at.error("an 'id' inside a seq goes on a child of a seq that is a layer of the network or of a "
                       "block's 'layers:' (not a seq block's own, a nested, repeated or 'when:' seq)", key=True)
    if "when" in item.wiring:
        raise at.error("an 'id' inside a seq cannot go with 'when:': the tensor it names must always exist",
                       key=True)
    ident = check_name(value, at)
    if ident in taps:
        raise at.error(f"duplicate id '{ident}'")
    return ident


def layer_init(item: Item, node: Node, env: dict) -> dict:
    """A layer's own `init: {weight: ..., bias: ...}`, over the tensors its op owns."""
    at = item.wiring_at["init"]
    if "" in node.tensors:
        raise at.error(f"'{item.kind}' starts from its '{node.op.start_arg}:', not from 'init:'", key=True)
    raw = resolve_tree(item.wiring["init"], env, at)
    if not isinstance(raw, dict):
        raise at.error(f"'init' of a layer maps its tensors to schemes ({{weight: kaiming_normal}}), got {raw!r}")
    return tensors_of(raw, at, node.tensors, f"'{item.kind}'")


def arg_loc(item: Item, op, field: str):
    """Where `field` of an op item was written (None when left at its default)."""
    if isinstance(item.args, dict):
        return (item.args_at / field).loc() if field in item.args else None
    return item.args_at.loc() if item.args is not None and field == op.short else None


def shape_facts(shape: Shape) -> dict[str, int]:
    facts = {"c_in": shape[0]}
    if len(shape) >= 3:
        facts.update(h_in=shape[-2], w_in=shape[-1])
    if len(shape) == 2:
        facts.update(l_in=shape[-1])
    return facts
