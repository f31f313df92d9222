"""Element-wise activations. Each is a tiny op built from one table row."""
from __future__ import annotations

from math import prod
from typing import Any, Literal

from pydantic import ValidationError

from archc.errors import did_you_mean
from archc.ops.base import REGISTRY, Ctor, Op, OpArgs, Tensor, register
from archc.ops.base import Saved, module_kind


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


# What each activation keeps for backward: its result (relu, sigmoid, tanh; leaky_relu and elu
# when in place), else its input; in place, such an op makes autograd copy the input first.
KEEPS_RESULT = {"relu", "sigmoid", "tanh"}
KEEPS_RESULT_IN_PLACE = {"leaky_relu", "elu"}


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
        def saved_for_backward(self, a, ins, out):
            inplace = getattr(a, "inplace", False)
            if self.name in KEEPS_RESULT or (inplace and self.name in KEEPS_RESULT_IN_PLACE):
                return [Saved("out")]
            return [Saved("input_copy", ins[0])] if inplace else [Saved("in0")]

        def shares_input(self, a):
            return getattr(a, "inplace", False)


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

    def reach(self, a: SoftmaxArgs, ins, out):
        # along the channels it reads one position; along a spatial dim, all of them
        return super().reach(a, ins, out) if a.dim % len(ins[0]) == 0 else None

    def saved_for_backward(self, a, ins, out):
        return [Saved("out")]


# PReLU's default is its own `init` value, which reset_parameters restores
module_kind("prelu", ("nn.PReLU",), {"weight": ("reset", {})})


@register("prelu")
class PReLU(Op):
    Args = PReLUArgs
    doc = "Parametric ReLU: one learned slope, or one per channel."

    def tensors(self, a: PReLUArgs, ins, out):
        return {"weight": Tensor((ins[0][0] if a.channels else 1,), module="nn.PReLU")}

    def extra_flops(self, a, ins, out):
        return 2 * prod(out)

    def module(self, a: PReLUArgs, ins, out):
        return Ctor("nn.PReLU", [("num_parameters", ins[0][0] if a.channels else 1), ("init", a.init)],
                    defaults={"num_parameters": 1, "init": 0.25})


# -- activations as an argument of composite ops (conv_bn, se) ------------------------------

# Every op usable as `act:` / `gate:`; another module may add its own activations here.
ACTIVATIONS = ["relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "hardswish",
               "hardsigmoid", "sigmoid", "tanh", "mish", "prelu"]

# `relu` | `{leaky_relu: {slope: 0.2}}` | null / 'none' (no activation)
ActSpec = str | dict[str, dict[str, Any] | None] | None


def act_of(spec: ActSpec, what: str = "act") -> tuple[Op, OpArgs] | None:
    """The activation op and its validated args a spec value names, or None for none.
    Raises ValueError (inside pydantic validation this becomes a located SpecError)."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ValueError(f"{what} is one activation: a name or {{name: {{args}}}}, got {spec}")
        (name, raw), = spec.items()
    else:
        name, raw = spec, None
    if name not in ACTIVATIONS or name not in REGISTRY:
        raise ValueError(f"unknown activation '{name}'{did_you_mean(name, ACTIVATIONS)}; "
                         f"expected one of: none, {', '.join(ACTIVATIONS)}")
    op = REGISTRY[name]
    try:
        return op, op.Args.model_validate(raw or {})
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(map(str, err["loc"]))
        if err["type"] == "extra_forbidden":
            msg = f"unknown key '{key}'{did_you_mean(key, op.Args.model_fields)}; expected one of: " \
                  f"{', '.join(op.Args.model_fields) or 'none'}"
        else:
            msg = f"'{key}': {err['msg']}" if key else err["msg"]
        raise ValueError(f"{what} '{name}': {msg}") from None
