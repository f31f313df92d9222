"""The summary: per-layer rows and totals, as one plain dict (the JSON form of the CLI contract)."""
from __future__ import annotations

from math import prod
from typing import Any

from archc.errors import SpecError
from archc.ir.graph import Module, Network, Node
from archc.perf import paused_gc

BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
DTYPES = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16"}    # the CLI's short names
OPTIMIZERS = ("sgd", "sgd-momentum", "adam", "adamw")
FORMATS = ("table", "json", "md", "csv")


def module_index(root: Module) -> dict[str, Module]:
    """Dotted path -> module, for naming folded rows after their block."""
    out: dict[str, Module] = {}

    def walk(m: Module, prefix: str):
        for c in m.children:
            path = f"{prefix}{c.attr}"
            out[path] = c
            walk(c, path + ".")
    walk(root, "")
    return out


def row(name: str, op: str, nodes: list[Node]) -> dict[str, Any]:
    first, last = nodes[0], nodes[-1]
    return {
        "name": name, "op": op,
        "in": [list(s) for s in first.in_shapes] if len(first.in_shapes) > 1 else list(first.in_shapes[0]),
        "out": list(last.out),
        "params": sum(n.params for n in nodes),
        "buffers": sum(n.buffers for n in nodes),
        "macs": sum(n.macs for n in nodes if not n.train_only),
        "flops": sum(n.flops for n in nodes if not n.train_only),
        "train_only": all(n.train_only for n in nodes),
    }


def layer_rows(net: Network, depth: int | None = None) -> list[dict[str, Any]]:
    """One row per op, or with `depth`, one row per module at that nesting depth."""
    if depth is None:
        return [row(n.name, n.op.name, [n]) for n in net.nodes]
    mods = module_index(net.root)
    groups: dict[str, list[Node]] = {}
    for n in net.nodes:
        key = ".".join(n.name.split(".")[:depth])
        groups.setdefault(key, []).append(n)
    rows = []
    for key, nodes in groups.items():
        m = mods.get(key)
        if len(nodes) == 1 and nodes[0].name == key:
            op = nodes[0].op.name
        elif m is not None and m.block:
            op = m.block
        else:
            op = "seq" if m is not None and m.kind == "seq" else "group"
        rows.append(row(key, op, nodes))
    return rows


def summary_dict(net: Network, depth: int | None = None, dtype: str = "float32", rf: bool = False,
                 batch: int | None = None, optimizer: str = "adam") -> dict[str, Any]:
    """`rf` adds each row's receptive field; `batch` adds the training-memory estimate for that
    batch size and optimizer to `memory`. Neither changes anything else."""
    with paused_gc():
        data = _summary(net, depth, dtype)
        if rf:
            add_receptive_fields(data, net, depth)
        if batch is not None:
            add_training_memory(data, net, batch, dtype, optimizer)
        return data


def summary_for(net: Network, depth: int | None = None, rf: bool = False, memory: bool = False,
                batch: int | None = None, dtype: str | None = None, optimizer: str | None = None) -> dict[str, Any]:
    """The summary dict as `archc summary` makes it from its flags: `batch`, `dtype` or
    `optimizer` imply `memory` (batch 32, float32, adam unless given)."""
    if not (memory or batch is not None or dtype is not None or optimizer is not None):
        return summary_dict(net, depth=depth, rf=rf)
    dt = DTYPES.get(dtype or "float32", dtype)
    if dt not in BYTES:
        raise SpecError(f"dtype '{dtype}': expected one of {', '.join([*DTYPES, *BYTES])}")
    if (optimizer or "adam") not in OPTIMIZERS:
        raise SpecError(f"optimizer '{optimizer}': expected one of {', '.join(OPTIMIZERS)}")
    return summary_dict(net, depth=depth, rf=rf, batch=batch or 32, dtype=dt, optimizer=optimizer or "adam")


def summary_text(net: Network, fmt: str = "table", **options) -> str:
    """Exactly what `archc summary --format FMT` prints for these options (the table without the
    terminal's styles), ending in a newline."""
    from archc.report.formats import RENDER
    if fmt not in RENDER:
        raise SpecError(f"format '{fmt}': expected one of {', '.join(RENDER)}")
    data = summary_for(net, **options)
    if fmt == "csv" and "batch" in data["memory"]:
        raise SpecError("--memory has no place in CSV (one row per layer): use --format table, md or json")
    text = RENDER[fmt](data)
    return text if text.endswith("\n") else text + "\n"


def _summary(net: Network, depth: int | None, dtype: str) -> dict[str, Any]:
    nbytes = BYTES[dtype]
    outs = net.output_shapes
    trainable = net.params
    return {
        "name": net.name,
        "variant": net.variant,
        "input": list(net.input),
        "output": list(outs[0]) if len(outs) == 1 else [list(s) for s in outs],
        "outputs": {name: list(n.out if n else net.input) for name, n, _ in net.outputs},
        "params": trainable,
        "trainable_params": trainable,
        "buffers": net.buffers,
        "macs": net.macs,
        "flops": net.flops,
        "memory": {
            "dtype": dtype,
            "params_bytes": trainable * nbytes,
            "buffers_bytes": net.buffers * nbytes,
            # forward activations of one sample: every op's output (a static upper bound)
            "activations_bytes_per_sample": sum(prod(n.out) for n in net.nodes if not n.train_only) * nbytes,
        },
        "layers": layer_rows(net, depth),
    }


def row_nodes(net: Network, depth: int | None) -> list[Node]:
    """The node whose output each row of layer_rows shows: a folded row's last node."""
    if depth is None:
        return list(net.nodes)
    last: dict[str, Node] = {}
    for n in net.nodes:
        last[".".join(n.name.split(".")[:depth])] = n
    return list(last.values())


def add_receptive_fields(data: dict[str, Any], net: Network, depth: int | None) -> None:
    from archc.ir.receptive import receptive_fields
    fields = dict(zip((n.index for n in net.nodes), receptive_fields(net)))
    for r, n in zip(data["layers"], row_nodes(net, depth)):
        f = fields[n.index]
        r["rf"] = None if f is None else f.as_dict()


def add_training_memory(data: dict[str, Any], net: Network, batch: int, dtype: str, optimizer: str) -> None:
    from archc.ir.memory import estimate
    data["memory"].update(estimate(net, batch, dtype, optimizer).as_dict())
