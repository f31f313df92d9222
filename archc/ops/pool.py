"""Pooling: windowed max/avg, global and adaptive."""
from __future__ import annotations

from fractions import Fraction
from math import prod
from typing import Literal

from pydantic import Field, model_validator

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, ntuple, register, same_call, spatial_rank, window_text
from archc.ops.conv import SAME_PAD, compact, positive, resolve_pads, same_code, torch_padding, window_shape
from archc.ops.base import Reach, Saved
from archc.ops.conv import padded_shape, window_reach

IntOrList = int | list[int]

def same_pool_source(kind: str, n: int) -> str:
    """Max/avg pooling with TensorFlow's 'same' padding worked out for each input: max pads with
    -inf (never chosen); avg leaves the padding out of each window's count, as TensorFlow does."""
    lines, symmetric, fpad, padding = same_code(n, "k", "s", "d" if kind == "Max" else None)
    body = "\n".join(" " * 8 + ln for ln in lines)
    tuples = "\n".join(f"        self.{a} = ({a_},) * {n} if isinstance({a_}, int) else tuple({a_})"
                       for a, a_ in (("k", "kernel_size"), ("s", "stride"), ("d", "dilation"))
                       if kind == "Max" or a != "d")
    if kind == "Max":
        return f'''
class MaxPool{n}dSame(nn.MaxPool{n}d):
    """nn.MaxPool{n}d with TensorFlow's 'same' padding (-inf: never chosen), worked out for each input."""

    def __init__(self, kernel_size, stride, dilation=1, ceil_mode=False):
        super().__init__(kernel_size, stride, 0, dilation, ceil_mode=ceil_mode)
{tuples}

    def forward(self, x):
{body}
        if {symmetric}:
            return F.max_pool{n}d(x, self.k, self.s, {padding}, self.d, self.ceil_mode)
        return F.max_pool{n}d(F.pad(x, {fpad}, value=float("-inf")), self.k, self.s, 0, self.d, self.ceil_mode)
'''
    return f'''
class AvgPool{n}dSame(nn.AvgPool{n}d):
    """nn.AvgPool{n}d with TensorFlow's 'same' padding, worked out for each input; as in TensorFlow
    the padding is left out of each window's count."""

    def __init__(self, kernel_size, stride, ceil_mode=False):
        super().__init__(kernel_size, stride, 0, ceil_mode)
{tuples}

    def forward(self, x):
{body}
        if {symmetric}:
            return F.avg_pool{n}d(x, self.k, self.s, {padding}, self.ceil_mode, False)
        pad = {fpad}
        total = F.avg_pool{n}d(F.pad(x, pad), self.k, self.s, 0, self.ceil_mode)
        count = F.avg_pool{n}d(F.pad(torch.ones_like(x[:1, :1]), pad), self.k, self.s, 0, self.ceil_mode)
        return total / count
'''


class PoolArgs(OpArgs):
    k: IntOrList
    stride: IntOrList | None = None        # default: the kernel size
    pad: IntOrList | Literal["same", "valid"] = 0
    ceil_mode: bool = False


class MaxPoolArgs(PoolArgs):
    dilation: IntOrList = 1


class AvgPoolArgs(PoolArgs):
    count_include_pad: bool = True


class Window(Op):
    short = "k"
    kind: str

    def describe(self, a, ins):
        return f"{self.name} {window_text(a.k, a.k if a.stride is None else a.stride, ins)}"

    @same_call
    def geometry(self, a, x):
        n = spatial_rank(x, self.name)
        k = ntuple(a.k, n, "kernel")
        s = ntuple(a.stride if a.stride is not None else a.k, n, "stride")
        d = ntuple(getattr(a, "dilation", 1), n, "dilation")
        positive(k, "kernel size")
        positive(s, "stride")
        pads = resolve_pads(a.pad, x[1:], k, s, d, "pool")
        for i, (lo, hi) in enumerate(pads):
            if a.pad != "same" and lo > k[i] // 2:
                raise ShapeError(f"pad {lo} must be at most half the kernel {k[i]}")
        return n, k, s, d, pads

    def infer(self, a, ins):
        x = ins[0]
        _, k, s, d, pads = self.geometry(a, x)
        return (x[0], *window_shape(x[1:], k, s, d, pads, "pool kernel", a.ceil_mode))

    def extra_flops(self, a, ins, out):
        return prod(out) * prod(self.geometry(a, ins[0])[1])   # one op per window element

    def reach(self, a, ins, out):
        _, k, s, d, pads = self.geometry(a, ins[0])
        return window_reach(k, s, d, pads)


