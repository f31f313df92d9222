"""Ops that move or drop values without arithmetic: flatten, reshape, identity, dropout, drop_path."""
from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, register, spatial_rank
from archc.ops.base import Saved


class FlattenArgs(OpArgs):
    start: int = Field(default=0, ge=0)     # the first per-sample dim flattened


@register("flatten")
class Flatten(Op):
    Args = FlattenArgs
    short = "start"
    doc = ("Flatten the per-sample dims into one: [C, H, W] -> [C*H*W]; from `start` on: "
           "`flatten: {start: 1}` makes [D, H, W] into [D, H*W] (ViT's patches).")

    def infer(self, a: FlattenArgs, ins):
        x = ins[0]
        if a.start >= max(len(x), 1):
            raise ShapeError(f"flatten from dim {a.start} needs an input with more dims, got {list(x)}")
        return (*x[:a.start], prod(x[a.start:]))

    def module(self, a: FlattenArgs, ins, out):
        return Ctor("nn.Flatten", [("start_dim", a.start + 1)], defaults={"start_dim": 1})

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # a view of its input


class ReshapeArgs(OpArgs):
    shape: list[int]


@register("reshape")
class Reshape(Op):
    Args = ReshapeArgs
    short = "shape"
    doc = "Reshape the per-sample tensor; one dimension may be -1."

    def infer(self, a: ReshapeArgs, ins):
        n = prod(ins[0])
        known = prod(d for d in a.shape if d != -1)
        if a.shape.count(-1) > 1 or any(d == 0 or d < -1 for d in a.shape):
            raise ShapeError(f"reshape needs positive sizes and at most one -1, got {a.shape}")
        if -1 in a.shape:
            if n % known:
                raise ShapeError(f"cannot reshape {list(ins[0])} ({n} values) to {a.shape}")
            return tuple(n // known if d == -1 else d for d in a.shape)
        if known != n:
            raise ShapeError(f"cannot reshape {list(ins[0])} ({n} values) to {a.shape}")
        return tuple(a.shape)

    def module(self, a, ins, out):
        return Ctor("nn.Unflatten", [("dim", 1), ("unflattened_size", tuple(out))], npos=2) \
            if len(ins[0]) == 1 else Ctor("Reshape", [("shape", tuple(out))], npos=1, support=(RESHAPE,))

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # a view of its input


RESHAPE = '''
class Reshape(nn.Module):
    """Reshape every sample to a fixed shape (the batch dimension is kept)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
'''


class SelectArgs(OpArgs):
    index: int = 0
    dim: int = Field(default=0, ge=0)


@register("select")
class Select(Op):
    """One position along a per-sample dim, the dim dropped: `x[:, 0]`, ViT's class token out of
    its tokens. Forward's own expression, as torchvision writes it: no module, so not in a seq."""
    Args = SelectArgs
    short = "index"
    doc = "Take one position along a per-sample dim (`select: 0` on tokens [N, D] is x[:, 0], [D])."

    def infer(self, a: SelectArgs, ins):
        x = ins[0]
        if a.dim >= len(x) or not -x[a.dim] <= a.index < x[a.dim]:
            raise ShapeError(f"select of position {a.index} along dim {a.dim} is outside an input {list(x)}")
        return (*x[:a.dim], *x[a.dim + 1:])

    def expr(self, a: SelectArgs, inputs):
        return f"{inputs[0]}[{':, ' * (a.dim + 1)}{a.index}]"

    def reach(self, a, ins, out):
        return None

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # a view of its input


@register("identity")
class Identity(Op):
    doc = "Pass the input through unchanged."

    def module(self, a, ins, out):
        return Ctor("nn.Identity")

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # the input itself


class DropoutArgs(OpArgs):
    p: float = Field(0.5, ge=0, le=1)
    channel: bool = False    # drop whole channels (Dropout1d/2d/3d by input rank)


@register("dropout")
class Dropout(Op):
    Args = DropoutArgs
    short = "p"
    value_args = frozenset({"p"})
    doc = "Dropout; `channel: true` drops whole channels (nn.Dropout1d/2d/3d by input rank)."

    def module(self, a: DropoutArgs, ins, out):
        if a.channel:
            if len(ins[0]) < 2:
                raise ShapeError(f"channel dropout needs a [C, ...] input, got {list(ins[0])}")
            return Ctor(f"nn.Dropout{spatial_rank(ins[0], 'dropout')}d", [("p", a.p)], npos=1)
        return Ctor("nn.Dropout", [("p", a.p)], npos=1)

    def infer(self, a: DropoutArgs, ins):
        if a.channel and len(ins[0]) < 2:
            raise ShapeError(f"channel dropout needs a [C, ...] input, got {list(ins[0])}")
        return ins[0]

    def saved_for_backward(self, a: DropoutArgs, ins, out):
        # the keep-mask it multiplies by: per channel for channel dropout; per element a bool
        # mask in CUDA's fused kernel, a mask of the input's dtype on the CPU; none at p 0 or 1
        if a.p in (0, 1):
            return []
        if a.channel:
            return [Saved("noise", (ins[0][0],) + (1,) * (len(ins[0]) - 1))]
        return [Saved("mask", ins[0], "mask")]

    def shares_input(self, a: DropoutArgs):
        return a.p == 0

    def may_share_input(self, a: DropoutArgs):
        return True         # in eval mode it returns its input     # PyTorch returns the input itself


DROP_PATH = '''
class DropPath(nn.Module):
    """Stochastic depth (torchvision's StochasticDepth): in training, zero each sample ('row')
    or the whole batch ('batch') with probability p and scale the rest by 1 / (1 - p)."""

    def __init__(self, p, mode="row"):
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        if self.mode == "row":
            shape = [x.shape[0]] + [1] * (x.dim() - 1)
        else:
            shape = [1] * x.dim()
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise
'''


class DropPathArgs(OpArgs):
    p: float = Field(ge=0, le=1)
    mode: Literal["row", "batch"] = "row"


@register("drop_path")
class DropPath(Op):
    """Stochastic depth for residual bodies; the identity at inference, so no FLOPs counted."""
    Args = DropPathArgs
    short = "p"
    value_args = frozenset({"p"})
    doc = "Stochastic depth: drop whole samples ('row') or the batch ('batch') in training."

    def module(self, a: DropPathArgs, ins, out):
        return Ctor("DropPath", [("p", a.p), ("mode", a.mode)], npos=1, defaults={"mode": "row"},
                    support=(DROP_PATH,))

    def saved_for_backward(self, a: DropPathArgs, ins, out):
        # the product keeps its noise: one value per sample ('row') or per batch ('batch')
        if a.p == 0:
            return []
        return [Saved("noise", (1,) * len(ins[0]), batched=a.mode == "row")]

    def shares_input(self, a: DropPathArgs):
        return a.p == 0

    def may_share_input(self, a: DropPathArgs):
        return True         # in eval mode it returns its input


PERMUTE = '''
class Permute(nn.Module):
    """Reorder each sample's dimensions (torch.permute with the batch dimension left first)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = [0] + [d + 1 for d in dims]

    def forward(self, x):
        return torch.permute(x, self.dims)
'''


class PermuteArgs(OpArgs):
    dims: list[int]


@register("permute")
class Permute(Op):
    """A view with the per-sample dims reordered: [C, H, W] with dims [1, 2, 0] is [H, W, C]
    (ConvNeXt's channels-last section). Ops on the moved layout see it as any other shape;
    the receptive field follows the dims through (Op.moves)."""
    Args = PermuteArgs
    short = "dims"
    doc = "Reorder the per-sample dims: `permute: [1, 2, 0]` makes [C, H, W] channels-last [H, W, C]."

    def infer(self, a: PermuteArgs, ins):
        x = ins[0]
        if sorted(a.dims) != list(range(len(x))):
            raise ShapeError(f"permute needs each of the {len(x)} per-sample dims 0..{len(x) - 1} once "
                             f"for an input {list(x)}, got {a.dims}")
        return tuple(x[d] for d in a.dims)

    def moves(self, a: PermuteArgs, ins):
        return tuple(a.dims)

    def module(self, a: PermuteArgs, ins, out):
        return Ctor("Permute", [("dims", a.dims)], npos=1, support=(PERMUTE,))

    def saved_for_backward(self, a, ins, out):
        return []

    def shares_input(self, a):
        return True     # a view of its input
