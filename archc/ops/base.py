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

    def __init__(self, /, **data):
        # Values marked `symbolic` (the emitter's: a number that also carries the expression it
        # came from) were validated in their concrete form; validating again would drop the mark.
        if any(getattr(v, "symbolic", False) for v in data.values()):
            built = type(self).model_construct(**data)
            for key in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
                object.__setattr__(self, key, getattr(built, key))
            return
        super().__init__(**data)


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
    """A state_dict entry an op owns, relative to its module (`weight`, `fc1.bias`). `module` is the
    torch class of the module holding it (`nn.Conv2d`): what init rules select by (`op: conv`)."""
    shape: Shape
    trainable: bool = True
    module: str = ""

    @property
    def numel(self) -> int:
        return prod(self.shape)


class Op:
    """Base of every op. Subclasses set `name` and `Args`, and override the rules they need."""
    name: ClassVar[str]
    Args: ClassVar[type[OpArgs]] = NoArgs
    short: ClassVar[str | None] = None     # the arg a scalar/list short form fills (`linear: 120`)
    arity: ClassVar[int | None] = 1        # inputs taken; None = two or more (merges)
    holds_parameter: ClassVar[bool] = False   # its tensor is the enclosing class's own ("" key)
    called_apart: ClassVar[bool] = False      # forward calls its module other than `m(x)` (applied)
    start_arg: ClassVar[str] = ""             # the arg a class parameter starts from (not `init:`)
    # args no rule reads but module(), which writes them as given (a rate): a block's instances
    # that differ only in what reaches them share one generated class translation
    value_args: ClassVar[frozenset[str]] = frozenset()
    size_only_inputs: ClassVar[tuple[int, ...]] = ()   # inputs it reads the size of, not the values
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

    # -- emission -----------------------------------------------------------------------
    def module(self, a: OpArgs, ins: list[Shape], out: Shape) -> Ctor | None:
        """The nn.Module to construct, so the layer fits nn.Sequential; None: forward's own
        expression (`expr`: merges, `x[:, 0]`)."""
        return None

    def applied(self, a: OpArgs, param: str, x: str) -> str | None:
        """The forward expression over the layer's parameter or module `param`, where it is not
        `param(x)` (a layer scale's `param * x`, attention's `param(x, x, x, ...)[0]`)."""
        return None

    @property
    def direct_only(self) -> bool:
        """Forward must reach this layer by name (an nn.Sequential only calls `m(x)`)."""
        return self.holds_parameter or self.called_apart

    def expr(self, a: OpArgs, inputs: list[str]) -> str:
        """Forward expression for ops without a module (merges, and single-input ops whose
        `module` is None: `x[:, 0]`), over input variable names."""
        raise NotImplementedError(self.name)

    def expr_over(self, a: OpArgs, items: str, n: int) -> str:
        """This merge's expression over a list of `n` tensors held in the variable `items`."""
        return self.expr(a, [f"{items}[{i}]" for i in range(n)])

    def statement(self, a: OpArgs, dst: str, inputs: list[str]) -> str:
        """The forward line assigning this op's value to `dst` (an in-place op writes `+=`)."""
        return f"{dst} = {self.expr(a, inputs)}"

    # -- presentation -------------------------------------------------------------------
    quiet: ClassVar[frozenset[str]] = frozenset({"inplace", "names"})   # args that change no result

    def describe(self, a: OpArgs, ins: list[Shape]) -> str:
        """A short label for diagrams: the op's name, then the args set away from their defaults."""
        parts = [self.name]
        for key, f in type(a).model_fields.items():
            v = getattr(a, key)
            if key not in self.quiet and (f.is_required() or v != f.default):
                parts.append(f"{key}={brief(v)}")
        return " ".join(parts)

    # -- receptive field and training memory --------------------------------------------
    def reach(self, a: OpArgs, ins: list[Shape], out: Shape) -> tuple[Reach, ...] | None:
        """Which input positions each output position reads, one Reach per spatial dim; None:
        every output reads the whole input (global pools, flatten, linear). Default: an op that
        keeps the spatial size reads the same position (activations, norms, merges)."""
        if len(out) >= 2 and all(len(x) == len(out) and x[1:] == out[1:] for x in ins):
            return (Reach(),) * (len(out) - 1)
        return None

    def saved_for_backward(self, a: OpArgs, ins: list[Shape], out: Shape) -> list[Saved]:
        """The tensors autograd keeps from this op for the backward pass (weights excluded: they
        are parameters). Default: its inputs, as most ops with arithmetic do; ops that only
        move values, and ops that keep their output or extra tensors, say so."""
        return [Saved(f"in{i}") for i in range(len(ins))]

    def along_last(self, a: OpArgs) -> bool:
        """True when each output value reads only its own row of the last dim (nn.Linear,
        LayerNorm over the last dim): position-wise where a permute moved the channels last."""
        return False

    def moves(self, a: OpArgs, ins: list[Shape]) -> tuple[int, ...] | None:
        """For ops that reorder dims (permute): output dim j is input dim moves[j]."""
        return None

    def shares_input(self, a: OpArgs) -> bool:
        """True when the output is the first input's storage: a view, or an in-place op."""
        return False

    def may_share_input(self, a: OpArgs) -> bool:
        """True when the output may be the first input's storage in some mode (dropout returns
        its input in eval): nothing after it may overwrite that storage in place."""
        return self.shares_input(a)


REGISTRY: dict[str, Op] = {}


