"""The op contract: one registered class per op, holding its args model and its rules.

Every rule is a pure function of the resolved args and the per-sample input shapes, so the
analysis never needs torch. `module()` returns a constructor description that the emitter
renders as PyTorch source; nothing here imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from archc.errors import ShapeError

Shape = tuple[int, ...]


class OpArgs(BaseModel):
    """Base of every op's args: unknown keys are errors, values are immutable once resolved."""
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NoArgs(OpArgs):
    pass


@dataclass
class Ctor:
    """A constructor call in generated code: `callee(pos..., name=value...)`.

    `args` holds (parameter name, value) pairs; the first `npos` are written positionally.
    A value is a Python literal, a nested Ctor, or a list of Ctors / (name, Ctor) pairs
    (for nn.Sequential). Names matter: the emitter names constructor parameters after them.
    """
    callee: str
    args: list[tuple[str, Any]] = field(default_factory=list)
    npos: int = 0
    defaults: dict[str, Any] = field(default_factory=dict)   # args left out when at default
    support: tuple[str, ...] = ()   # helper class sources this call needs in the generated file


@dataclass(frozen=True)
class Tensor:
    """A state_dict entry an op owns, relative to its module (`weight`, `fc1.bias`)."""
    shape: Shape
    trainable: bool = True

    @property
    def numel(self) -> int:
        return prod(self.shape)


class Op:
    """Base of every op. Subclasses set `name` and `Args`, and override the rules they need."""
    name: ClassVar[str]
    Args: ClassVar[type[OpArgs]] = NoArgs
    short: ClassVar[str | None] = None     # the arg a scalar/list short form fills (`linear: 120`)
    arity: ClassVar[int | None] = 1        # inputs taken; None = two or more (merges)
    doc: ClassVar[str] = ""

    # -- analysis -----------------------------------------------------------------------
    def infer(self, a: OpArgs, ins: list[Shape]) -> Shape:
        return ins[0]

    def tensors(self, a: OpArgs, ins: list[Shape], out: Shape) -> dict[str, Tensor]:
        """The state_dict entries of this op's module, params and buffers, in module order."""
        return {}

    def macs(self, a: OpArgs, ins: list[Shape], out: Shape) -> int:
        """Multiply-accumulates of conv / linear / matmul, bias excluded (torch FlopCounter / 2)."""
        return 0

    def extra_flops(self, a: OpArgs, ins: list[Shape], out: Shape) -> int:
        """Arithmetic beyond 2 x macs: bias adds, norms, activations, pooling windows, merges."""
        return 0

    def flops(self, a: OpArgs, ins: list[Shape], out: Shape) -> int:
        return 2 * self.macs(a, ins, out) + self.extra_flops(a, ins, out)

    def memo(self, a: OpArgs, x: Shape, compute):
        """compute() once for the (args, shape) pair the rules of one node are asked about in a
        row (infer, tensors, macs, flops). One entry, swapped atomically: safe across threads."""
        last = getattr(self, "_memo", None)
        if last is not None and last[0] is a and last[1] == x:
            return last[2]
        value = compute()
        self._memo = (a, x, value)
        return value

    # -- emission -----------------------------------------------------------------------
    def module(self, a: OpArgs, ins: list[Shape], out: Shape) -> Ctor | None:
        """The nn.Module to construct; every single-input op has one (so it fits nn.Sequential)."""
        return None

    def expr(self, a: OpArgs, inputs: list[str]) -> str:
        """Forward expression for ops without a module (merges), over input variable names."""
        raise NotImplementedError(self.name)


REGISTRY: dict[str, Op] = {}


def register(name: str, *aliases: str):
    """Class decorator: `@register("conv")` adds one instance of the op under its names."""
    def deco(cls):
        cls.name = name
        inst = cls()
        for n in (name, *aliases):
            if n in REGISTRY:
                raise RuntimeError(f"op '{n}' registered twice")
            REGISTRY[n] = inst
        return cls
    return deco


# -- shared shape helpers --------------------------------------------------------------------

def spatial_rank(shape: Shape, op: str) -> int:
    """Spatial dims of a [C, *spatial] shape; 1d/2d/3d ops follow the input rank."""
    if len(shape) not in (2, 3, 4):
        raise ShapeError(f"'{op}' needs input [C, L], [C, H, W] or [C, D, H, W], got {list(shape)}")
    return len(shape) - 1


def ntuple(v, n: int, what: str) -> tuple[int, ...]:
    """An int or a list of n ints as an n-tuple."""
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ShapeError(f"{what} needs {n} values for a {n}d input, got {list(v)}")
        return tuple(v)
    return (v,) * n


def same_pad(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow 'same': out = ceil(size / s); padding split with the extra on the end."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def window_out(size: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (PyTorch's formula, including ceil_mode's rule)."""
    span = size + lo + hi - d * (k - 1) - 1
    if ceil_mode:
        n = -(-span // s) + 1
        if (n - 1) * s >= size + lo:   # last window must start inside the input or left pad
            n -= 1
        return n
    return span // s + 1
