"""Swin's ops on a channels-last map [H, W, C]: attention within shifted windows, and patch
merging. Each is one module of a helper class the generated file defines (archc/ops/windows_code.py),
with torchvision's state_dict: their insides (padding to whole windows, the cyclic shift, window
partition, the attention mask, the relative-position bias gathered by an index buffer) are one
algorithm whose parts no other network uses, so they are not language constructs of their own."""
from __future__ import annotations

from math import prod
from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Saved, Tensor, register
from archc.ops.windows_code import PATCH_MERGING, PATCH_MERGING_V2, WINDOW_ATTENTION, WINDOW_ATTENTION_V2

CPB_HIDDEN = 512        # Swin V2's bias MLP: 2 -> 512 -> heads


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
    version: Literal[1, 2] = 1                # 2: Swin V2's cosine attention and bias MLP


@register("window_attention")
class WindowAttention(Op):
    """Swin's (shifted) window attention, torchvision's ShiftedWindowAttention: q/k/v and output
    projections (`qkv`, `proj`), a relative-position bias table [(2w - 1)^2, heads] and its index
    buffer [w^4]. Attention runs within each window of the map padded to whole windows. Version 2
    (ShiftedWindowAttentionV2): cosine similarity times a learned temperature per head
    (`logit_scale`), the bias made by an MLP (`cpb_mlp`) from a table of log-spaced coordinates
    (`relative_coords_table`, a float buffer), and no bias on k."""
    Args = WindowArgs
    doc = ("Multi-head attention within `window` x `window` windows of a channels-last map [H, W, C], "
           "shifted by `shift` (Swin), with a learned relative-position bias; `heads` must divide C; "
           "`version: 2` is Swin V2's (cosine attention, bias MLP).")

    def infer(self, a: WindowArgs, ins):
        h, w, c = map_of(ins[0], self.name)
        if c % a.heads:
            raise ShapeError(f"'window_attention' splits {c} channels into {a.heads} heads, which does not divide them")
        if a.shift >= a.window:
            raise ShapeError(f"a window shift of {a.shift} needs windows larger than {a.window}")
        return ins[0]

    def tensors(self, a: WindowArgs, ins, out):
        c, span = ins[0][2], 2 * a.window - 1
        cls = "ShiftedWindowAttention" if a.version == 1 else "ShiftedWindowAttentionV2"
        index = {"relative_position_index": Tensor((a.window ** 4,), trainable=False, module=cls)}
        if a.version == 1:
            t = {"relative_position_bias_table": Tensor((span * span, a.heads), module=cls), **index}
        else:
            t = {"logit_scale": Tensor((a.heads, 1, 1), module=cls),
                 "relative_coords_table": Tensor((1, span, span, 2), trainable=False, module=cls), **index}
        t.update({"qkv.weight": Tensor((3 * c, c), module="nn.Linear"), "qkv.bias": Tensor((3 * c,), module="nn.Linear"),
                  "proj.weight": Tensor((c, c), module="nn.Linear"), "proj.bias": Tensor((c,), module="nn.Linear")})
        if a.version == 2:
            t.update({"cpb_mlp.0.weight": Tensor((CPB_HIDDEN, 2), module="nn.Linear"),
                      "cpb_mlp.0.bias": Tensor((CPB_HIDDEN,), module="nn.Linear"),
                      "cpb_mlp.2.weight": Tensor((a.heads, CPB_HIDDEN), module="nn.Linear")})
        return t

    def macs(self, a: WindowArgs, ins, out):
        h, w, c = ins[0]
        tokens = prod(windowed(h, w, a.window))
        # q, k, v and output projections over every position of the padded map; q.kT and
        # attn.v within each window (window^2 positions, every head together); V2's bias MLP
        # over the (2 window - 1)^2 relative positions, at every forward
        mlp = (2 * a.window - 1) ** 2 * CPB_HIDDEN * (2 + a.heads) if a.version == 2 else 0
        return tokens * 4 * c * c + 2 * tokens * a.window ** 2 * c + mlp

    def extra_flops(self, a: WindowArgs, ins, out):
        h, w, c = ins[0]
        tokens = prod(windowed(h, w, a.window))
        scores = a.heads * tokens * a.window ** 2
        # biases, q's scale (V2: normalising q and k), the position bias (and the shift's mask),
        # the softmax
        scale = tokens * c if a.version == 1 else 6 * tokens * c
        return 4 * tokens * c + scale + scores * (1 + (a.shift > 0)) + 3 * scores

    def module(self, a: WindowArgs, ins, out):
        cls, support = ("ShiftedWindowAttention", (WINDOW_ATTENTION,)) if a.version == 1 else \
            ("ShiftedWindowAttentionV2", (WINDOW_ATTENTION, WINDOW_ATTENTION_V2))
        return Ctor(cls, [("dim", ins[0][2]), ("window_size", a.window), ("shift_size", a.shift), ("num_heads", a.heads),
                          ("attention_dropout", a.attention_dropout), ("dropout", a.dropout)],
                    npos=4, defaults={"attention_dropout": 0.0, "dropout": 0.0}, support=support)

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
        if a.version == 2:
            # q, k, v as qkv's output (normalize keeps its input), each of q's and k's norms
            # and their clamped copies, the cosine scores; per batch: the temperature, the bias
            # MLP's hidden layer and the sigmoid's output
            area, span = a.window ** 2, 2 * a.window - 1
            kept += [Saved("qkv", (3, tokens, c)), Saved("norms", (4, a.heads, tokens)), Saved("cosine", scores),
                     Saved("temperature", (a.heads,), batched=False),
                     Saved("cpb_hidden", (span * span, CPB_HIDDEN), batched=False),
                     Saved("bias", (a.heads, area, area), batched=False)]
        if a.attention_dropout > 0:
            kept += [Saved("weights_mask", scores, "mask"), Saved("dropped", scores)]
        if a.dropout > 0:
            kept += [Saved("proj_mask", (tokens, c), "mask")]
        return kept


