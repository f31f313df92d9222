"""Convolution variants built from the plain conv's rules: depthwise, depthwise-separable, and
conv-bn-act as one module. Shapes, tensors and MACs come from REGISTRY['conv'] etc., never
re-derived here."""
from __future__ import annotations

import keyword
from typing import Literal

from pydantic import Field, field_validator, model_validator

from archc.errors import ShapeError
from archc.ops.activation import ActSpec, act_of
from archc.ops.base import REGISTRY, Ctor, Op, OpArgs, Shape, Tensor, register, spatial_rank
from archc.ops.base import chain_saved, same_call
from archc.ops.conv import ConvArgs, IntOrList, Padding, conv_text

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def conv() -> Op:
    return REGISTRY["conv"]


def prefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}.{k}": t for k, t in tensors.items()}


# -- depthwise ---------------------------------------------------------------------------------

class DWConvArgs(OpArgs):
    out: int | None = Field(None, gt=0)    # default: input channels x mult
    mult: int = Field(1, gt=0)             # channel multiplier
    k: IntOrList
    stride: IntOrList = 1
    pad: Padding = 0
    dilation: IntOrList = 1
    bias: bool = True
    padding_mode: PaddingMode = "zeros"


def depthwise(a, c_in: int) -> ConvArgs:
    """The plain conv args of a depthwise conv (groups = input channels)."""
    out = a.out if a.out is not None else c_in * a.mult
    if out % c_in:
        raise ShapeError(f"depthwise out {out} must be a multiple of the input channels {c_in}")
    if a.out is not None and a.mult != 1 and out != c_in * a.mult:
        raise ShapeError(f"depthwise out {out} is not input channels {c_in} x mult {a.mult}")
    return ConvArgs(out=out, k=a.k, stride=a.stride, pad=a.pad, dilation=a.dilation, groups=c_in,
                    bias=a.bias, padding_mode=a.padding_mode)


@register("dwconv")
class DWConv(Op):
    """Depthwise conv: one filter group per input channel; `dwconv: 3` = kernel 3."""
    Args = DWConvArgs
    short = "k"
    doc = "Depthwise convolution (groups = input channels); out = channels x mult."

    def describe(self, a: DWConvArgs, ins):
        return conv_text(self.name, a, ins, a.out or (f"x{a.mult}" if a.mult > 1 else None))

    def infer(self, a, ins):
        return conv().infer(depthwise(a, ins[0][0]), ins)

    def tensors(self, a, ins, out):
        return conv().tensors(depthwise(a, ins[0][0]), ins, out)

    def macs(self, a, ins, out):
        return conv().macs(depthwise(a, ins[0][0]), ins, out)

    def extra_flops(self, a, ins, out):
        return conv().extra_flops(depthwise(a, ins[0][0]), ins, out)

    def module(self, a, ins, out):
        return conv().module(depthwise(a, ins[0][0]), ins, out)

    def reach(self, a, ins, out):
        return conv().reach(depthwise(a, ins[0][0]), ins, out)

    def saved_for_backward(self, a, ins, out):
        return conv().saved_for_backward(depthwise(a, ins[0][0]), ins, out)


# -- depthwise-separable -----------------------------------------------------------------------

SEPARABLE = '''
class {Name}{n}d(nn.Module):
    """Depthwise conv (`conv1`) then 1x1 pointwise conv (`pointwise`), as timm's Xception
    SeparableConv2d names them.{note}"""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 mult=1, bias=False):
        super().__init__()
        self.conv1 = {Conv}(
            in_channels, in_channels * mult, kernel_size, stride, padding, dilation,
            groups=in_channels, bias=bias)
        self.pointwise = nn.Conv{n}d(in_channels * mult, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.conv1(x))
'''


class SepConvArgs(OpArgs):
    out: int = Field(gt=0)
    k: IntOrList
    stride: IntOrList = 1
    pad: Padding = 0
    dilation: IntOrList = 1
    mult: int = Field(1, gt=0)     # depthwise channel multiplier
    bias: bool = False             # both convs, as in Xception


