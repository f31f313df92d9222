"""An independent reference for the generated code: run a compiled network's IR node by node,
each op's module built from that node's own concrete args and shapes (`Op.module`), the merges
from `Op.expr`, weights taken by name from a module's state_dict. What the expansion computed
for one set of vars and one input size, with no class, loop or condition in between."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archc.emit.code import ctor_text


def namespace() -> dict:
    from collections import OrderedDict
    return {"torch": torch, "nn": nn, "F": F, "OrderedDict": OrderedDict}


def run_ir(net, state: dict, x: torch.Tensor):
    """The outputs of `net` (inference ones) on `x`, with the weights of `state`."""
    ns = namespace()
    seen: set[str] = set()
    owned: dict[str, dict] = {}             # module path -> its state_dict entries, by their own names
    for key, value in state.items():
        for i, ch in enumerate(key):
            if ch == ".":
                owned.setdefault(key[:i], {})[key[i + 1:]] = value
    values: dict[int, torch.Tensor] = {-1: x}
    for node in net.nodes:
        if node.train_only:
            continue
        ins = [values[i] for i in node.inputs]
        if node.op.arity is None:
            names = [f"v{j}" for j in range(len(ins))]
            values[node.index] = eval(node.op.expr(node.args, names), {**ns, **dict(zip(names, ins))})
            continue
        if node.op.holds_parameter:         # a parameter of the enclosing class, not a module
            scope = {"p": state[node.name], "v0": ins[0]}
            values[node.index] = eval(node.op.applied(node.args, "p", "v0"), {**ns, **scope})
            continue
        ctor = node.op.module(node.args, node.in_shapes, node.out)
        if ctor is None:                    # forward's own expression (`x[:, 0]`)
            values[node.index] = eval(node.op.expr(node.args, ["v0"]), {**ns, "v0": ins[0]})
            continue
        for src in ctor.support:
            if src not in seen:
                seen.add(src)
                exec(src, ns)
        with torch.device("meta"):           # no initialisation: the weights come from `state`
            module = eval(ctor_text(ctor, 0), ns)
        module = module.to_empty(device=x.device)
        module.load_state_dict(owned.get(node.name, {}), strict=True, assign=True)
        module.eval()
        call = node.op.applied(node.args, "m", "v0")      # a module called with more than x
        values[node.index] = module(ins[0]) if call is None else eval(call, {**ns, "m": module, "v0": ins[0]})
    outs = [values[n.index] if n is not None else x for _, n, train in net.outputs if not train]
    return outs[0] if len(outs) == 1 else tuple(outs)
