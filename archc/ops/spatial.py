"""Ops that rearrange values without weights: explicit padding, upsampling, channel shuffle and
channel split. Padding, shuffle and split only move values: they count no FLOPs."""
from __future__ import annotations

from math import floor, prod
from typing import Literal

from pydantic import Field, model_validator

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Shape, ntuple, register, spatial_rank
from archc.ops.conv import compact

# -- pad ---------------------------------------------------------------------------------------

PAD_MODULES = {"constant": "ConstantPad", "reflect": "ReflectionPad",
               "replicate": "ReplicationPad", "circular": "CircularPad"}


class PadArgs(OpArgs):
    pad: int | list[int]      # every side, or per side in F.pad order: [left, right, top, bottom, ...]
    mode: Literal["constant", "reflect", "replicate", "circular"] = "constant"
    value: float = 0.0        # fill of mode 'constant'

    @model_validator(mode="after")
    def _value(self):
        if self.value != 0.0 and self.mode != "constant":
            raise ValueError(f"value is for mode 'constant', not '{self.mode}'")
        return self


@register("pad")
class Pad(Op):
    """Explicit padding of every spatial dim (nn.ConstantPad/ReflectionPad/ReplicationPad/
    CircularPad{1,2,3}d by input rank). A list holds two values per spatial dim, last dim first
    (F.pad order); negative values crop, in mode 'constant' only."""
    Args = PadArgs
    short = "pad"
    doc = "Explicit padding: constant (value), reflect, replicate or circular; F.pad order."

    def sides(self, a: PadArgs, x: Shape) -> tuple[int, ...]:
        n = spatial_rank(x, self.name)
        if isinstance(a.pad, list):
            if len(a.pad) != 2 * n:
                raise ShapeError(f"pad needs {2 * n} values (two per spatial dim, last dim first) "
                                 f"for a {n}d input, got {a.pad}")
            return tuple(a.pad)
        return (a.pad,) * (2 * n)

    def infer(self, a: PadArgs, ins):
        x = ins[0]
        p = self.sides(a, x)
        out = list(x)
        for j in range(len(p) // 2):
            dim = len(x) - 1 - j
            lo, hi = p[2 * j], p[2 * j + 1]
            if a.mode != "constant" and min(lo, hi) < 0:
                raise ShapeError(f"negative pad {a.pad} crops, which only mode 'constant' does")
            if a.mode == "reflect" and max(lo, hi) >= x[dim]:
                raise ShapeError(f"reflect pad {max(lo, hi)} must be smaller than the input size {x[dim]}")
            if a.mode == "circular" and max(lo, hi) > x[dim]:
                raise ShapeError(f"circular pad {max(lo, hi)} must be at most the input size {x[dim]}")
            out[dim] = x[dim] + lo + hi
            if out[dim] <= 0:
                raise ShapeError(f"pad {a.pad} leaves no output along dim {dim}")
        return tuple(out)

    def module(self, a: PadArgs, ins, out):
        n = spatial_rank(ins[0], self.name)
        p = self.sides(a, ins[0])
        args = [("padding", p[0] if len(set(p)) == 1 else p)]
        if a.mode == "constant":
            args.append(("value", a.value))
        return Ctor(f"nn.{PAD_MODULES[a.mode]}{n}d", args, npos=len(args))


# -- upsample ----------------------------------------------------------------------------------

# modes and the spatial rank they need (None: any)
UPSAMPLE_RANK = {"nearest": None, "nearest-exact": None, "area": None, "linear": 1,
                 "bilinear": 2, "bicubic": 2, "trilinear": 3}
INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")


class UpsampleArgs(OpArgs):
    scale: float | list[float] | None = None    # output = floor(input * scale), per spatial dim
    size: int | list[int] | None = None         # or a fixed output size
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear",
                  "area"] = "nearest"
    align_corners: bool | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.scale is None) == (self.size is None):
            raise ValueError("give exactly one of scale or size")
        vals = self.scale if isinstance(self.scale, list) else [self.scale] if self.scale is not None \
            else self.size if isinstance(self.size, list) else [self.size]
        if any(v <= 0 for v in vals):
            raise ValueError(f"scale and size must be positive, got {self.size if self.scale is None else self.scale}")
        if self.align_corners is not None and self.mode not in INTERPOLATING:
            raise ValueError(f"align_corners is for modes {', '.join(INTERPOLATING)}, not '{self.mode}'")
        return self