@register("sepconv")
class SepConv(Op):
    """Depthwise (k x k, groups = C) then pointwise (1x1) conv as one module."""
    Args = SepConvArgs
    short = "out"
    doc = "Depthwise-separable convolution: depthwise conv1 + 1x1 pointwise, one module."

    def describe(self, a: SepConvArgs, ins):
        return conv_text(self.name, a, ins, a.out)

    @same_call
    def parts(self, a: SepConvArgs, x: Shape):
        dw = ConvArgs(out=x[0] * a.mult, k=a.k, stride=a.stride, pad=a.pad, dilation=a.dilation,
                      groups=x[0], bias=a.bias)
        mid = conv().infer(dw, [x])
        return dw, mid, ConvArgs(out=a.out, k=1, bias=a.bias)

    def infer(self, a, ins):
        _, mid, pw = self.parts(a, ins[0])
        return conv().infer(pw, [mid])

    def tensors(self, a, ins, out):
        dw, mid, pw = self.parts(a, ins[0])
        return {**prefixed("conv1", conv().tensors(dw, ins, mid)),
                **prefixed("pointwise", conv().tensors(pw, [mid], out))}

    def macs(self, a, ins, out):
        dw, mid, pw = self.parts(a, ins[0])
        return conv().macs(dw, ins, mid) + conv().macs(pw, [mid], out)

    def extra_flops(self, a, ins, out):
        dw, mid, pw = self.parts(a, ins[0])
        return conv().extra_flops(dw, ins, mid) + conv().extra_flops(pw, [mid], out)

    def module(self, a: SepConvArgs, ins, out):
        x = ins[0]
        dw, mid, _ = self.parts(a, x)
        inner = conv().module(dw, ins, mid)       # nn.ConvNd, or ConvNdSame for TF 'same'
        n = spatial_rank(x, self.name)
        arg = dict(inner.args)
        same = a.pad == "same"
        name = f"SeparableConv{n}d{'Same' if same else ''}"
        src = SEPARABLE.replace("{Name}{n}d", name).replace("{Conv}", inner.callee).replace("{n}", str(n)) \
            .replace("{note}", " The depthwise conv pads 'same' for each input." if same else "")
        return Ctor(name, [
            ("in_channels", x[0]), ("out_channels", a.out), ("kernel_size", arg["kernel_size"]),
            ("stride", arg["stride"]), ("padding", arg["padding"]), ("dilation", arg["dilation"]),
            ("mult", a.mult), ("bias", a.bias)], npos=3,
            defaults={"stride": 1, "padding": 0, "dilation": 1, "mult": 1, "bias": False},
            support=inner.support + (src,))

    def reach(self, a, ins, out):
        dw, mid, _ = self.parts(a, ins[0])
        return conv().reach(dw, ins, mid)       # the 1x1 pointwise conv reads one position

    def saved_for_backward(self, a, ins, out):
        dw, mid, pw = self.parts(a, ins[0])
        return chain_saved([(conv(), dw, ins[0], mid), (conv(), pw, mid, out)])


# -- conv + bn + activation as one nn.Sequential -------------------------------------------------

class ConvBNArgs(ConvArgs):
    """The conv's own args (bias off by default: BN follows), then BN's and the activation."""
    bias: bool = False
    eps: float = Field(1e-5, gt=0)
    momentum: float | None = 0.1
    act: ActSpec = "relu"
    names: list[str] | None = None   # child names [conv, bn] or [conv, bn, act]; default 0, 1, 2

    @field_validator("act")
    @classmethod
    def _act(cls, v):
        act_of(v)
        return v

    @model_validator(mode="after")
    def _names(self):
        if self.names is not None:
            if len(self.names) not in (2, 3) or (len(self.names) == 3 and act_of(self.act) is None):
                want = "2 child names (conv, bn)" if act_of(self.act) is None else \
                    "2 or 3 child names (conv, bn[, act])"
                raise ValueError(f"names needs {want}, got {self.names}")
            for j, n in enumerate(self.names):
                if not (n.isidentifier() and not keyword.iskeyword(n)) and n != str(j):
                    raise ValueError(f"child name must be a Python identifier, got {n!r}")
            if len(set(self.names)) != len(self.names):
                raise ValueError(f"child names must differ, got {self.names}")
        return self


