"""Merges of several inputs: element-wise add and mul, concatenation along channels."""
from __future__ import annotations

from math import prod

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, register
from archc.ops.base import Reach


def broadcast(shapes, what: str):
    """Per-sample broadcast of shapes of equal rank (size-1 dims stretch, as in torch)."""
    rank = {len(s) for s in shapes}
    if len(rank) != 1:
        raise ShapeError(f"'{what}' merges {' with '.join(map(str, map(list, shapes)))}: ranks differ")
    out = []
    for dims in zip(*shapes):
        big = {d for d in dims if d != 1}
        if len(big) > 1:
            raise ShapeError(f"'{what}' merges {' with '.join(map(str, map(list, shapes)))}: shapes differ")
        out.append(big.pop() if big else dims[0])      # all 1: the first's (its expression, in generated code)
    return tuple(out)


class Elementwise(Op):
    arity = None
    symbol: str

    def infer(self, a, ins):
        return broadcast(ins, self.name)

    def extra_flops(self, a, ins, out):
        return (len(ins) - 1) * prod(out)

    def expr(self, a, inputs):
        return f" {self.symbol} ".join(inputs)

    def reach(self, a, ins, out):
        # an input of spatial size 1 broadcasts: the receptive-field pass lets its one position
        # feed every output; the others read the same position
        if len(out) >= 2 and all(len(x) == len(out) and all(v in (1, o) for v, o in zip(x[1:], out[1:]))
                                 for x in ins):
            return (Reach(),) * (len(out) - 1)
        return None


class AddArgs(OpArgs):
    inplace: bool = False    # accumulate into the first input (`out += identity`)


@register("add")
class Add(Elementwise):
    Args = AddArgs
    symbol = "+"
    doc = "Element-wise sum of two or more inputs."

    def describe(self, a, ins):
        return "+"

    def expr(self, a: AddArgs, inputs):
        if a.inplace:
            return inputs[0] + "".join(f".add_({x})" for x in inputs[1:])
        return super().expr(a, inputs)

    def statement(self, a: AddArgs, dst, inputs):
        if a.inplace and dst == inputs[0]:
            return f"{dst} += {' + '.join(inputs[1:])}"
        return super().statement(a, dst, inputs)

    def saved_for_backward(self, a, ins, out):
        return []    # the gradient of a sum needs no values

    def shares_input(self, a: AddArgs):
        return a.inplace


@register("mul")
class Mul(Elementwise):
    symbol = "*"
    doc = "Element-wise product of two or more inputs (size-1 dims broadcast)."

    def describe(self, a, ins):
        return "×"


class ConcatArgs(OpArgs):
    dim: int = 0   # per-sample dimension: 0 = channels


@register("concat", "cat")
class Concat(Op):
    Args = ConcatArgs
    arity = None
    doc = "Concatenate inputs along a per-sample dimension (default: channels)."

    def infer(self, a: ConcatArgs, ins):
        rank = len(ins[0])
        d = a.dim % rank if -rank <= a.dim < rank else None
        if d is None or any(len(s) != rank for s in ins):
            raise ShapeError(f"'concat' along dim {a.dim} of inputs {[list(s) for s in ins]}")
        for s in ins:
            if s[:d] + s[d + 1:] != ins[0][:d] + ins[0][d + 1:]:
                raise ShapeError(f"'concat' merges {' with '.join(str(list(s)) for s in ins)}: "
                                 f"shapes differ outside dim {a.dim}")
        return (*ins[0][:d], sum(s[d] for s in ins), *ins[0][d + 1:])

    def expr(self, a: ConcatArgs, inputs):
        dim = a.dim + 1 if a.dim >= 0 else a.dim
        return f"torch.cat([{', '.join(inputs)}], {dim})"

    def expr_over(self, a: ConcatArgs, items, n):
        return f"torch.cat({items}, {a.dim + 1 if a.dim >= 0 else a.dim})"

    def saved_for_backward(self, a, ins, out):
        return []    # the gradient is sliced back by sizes alone


SCALE = '''
class Scale(nn.Module):
    """Multiply by a constant (Inception-ResNet scales its residual branches)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return x * self.scale
'''


class ScaleArgs(OpArgs):
    by: float


@register("scale")
class Scale(Op):
    Args = ScaleArgs
    short = "by"
    doc = "Multiply by a constant: `scale: 0.17`."

    def extra_flops(self, a, ins, out):
        return prod(out)

    def module(self, a: ScaleArgs, ins, out):
        return Ctor("Scale", [("scale", a.by)], npos=1, support=(SCALE,))

    def saved_for_backward(self, a, ins, out):
        return []    # a product with a constant keeps only the constant