@register("maxpool")
class MaxPool(Window):
    Args = MaxPoolArgs
    doc = "Max pooling; `maxpool: 2` = kernel 2, stride 2."

    def module(self, a: MaxPoolArgs, ins, out):
        n, k, s, d, pads = self.geometry(a, ins[0])
        if a.pad == "same":
            return Ctor(f"MaxPool{n}dSame", [("kernel_size", compact(k)), ("stride", compact(s)),
                        ("dilation", compact(d)), ("ceil_mode", a.ceil_mode)], npos=2,
                        defaults={"dilation": 1, "ceil_mode": False}, support=(SAME_PAD, same_pool_source("Max", n)))
        return Ctor(f"nn.MaxPool{n}d", [
            ("kernel_size", compact(k)), ("stride", compact(s)), ("padding", torch_padding(pads)),
            ("dilation", compact(d)), ("ceil_mode", a.ceil_mode)], npos=2,
            defaults={"padding": 0, "dilation": 1, "ceil_mode": False})

    def saved_for_backward(self, a: MaxPoolArgs, ins, out):
        # the input (or, padded first for 'same', its padded copy) and the argmax of every window
        pads = self.geometry(a, ins[0])[4]
        x = Saved("in0") if torch_padding(pads) is not None else Saved("padded", padded_shape(ins[0], pads))
        return [x, Saved("indices", out, "int64")]


@register("avgpool")
class AvgPool(Window):
    Args = AvgPoolArgs
    doc = "Average pooling; `avgpool: 2` = kernel 2, stride 2."

    def module(self, a: AvgPoolArgs, ins, out):
        n, k, s, d, pads = self.geometry(a, ins[0])
        if a.pad == "same":   # TensorFlow's 'same' leaves the padding out of each window's count
            return Ctor(f"AvgPool{n}dSame", [("kernel_size", compact(k)), ("stride", compact(s)),
                        ("ceil_mode", a.ceil_mode)], npos=2, defaults={"ceil_mode": False},
                        support=(SAME_PAD, same_pool_source("Avg", n)))
        return Ctor(f"nn.AvgPool{n}d", [
            ("kernel_size", compact(k)), ("stride", compact(s)), ("padding", torch_padding(pads)),
            ("ceil_mode", a.ceil_mode), ("count_include_pad", a.count_include_pad)], npos=2,
            defaults={"padding": 0, "ceil_mode": False, "count_include_pad": True})

    def saved_for_backward(self, a: AvgPoolArgs, ins, out):
        pads = self.geometry(a, ins[0])[4]
        if torch_padding(pads) is not None:
            return [Saved("in0")]
        # padded first ('same'): the padded copy, and the window counts its division keeps (one row)
        return [Saved("padded", padded_shape(ins[0], pads)), Saved("count", (1, *out[1:]), batched=False)]


GLOBAL_POOL = '''
class Global{Kind}Pool(nn.Module):
    """Global {kind} pooling over every spatial dimension: [N, C, ...] -> [N, C]."""

    def forward(self, x):
        return x.flatten(2).{fn}
'''


def global_pool(name: str, kind: str, fn: str):
    class GlobalPool(Op):
        doc = f"Global {kind} pooling to a flat [C]."

        def infer(self, a, ins):
            spatial_rank(ins[0], self.name)
            return (ins[0][0],)

        def extra_flops(self, a, ins, out):
            return prod(ins[0])

        def module(self, a, ins, out):
            src = GLOBAL_POOL.replace("{Kind}", kind.capitalize()).replace("{kind}", kind)
            return Ctor(f"Global{kind.capitalize()}Pool", support=(src.replace("{fn}", fn),))
        def saved_for_backward(self, a, ins, out):
            # a mean keeps nothing; amax keeps its input and its result
            return [] if kind == "avg" else [Saved("in0"), Saved("out")]


    register(name)(GlobalPool)


global_pool("gap", "avg", "mean(-1)")
global_pool("gmp", "max", "amax(-1)")


class AdaptiveArgs(OpArgs):
    out: IntOrList = Field(...)

    @model_validator(mode="after")
    def _positive(self):
        positive(self.out, "adaptive pool output size")
        return self


def adaptive_pool(name: str, kind: str):
    class AdaptivePool(Op):
        Args = AdaptiveArgs
        short = "out"
        doc = f"Adaptive {kind} pooling to a fixed spatial size (channels kept)."

        def infer(self, a, ins):
            n = spatial_rank(ins[0], self.name)
            return (ins[0][0], *ntuple(a.out, n, "output size"))

        def extra_flops(self, a, ins, out):
            return prod(ins[0])

        def module(self, a, ins, out):
            n = spatial_rank(ins[0], self.name)
            return Ctor(f"nn.Adaptive{kind.capitalize()}Pool{n}d", [("output_size", a.out)], npos=1)
        def reach(self, a, ins, out):
            # window i spans floor(i L / O) to ceil((i + 1) L / O): stride L / O, and the widest
            # window as the span (exact when O divides L); pooling to one position reads it all
            if all(o == 1 for o in out[1:]):
                return None
            return tuple(Reach(max(-(-(i + 1) * n // o) - i * n // o for i in range(o)), Fraction(n, o))
                         for n, o in zip(ins[0][1:], out[1:]))

        def saved_for_backward(self, a, ins, out):
            if kind == "max":
                return [Saved("in0"), Saved("indices", out, "int64")]
            # PyTorch pools to a single position with a mean, which keeps nothing
            return [] if all(o == 1 for o in out[1:]) else [Saved("in0")]


    register(name)(AdaptivePool)


adaptive_pool("adaptive_avgpool", "avg")
adaptive_pool("adaptive_maxpool", "max")