def child_names(names: list[str] | None, n: int) -> list[str]:
    """Numbered children by default; two names given with an activation name it 'act' (or '2'
    after numbered names): GoogLeNet's BasicConv2d has conv and bn modules, its relu is not one."""
    if names is None:
        return [str(j) for j in range(n)]
    if len(names) < n:
        numbered = all(x == str(j) for j, x in enumerate(names))
        extra = "2" if numbered else next(c for c in ("act", "act_", "act2") if c not in names)
        return [*names, extra]
    return list(names)


@register("conv_bn")
class ConvBN(Op):
    """conv (bias off by default) -> BatchNorm -> activation, as one nn.Sequential whose children
    are numbered (torchvision's Conv2dNormActivation) or named by `names` (GoogLeNet's
    BasicConv2d: `names: [conv, bn]` with `act` kept out of the state_dict either way)."""
    Args = ConvBNArgs
    short = "out"
    doc = "Convolution + batch norm + activation (relu; `act: none` for none) as one module."

    def describe(self, a: ConvBNArgs, ins):
        act = a.act if not isinstance(a.act, dict) else next(iter(a.act))
        return conv_text(self.name, a, ins, a.out) + {"relu": "", "none": ", no act", None: ", no act"}.get(act, f", {act}")

    @same_call
    def parts(self, a: ConvBNArgs, x: Shape):
        """[(child name, op, args, in shape, out shape)] of the conv, bn and activation."""
        c = ConvArgs(out=a.out, k=a.k, stride=a.stride, pad=a.pad, dilation=a.dilation,
                     groups=a.groups, bias=a.bias, padding_mode=a.padding_mode)
        steps = [(conv(), c), (REGISTRY["bn"], REGISTRY["bn"].Args(eps=a.eps, momentum=a.momentum))]
        act = act_of(a.act)
        if act is not None:
            op, args = act
            if "inplace" in type(args).model_fields and "inplace" not in args.model_fields_set:
                # BN's output has one reader, the activation, and BN does not keep it: as
                # torchvision's Conv2dNormActivation, the activation overwrites it
                args = args.model_copy(update={"inplace": True})
            steps.append((op, args))
        names = child_names(a.names, len(steps))
        out, shape = [], x
        for name, (op, args) in zip(names, steps):
            y = tuple(op.infer(args, [shape]))
            out.append((name, op, args, shape, y))
            shape = y
        return out

    def infer(self, a, ins):
        return self.parts(a, ins[0])[-1][4]

    def tensors(self, a, ins, out):
        return {k: t for name, op, args, x, y in self.parts(a, ins[0])
                for k, t in prefixed(name, op.tensors(args, [x], y)).items()}

    def macs(self, a, ins, out):
        return sum(op.macs(args, [x], y) for _, op, args, x, y in self.parts(a, ins[0]))

    def extra_flops(self, a, ins, out):
        # the conv's bias adds, BN's scale and shift, the activation's own count
        return sum(op.extra_flops(args, [x], y) for _, op, args, x, y in self.parts(a, ins[0]))

    def module(self, a, ins, out):
        return Ctor("nn.Sequential", [(name, op.module(args, [x], y))
                                      for name, op, args, x, y in self.parts(a, ins[0])])

    def reach(self, a, ins, out):
        _, op, args, x, y = self.parts(a, ins[0])[0]
        return op.reach(args, [x], y)       # the conv's; bn and the activation are pointwise

    def saved_for_backward(self, a, ins, out):
        return chain_saved([(op, args, x, y) for _, op, args, x, y in self.parts(a, ins[0])])