def same_call(method):
    """Memoise an op's `method(a, x)` (a conv's geometry, a composite's parts) on the identity
    of its last arguments: every rule of one node (infer, tensors, macs, module, saved) asks in
    turn with the same objects, and the emitter's symbolic sizes make each recomputation costly.
    Identity, not equality, as a size that carries an expression equals a plain int of the same
    value. One entry per op and method, swapped atomically: safe across threads."""
    slot = f"_last_{method.__name__}"

    def memoised(self, a, x):
        last = self.__dict__.get(slot)
        if last is not None and last[0] is a and last[1] is x:
            return last[2]
        out = method(self, a, x)
        self.__dict__[slot] = (a, x, out)      # holding a and x keeps their ids from being reused
        return out
    memoised.__doc__ = method.__doc__
    return memoised


def tensor_key(layer: str, key: str) -> str:
    """The state_dict key of a layer's tensor: `layer.key`, or the layer's own name for a
    parameter of its class (`key` empty: ConvNeXt's `layer_scale`)."""
    return f"{layer}.{key}" if key else layer


@dataclass(frozen=True)
class ModuleKind:
    """A family of torch modules that init rules select by name (`op: conv` matches nn.Conv1d,
    nn.Conv2d and nn.Conv3d wherever they sit, as torchvision's isinstance loops do). `defaults`
    gives, per tensor, PyTorch's own scheme for it: (scheme name, params)."""
    name: str
    classes: tuple[str, ...]
    defaults: dict[str, tuple[str, dict]]

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(self.defaults)


KINDS: dict[str, ModuleKind] = {}


def module_kind(name: str, classes: tuple[str, ...], defaults: dict[str, tuple[str, dict]]) -> ModuleKind:
    """Register a module family for init rules (called by the op file that builds such modules)."""
    if name in KINDS:
        raise RuntimeError(f"module kind '{name}' registered twice")
    KINDS[name] = kind = ModuleKind(name, classes, defaults)
    return kind


def kind_of(cls: str) -> ModuleKind | None:
    return next((k for k in KINDS.values() if cls in k.classes), None)


# PyTorch's reset_parameters of conv and linear layers: kaiming_uniform_(a=sqrt(5)) on the weight,
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias
WEIGHTED_DEFAULTS = {"weight": ("kaiming_uniform", {"a": 5 ** 0.5}), "bias": ("fan_in_uniform", {})}
AFFINE_DEFAULTS = {"weight": ("ones", {}), "bias": ("zeros", {})}


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


def all_same(t) -> bool:
    """Every item equal and written alike: a generated constructor may then give one value for
    all of them (the emitter's symbolic values show their expression as repr, so `(1, s, s)`
    stays a tuple even where s == 1)."""
    return len({repr(x) for x in t}) == 1


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


def brief(v) -> str:
    """An arg value as a diagram shows it: lists as 3x3, floats without trailing zeros."""
    if isinstance(v, (list, tuple)):
        return "x".join(brief(x) for x in v)
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def window_text(k, stride, ins: list[Shape]) -> str:
    """'3x3 /2': a kernel and stride over the spatial dims of the input (an int fills every dim)."""
    rank = len(ins[0]) - 1 if ins and len(ins[0]) > 1 else 2
    text = brief(k if isinstance(k, (list, tuple)) else [k] * rank)
    strides = stride if isinstance(stride, (list, tuple)) else [stride]
    return text + (f" /{brief(stride)}" if any(s != 1 for s in strides) else "")


# -- receptive fields and saved tensors ---------------------------------------------------------

@dataclass(frozen=True)
class Reach:
    """Along one spatial dim, output position i reads input positions i * stride - pad up to
    i * stride - pad + span - 1 (a window of span = (k - 1) * dilation + 1). Upsampling and
    transposed convolutions have fractional strides (Fractions)."""
    span: Any = 1
    stride: Any = 1
    pad: Any = 0


@dataclass(frozen=True)
class Saved:
    """A tensor an op keeps for its backward pass. `ref` is 'in0', 'in1', ... (an input: the
    producer's tensor), 'out' (the op's output), or a name of the op's own for a tensor only it
    makes (a mask, indices, a padded copy), with its per-sample shape. The memory estimate
    counts each tensor once, however many ops save it (PyTorch keeps one storage).
    dtype: 'act' (the activation dtype), 'int64', 'bool', 'float32' or 'mask' (a dropout mask:
    bool in the fused CUDA kernel, the activation dtype on the CPU)."""
    ref: str
    shape: Shape = ()
    dtype: str = "act"
    batched: bool = True     # False: one copy per batch (batch-norm statistics)


def chain_saved(steps, src: str = "in0", dst: str = "out", prefix: str = "t") -> list[Saved]:
    """What ops run one after another save, in the chain's terms: the first reads `src`, the
    last writes `dst`, tensors in between are the chain's own (`prefix` + step). `steps` holds
    (op, args, in shape, out shape). A step that shares its input's storage (in place, a view)
    names no new tensor, so a tensor saved by two steps is named once."""
    names, shapes = [src], {src: steps[0][2] if steps else ()}
    for j, (op, a, x, y) in enumerate(steps):
        names.append(names[-1] if op.shares_input(a) else f"{prefix}{j}")
        shapes.setdefault(names[-1], y)
    rename = {names[-1]: dst} if names[-1] != src else {}
    saved = []
    for j, (op, a, x, y) in enumerate(steps):
        for s in op.saved_for_backward(a, [x], y):
            ref = names[j] if s.ref == "in0" else names[j + 1] if s.ref == "out" else None
            if ref is None:
                saved.append(Saved(f"{prefix}{j}.{s.ref}", s.shape, s.dtype, s.batched))
            else:
                saved.append(Saved(rename.get(ref, ref), shapes[ref]))
    return saved
