"""Training-memory estimate: parameters, gradients, optimizer state, and the activations that
autograd keeps from the forward pass for the backward pass.

Each op says what it saves (`Op.saved_for_backward`); this module adds them up over the graph,
counting every tensor once however many ops save it, as PyTorch keeps one storage: the output
of a node is one tensor, whether the next conv saves it as its input or a ReLU as its result,
and views and in-place ops (`Op.shares_input`) name their input's tensor. The rules are those of
PyTorch's CUDA kernels by default; `device="cpu"` differs only in the dropout mask."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from archc.errors import SpecError
from archc.ir.graph import Network

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
FIXED_BYTES = {"int64": 8, "bool": 1, "float32": 4}
# optimizer state: copies of the trainable parameters it keeps
OPTIMIZER_COPIES = {"sgd": 0, "sgd-momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    batch: int
    dtype: str
    optimizer: str
    device: str
    params_bytes: int
    buffers_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int      # saved for backward, the whole batch

    @property
    def total_bytes(self) -> int:
        return (self.params_bytes + self.buffers_bytes + self.grads_bytes + self.optimizer_bytes
                + self.activations_bytes)

    def as_dict(self) -> dict:
        return {"batch": self.batch, "optimizer": self.optimizer, "device": self.device,
                "params_bytes": self.params_bytes, "buffers_bytes": self.buffers_bytes,
                "grads_bytes": self.grads_bytes, "optimizer_bytes": self.optimizer_bytes,
                "saved_activations_bytes": self.activations_bytes, "total_bytes": self.total_bytes}


def item_bytes(dtype: str, act: int, device: str) -> int:
    if dtype == "act":
        return act
    if dtype == "mask":     # dropout: the fused CUDA kernel keeps a bool mask, the CPU path a noise tensor
        return 1 if device == "cuda" else act
    return FIXED_BYTES[dtype]


def saved_tensors(net: Network, dtype: str = "float32", device: str = "cuda") -> dict[tuple, tuple[int, int]]:
    """{tensor identity: (bytes per sample, bytes per batch)} of every tensor kept for backward.
    Identities: ('input',), ('node', i) for node i's output, ('own', i, name) for a tensor
    only node i makes. Aux heads run in training, so they count."""
    act = DTYPE_BYTES[dtype]
    ident: dict[int, tuple] = {-1: ("input",)}
    size: dict[tuple, int] = {("input",): prod(net.input) * act}
    saved: dict[tuple, tuple[int, int]] = {}
    for pos, n in enumerate(net.nodes):
        own = ("node", pos)
        ident[n.index] = ident[n.inputs[0]] if n.inputs and n.op.shares_input(n.args) else own
        size.setdefault(ident[n.index], prod(n.out) * act)
        for s in n.op.saved_for_backward(n.args, n.in_shapes, n.out):
            if s.ref == "out" or (s.ref.startswith("in") and s.ref[2:].isdigit()):
                key = ident[n.index] if s.ref == "out" else ident[n.inputs[int(s.ref[2:])]]
                saved.setdefault(key, (size[key], 0))
            else:
                nbytes = prod(s.shape) * item_bytes(s.dtype, act, device)
                saved.setdefault(("own", pos, s.ref), (nbytes, 0) if s.batched else (0, nbytes))
    return saved


def saved_bytes(net: Network, batch: int, dtype: str = "float32", device: str = "cuda") -> int:
    tensors = saved_tensors(net, dtype, device).values()
    return sum(per_sample * batch + per_batch for per_sample, per_batch in tensors)


def estimate(net: Network, batch: int = 32, dtype: str = "float32", optimizer: str = "adam",
             device: str = "cuda") -> MemoryEstimate:
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype '{dtype}'; expected one of: {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZER_COPIES:
        raise SpecError(f"unknown optimizer '{optimizer}'; expected one of: {', '.join(OPTIMIZER_COPIES)}")
    if batch < 1:
        raise SpecError(f"batch size must be at least 1, got {batch}")
    nbytes = DTYPE_BYTES[dtype]
    params = net.params * nbytes
    return MemoryEstimate(batch, dtype, optimizer, device, params_bytes=params,
                          buffers_bytes=net.buffers * nbytes, grads_bytes=params,
                          optimizer_bytes=OPTIMIZER_COPIES[optimizer] * params,
                          activations_bytes=saved_bytes(net, batch, dtype, device))
