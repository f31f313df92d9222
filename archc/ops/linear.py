"""Fully connected layer."""
from __future__ import annotations


from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import WEIGHTED_DEFAULTS, Ctor, Op, OpArgs, Tensor, module_kind, register

module_kind("linear", ("nn.Linear",), WEIGHTED_DEFAULTS)


class LinearArgs(OpArgs):
    out: int = Field(gt=0)
    bias: bool = True
    over: Literal["flat", "last"] = "flat"   # last: nn.Linear over the last dim of any input


@register("linear", "dense", "fc")
class Linear(Op):
    Args = LinearArgs
    short = "out"
    doc = ("Fully connected layer over a flat [F] input; `over: last` applies it to the last dim of any "
           "input, as nn.Linear does (ConvNeXt's channels-last MLP); in-features are inferred.")

    def describe(self, a: LinearArgs, ins):
        return f"{self.name} {a.out}"

    def infer(self, a, ins):
        x = ins[0]
        if a.over == "last":
            if not x:
                raise ShapeError("'linear' over the last dim needs an input with dims")
            return (*x[:-1], a.out)
        if len(x) != 1:
            raise ShapeError(f"cannot take input of shape {list(x)}: add 'flatten' before it, "
                             f"or 'over: last' to apply it to the last dim")
        return (a.out,)

    def tensors(self, a: LinearArgs, ins, out):
        t = {"weight": Tensor((a.out, ins[0][-1]), module="nn.Linear")}
        if a.bias:
            t["bias"] = Tensor((a.out,), module="nn.Linear")
        return t

    def along_last(self, a: LinearArgs) -> bool:
        return a.over == "last"

    def macs(self, a, ins, out):
        return prod(ins[0]) * a.out

    def extra_flops(self, a, ins, out):
        return prod(out) if a.bias else 0

    def module(self, a: LinearArgs, ins, out):
        return Ctor("nn.Linear", [("in_features", ins[0][-1]), ("out_features", a.out), ("bias", a.bias)],
                    npos=2, defaults={"bias": True})
