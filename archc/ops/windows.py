"""Swin's ops on a channels-last map [H, W, C]: attention within shifted windows, and patch
merging. Each is one module of a helper class the generated file defines (archc/ops/windows_code.py),
with torchvision's state_dict: their insides (padding to whole windows, the cyclic shift, window
partition, the attention mask, the relative-position bias gathered by an index buffer) are one
algorithm whose parts no other network uses, so they are not language constructs of their own."""
from __future__ import annotations

from math import prod

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Saved, Tensor, register
from archc.ops.windows_code import PATCH_MERGING, WINDOW_ATTENTION


def map_of(x, op: str) -> tuple[int, int, int]:
    if len(x) != 3:
        raise ShapeError(f"'{op}' needs a channels-last map [H, W, C], got {list(x)}: "
                         f"make one with `permute: [1, 2, 0]`")
    return x


def windowed(h: int, w: int, size: int) -> tuple[int, int]:
    """The map padded to whole windows."""
    return h + -h % size, w + -w % size


class WindowArgs(OpArgs):
    heads: int = Field(gt=0)
    window: int = Field(gt=0)                 # windows of window x window positions
    shift: int = Field(default=0, ge=0)       # 0: W-MSA; window // 2: SW-MSA (every second block)
    attention_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


@register("window_attention")
class WindowAttention(Op):
    """Swin's (shifted) window attention, torchvision's ShiftedWindowAttention: q/k/v and output
    projections (`qkv`, `proj`), a relative-position bias table [(2w - 1)^2, heads] and its index
    buffer [w^4]. Attention runs within each window of the map padded to whole windows."""
    Args = WindowArgs
    doc = ("Multi-head attention within `window` x `window` windows of a channels-last map [H, W, C], "
           "shifted by `shift` (Swin), with a learned relative-position bias; `heads` must divide C.")

    def infer(self, a: WindowArgs, ins):
        h, w, c = map_of(ins[0], self.name)
        if c % a.heads:
            raise ShapeError(f"'window_attention' splits {c} channels into {a.heads} heads, which does not divide them")
        if a.shift >= a.window:
            raise ShapeError(f"a window shift of {a.shift} needs windows larger than {a.window}")
        return ins[0]

    def tensors(self, a: WindowArgs, ins, out):
        c = ins[0][2]
        cls = "ShiftedWindowAttention"
        return {"relative_position_bias_table": Tensor(((2 * a.window - 1) ** 2, a.heads), module=cls),
                "relative_position_index": Tensor((a.window ** 4,), trainable=False, module=cls),
                "qkv.weight": Tensor((3 * c, c), module="nn.Linear"), "qkv.bias": Tensor((3 * c,), module="nn.Linear"),
                "proj.weight": Tensor((c, c), module="nn.Linear"), "proj.bias": Tensor((c,), module="nn.Linear")}

    def macs(self, a: WindowArgs, ins, out):
        h, w, c = ins[0]
        tokens = prod(windowed(h, w, a.window))
        # q, k, v and output projections over every position of the padded map; q.kT and
        # attn.v within each window (window^2 positions, every head together)
        return tokens * 4 * c * c + 2 * tokens * a.window ** 2 * c

    def extra_flops(self, a: WindowArgs, ins, out):
        h, w, c = ins[0]
        tokens = prod(windowed(h, w, a.window))
        scores = a.heads * tokens * a.window ** 2
        # biases, q's scale, the position bias (and the shift's mask), the softmax
        return 4 * tokens * c + tokens * c + scores * (1 + (a.shift > 0)) + 3 * scores

    def module(self, a: WindowArgs, ins, out):
        return Ctor("ShiftedWindowAttention",
                    [("dim", ins[0][2]), ("window_size", a.window), ("shift_size", a.shift), ("num_heads", a.heads),
                     ("attention_dropout", a.attention_dropout), ("dropout", a.dropout)],
                    npos=4, defaults={"attention_dropout": 0.0, "dropout": 0.0}, support=(WINDOW_ATTENTION,))

    def reach(self, a, ins, out):
        return None     # within windows, which shift from block to block: taken as the whole map

    def saved_for_backward(self, a: WindowArgs, ins, out):
        h, w, c = ins[0]
        tokens = prod(windowed(h, w, a.window))
        scores = (a.heads, tokens, a.window ** 2)
        # measured on the generated class under saved_tensors_hooks: the windows (qkv's input),
        # scaled q, kT and v as matmul's operands, the softmax's output, and the merged heads
        # (proj's input); a dropout adds its mask, and the attention's its dropped weights
        kept = [Saved("windows", (tokens, c)), Saved("q", (tokens, c)), Saved("k", (tokens, c)),
                Saved("v", (tokens, c)), Saved("weights", scores), Saved("merged", (tokens, c))]
        if a.attention_dropout > 0:
            kept += [Saved("weights_mask", scores, "mask"), Saved("dropped", scores)]
        if a.dropout > 0:
            kept += [Saved("proj_mask", (tokens, c), "mask")]
        return kept


@register("patch_merging")
class PatchMerging(Op):
    """Swin's downsampling, torchvision's PatchMerging: [H, W, C] -> [ceil(H/2), ceil(W/2), 2C], each
    2x2 neighbourhood's four vectors concatenated, LayerNorm(4C), Linear(4C, 2C, bias=False)."""
    doc = "Swin's patch merging: [H, W, C] to [H/2, W/2, 2C] (2x2 neighbours side by side, LayerNorm, Linear)."

    def infer(self, a, ins):
        h, w, c = map_of(ins[0], self.name)
        return (-(-h // 2), -(-w // 2), 2 * c)

    def tensors(self, a, ins, out):
        c = ins[0][2]
        return {"reduction.weight": Tensor((2 * c, 4 * c), module="nn.Linear"),
                "norm.weight": Tensor((4 * c,), module="nn.LayerNorm"),
                "norm.bias": Tensor((4 * c,), module="nn.LayerNorm")}

    def macs(self, a, ins, out):
        return prod(out[:2]) * 4 * ins[0][2] * out[2]

    def extra_flops(self, a, ins, out):
        return 6 * prod(out[:2]) * 4 * ins[0][2]      # the LayerNorm over 4C

    def module(self, a, ins, out):
        return Ctor("PatchMerging", [("dim", ins[0][2])], npos=1, support=(PATCH_MERGING,))

    def reach(self, a, ins, out):
        return None     # a channels-last layout: the receptive field is not followed through it

    def saved_for_backward(self, a, ins, out):
        rows = prod(out[:2])
        # the concatenated neighbours (LayerNorm's input), its statistics, and its output (reduction's)
        return [Saved("merged", (rows, 4 * ins[0][2])), Saved("mean", (rows,), "float32"),
                Saved("rstd", (rows,), "float32"), Saved("normed", (rows, 4 * ins[0][2]))]
