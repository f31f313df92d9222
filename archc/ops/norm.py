"""Normalisation layers."""
from __future__ import annotations

from math import prod

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Tensor, register


class BNArgs(OpArgs):
    eps: float = Field(1e-5, gt=0)
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True


@register("bn", "batchnorm")
class BatchNorm(Op):
    """BatchNorm over channels; 1d for [F] and [C, L], 2d for [C, H, W], 3d for [C, D, H, W]."""
    Args = BNArgs
    doc = "Batch normalisation over the channel dimension."

    def dims(self, x) -> int:
        if len(x) > 4:
            raise ShapeError(f"'bn' needs an input of rank 1 to 4, got {list(x)}")
        return max(len(x) - 1, 1)

    def infer(self, a, ins):
        self.dims(ins[0])
        return ins[0]

    def tensors(self, a: BNArgs, ins, out):
        c = ins[0][0]
        t = {}
        if a.affine:
            t["weight"] = Tensor((c,))
            t["bias"] = Tensor((c,))
        if a.track_running_stats:
            t["running_mean"] = Tensor((c,), trainable=False)
            t["running_var"] = Tensor((c,), trainable=False)
            t["num_batches_tracked"] = Tensor((), trainable=False)
        return t

    def extra_flops(self, a, ins, out):
        return 2 * prod(out)   # inference form: one scale, one shift per element

    def module(self, a: BNArgs, ins, out):
        return Ctor(f"nn.BatchNorm{self.dims(ins[0])}d", [
            ("num_features", ins[0][0]), ("eps", a.eps), ("momentum", a.momentum),
            ("affine", a.affine), ("track_running_stats", a.track_running_stats)], npos=1,
            defaults={"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True})
