"""Convolutions. Dimensionality (1d/2d/3d) follows the input rank."""
from __future__ import annotations

from fractions import Fraction
from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Shape, Tensor, ntuple, register, same_pad, spatial_rank, window_out
from archc.ops.base import brief, window_text
from archc.ops.base import Reach, Saved
from archc.ops.base import WEIGHTED_DEFAULTS, module_kind

IntOrList = int | list[int]

module_kind("conv", ("nn.Conv1d", "nn.Conv2d", "nn.Conv3d"), WEIGHTED_DEFAULTS)
module_kind("conv_transpose", ("nn.ConvTranspose1d", "nn.ConvTranspose2d", "nn.ConvTranspose3d"), WEIGHTED_DEFAULTS)
Padding = int | list[int] | Literal["same", "valid"]

# Generated code needs this only where TensorFlow 'same' padding is asymmetric: the pad is
# applied in forward, so the weights stay at `weight`/`bias` as in a plain nn.ConvNd.
PADDED_CONV = '''
class PaddedConv{n}d(nn.Conv{n}d):
    """nn.Conv{n}d with explicit, possibly asymmetric, zero padding (TensorFlow's 'same')."""

    def __init__(self, *args, pad, **kwargs):
        super().__init__(*args, **kwargs)
        self.pad = pad

    def forward(self, x):
        return self._conv_forward(F.pad(x, self.pad), self.weight, self.bias)
'''


class ConvArgs(OpArgs):
    out: int = Field(gt=0)
    k: IntOrList
    stride: IntOrList = 1
    pad: Padding = 0
    dilation: IntOrList = 1
    groups: int = Field(1, gt=0)
    bias: bool = True
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"


def positive(v, what: str):
    for x in (v if isinstance(v, (list, tuple)) else [v]):
        if not isinstance(x, int) or x <= 0:
            raise ShapeError(f"{what} must be a positive integer, got {x}")


def resolve_pads(pad, size: Shape, k, s, d, what: str) -> list[tuple[int, int]]:
    """Per spatial dim (lo, hi) padding; 'same' follows TensorFlow (extra on the end)."""
    n = len(size)
    if pad == "valid":
        return [(0, 0)] * n
    if pad == "same":
        return [same_pad(size[i], k[i], s[i], d[i]) for i in range(n)]
    p = ntuple(pad, n, f"{what} pad")
    if any(x < 0 for x in p):
        raise ShapeError(f"{what} pad must be >= 0, got {pad}")
    return [(x, x) for x in p]


def window_shape(size: Shape, k, s, d, pads, what: str, ceil_mode: bool = False) -> tuple[int, ...]:
    out = []
    for i in range(len(size)):
        o = window_out(size[i], k[i], s[i], d[i], *pads[i], ceil_mode=ceil_mode)
        if o <= 0:
            padded = "x".join(str(size[j] + sum(pads[j])) for j in range(len(size)))
            kern = "x".join(map(str, k)) if len(set(k)) > 1 else str(k[0])
            raise ShapeError(f"{what} {kern} is larger than the padded input {padded}")
        out.append(o)
    return tuple(out)


def torch_padding(pads):
    """nn.ConvNd's padding argument when symmetric, else None (needs PaddedConv)."""
    if any(lo != hi for lo, hi in pads):
        return None
    p = tuple(lo for lo, _ in pads)
    return p[0] if len(set(p)) == 1 else p


def f_pad(pads) -> tuple[int, ...]:
    """F.pad order: last dim first."""
    return tuple(x for lo, hi in reversed(pads) for x in (lo, hi))


def compact(t: tuple):
    return t[0] if len(set(t)) == 1 else t


CONV_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
                 "padding_mode": "zeros"}


def conv_text(name: str, a, ins, out) -> str:
    """'conv 3x3 /2, 64' (+ ', g32' grouped, ', d2' dilated): a conv's label in diagrams."""
    text = f"{name} {window_text(a.k, a.stride, ins)}" + (f", {out}" if out else "")
    groups = getattr(a, "groups", 1)
    if groups > 1:
        text += ", depthwise" if groups == ins[0][0] else f", g{groups}"
    dilation = a.dilation if isinstance(a.dilation, list) else [a.dilation]
    return text + (f", d{brief(a.dilation)}" if any(d != 1 for d in dilation) else "")


