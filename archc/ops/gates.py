"""Channel gates: squeeze-and-excitation as one module."""
from __future__ import annotations

from math import prod

from pydantic import Field, field_validator, model_validator

from archc.errors import ShapeError
from archc.ops.activation import ActSpec, act_of
from archc.ops.base import Ctor, Op, OpArgs, Shape, Tensor, register, spatial_rank
from archc.ops.base import REGISTRY, Saved, chain_saved
from archc.ops.conv import ConvArgs

# fc1/fc2 as 1x1 convs with bias: torchvision's SqueezeExcitation and timm's SEModule keys.
SQUEEZE_EXCITATION = '''
class {Name}(nn.Module):
    """Squeeze-and-excitation: x * gate(fc2(act(fc1(mean of x over space)))), fc1/fc2 being
    1x1 convs with bias (torchvision's SqueezeExcitation and timm's SEModule names)."""

    def __init__(self, channels, squeeze, act=None, gate=None):
        super().__init__()
        self.fc1 = nn.Conv{n}d(channels, squeeze, 1)
        self.act = act if act is not None else nn.ReLU()
        self.fc2 = nn.Conv{n}d(squeeze, channels, 1)
        self.gate = gate if gate is not None else nn.Sigmoid()

    def forward(self, x):
        s = x.mean({dims}, keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))
'''


class SEArgs(OpArgs):
    squeeze: int | None = Field(None, gt=0)   # channels of the bottleneck
    reduce: int | None = Field(None, gt=0)    # or C // reduce; 16 when neither is given
    act: ActSpec = "relu"
    gate: ActSpec = "sigmoid"

    @field_validator("act", "gate")
    @classmethod
    def _act(cls, v, info):
        act = act_of(v, info.field_name)
        if act is None:
            raise ValueError(f"{info.field_name} cannot be none")
        if act[0].tensors(act[1], [(1, 1)], (1, 1)):
            raise ValueError(f"{info.field_name} '{act[0].name}' has weights; se takes a weightless one")
        return v

    @model_validator(mode="after")
    def _xor(self):
        if self.squeeze is not None and self.reduce is not None:
            raise ValueError("give squeeze (channels) or reduce (divisor), not both")
        return self


@register("se")
class SqueezeExcitation(Op):
    """GAP -> 1x1 conv to `squeeze` -> act -> 1x1 conv back to C -> gate -> x * gate."""
    Args = SEArgs
    doc = "Squeeze-and-excitation gate (fc1, act, fc2, gate) as one module."

    def squeeze(self, a: SEArgs, x: Shape) -> int:
        spatial_rank(x, self.name)
        if a.squeeze is not None:
            return a.squeeze
        r = a.reduce or 16
        if x[0] // r < 1:
            raise ShapeError(f"reduce {r} leaves no channels of {x[0]}; give squeeze instead")
        return x[0] // r

    def infer(self, a, ins):
        self.squeeze(a, ins[0])
        return ins[0]

    def tensors(self, a, ins, out):
        c, s = ins[0][0], self.squeeze(a, ins[0])
        one = (1,) * (len(ins[0]) - 1)
        cls = f"nn.Conv{len(one)}d"     # fc1 and fc2 are 1x1 convs
        return {"fc1.weight": Tensor((s, c, *one), module=cls), "fc1.bias": Tensor((s,), module=cls),
                "fc2.weight": Tensor((c, s, *one), module=cls), "fc2.bias": Tensor((c,), module=cls)}

    def macs(self, a, ins, out):
        return 2 * ins[0][0] * self.squeeze(a, ins[0])    # the two 1x1 convs on the pooled vector

    def extra_flops(self, a, ins, out):
        # GAP (one add per input element), fc1/fc2 biases (s + C), the activation on s values and
        # the gate on C values (their own per-element costs), the scaling x * gate (one per element)
        c, s = ins[0][0], self.squeeze(a, ins[0])
        (act, aa), (gate, ga) = act_of(a.act), act_of(a.gate)
        return (2 * prod(ins[0]) + s + c + act.extra_flops(aa, [(s,)], (s,))
                + gate.extra_flops(ga, [(c,)], (c,)))

    def module(self, a: SEArgs, ins, out):
        x = ins[0]
        n = len(x) - 1
        name = "SqueezeExcitation" if n == 2 else f"SqueezeExcitation{n}d"
        dims = tuple(range(2, 2 + n))
        src = SQUEEZE_EXCITATION.replace("{Name}", name).replace("{n}", str(n)) \
            .replace("{dims}", str(dims[0]) if n == 1 else str(dims))
        args: list = [("channels", x[0]), ("squeeze", self.squeeze(a, x))]
        (act, aa), (gate, ga) = act_of(a.act), act_of(a.gate)
        if (act.name, aa) != ("relu", act.Args()):
            args.append(("act", act.module(aa, [(1,)], (1,))))
        if (gate.name, ga) != ("sigmoid", gate.Args()):
            args.append(("gate", gate.module(ga, [(1,)], (1,))))
        return Ctor(name, args, npos=2, support=(src,))

    def reach(self, a, ins, out):
        return None     # the gate is computed from the mean over every position

    def saved_for_backward(self, a, ins, out):
        # x * gate keeps both factors; fc1, act, fc2 and gate keep theirs on the pooled vector
        x, s = ins[0], self.squeeze(a, ins[0])
        one = (1,) * (len(x) - 1)
        conv = REGISTRY["conv"]
        fc1, fc2 = ConvArgs(out=s, k=1), ConvArgs(out=x[0], k=1)
        (act, aa), (gate, ga) = act_of(a.act), act_of(a.gate)
        steps = [(conv, fc1, (x[0], *one), (s, *one)), (act, aa, (s, *one), (s, *one)),
                 (conv, fc2, (s, *one), (x[0], *one)), (gate, ga, (x[0], *one), (x[0], *one))]
        return [Saved("in0"), Saved("gate", (x[0], *one)),
                *chain_saved(steps, src="mean", dst="gate", prefix="se")]