@register("upsample")
class Upsample(Op):
    Args = UpsampleArgs
    short = "scale"
    doc = "Upsample (nn.Upsample) by a scale or to a size; mode nearest, bilinear, ..."

    def infer(self, a: UpsampleArgs, ins):
        x = ins[0]
        n = spatial_rank(x, self.name)
        need = UPSAMPLE_RANK[a.mode]
        if need is not None and need != n:
            raise ShapeError(f"mode '{a.mode}' needs a {need}d input, got {list(x)}")
        if a.size is not None:
            size = ntuple(a.size, n, "upsample size")
        else:
            # torch: floor(float(in) * scale), in double precision
            size = tuple(floor(float(s) * float(f)) for s, f in zip(x[1:], ntuple(a.scale, n, "upsample scale")))
        if any(s <= 0 for s in size):
            raise ShapeError(f"upsample scale {a.scale} leaves no output")
        return (x[0], *size)

    def extra_flops(self, a: UpsampleArgs, ins, out):
        # nearest: a copy (0); linear/bilinear/trilinear/bicubic: a weighted sum of 2/4/8/16
        # taps per output element (2 per tap); area: the mean of each input window (1 per input)
        if a.mode == "area":
            return prod(ins[0])
        return 2 * {"linear": 2, "bilinear": 4, "trilinear": 8, "bicubic": 16}.get(a.mode, 0) * prod(out)

    def module(self, a: UpsampleArgs, ins, out):
        args = [("size", compact(tuple(out[1:])))] if a.size is not None else \
            [("scale_factor", tuple(map(float, a.scale)) if isinstance(a.scale, list) else float(a.scale))]
        args += [("mode", a.mode), ("align_corners", a.align_corners)]
        return Ctor("nn.Upsample", args, defaults={"mode": "nearest", "align_corners": None})


# -- channel shuffle ---------------------------------------------------------------------------

class ShuffleArgs(OpArgs):
    groups: int = Field(gt=0)


@register("channel_shuffle")
class ChannelShuffle(Op):
    """ShuffleNet's channel shuffle: [g, C/g] channels read as [C/g, g] (nn.ChannelShuffle)."""
    Args = ShuffleArgs
    short = "groups"
    doc = "Channel shuffle between `groups` groups (ShuffleNet)."

    def infer(self, a: ShuffleArgs, ins):
        x = ins[0]
        spatial_rank(x, self.name)
        if x[0] % a.groups:
            raise ShapeError(f"groups={a.groups} must divide the input channels {x[0]}")
        return x

    def module(self, a: ShuffleArgs, ins, out):
        return Ctor("nn.ChannelShuffle", [("groups", a.groups)], npos=1)


# -- split -------------------------------------------------------------------------------------

SPLIT = '''
class Split(nn.Module):
    """Part `index` of `parts` equal chunks along `dim`: x.chunk(parts, dim)[index] (a view)."""

    def __init__(self, parts, index, dim=1):
        super().__init__()
        self.parts = parts
        self.index = index
        self.dim = dim

    def forward(self, x):
        return x.chunk(self.parts, self.dim)[self.index]
'''


class SplitArgs(OpArgs):
    index: int = Field(ge=0)
    parts: int = Field(2, gt=0)
    dim: int = 0        # per-sample dimension; 0 = channels

    @model_validator(mode="after")
    def _index(self):
        if self.index >= self.parts:
            raise ValueError(f"index {self.index} must be below parts {self.parts}")
        return self


@register("split")
class Split(Op):
    """One of several equal chunks along a dim. Two `split` layers reading the same input
    give ShuffleNet v2's `x1, x2 = x.chunk(2, dim=1)`."""
    Args = SplitArgs
    short = "index"
    doc = "Part `index` of `parts` equal chunks along a per-sample dim (default: channels)."

    def infer(self, a: SplitArgs, ins):
        x = ins[0]
        if not -len(x) <= a.dim < len(x):
            raise ShapeError(f"split along dim {a.dim} of a rank-{len(x)} input")
        d = a.dim % len(x)
        if x[d] % a.parts:
            raise ShapeError(f"{a.parts} equal parts of dim {a.dim} need its size {x[d]} to be a multiple of {a.parts}")
        return (*x[:d], x[d] // a.parts, *x[d + 1:])

    def module(self, a: SplitArgs, ins, out):
        dim = a.dim + 1 if a.dim >= 0 else a.dim
        return Ctor("Split", [("parts", a.parts), ("index", a.index), ("dim", dim)], npos=2,
                    defaults={"dim": 1}, support=(SPLIT,))
