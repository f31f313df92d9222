"""Where an op may overwrite its input instead of allocating its output: the activations and
residual sums that torchvision writes `inplace=True` / `out += identity`.

An op runs in place on its first input when the IR proves nobody needs that tensor afterwards:
- the tensor is not the network's input (the caller's) nor one of its outputs;
- it has exactly one reader, this op, and so has every tensor sharing its storage before it
  (in-place ops and views over one fresh tensor: `out = drop_path(out); out += identity`);
- no op before it saved that storage for backward (a conv's output is safe to overwrite, a
  sigmoid's result that its backward reads is not);
- the input is made inside the module holding the op (a block's first layer, reading the
  block's input, is never in place: its safety would depend on where the block is used);
- the same holds in every instance of the same layer of the same block definition, since the
  generated code writes one class per definition. Layers of blocks this network does not use are
  written without it.

The decision is recorded in the node's args (`inplace=True`), so the training-memory estimate and
the emitted module read the same facts. A layer that sets `inplace` itself is left as written."""
from __future__ import annotations

from archc.ir.graph import Network, Node

INPUT = -1


def mark_in_place(net: Network) -> set[int]:
    """Set `inplace` on every node that may run in place; the indices of those nodes."""
    chosen = _safe_nodes(net)
    # one decision per layer of a definition: an instance that may not makes them all not
    groups: dict[tuple, list[Node]] = {}
    for n in net.nodes:
        if _can_choose(n):
            groups.setdefault(_definition_key(n), []).append(n)
    kept = {n.index for members in groups.values() if all(m.index in chosen for m in members)
            for n in members}
    # fewer in-place ops only leave more storage untouched: check the kept ones again, to be sure
    final = _safe_nodes(net, only=kept)
    for n in net.nodes:
        if n.index in final:
            n.args = n.args.model_copy(update={"inplace": True})
    net.in_place = frozenset(_definition_key(n) for n in net.nodes if n.index in final)
    return final


def layer_key(op_name: str, at) -> tuple:
    """The key of a layer of a definition (as in Network.in_place), from where it is written."""
    src = getattr(at, "src", None)
    return (op_name, getattr(src, "file", None), getattr(at, "path", None))


def _can_choose(n: Node) -> bool:
    """The op has an in-place form and the layer left the choice to archc."""
    return "inplace" in type(n.args).model_fields and "inplace" not in n.args.model_fields_set \
        and not n.args.inplace


def _definition_key(n: Node) -> tuple:
    """The layer of the spec this node was made from (its file and path), whichever instance."""
    return layer_key(n.op.name, n.at) if hasattr(n.at, "path") else (n.op.name, None, n.name)


def _safe_nodes(net: Network, only: set[int] | None = None) -> set[int]:
    """Nodes that may run in place, deciding in graph order; `only` limits the candidates."""
    readers: dict[int, int] = {}
    for n in net.nodes:
        for i in n.inputs:
            readers[i] = readers.get(i, 0) + 1
    for _, producer, _ in net.outputs:
        key = producer.index if producer is not None else INPUT
        readers[key] = readers.get(key, 0) + 2          # read by the caller: never overwritten
    storage: dict[int, int] = {INPUT: INPUT}            # tensor -> the tensor whose memory it is
    chain_ok: dict[int, bool] = {INPUT: False}          # storage -> each tensor on it has one reader
    saved: set[int] = set()                             # storages saved for backward so far
    chosen: set[int] = set()
    by_index = {n.index: n for n in net.nodes}
    for n in net.nodes:
        src = n.inputs[0] if n.inputs else None
        args = n.args
        if (src is not None and _can_choose(n) and (only is None or n.index in only)
                and n.in_shapes and n.in_shapes[0] == n.out and storage[src] not in saved
                and (src == INPUT or _same_module(n, by_index[src]))
                and chain_ok.get(storage[src], False) and readers.get(src, 0) == 1):
            chosen.add(n.index)
            args = args.model_copy(update={"inplace": True})
        shares = bool(n.inputs) and n.op.may_share_input(args)
        if shares:
            storage[n.index] = storage[n.inputs[0]]
            # a view (or what may be one) is fine while every tensor of the chain has one reader
            chain_ok[storage[n.index]] = chain_ok.get(storage[n.index], False) and readers.get(src, 0) == 1
        else:
            storage[n.index] = n.index
            chain_ok[n.index] = True
        for s in n.op.saved_for_backward(args, n.in_shapes, n.out):
            if s.ref == "out":
                saved.add(storage[n.index])
            elif s.ref.startswith("in") and s.ref[2:].isdigit():
                saved.add(storage[n.inputs[int(s.ref[2:])]])
    return chosen


def _same_module(n: Node, producer: Node) -> bool:
    """The input is made inside the module that holds this op: the written class decides from
    its own layers, not from where some instance of it happens to be used."""
    scope = n.name.rpartition(".")[0]
    return not scope or producer.name.startswith(scope + ".")
