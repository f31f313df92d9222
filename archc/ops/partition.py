"""MaxViT's partition attention on a channels-first map [C, H, W]: one module of a helper class the
generated file defines (archc/ops/partition_code.py) with torchvision's state_dict and submodules.
Like Swin's window attention, its insides (partition and departition, the grid's axis swap, the
relative-position bias, the MLP, stochastic depth on both sums) are one algorithm no other
network uses, so it is one op."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import Ctor, Op, OpArgs, Saved, Tensor, register
from archc.ops.partition_code import PARTITION_ATTENTION
from archc.ops.shape import DROP_PATH


class PartitionArgs(OpArgs):
    head_dim: int = Field(gt=0)               # features per head (MaxViT: 32)
    side: int = Field(gt=0)                   # windows of side x side, or a side x side grid
    kind: Literal["window", "grid"]
    mlp_ratio: int = Field(default=4, gt=0)
    attention_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)     # on the attention's output
    mlp_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    sd_prob: float = Field(default=0.0, ge=0.0, lt=1.0)               # stochastic depth of both sums


@register("partition_attention")
class PartitionAttention(Op):
    """MaxViT's block attention (`kind: window`: within side x side windows) or grid attention
    (`kind: grid`: across a side x side grid of positions H/side apart), each a pre-norm attention
    with a relative-position bias then a pre-norm MLP, both added to their input; torchvision's
    PartitionAttentionLayer (keys attn_layer.0 (LayerNorm), attn_layer.1.{relative_position_bias_table,
    relative_position_index, to_qkv, merge}, mlp_layer.0/1/3)."""
    Args = PartitionArgs
    doc = ("MaxViT's partition attention on [C, H, W]: `kind: window` (side x side windows) or `grid` (a side x side "
           "grid), attention with a relative-position bias and an MLP, each added through stochastic depth.")

    def infer(self, a: PartitionArgs, ins):
        x = ins[0]
        if len(x) != 3:
            raise ShapeError(f"'partition_attention' needs a map [C, H, W], got {list(x)}")
        c, h, w = x
        if c % a.head_dim:
            raise ShapeError(f"'partition_attention' splits {c} channels into heads of {a.head_dim}, which does not divide them")
        if h % a.side or w % a.side:
            raise ShapeError(f"'partition_attention' cuts a {h}x{w} map into {a.side}x{a.side} "
                             f"{'windows' if a.kind == 'window' else 'grid cells'}, which does not divide it")
        if a.kind == "grid" and h != w:
            # torchvision spaces the grid by H / side along both axes: its bias fits a square only
            raise ShapeError(f"'partition_attention' of kind grid needs a square map, got {h}x{w}")
        return x

    def tensors(self, a: PartitionArgs, ins, out):
        c, area, hidden = ins[0][0], a.side * a.side, ins[0][0] * a.mlp_ratio
        cls = "RelativePositionAttention"
        return {"attn_layer.0.weight": Tensor((c,), module="nn.LayerNorm"),
                "attn_layer.0.bias": Tensor((c,), module="nn.LayerNorm"),
                "attn_layer.1.relative_position_bias_table": Tensor(((2 * a.side - 1) ** 2, c // a.head_dim), module=cls),
                "attn_layer.1.relative_position_index": Tensor((area, area), trainable=False, module=cls),
                "attn_layer.1.to_qkv.weight": Tensor((3 * c, c), module="nn.Linear"),
                "attn_layer.1.to_qkv.bias": Tensor((3 * c,), module="nn.Linear"),
                "attn_layer.1.merge.weight": Tensor((c, c), module="nn.Linear"),
                "attn_layer.1.merge.bias": Tensor((c,), module="nn.Linear"),
                "mlp_layer.0.weight": Tensor((c,), module="nn.LayerNorm"),
                "mlp_layer.0.bias": Tensor((c,), module="nn.LayerNorm"),
                "mlp_layer.1.weight": Tensor((hidden, c), module="nn.Linear"),
                "mlp_layer.1.bias": Tensor((hidden,), module="nn.Linear"),
                "mlp_layer.3.weight": Tensor((c, hidden), module="nn.Linear"),
                "mlp_layer.3.bias": Tensor((c,), module="nn.Linear")}

    def macs(self, a: PartitionArgs, ins, out):
        c, h, w = ins[0]
        tokens = h * w
        # q, k, v and merge projections; q.kT and attn.v within each group of side^2
        # positions; the MLP's two Linears
        return 4 * tokens * c * c + 2 * tokens * a.side * a.side * c + 2 * a.mlp_ratio * tokens * c * c

    def extra_flops(self, a: PartitionArgs, ins, out):
        c, h, w = ins[0]
        tokens, scores = h * w, c // a.head_dim * h * w * a.side * a.side
        # two LayerNorms, the biases, k's scale, the position bias and softmax, GELU, two sums
        return 2 * 6 * tokens * c + (4 + a.mlp_ratio + 1) * tokens * c + scores + 3 * scores \
            + 8 * a.mlp_ratio * tokens * c + 2 * tokens * c

    def module(self, a: PartitionArgs, ins, out):
        return Ctor("PartitionAttention",
                    [("dim", ins[0][0]), ("head_dim", a.head_dim), ("side", a.side), ("kind", a.kind),
                     ("mlp_ratio", a.mlp_ratio), ("attention_dropout", a.attention_dropout),
                     ("mlp_dropout", a.mlp_dropout), ("p_stochastic_dropout", a.sd_prob)],
                    npos=4, defaults={"mlp_ratio": 4, "attention_dropout": 0.0, "mlp_dropout": 0.0,
                                      "p_stochastic_dropout": 0.0},
                    support=(DROP_PATH, PARTITION_ATTENTION))

    def reach(self, a, ins, out):
        return None     # grid attention reads positions across the whole map

    def saved_for_backward(self, a: PartitionArgs, ins, out):
        c, h, w = ins[0]
        t, heads = h * w, c // a.head_dim
        tc, rows = (t, c), (t,)
        # measured on the generated class under saved_tensors_hooks: each LayerNorm its input and
        # statistics, to_qkv and merge their inputs, scaled kT, q and v as matmul's operands (one
        # head: q and v are views of to_qkv's output, kept whole), the softmax's output, the MLP's
        # hidden layer before and after GELU
        qv = [Saved("qkv", (3, t, c))] if heads == 1 else [Saved("q", tc), Saved("v", tc)]
        kept = [Saved("partitioned", tc), Saved("mean1", rows, "float32"), Saved("rstd1", rows, "float32"),
                Saved("normed1", tc), Saved("k", tc), *qv, Saved("weights", (heads, t, a.side * a.side)),
                Saved("merged", tc), Saved("summed", tc), Saved("mean2", rows, "float32"),
                Saved("rstd2", rows, "float32"), Saved("normed2", tc),
                Saved("hidden", (t, a.mlp_ratio * c)), Saved("activated", (t, a.mlp_ratio * c))]
        if a.attention_dropout > 0:
            kept.append(Saved("attention_mask", tc, "mask"))
        if a.mlp_dropout > 0:
            kept.append(Saved("mlp_mask", tc, "mask"))
        if a.sd_prob > 0:
            kept += [Saved("noise1", (1,)), Saved("noise2", (1,))]
        return kept
