"""Receptive fields: which positions of the network input each layer's output positions see.

Per spatial dim, a layer's field is (size, jump, start): output position i of the layer sees the
input positions start + i * jump ... start + i * jump + size - 1. Padding makes start negative
(the field hangs over the border); the field is not clipped to the input. Each op says how its
output positions read its input (`Op.reach`); one topological pass composes them:

    size' = size + (span - 1) * jump     jump' = jump * stride     start' = start - pad * jump

Merges take the hull of their branches' fields: from the smallest start to the largest end,
so the size is the largest branch's when the branches share a centre (Inception, ResNet); the
jump is the largest of the branches' (they agree wherever the spatial shapes do, as merges
need). An op that reads every position (global pools, flatten, linear, squeeze-excitation) makes
the field the whole input, marked `whole`, and so does every layer after it. Nothing here
imports torch."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from archc.ir.graph import Network
from archc.ops.base import Reach


@dataclass(frozen=True)
class Field:
    size: tuple[Any, ...]            # per spatial dim, in input positions (ints or Fractions)
    jump: tuple[Any, ...] | None     # None once the field is the whole input
    start: tuple[Any, ...]
    whole: bool = False              # every output position sees the whole input

    def as_dict(self) -> dict:
        return {"size": plain(self.size), "jump": None if self.jump is None else plain(self.jump),
                "start": plain(self.start), "whole": self.whole}


def plain(v: tuple) -> list:
    """Ints as ints; fractional values (upsampling, transposed convs) as floats, for JSON."""
    return [int(x) if x == int(x) else float(x) for x in v]


def through(f: Field, reach: tuple[Reach, ...]) -> Field:
    return Field(tuple(s + (r.span - 1) * j for s, j, r in zip(f.size, f.jump, reach)),
                 tuple(j * r.stride for j, r in zip(f.jump, reach)),
                 tuple(st - r.pad * j for st, j, r in zip(f.start, f.jump, reach)))


def hull(fields: list[Field]) -> Field:
    if len(fields) == 1:
        return fields[0]
    start = tuple(map(min, zip(*(f.start for f in fields))))
    end = tuple(map(max, zip(*(tuple(a + b for a, b in zip(f.start, f.size)) for f in fields))))
    jump = tuple(map(max, zip(*(f.jump for f in fields))))
    return Field(tuple(e - s for s, e in zip(start, end)), jump, start)


def broadcast(f: Field, shape, out, reach: tuple[Reach, ...]) -> Field:
    """An input of spatial size 1 broadcast by a merge over a larger output: its one position
    feeds every output. Only a position-wise reach broadcasts; an op that makes a size-1 input
    larger by its own rule (a transposed conv, upsampling, padding) keeps the jump it gives."""
    return Field(f.size, tuple(0 if n == 1 and o > 1 and r == Reach() else j
                               for j, n, o, r in zip(f.jump, shape[1:], out[1:], reach)), f.start)


def positionwise(n, layout: tuple) -> bool:
    """Whether a node on a moved layout (channels not first) reads only its own position: it
    keeps every dim but the channels, and mixes values along the channels alone."""
    c = layout.index(0)
    if len(n.out) != len(layout) or any(len(x) != len(layout) or any(x[j] != n.out[j] for j in range(len(x)) if j != c)
                                        for x in n.in_shapes):
        return False
    if n.op.along_last(n.args) and c == len(layout) - 1:
        return True
    reach = n.op.reach(n.args, n.in_shapes, n.out)
    return reach is not None and all(r == Reach() for r in reach)


def receptive_fields(net: Network) -> list[Field | None]:
    """The field of every node's output, in node order; None for every node when the network
    input has no spatial dims (an MLP). A permute moves the dims: nodes on a moved layout
    (ConvNeXt's channels-last MLP) keep the field where they are position-wise, and make it
    the whole input otherwise; a permute back restores the usual rules."""
    spatial = net.input[1:]
    if len(net.input) < 2:
        return [None] * len(net.nodes)
    rank = len(spatial)
    canonical = tuple(range(rank + 1))
    whole = Field(tuple(spatial), None, (0,) * rank, whole=True)
    fields: dict[int, Field] = {-1: Field((1,) * rank, (1,) * rank, (0,) * rank)}
    layouts: dict[int, tuple | None] = {-1: canonical}
    out = []
    for n in net.nodes:
        read = [j for j in range(len(n.inputs)) if j not in n.op.size_only_inputs]
        ins = [fields[n.inputs[j]] for j in read]
        lays = {layouts[n.inputs[j]] for j in read}
        layout = lays.pop() if len(lays) == 1 else None
        moves = n.op.moves(n.args, n.in_shapes)
        if moves is not None and layout is not None:
            layout = tuple(layout[d] for d in moves)
            f = whole if any(g.whole for g in ins) else ins[0]
        elif layout != canonical:
            f = ins[0] if layout is not None and positionwise(n, layout) and not ins[0].whole else whole
        else:
            reach = n.op.reach(n.args, n.in_shapes, n.out)
            if any(f.whole for f in ins) or reach is None or len(reach) != rank or len(n.out) - 1 != rank:
                f = whole
            else:
                f = hull([through(broadcast(g, n.in_shapes[j], n.out, reach), reach) for g, j in zip(ins, read)])
        fields[n.index] = f
        layouts[n.index] = layout if layout is None or len(layout) == len(n.out) else None
        out.append(f)
    return out


def text(v, sep: str = "x") -> str:
    """'11x11', '-2x-2', '1/2x1/2': one value per spatial dim."""
    return sep.join(str(Fraction(x)) for x in v)