class MergingArgs(OpArgs):
    version: Literal[1, 2] = 1      # 2: Swin V2's, the norm after the projection (over 2C)


@register("patch_merging")
class PatchMerging(Op):
    """Swin's downsampling, torchvision's PatchMerging: [H, W, C] -> [ceil(H/2), ceil(W/2), 2C], each
    2x2 neighbourhood's four vectors concatenated, LayerNorm(4C), Linear(4C, 2C, bias=False);
    version 2 (PatchMergingV2) projects first, then LayerNorm(2C)."""
    Args = MergingArgs
    doc = ("Swin's patch merging: [H, W, C] to [H/2, W/2, 2C] (2x2 neighbours side by side, LayerNorm, "
           "Linear); `version: 2` normalises after the Linear.")

    def infer(self, a, ins):
        h, w, c = map_of(ins[0], self.name)
        return (-(-h // 2), -(-w // 2), 2 * c)

    def normed(self, a: MergingArgs, c: int) -> int:
        return 4 * c if a.version == 1 else 2 * c

    def tensors(self, a: MergingArgs, ins, out):
        c = ins[0][2]
        return {"reduction.weight": Tensor((2 * c, 4 * c), module="nn.Linear"),
                "norm.weight": Tensor((self.normed(a, c),), module="nn.LayerNorm"),
                "norm.bias": Tensor((self.normed(a, c),), module="nn.LayerNorm")}

    def macs(self, a, ins, out):
        return prod(out[:2]) * 4 * ins[0][2] * out[2]

    def extra_flops(self, a: MergingArgs, ins, out):
        return 6 * prod(out[:2]) * self.normed(a, ins[0][2])      # the LayerNorm

    def module(self, a: MergingArgs, ins, out):
        cls, support = ("PatchMerging", (PATCH_MERGING,)) if a.version == 1 else \
            ("PatchMergingV2", (PATCH_MERGING, PATCH_MERGING_V2))
        return Ctor(cls, [("dim", ins[0][2])], npos=1, support=support)

    def reach(self, a, ins, out):
        return None     # a channels-last layout: the receptive field is not followed through it

    def saved_for_backward(self, a: MergingArgs, ins, out):
        rows, c = prod(out[:2]), ins[0][2]
        # the concatenated neighbours, the LayerNorm's input and statistics, the Linear's input
        # (V1: the neighbours are the norm's input, its output the Linear's; V2 the other way)
        return [Saved("merged", (rows, 4 * c)), Saved("mean", (rows,), "float32"),
                Saved("rstd", (rows,), "float32"), Saved("between", (rows, self.normed(a, c)))]
