"""Normalisation layers."""
from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Tensor, register, spatial_rank
from archc.ops.base import AFFINE_DEFAULTS, Saved, module_kind

module_kind("bn", ("nn.BatchNorm1d", "nn.BatchNorm2d", "nn.BatchNorm3d"),
            {**AFFINE_DEFAULTS, "running_mean": ("zeros", {}), "running_var": ("ones", {})})
module_kind("layernorm", ("nn.LayerNorm", "LayerNorm1d", "LayerNorm2d", "LayerNorm3d"), AFFINE_DEFAULTS)
module_kind("groupnorm", ("nn.GroupNorm",), AFFINE_DEFAULTS)


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
        cls = f"nn.BatchNorm{self.dims(ins[0])}d"
        t = {}
        if a.affine:
            t["weight"] = Tensor((c,), module=cls)
            t["bias"] = Tensor((c,), module=cls)
        if a.track_running_stats:
            t["running_mean"] = Tensor((c,), trainable=False, module=cls)
            t["running_var"] = Tensor((c,), trainable=False, module=cls)
            t["num_batches_tracked"] = Tensor((), trainable=False, module=cls)
        return t

    def extra_flops(self, a, ins, out):
        return 2 * prod(out)   # inference form: one scale, one shift per element

    def module(self, a: BNArgs, ins, out):
        return Ctor(f"nn.BatchNorm{self.dims(ins[0])}d", [
            ("num_features", ins[0][0]), ("eps", a.eps), ("momentum", a.momentum),
            ("affine", a.affine), ("track_running_stats", a.track_running_stats)], npos=1,
            defaults={"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True})

    def saved_for_backward(self, a: BNArgs, ins, out):
        # the input and the batch mean and inverse std per channel (float32, once per batch);
        # the running statistics it also keeps are buffers
        c = (ins[0][0],)
        return [Saved("in0"), Saved("mean", c, "float32", False), Saved("invstd", c, "float32", False)]


class LayerNormArgs(OpArgs):
    dims: int | None = Field(None, gt=0)   # normalise over the last `dims` per-sample dims; default all
    eps: float = Field(1e-5, gt=0)
    elementwise_affine: bool = True
    bias: bool = True
    over: Literal["last", "channels"] = "last"   # channels: over C at each position of [C, ...]


CHANNEL_LAYER_NORM = '''
class LayerNorm{n}d(nn.LayerNorm):
    """LayerNorm over the channels at each position of [N, C, ...] (torchvision's LayerNorm2d)."""

    def forward(self, x):
        x = x.movedim(1, -1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)
'''


@register("layernorm")
class LayerNorm(Op):
    """LayerNorm over the trailing per-sample dims: [C, H, W] with dims 1 normalises over W,
    as nn.LayerNorm(W); by default over the whole sample, as nn.LayerNorm([C, H, W]). With
    `over: channels`, over C at each position (ConvNeXt's LayerNorm2d)."""
    Args = LayerNormArgs
    short = "dims"
    doc = ("Layer normalisation over the last `dims` per-sample dimensions (default: all); "
           "`over: channels` normalises the channels at each position of [C, ...].")

    def normalized(self, a: LayerNormArgs, x) -> tuple[int, ...]:
        if a.over == "channels":
            if a.dims is not None:
                raise ShapeError("layernorm takes 'dims' or 'over: channels', not both")
            spatial_rank(x, "layernorm over channels")
            return (x[0],)
        if a.dims is not None and a.dims > len(x):
            raise ShapeError(f"layernorm over the last {a.dims} dims of a rank-{len(x)} input")
        return tuple(x[len(x) - (a.dims or len(x)):])

    def infer(self, a, ins):
        self.normalized(a, ins[0])
        return ins[0]

    def tensors(self, a: LayerNormArgs, ins, out):
        shape = self.normalized(a, ins[0])
        cls = f"LayerNorm{len(ins[0]) - 1}d" if a.over == "channels" else "nn.LayerNorm"
        t = {}
        if a.elementwise_affine:
            t["weight"] = Tensor(shape, module=cls)
            if a.bias:
                t["bias"] = Tensor(shape, module=cls)
        return t

    def extra_flops(self, a: LayerNormArgs, ins, out):
        # per element: sum for the mean, subtract, square-and-sum for the variance, scale by
        # 1/std (4); the affine transform adds a scale and a shift (2) or a scale alone (1)
        affine = (1 + a.bias) if a.elementwise_affine else 0
        return (4 + affine) * prod(out)

    def module(self, a: LayerNormArgs, ins, out):
        shape = self.normalized(a, ins[0])
        if a.over == "channels":
            n = len(ins[0]) - 1
            return Ctor(f"LayerNorm{n}d", [("normalized_shape", shape[0]), ("eps", a.eps),
                        ("elementwise_affine", a.elementwise_affine), ("bias", a.bias)], npos=1,
                        defaults={"eps": 1e-5, "elementwise_affine": True, "bias": True},
                        support=(CHANNEL_LAYER_NORM.replace("{n}", str(n)),))
        return Ctor("nn.LayerNorm", [
            ("normalized_shape", shape[0] if len(shape) == 1 else shape), ("eps", a.eps),
            ("elementwise_affine", a.elementwise_affine), ("bias", a.bias)], npos=1,
            defaults={"eps": 1e-5, "elementwise_affine": True, "bias": True})

    def saved_for_backward(self, a: LayerNormArgs, ins, out):
        # the input, and a mean and inverse std per normalised row of every sample
        x = ins[0]
        rows = (prod(x[1:]),) if a.over == "channels" else (prod(x[:len(x) - len(self.normalized(a, x))]),)
        return [Saved("in0"), Saved("mean", rows, "float32"), Saved("rstd", rows, "float32")]


class GroupNormArgs(OpArgs):
    groups: int = Field(gt=0)
    eps: float = Field(1e-5, gt=0)
    affine: bool = True


@register("groupnorm")
class GroupNorm(Op):
    Args = GroupNormArgs
    short = "groups"
    doc = "Group normalisation: channels in `groups` groups, statistics per sample and group."

    def infer(self, a: GroupNormArgs, ins):
        x = ins[0]
        if len(x) < 1 or x[0] % a.groups:
            raise ShapeError(f"groups={a.groups} must divide the input channels {x[0] if x else 0}")
        return x

    def tensors(self, a: GroupNormArgs, ins, out):
        c = ins[0][0]
        return {"weight": Tensor((c,), module="nn.GroupNorm"),
                "bias": Tensor((c,), module="nn.GroupNorm")} if a.affine else {}

    def extra_flops(self, a: GroupNormArgs, ins, out):
        # as layernorm: 4 per element for the statistics and normalisation, 2 for the affine
        return (4 + 2 * a.affine) * prod(out)

    def module(self, a: GroupNormArgs, ins, out):
        return Ctor("nn.GroupNorm", [("num_groups", a.groups), ("num_channels", ins[0][0]),
                                     ("eps", a.eps), ("affine", a.affine)], npos=2,
                    defaults={"eps": 1e-5, "affine": True})

    def saved_for_backward(self, a: GroupNormArgs, ins, out):
        g = (a.groups,)
        return [Saved("in0"), Saved("mean", g, "float32"), Saved("rstd", g, "float32")]


class LRNArgs(OpArgs):
    size: int = Field(gt=0)        # channels in the window
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0


@register("lrn")
class LocalResponseNorm(Op):
    """x / (k + alpha / size * sum of x^2 over `size` neighbouring channels) ^ beta."""
    Args = LRNArgs
    short = "size"
    doc = "Local response normalisation across neighbouring channels (AlexNet, GoogLeNet v1)."

    def infer(self, a, ins):
        spatial_rank(ins[0], self.name)
        return ins[0]

    def extra_flops(self, a: LRNArgs, ins, out):
        # per element: square (1), window sum (size), scale + offset (2), power (1), divide (1)
        return (a.size + 5) * prod(out)

    def module(self, a: LRNArgs, ins, out):
        return Ctor("nn.LocalResponseNorm", [("size", a.size), ("alpha", a.alpha), ("beta", a.beta),
                                             ("k", a.k)], npos=1,
                    defaults={"alpha": 1e-4, "beta": 0.75, "k": 1.0})

    def saved_for_backward(self, a: LRNArgs, ins, out):
        # F.local_response_norm is composite: its window average keeps the squares padded along
        # the channels, pow keeps its base, and the final division keeps the input and divisor
        x = ins[0]
        return [Saved("in0"), Saved("squares", (x[0] + a.size - 1, *x[1:])), Saved("base", x), Saved("divisor", x)]
