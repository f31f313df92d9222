"""Attention over tokens: a sample is [N, D], N tokens of D features (the layout a transformer
keeps, D last: what `flatten: {start: 1}` and `permute: [1, 0]` make of a [D, H, W] map)."""
from __future__ import annotations

from pydantic import Field

from archc.errors import ShapeError
from archc.ops.base import WEIGHTED_DEFAULTS, Ctor, Op, OpArgs, Saved, Tensor, module_kind, register
from archc.ops.learned import tokens_of

# nn.MultiheadAttention's _reset_parameters: the packed q/k/v weight Xavier-uniform, both biases
# zero; out_proj keeps nn.Linear's weight init
module_kind("attention", ("nn.MultiheadAttention",), {
    "in_proj_weight": ("xavier_uniform", {}), "in_proj_bias": ("zeros", {}),
    "out_proj.weight": WEIGHTED_DEFAULTS["weight"], "out_proj.bias": ("zeros", {})})


class AttentionArgs(OpArgs):
    heads: int = Field(gt=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)   # on the attention weights, in training
    bias: bool = True


@register("self_attention", "mha")
class SelfAttention(Op):
    """Multi-head self-attention as torchvision's ViT runs it: one `nn.MultiheadAttention`
    (`batch_first=True`; state_dict `in_proj_weight` [3D, D], `in_proj_bias`, `out_proj.*`),
    called `attn(x, x, x, need_weights=False)[0]`, so PyTorch takes its fused
    scaled_dot_product_attention path. Every output token reads every input token."""
    Args = AttentionArgs
    short = "heads"
    called_apart = True
    doc = ("Multi-head self-attention over tokens [N, D] (nn.MultiheadAttention, batch first, "
           "`in_proj_weight` layout); `heads` must divide D.")

    def infer(self, a: AttentionArgs, ins):
        x = tokens_of(ins[0], self.name)
        if x[1] % a.heads:
            raise ShapeError(f"'self_attention' splits {x[1]} features into {a.heads} heads, "
                             f"which does not divide them")
        return x

    def tensors(self, a: AttentionArgs, ins, out):
        d = ins[0][1]
        t = {"in_proj_weight": Tensor((3 * d, d), module="nn.MultiheadAttention")}
        if a.bias:
            t["in_proj_bias"] = Tensor((3 * d,), module="nn.MultiheadAttention")
        t["out_proj.weight"] = Tensor((d, d), module="nn.MultiheadAttention")
        if a.bias:
            t["out_proj.bias"] = Tensor((d,), module="nn.MultiheadAttention")
        return t

    def macs(self, a: AttentionArgs, ins, out):
        n, d = ins[0]
        # q, k, v projections; q.kT and attn.v over every head (d = heads x head size); out_proj
        return 3 * n * d * d + 2 * n * n * d + n * d * d

    def extra_flops(self, a: AttentionArgs, ins, out):
        n, d = ins[0]
        scores = a.heads * n * n
        return 4 * n * d * a.bias + scores + 3 * scores     # biases, the 1/sqrt(head) scale, softmax

    def module(self, a: AttentionArgs, ins, out):
        return Ctor("nn.MultiheadAttention",
                    [("embed_dim", ins[0][1]), ("num_heads", a.heads), ("dropout", a.dropout),
                     ("bias", a.bias), ("batch_first", True)],
                    npos=2, defaults={"dropout": 0.0, "bias": True})

    def applied(self, a: AttentionArgs, param: str, x: str) -> str:
        return f"{param}({x}, {x}, {x}, need_weights=False)[0]"

    def reach(self, a, ins, out):
        return None     # every token reads every token

    def saved_for_backward(self, a: AttentionArgs, ins, out):
        n, d = ins[0]
        # what PyTorch's CPU kernels keep, measured under saved_tensors_hooks: the batch-first input
        # transposed into a copy (in_proj's input) and the packed q/k/v; without dropout the fused
        # kernel keeps its output (out_proj reads the same storage) and the softmax's log-sum-exp;
        # with dropout the math path keeps the output re-laid out for out_proj, scaled q, kT, the
        # weights, their mask and the dropped weights
        kept = [Saved("tokens", (n, d)), Saved("qkv", (3, n, d))]
        if a.dropout == 0:
            return kept + [Saved("attended", (n, d)), Saved("logsumexp", (a.heads, n), "float32")]
        scores = (a.heads, n, n)
        return kept + [Saved("merged", (n, d)), Saved("q_scaled", (n, d)), Saved("k_t", (n, d)),
                       Saved("weights", scores), Saved("mask", scores, "mask"), Saved("dropped", scores)]
