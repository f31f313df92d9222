"""Element-wise activations. Each is a tiny op built from one table row."""
from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from archc.ops.base import Ctor, Op, OpArgs, Tensor, register


class InplaceArgs(OpArgs):
    inplace: bool = False   # off by default: a shared input must not be overwritten


class LeakyArgs(OpArgs):
    slope: float = 0.01
    inplace: bool = False


class EluArgs(OpArgs):
    alpha: float = 1.0
    inplace: bool = False


class GeluArgs(OpArgs):
    approximate: Literal["none", "tanh"] = "none"


class SoftmaxArgs(OpArgs):
    dim: int = 0   # per-sample dimension; the batch dimension is never counted


class PReLUArgs(OpArgs):
    channels: bool = False   # one slope per channel instead of one shared slope
    init: float = 0.25


def activation(name: str, torch_cls: str, cost: int = 1, args: type[OpArgs] = InplaceArgs,
               kwargs: dict[str, str] | None = None, defaults: dict | None = None):
    """Register an op that maps to one nn module; `kwargs` maps torch arg name -> spec arg."""
    kwargs = kwargs if kwargs is not None else {"inplace": "inplace"}
    defaults = defaults if defaults is not None else {"inplace": False}

    class Activation(Op):
        Args = args
        doc = f"{torch_cls} element-wise."

        def extra_flops(self, a, ins, out):
            return cost * prod(out)

        def module(self, a, ins, out):
            return Ctor(f"nn.{torch_cls}", [(t, getattr(a, s)) for t, s in kwargs.items()],
                        defaults=defaults)

    Activation.__name__ = Activation.__qualname__ = torch_cls
    register(name)(Activation)


activation("relu", "ReLU")
activation("relu6", "ReLU6")
activation("leaky_relu", "LeakyReLU", args=LeakyArgs,
           kwargs={"negative_slope": "slope", "inplace": "inplace"},
           defaults={"negative_slope": 0.01, "inplace": False})
activation("elu", "ELU", args=EluArgs, kwargs={"alpha": "alpha", "inplace": "inplace"},
           defaults={"alpha": 1.0, "inplace": False})
activation("gelu", "GELU", cost=8, args=GeluArgs, kwargs={"approximate": "approximate"},
           defaults={"approximate": "none"})
activation("silu", "SiLU", cost=4)
activation("swish", "SiLU", cost=4)
activation("hardswish", "Hardswish", cost=4)
activation("hardsigmoid", "Hardsigmoid", cost=3)
activation("sigmoid", "Sigmoid", cost=4, args=OpArgs, kwargs={}, defaults={})
activation("tanh", "Tanh", cost=5, args=OpArgs, kwargs={}, defaults={})
activation("mish", "Mish", cost=6)


@register("softmax")
class Softmax(Op):
    Args = SoftmaxArgs
    doc = "Softmax along a per-sample dimension (0 = channels/features)."

    def extra_flops(self, a, ins, out):
        return 3 * prod(out)   # exp, sum, divide

    def module(self, a: SoftmaxArgs, ins, out):
        dim = a.dim + 1 if a.dim >= 0 else a.dim   # shift past the batch dimension
        return Ctor("nn.Softmax", [("dim", dim)])


@register("prelu")
class PReLU(Op):
    Args = PReLUArgs
    doc = "Parametric ReLU: one learned slope, or one per channel."

    def tensors(self, a: PReLUArgs, ins, out):
        return {"weight": Tensor((ins[0][0] if a.channels else 1,))}

    def extra_flops(self, a, ins, out):
        return 2 * prod(out)

    def module(self, a: PReLUArgs, ins, out):
        return Ctor("nn.PReLU", [("num_parameters", ins[0][0] if a.channels else 1), ("init", a.init)],
                    defaults={"num_parameters": 1, "init": 0.25})