@register("conv")
class Conv(Op):
    Args = ConvArgs
    short = "out"
    doc = "Convolution (1d/2d/3d by input rank); pad int/list/'same'/'valid'."

    def describe(self, a: ConvArgs, ins):
        return conv_text(self.name, a, ins, a.out)

    def geometry(self, a: ConvArgs, x: Shape):
        return self.memo(a, x, lambda: self._geometry(a, x))

    def _geometry(self, a: ConvArgs, x: Shape):
        n = spatial_rank(x, self.name)
        k = ntuple(a.k, n, "kernel")
        s = ntuple(a.stride, n, "stride")
        d = ntuple(a.dilation, n, "dilation")
        positive(k, "kernel size")
        positive(s, "stride")
        positive(d, "dilation")
        return n, k, s, d, resolve_pads(a.pad, x[1:], k, s, d, "kernel")

    def check_groups(self, a: ConvArgs, c_in: int):
        if c_in % a.groups or a.out % a.groups:
            raise ShapeError(f"groups={a.groups} must divide both input channels {c_in} and out {a.out}")

    def infer(self, a: ConvArgs, ins):
        x = ins[0]
        self.check_groups(a, x[0])
        _, k, s, d, pads = self.geometry(a, x)
        return (a.out, *window_shape(x[1:], k, s, d, pads, "kernel"))

    def tensors(self, a: ConvArgs, ins, out):
        x = ins[0]
        _, k, *_ = self.geometry(a, x)
        cls = f"nn.Conv{len(k)}d"
        t = {"weight": Tensor((a.out, x[0] // a.groups, *k), module=cls)}
        if a.bias:
            t["bias"] = Tensor((a.out,), module=cls)
        return t

    def macs(self, a: ConvArgs, ins, out):
        x = ins[0]
        _, k, *_ = self.geometry(a, x)
        return prod(out) * (x[0] // a.groups) * prod(k)

    def extra_flops(self, a: ConvArgs, ins, out):
        return prod(out) if a.bias else 0

    def module(self, a: ConvArgs, ins, out):
        x = ins[0]
        n, k, s, d, pads = self.geometry(a, x)
        padding = torch_padding(pads)
        conv = Ctor(f"nn.Conv{n}d" if padding is not None else f"PaddedConv{n}d", [
            ("in_channels", x[0]), ("out_channels", a.out), ("kernel_size", compact(k)),
            ("stride", compact(s)), ("padding", 0 if padding is None else padding),
            ("dilation", compact(d)), ("groups", a.groups), ("bias", a.bias),
            ("padding_mode", a.padding_mode)], npos=3, defaults=CONV_DEFAULTS)
        if padding is None:
            conv.args.append(("pad", f_pad(pads)))
            conv.support = (PADDED_CONV.replace("{n}", str(n)),)
        return conv

    def reach(self, a: ConvArgs, ins, out):
        _, k, s, d, pads = self.geometry(a, ins[0])
        return window_reach(k, s, d, pads)

    def saved_for_backward(self, a: ConvArgs, ins, out):
        pads = self.geometry(a, ins[0])[4]
        if torch_padding(pads) is None:     # PaddedConv saves the padded copy, not its input
            return [Saved("padded", padded_shape(ins[0], pads))]
        return [Saved("in0")]


class ConvTransposeArgs(OpArgs):
    out: int = Field(gt=0)
    k: IntOrList
    stride: IntOrList = 1
    pad: IntOrList = 0
    output_padding: IntOrList = 0
    dilation: IntOrList = 1
    groups: int = Field(1, gt=0)
    bias: bool = True


@register("conv_transpose")
class ConvTranspose(Op):
    """Transposed convolution: out = (in - 1) * stride - 2 * pad + dilation * (k - 1)
    + output_padding + 1 per spatial dim (PyTorch's nn.ConvTransposeNd)."""
    Args = ConvTransposeArgs
    short = "out"
    doc = "Transposed convolution (1d/2d/3d by input rank); output_padding < stride or dilation."

    def geometry(self, a: ConvTransposeArgs, x: Shape):
        n = spatial_rank(x, self.name)
        k, s, d = ntuple(a.k, n, "kernel"), ntuple(a.stride, n, "stride"), ntuple(a.dilation, n, "dilation")
        p, op = ntuple(a.pad, n, "pad"), ntuple(a.output_padding, n, "output_padding")
        positive(k, "kernel size")
        positive(s, "stride")
        positive(d, "dilation")
        if any(v < 0 for v in p + op):
            raise ShapeError(f"pad and output_padding must be >= 0, got {a.pad} and {a.output_padding}")
        for i in range(n):
            if op[i] >= s[i] and op[i] >= d[i]:
                raise ShapeError(f"output_padding {op[i]} must be smaller than stride {s[i]} or dilation {d[i]}")
        return n, k, s, d, p, op

    def infer(self, a: ConvTransposeArgs, ins):
        x = ins[0]
        if x[0] % a.groups or a.out % a.groups:
            raise ShapeError(f"groups={a.groups} must divide both input channels {x[0]} and out {a.out}")
        _, k, s, d, p, op = self.geometry(a, x)
        size = tuple((x[1 + i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i in range(len(k)))
        if any(v <= 0 for v in size):
            raise ShapeError(f"pad {a.pad} leaves no output: {'x'.join(map(str, size))}")
        return (a.out, *size)

    def tensors(self, a: ConvTransposeArgs, ins, out):
        k = self.geometry(a, ins[0])[1]
        cls = f"nn.ConvTranspose{len(k)}d"
        t = {"weight": Tensor((ins[0][0], a.out // a.groups, *k), module=cls)}
        if a.bias:
            t["bias"] = Tensor((a.out,), module=cls)
        return t

    def macs(self, a: ConvTransposeArgs, ins, out):
        # every input element meets every kernel tap of its group's output channels
        x = ins[0]
        return prod(x) * (a.out // a.groups) * prod(self.geometry(a, x)[1])

    def extra_flops(self, a, ins, out):
        return prod(out) if a.bias else 0

    def module(self, a: ConvTransposeArgs, ins, out):
        x = ins[0]
        n, k, s, d, p, op = self.geometry(a, x)
        return Ctor(f"nn.ConvTranspose{n}d", [
            ("in_channels", x[0]), ("out_channels", a.out), ("kernel_size", compact(k)),
            ("stride", compact(s)), ("padding", compact(p)), ("output_padding", compact(op)),
            ("groups", a.groups), ("bias", a.bias), ("dilation", compact(d))], npos=3,
            defaults={"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
                      "dilation": 1})

    def reach(self, a: ConvTransposeArgs, ins, out):
        # output o gathers inputs i with i * s - p + t * d = o (t < k): i from (o + p - (k-1) d) / s
        # to (o + p) / s, so a window of (k - 1) d / s + 1 inputs at a fractional stride 1 / s
        _, k, s, d, p, _ = self.geometry(a, ins[0])
        return tuple(Reach(Fraction((k[i] - 1) * d[i], s[i]) + 1, Fraction(1, s[i]),
                           Fraction((k[i] - 1) * d[i] - p[i], s[i])) for i in range(len(k)))


def window_reach(k, s, d, pads) -> tuple[Reach, ...]:
    """A sliding window's reach per spatial dim; only the leading padding moves the start."""
    return tuple(Reach((k[i] - 1) * d[i] + 1, s[i], pads[i][0]) for i in range(len(k)))


def padded_shape(x: Shape, pads) -> Shape:
    """[C, *spatial] after explicit padding (the copy PaddedConv / PaddedPool make)."""
    return (x[0], *(x[1 + i] + lo + hi for i, (lo, hi) in enumerate(pads)))
