"""Ops that rearrange values without weights: explicit padding, upsampling, channel shuffle and
channel split. Padding, shuffle and split only move values: they count no FLOPs."""
from __future__ import annotations

from fractions import Fraction
from math import floor, prod
from typing import Literal

from pydantic import Field, model_validator

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Shape, all_same, ntuple, register, spatial_rank
from archc.ops.base import REGISTRY, Reach, Saved
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
        args = [("padding", p[0] if all_same(p) else p)]
        if a.mode == "constant":
            args.append(("value", a.value))
        return Ctor(f"nn.{PAD_MODULES[a.mode]}{n}d", args, npos=len(args))

    def reach(self, a: PadArgs, ins, out):
        p = self.sides(a, ins[0])
        n = len(ins[0]) - 1
        return tuple(Reach(pad=p[2 * (n - 1 - i)]) for i in range(n))   # F.pad lists the last dim first

    def saved_for_backward(self, a: PadArgs, ins, out):
        # reflect and replicate keep their input; constant and circular only slice the gradient
        return [Saved("in0")] if a.mode in ("reflect", "replicate") else []


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

    def expr(self, a: UpsampleArgs, inputs):
        """F.interpolate in forward: for a size that follows the input (`size: [$h_in, $w_in]`)."""
        how = f"size={tuple(a.size) if isinstance(a.size, list) else a.size}" if a.size is not None else \
            f"scale_factor={tuple(a.scale) if isinstance(a.scale, list) else a.scale}"
        corners = "" if a.align_corners is None else f", align_corners={a.align_corners}"
        return f"F.interpolate({inputs[0]}, {how}, mode={a.mode!r}{corners})"

    def reach(self, a: UpsampleArgs, ins, out):
        # output i samples the input at (i + 0.5) * r - 0.5 (r = in / out; i * (in - 1) / (out - 1)
        # with align_corners), reading 1 (nearest), 2 (linear) or 4 (cubic) taps from there.
        # A linear model of PyTorch's rounding: the stride is fractional.
        x = ins[0]
        if a.mode == "area":
            return REGISTRY["adaptive_avgpool"].reach(a, ins, out)
        scales = ntuple(a.scale, len(x) - 1, "upsample scale") if a.size is None else None
        out_r = []
        for i, (n, o) in enumerate(zip(x[1:], out[1:])):
            # PyTorch samples at 1 / scale when given a scale, at in / out when given a size
            r = Fraction(n, o) if scales is None else 1 / Fraction(scales[i]).limit_denominator(1000)
            if a.align_corners:
                r = Fraction(n - 1, o - 1) if o > 1 else Fraction(0)
            taps = {"nearest": 1, "nearest-exact": 1, "bicubic": 4}.get(a.mode, 2)
            centred = a.mode != "nearest" and not a.align_corners
            pad = (taps - 1) // 2 - (r / 2 - Fraction(1, 2) if centred else 0)
            if a.mode == "nearest-exact":
                pad = -r / 2
            out_r.append(Reach(taps, r, pad))
        return tuple(out_r)

    def saved_for_backward(self, a: UpsampleArgs, ins, out):
        # interpolation gradients need only sizes; 'area' is an adaptive average pool
        return [Saved("in0")] if a.mode == "area" else []


class ResizeArgs(OpArgs):
    mode: Literal["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area"] = "nearest"
    align_corners: bool | None = None

    @model_validator(mode="after")
    def _corners(self):
        if self.align_corners is not None and self.mode not in INTERPOLATING:
            raise ValueError(f"align_corners is for modes {', '.join(INTERPOLATING)}, not '{self.mode}'")
        return self


@register("resize")
class Resize(Op):
    """The first input interpolated to the spatial size of the second, which forward reads from
    that tensor (`F.interpolate(x, size=low.shape[2:])`: LR-ASPP's head, FPN's top-down path).
    Only the second input's size counts: its values reach nothing (receptive field, gradients)."""
    Args = ResizeArgs
    arity = None
    size_only_inputs = (1,)
    doc = "Interpolate the first input to the spatial size of the second: `from: [x, like]`."

    def infer(self, a: ResizeArgs, ins):
        if len(ins) != 2:
            raise ShapeError(f"'resize' takes two inputs, the tensor to resize and one of the size to give it, "
                             f"got {len(ins)}")
        x, like = ins
        if len(x) != len(like) or len(x) < 2:
            raise ShapeError(f"'resize' brings {list(x)} to the size of {list(like)}: both need the same number "
                             f"of spatial dims")
        need = UPSAMPLE_RANK[a.mode]
        if need is not None and need != len(x) - 1:
            raise ShapeError(f"mode '{a.mode}' needs a {need}d input, got {list(x)}")
        return (x[0], *like[1:])

    def as_upsample(self, a: ResizeArgs, out) -> UpsampleArgs:
        return UpsampleArgs(size=list(out[1:]), mode=a.mode, align_corners=a.align_corners)

    def extra_flops(self, a: ResizeArgs, ins, out):
        return REGISTRY["upsample"].extra_flops(self.as_upsample(a, out), ins[:1], out)

    def expr(self, a: ResizeArgs, inputs):
        corners = "" if a.align_corners is None else f", align_corners={a.align_corners}"
        return f"F.interpolate({inputs[0]}, size={inputs[1]}.shape[2:], mode={a.mode!r}{corners})"

    def reach(self, a: ResizeArgs, ins, out):
        return REGISTRY["upsample"].reach(self.as_upsample(a, out), ins[:1], out)

    def saved_for_backward(self, a: ResizeArgs, ins, out):
        return REGISTRY["upsample"].saved_for_backward(self.as_upsample(a, out), ins[:1], out)


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

    def saved_for_backward(self, a, ins, out):
        return []


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

    def reach(self, a: SplitArgs, ins, out):
        # a chunk along a spatial dim starts index * size into it
        x = ins[0]
        d = a.dim % len(x)
        return tuple(Reach(pad=-a.index * out[d] if i + 1 == d else 0) for i in range(len(x) - 1)) \
            if len(x) >= 2 else None

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # chunk() returns a view
