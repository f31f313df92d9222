"""Learned tensors that are not a layer's weight: a parameter of the class the layer sits in."""
from __future__ import annotations

from math import prod

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Tensor, register


class ScaleArgs(OpArgs):
    shape: list[int] | None = None     # default: one value per channel, [C, 1, ...]
    value: float = 1.0                 # every value starts here (ConvNeXt: 1e-6)


@register("layer_scale")
class Scale(Op):
    """x * s for a learned tensor s broadcast over the sample: ConvNeXt's and CaiT's layer
    scale. s is a parameter of the enclosing class under the layer's name
    (`features.1.0.layer_scale`), as torchvision registers it, not a module: the layer sits in a
    block's layers or at the top level, never inside a seq."""
    Args = ScaleArgs
    holds_parameter = True
    doc = ("Multiply by a learned tensor (layer scale), a parameter named after the layer; "
           "`shape` defaults to one value per channel, `value` is where it starts.")

    def shape(self, a: ScaleArgs, x) -> tuple[int, ...]:
        if a.shape is None:
            if not x:
                raise ShapeError("'layer_scale' needs an input with dims")
            return (x[0],) + (1,) * (len(x) - 1)
        s = tuple(a.shape)
        if any(d <= 0 for d in s) or len(s) > len(x) or any(
                d not in (1, n) for d, n in zip(reversed(s), reversed(x))):
            raise ShapeError(f"a layer_scale of shape {list(s)} does not broadcast over an input {list(x)}: "
                             f"each of its dims must be 1 or the input's, counted from the last")
        return s

    def infer(self, a: ScaleArgs, ins):
        self.shape(a, ins[0])
        return ins[0]

    def tensors(self, a: ScaleArgs, ins, out):
        return {"": Tensor(self.shape(a, ins[0]))}

    def extra_flops(self, a, ins, out):
        return prod(out)

    def module(self, a: ScaleArgs, ins, out):
        return Ctor("nn.Parameter", [("data", Ctor("torch.full", [("size", self.shape(a, ins[0])),
                                                                  ("fill_value", a.value)], npos=2))], npos=1)

    def applied(self, a: ScaleArgs, param: str, x: str) -> str:
        """The forward expression with the parameter `param`."""
        return f"{param} * {x}"
