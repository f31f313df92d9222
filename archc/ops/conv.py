"""Convolutions. Dimensionality (1d/2d/3d) follows the input rank."""
from __future__ import annotations

from fractions import Fraction
from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Shape, Tensor, all_same, ntuple, register, same_pad, spatial_rank
from archc.ops.base import same_call, window_out
from archc.ops.base import brief, window_text
from archc.ops.base import Reach, Saved
from archc.ops.base import WEIGHTED_DEFAULTS, module_kind

IntOrList = int | list[int]

module_kind("conv", ("nn.Conv1d", "nn.Conv2d", "nn.Conv3d"), WEIGHTED_DEFAULTS)
module_kind("conv_transpose", ("nn.ConvTranspose1d", "nn.ConvTranspose2d", "nn.ConvTranspose3d"), WEIGHTED_DEFAULTS)
Padding = int | list[int] | Literal["same", "valid"]

# TensorFlow's 'same' padding depends on the input size (with a stride, on its parity): generated
# code works it out in forward, so a module built for one size is right at any other. Where it
# is symmetric the conv pads itself; otherwise the input is padded first (the odd pixel after).
SAME_PAD = '''
def same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding along one dim: (before, after), the odd one after, so that
    the output has ceil(size / stride) positions."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2
'''

DIMS = {1: ["l"], 2: ["h", "w"], 3: ["d", "h", "w"]}


def same_code(n: int, k: str, s: str, d: str | None) -> tuple[list[str], str, str, str]:
    """Forward lines that pad an n-d input 'same' (attribute names of kernel, stride, dilation),
    the test that the padding is symmetric, the F.pad tuple and the symmetric padding."""
    dims = DIMS[n]
    lines = [f"{x}0, {x}1 = same_pad(x.shape[{i - n}], self.{k}[{i}], self.{s}[{i}], "
             f"{f'self.{d}[{i}]' if d else '1'})" for i, x in enumerate(dims)]
    symmetric = " and ".join(f"{x}0 == {x}1" for x in dims)
    fpad = ", ".join(f"{x}0, {x}1" for x in reversed(dims))
    padding = "(" + ", ".join(f"{x}0" for x in dims) + ("," if n == 1 else "") + ")"
    return lines, symmetric, f"({fpad})", padding


def same_conv_source(n: int) -> str:
    lines, symmetric, fpad, padding = same_code(n, "kernel_size", "stride", "dilation")
    body = "\n".join(" " * 8 + ln for ln in lines)
    return f'''
class Conv{n}dSame(nn.Conv{n}d):
    """nn.Conv{n}d with TensorFlow's 'same' padding, worked out for each input (timm's Conv2dSame)."""

    def forward(self, x):
{body}
        if self.padding_mode == "zeros" and {symmetric}:
            return F.conv{n}d(x, self.weight, self.bias, self.stride, {padding}, self.dilation, self.groups)
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.conv{n}d(F.pad(x, {fpad}, mode), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)
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
    """nn.ConvNd's padding argument when symmetric, else None (padded first: 'same')."""
    if any(lo != hi for lo, hi in pads):
        return None
    p = tuple(lo for lo, _ in pads)
    return p[0] if all_same(p) else p


def compact(t: tuple):
    return t[0] if all_same(t) else t


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

    @same_call
    def geometry(self, a: ConvArgs, x: Shape):
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
        same = a.pad == "same"
        conv = Ctor(f"nn.Conv{n}d" if not same else f"Conv{n}dSame", [
            ("in_channels", x[0]), ("out_channels", a.out), ("kernel_size", compact(k)),
            ("stride", compact(s)), ("padding", 0 if same else torch_padding(pads)),
            ("dilation", compact(d)), ("groups", a.groups), ("bias", a.bias),
            ("padding_mode", a.padding_mode)], npos=3, defaults=CONV_DEFAULTS)
        if same:
            conv.support = (SAME_PAD, same_conv_source(n))
        return conv

    def reach(self, a: ConvArgs, ins, out):
        _, k, s, d, pads = self.geometry(a, ins[0])
        return window_reach(k, s, d, pads)

    def saved_for_backward(self, a: ConvArgs, ins, out):
        pads = self.geometry(a, ins[0])[4]
        if torch_padding(pads) is None:     # padded first ('same'): the conv saves the padded copy
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
