"""Learned tensors that are not a layer's weight: a parameter of the class the layer sits in."""
from __future__ import annotations

from math import prod

from pydantic import Field

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
    start_arg = "value"
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


def tokens_of(x, op: str) -> tuple[int, int]:
    if len(x) != 2:
        raise ShapeError(f"'{op}' needs tokens [N, D], got {list(x)}: make them with "
                         f"`flatten: {{start: 1}}` and `permute: [1, 0]`")
    return x


class TokenArgs(OpArgs):
    std: float = Field(default=0.0, ge=0.0)     # 0: zeros (torchvision's ViT); else normal(0, std)


@register("class_token")
class ClassToken(Op):
    """A learned token put before the others, [N, D] -> [N + 1, D]: ViT's class token, a
    parameter [1, 1, D] of the enclosing class named after the layer (torchvision: `class_token`),
    expanded over the batch and concatenated in front."""
    Args = TokenArgs
    holds_parameter = True
    start_arg = "std"
    doc = "Put a learned token before the tokens [N, D] (ViT's class token); zeros, or normal with `std`."

    def infer(self, a: TokenArgs, ins):
        n, d = tokens_of(ins[0], self.name)
        return (n + 1, d)

    def tensors(self, a: TokenArgs, ins, out):
        return {"": Tensor((1, 1, ins[0][1]))}

    def module(self, a: TokenArgs, ins, out):
        return Ctor("nn.Parameter", [("data", starting((1, 1, ins[0][1]), a.std))], npos=1)

    def applied(self, a: TokenArgs, param: str, x: str) -> str:
        return f"torch.cat([{param}.expand({x}.shape[0], -1, -1), {x}], dim=1)"

    def reach(self, a, ins, out):
        return None     # the token reads no input position

    def saved_for_backward(self, a, ins, out):
        return []       # cat and expand keep only sizes


class EmbeddingArgs(OpArgs):
    std: float = Field(default=0.02, ge=0.0)    # torchvision's ViT (from BERT): normal(0, 0.02)


@register("pos_embedding")
class PositionEmbedding(Op):
    """x + E for a learned E of the input's shape: ViT's position embedding, a parameter
    [1, N, D] of the enclosing class named after the layer (torchvision: `encoder.pos_embedding`)."""
    Args = EmbeddingArgs
    holds_parameter = True
    start_arg = "std"
    doc = "Add a learned tensor of the input's shape (ViT's position embedding), starting normal with `std`."

    def tensors(self, a: EmbeddingArgs, ins, out):
        return {"": Tensor((1, *ins[0]))}

    def extra_flops(self, a, ins, out):
        return prod(out)

    def module(self, a: EmbeddingArgs, ins, out):
        return Ctor("nn.Parameter", [("data", starting((1, *ins[0]), a.std))], npos=1)

    def applied(self, a: EmbeddingArgs, param: str, x: str) -> str:
        return f"{x} + {param}"

    def saved_for_backward(self, a, ins, out):
        return []       # a sum keeps nothing


def starting(shape: tuple, std: float) -> Ctor:
    """A tensor's first value: zeros, or drawn normal(0, std) (as `torch.empty(...).normal_(std=...)`)."""
    if std == 0:
        return Ctor("torch.zeros", [(f"size{j}", d) for j, d in enumerate(shape)], npos=len(shape))
    return Ctor("torch.normal", [("mean", 0.0), ("std", std), ("size", tuple(shape))], npos=3)
