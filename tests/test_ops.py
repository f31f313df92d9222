"""Every registered op against the module archc emits for it: the static shape, parameter,
buffer, state_dict and MAC numbers must be what the real nn.Module has and does."""
from math import ceil

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc.ops import REGISTRY


def spec(input, *layers):
    return {"archc": 1, "name": "t", "input": list(input), "layers": list(layers)}


def case(id, input, *layers, keys=None):
    """One test case: a tiny network of `layers` on a per-sample `input`; `keys`, when given,
    are the exact state_dict keys the emitted module must have (reference implementations')."""
    return pytest.param(input, layers, keys, id=id)


def merge(op, args, *shapes):
    """Layers feeding `op` from one 1x1 conv per output channel count in `shapes` (same input)."""
    convs = [{"conv": {"out": c, "k": 1}, "id": f"b{j}", "from": "input"} for j, c in enumerate(shapes)]
    return (*convs, {op: args, "from": [f"b{j}" for j in range(len(shapes))]})


C2 = (4, 8, 8)   # [C, H, W]
C1 = (4, 16)     # [C, L]
C3 = (2, 4, 6, 6)

CASES = [
    # -- conv: 1d/2d/3d, stride, dilation, groups, 'same' (TF, asymmetric at stride 2), modes
    case("conv2d", (3, 8, 8), {"conv": {"out": 8, "k": 3}}),
    case("conv2d-nobias-s2p1", C2, {"conv": {"out": 8, "k": 3, "stride": 2, "pad": 1, "bias": False}}),
    case("conv1d-s2", C1, {"conv": {"out": 6, "k": 3, "stride": 2}}),
    case("conv3d-listk", C3, {"conv": {"out": 4, "k": [1, 3, 3], "pad": [0, 1, 1]}}),
    case("conv3d-same-s2", C3, {"conv": {"out": 3, "k": 3, "stride": 2, "pad": "same"}}),
    case("conv2d-dilation2", C2, {"conv": {"out": 4, "k": 3, "dilation": 2, "pad": 2}}),
    case("conv2d-groups2", C2, {"conv": {"out": 8, "k": 3, "groups": 2, "pad": 1}}),
    case("conv2d-groups4-depthwise", C2, {"conv": {"out": 4, "k": 3, "groups": 4}}),
    case("conv2d-same-s1", C2, {"conv": {"out": 4, "k": 3, "pad": "same"}}),
    case("conv2d-same-s2-k3", C2, {"conv": {"out": 4, "k": 3, "stride": 2, "pad": "same"}}),
    case("conv2d-same-s2-k4-odd", (3, 7, 9), {"conv": {"out": 4, "k": 4, "stride": 2, "pad": "same"}}),
    case("conv2d-same-s2-dil2", (3, 9, 9), {"conv": {"out": 4, "k": 3, "stride": 2, "dilation": 2, "pad": "same"}}),
    case("conv1d-same-s2", (3, 11), {"conv": {"out": 4, "k": 5, "stride": 2, "pad": "same"}}),
    case("conv2d-valid", C2, {"conv": {"out": 4, "k": 3, "pad": "valid"}}),
    case("conv2d-k-s-lists", C2, {"conv": {"out": 4, "k": [3, 1], "stride": [2, 1], "pad": [1, 0]}}),
    case("conv2d-reflect", C2, {"conv": {"out": 4, "k": 3, "pad": 1, "padding_mode": "reflect"}}),
    case("conv2d-circular", C2, {"conv": {"out": 4, "k": 3, "pad": 1, "padding_mode": "circular"}}),
    case("conv1d-replicate", C1, {"conv": {"out": 4, "k": 3, "pad": 1, "padding_mode": "replicate"}}),
    # -- conv_transpose
    case("convT2d-k4s2p1", C2, {"conv_transpose": {"out": 3, "k": 4, "stride": 2, "pad": 1}}),
    case("convT1d-outpad", C1, {"conv_transpose": {"out": 5, "k": 3, "stride": 2, "output_padding": 1}}),
    case("convT3d", C3, {"conv_transpose": {"out": 2, "k": [1, 2, 2], "stride": [1, 2, 2]}}),
    case("convT2d-groups-dil-nobias", C2,
         {"conv_transpose": {"out": 6, "k": 3, "groups": 2, "dilation": 2, "pad": 1, "bias": False}}),
    # -- depthwise / separable
    case("dwconv-k3", C2, {"dwconv": {"k": 3, "pad": 1}}),
    case("dwconv-short-mult2", C2, {"dwconv": 3}, {"dwconv": {"k": 1, "mult": 2}}),
    case("dwconv-out-same-s2", C2, {"dwconv": {"k": 3, "out": 8, "stride": 2, "pad": "same", "bias": False}}),
    case("dwconv1d", C1, {"dwconv": {"k": 5, "pad": 2, "dilation": 1}}),
    case("sepconv", C2, {"sepconv": {"out": 8, "k": 3, "pad": 1}},
         keys=["sepconv1.conv1.weight", "sepconv1.pointwise.weight"]),
    case("sepconv-s2-bias-mult", C2, {"sepconv": {"out": 6, "k": 3, "stride": 2, "pad": 1, "mult": 2, "bias": True}}),
    case("sepconv-same-s2", C2, {"sepconv": {"out": 8, "k": 3, "stride": 2, "pad": "same"}}),
    case("sepconv1d-dil", C1, {"sepconv": {"out": 3, "k": 3, "dilation": 2}}),
    # -- conv_bn
    case("conv_bn", C2, {"conv_bn": {"out": 8, "k": 3, "pad": 1}},
         keys=["conv_bn1.0.weight", "conv_bn1.1.weight", "conv_bn1.1.bias", "conv_bn1.1.running_mean",
               "conv_bn1.1.running_var", "conv_bn1.1.num_batches_tracked"]),
    case("conv_bn-names-googlenet", C2,
         {"conv_bn": {"out": 8, "k": 1, "eps": 0.001, "names": ["conv", "bn"]}},
         keys=["conv_bn1.conv.weight", "conv_bn1.bn.weight", "conv_bn1.bn.bias", "conv_bn1.bn.running_mean",
               "conv_bn1.bn.running_var", "conv_bn1.bn.num_batches_tracked"]),
    case("conv_bn-noact-names", C2, {"conv_bn": {"out": 8, "k": 1, "act": None, "names": ["conv", "bn"]}}),
    case("conv_bn-act-none-str", C2, {"conv_bn": {"out": 4, "k": 3, "act": "none", "bias": True}}),
    case("conv_bn-silu-same-s2", C2, {"conv_bn": {"out": 8, "k": 3, "stride": 2, "pad": "same", "act": "silu"}}),
    case("conv_bn-leaky-args", C2,
         {"conv_bn": {"out": 8, "k": 3, "groups": 2, "act": {"leaky_relu": {"slope": 0.2}}, "momentum": None}}),
    case("conv_bn-prelu", C2, {"conv_bn": {"out": 8, "k": 1, "act": {"prelu": {"channels": True}}}}),
    case("conv_bn-names3-prelu", C2, {"conv_bn": {"out": 8, "k": 1, "act": "prelu", "names": ["c", "n", "a"]}},
         keys=["conv_bn1.c.weight", "conv_bn1.n.weight", "conv_bn1.n.bias", "conv_bn1.n.running_mean",
               "conv_bn1.n.running_var", "conv_bn1.n.num_batches_tracked", "conv_bn1.a.weight"]),
    case("conv_bn-names2-prelu", C2, {"conv_bn": {"out": 4, "k": 1, "act": "prelu", "names": ["conv", "bn"]}}),
    case("conv_bn1d", C1, {"conv_bn": {"out": 8, "k": 3, "stride": 2, "act": "relu6"}}),
    # -- linear
    case("linear", (16,), {"linear": 10}),
    case("linear-nobias", (16,), {"linear": {"out": 3, "bias": False}}),
    case("dense-fc-after-flatten", C2, "flatten", {"dense": 5}, {"fc": 2}),
    # -- batch norm
    case("bn1d-features", (16,), "bn"),
    case("bn1d-CL", C1, "bn"),
    case("bn2d", C2, {"bn": {"eps": 0.001, "momentum": 0.01}}),
    case("bn3d", C3, "batchnorm"),
    case("bn2d-noaffine", C2, {"bn": {"affine": False}}),
    case("bn2d-nostats", C2, {"bn": {"track_running_stats": False}}),
    # -- other norms
    case("layernorm-all", C2, "layernorm"),
    case("layernorm-last", C2, {"layernorm": 1}),
    case("layernorm-last2-noaffine", C2, {"layernorm": {"dims": 2, "elementwise_affine": False}}),
    case("layernorm-nobias-flat", (16,), {"layernorm": {"bias": False, "eps": 1e-6}}),
    case("groupnorm", C2, {"groupnorm": 2}),
    case("groupnorm-noaffine-1d", C1, {"groupnorm": {"groups": 4, "affine": False}}),
    case("groupnorm3d", C3, {"groupnorm": 1}),
    case("lrn", C2, {"lrn": {"size": 3, "alpha": 0.001, "beta": 0.75, "k": 2.0}}),
    case("lrn1d", C1, {"lrn": 5}),
    # -- activations
    *[case(f"act-{a}", C2, a) for a in
      ["relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "hardswish", "hardsigmoid",
       "sigmoid", "tanh", "mish", "softmax", "prelu"]],
    case("act-leaky-slope", C2, {"leaky_relu": {"slope": 0.2}}),
    case("act-elu-alpha", C1, {"elu": {"alpha": 0.5}}),
    case("act-gelu-tanh", (16,), {"gelu": {"approximate": "tanh"}}),
    case("act-softmax-last", C2, {"softmax": {"dim": -1}}),
    case("act-prelu-channels", C2, {"prelu": {"channels": True, "init": 0.1}}),
    # -- pooling
    case("maxpool2", C2, {"maxpool": 2}),
    case("maxpool-k3s2p1", C2, {"maxpool": {"k": 3, "stride": 2, "pad": 1}}),
    case("maxpool-ceil", (3, 7, 7), {"maxpool": {"k": 2, "ceil_mode": True}}),
    case("maxpool-ceil-k3s2", (3, 8, 8), {"maxpool": {"k": 3, "stride": 2, "ceil_mode": True}}),
    case("maxpool-same-s2", (3, 8, 8), {"maxpool": {"k": 3, "stride": 2, "pad": "same"}}),
    case("maxpool-same-s2-odd", (3, 7, 5), {"maxpool": {"k": 2, "stride": 2, "pad": "same"}}),
    case("maxpool-dilation", C2, {"maxpool": {"k": 2, "stride": 1, "dilation": 2}}),
    case("maxpool1d", C1, {"maxpool": 2}),
    case("maxpool3d", C3, {"maxpool": {"k": [1, 2, 2]}}),
    case("avgpool2", C2, {"avgpool": 2}),
    case("avgpool-k3s2p1-nocount", C2, {"avgpool": {"k": 3, "stride": 2, "pad": 1, "count_include_pad": False}}),
    case("avgpool-ceil", (3, 7, 7), {"avgpool": {"k": 2, "ceil_mode": True}}),
    case("avgpool-same-s1", C2, {"avgpool": {"k": 3, "stride": 1, "pad": "same"}}),
    case("avgpool-same-s2-asym", (3, 8, 8), {"avgpool": {"k": 3, "stride": 2, "pad": "same"}}),
    case("avgpool-same-k2-asym", (3, 7, 7), {"avgpool": {"k": 2, "stride": 1, "pad": "same"}}),
    case("avgpool1d", C1, {"avgpool": {"k": 4, "stride": 2}}),
    case("gap", C2, "gap"),
    case("gap1d", C1, "gap"),
    case("gmp", C3, "gmp"),
    case("adaptive_avgpool", C2, {"adaptive_avgpool": 1}),
    case("adaptive_avgpool-2x3", C2, {"adaptive_avgpool": [2, 3]}),
    case("adaptive_maxpool1d", C1, {"adaptive_maxpool": 5}),
    # -- shape ops
    case("flatten", C2, "flatten"),
    case("reshape", C2, {"reshape": [16, -1]}),
    case("reshape-unflatten", (24,), {"reshape": [2, 3, 4]}),
    case("identity", C2, "identity"),
    case("scale", C2, {"scale": 0.17}),
    case("dropout", C2, {"dropout": 0.3}),
    case("dropout-channel", C2, {"dropout": {"p": 0.2, "channel": True}}),
    case("drop_path", C2, {"drop_path": 0.2}),
    case("drop_path-batch", C1, {"drop_path": {"p": 0.5, "mode": "batch"}}),
    # -- channels last (ConvNeXt): permute, linear and layernorm over the last dim, layer scale
    case("permute", C2, {"permute": [1, 2, 0]}),
    case("channels-last-mlp", C2, {"permute": [1, 2, 0]}, {"layernorm": 1}, {"linear": {"out": 6, "over": "last"}},
         {"permute": [2, 0, 1]}, keys=["layernorm1.weight", "layernorm1.bias", "linear1.weight", "linear1.bias"]),
    case("layernorm-channels", C2, {"layernorm": {"over": "channels", "eps": 1e-6}}),
    case("layer_scale", C2, {"conv": {"out": 4, "k": 1}}, {"layer_scale": {"value": 0.1}},
         keys=["layer_scale1", "conv1.weight", "conv1.bias"]),
    # -- tokens and attention (ViT): patches to tokens, class token, position embedding, attention
    case("flatten-start1", C2, {"flatten": 1}),
    case("select", (5, 8), {"select": 0}),
    case("select-last-dim1", (5, 8), {"select": {"index": -1, "dim": 1}}),
    case("vit-tokens", (3, 8, 8), {"conv": {"out": 8, "k": 4, "stride": 4}}, {"flatten": {"start": 1}},
         {"permute": [1, 0]}, {"class_token": None, "name": "class_token"}, {"pos_embedding": None},
         {"self_attention": {"heads": 2}}, {"select": 0},
         keys=["class_token", "pos_embedding1", "conv1.weight", "conv1.bias", "self_attention1.in_proj_weight",
               "self_attention1.in_proj_bias", "self_attention1.out_proj.weight", "self_attention1.out_proj.bias"]),
    case("mha-dropout-nobias", (6, 8), {"mha": {"heads": 4, "dropout": 0.1, "bias": False}},
         keys=["mha1.in_proj_weight", "mha1.out_proj.weight"]),
    # -- Swin: window attention (shifted, padded to whole windows), patch merging (odd sizes)
    case("window_attention", (6, 6, 8), {"window_attention": {"heads": 2, "window": 3}},
         keys=["window_attention1.relative_position_bias_table", "window_attention1.relative_position_index",
               "window_attention1.qkv.weight", "window_attention1.qkv.bias", "window_attention1.proj.weight",
               "window_attention1.proj.bias"]),
    case("window_attention-shift-pad", (5, 7, 8), {"window_attention": {"heads": 4, "window": 4, "shift": 2}}),
    case("window_attention-v2-shift", (8, 8, 8), {"window_attention": {"heads": 2, "window": 4, "shift": 2, "version": 2}},
         keys=[f"window_attention1.{k}" for k in (
             "logit_scale", "relative_coords_table", "relative_position_index", "qkv.weight", "qkv.bias",
             "proj.weight", "proj.bias", "cpb_mlp.0.weight", "cpb_mlp.0.bias", "cpb_mlp.2.weight")]),
    case("patch_merging-v2", (5, 7, 4), {"patch_merging": {"version": 2}}),
    # -- MaxViT: partition attention, within windows and across a grid
    case("partition_attention-window", (8, 6, 4), {"partition_attention": {"head_dim": 4, "side": 2, "kind": "window"}}),
    case("partition_attention-grid", (8, 6, 6), {"partition_attention": {"head_dim": 8, "side": 3, "kind": "grid",
                                                                         "mlp_ratio": 2, "sd_prob": 0.2}},
         keys=[f"partition_attention1.{k}" for k in (
             "attn_layer.0.weight", "attn_layer.0.bias", "attn_layer.1.relative_position_bias_table",
             "attn_layer.1.relative_position_index", "attn_layer.1.to_qkv.weight", "attn_layer.1.to_qkv.bias",
             "attn_layer.1.merge.weight", "attn_layer.1.merge.bias", "mlp_layer.0.weight", "mlp_layer.0.bias",
             "mlp_layer.1.weight", "mlp_layer.1.bias", "mlp_layer.3.weight", "mlp_layer.3.bias")]),
    case("patch_merging", (5, 7, 4), "patch_merging",
         keys=["patch_merging1.reduction.weight", "patch_merging1.norm.weight", "patch_merging1.norm.bias"]),
    # -- pad / upsample / shuffle / split
    case("pad-int", C2, {"pad": 1}),
    case("pad-list-reflect", C2, {"pad": {"pad": [1, 2, 0, 3], "mode": "reflect"}}),
    case("pad-replicate3d", C3, {"pad": {"pad": 1, "mode": "replicate"}}),
    case("pad-circular1d", C1, {"pad": {"pad": [2, 1], "mode": "circular"}}),
    case("pad-constant-value", C2, {"pad": {"pad": [0, 1, 0, 1], "value": -1.0}}),
    case("pad-crop", C2, {"pad": [-1, -1, 0, -2]}),
    case("upsample-nearest", C2, {"upsample": 2}),
    case("upsample-bilinear-align", C2, {"upsample": {"scale": 2, "mode": "bilinear", "align_corners": True}}),
    case("upsample-size", C2, {"upsample": {"size": [12, 5], "mode": "bilinear"}}),
    case("upsample-frac", (3, 7, 5), {"upsample": {"scale": 1.5}}),
    case("upsample-list-scale", C2, {"upsample": {"scale": [2, 1.5], "mode": "nearest-exact"}}),
    case("upsample-linear1d", C1, {"upsample": {"scale": 3, "mode": "linear"}}),
    case("upsample-trilinear", C3, {"upsample": {"scale": 2, "mode": "trilinear"}}),
    case("upsample-bicubic", C2, {"upsample": {"size": 11, "mode": "bicubic"}}),
    case("upsample-area", C2, {"upsample": {"size": 4, "mode": "area"}}),
    case("channel_shuffle", C2, {"channel_shuffle": 2}),
    case("channel_shuffle1d", (6, 5), {"channel_shuffle": 3}),
    case("split-0", C2, {"split": 0}),
    case("split-1-of-4", (8, 3, 3), {"split": {"index": 1, "parts": 4}}),
    case("split-dim1", C2, {"split": {"index": 1, "parts": 2, "dim": 1}}),
    # -- squeeze-and-excitation
    case("se-reduce", (32, 4, 4), "se",
         keys=["se1.fc1.weight", "se1.fc1.bias", "se1.fc2.weight", "se1.fc2.bias"]),
    case("se-squeeze-silu-hardsigmoid", C2, {"se": {"squeeze": 2, "act": "silu", "gate": "hardsigmoid"}}),
    case("se-reduce4-1d", (8, 5), {"se": {"reduce": 4}}),
    case("se3d", C3, {"se": {"squeeze": 3, "act": "gelu"}}),
    # -- merges: 2 and 3 inputs, broadcasting, concat along other dims
    case("add-2", C2, *merge("add", None, 4, 4)),
    case("add-3", C2, *merge("add", None, 4, 4, 4)),
    case("mul-2", C2, *merge("mul", None, 3, 3)),
    case("mul-broadcast-gate", C2, {"conv": {"out": 4, "k": 1}, "id": "a"},
         {"adaptive_avgpool": 1, "id": "g", "from": "input"}, {"mul": None, "from": ["a", "g"]}),
    case("concat-2", C2, *merge("concat", None, 3, 5)),
    case("concat-3", C2, *merge("concat", None, 2, 3, 4)),
    case("cat-dim-last", C2, *merge("cat", {"dim": -1}, 4, 4)),
    # -- resize to another tensor's size, read in forward (LR-ASPP's head)
    case("resize-bilinear-to-other", C2, {"conv": {"out": 3, "k": 3, "stride": 2}, "id": "small"},
         {"resize": {"mode": "bilinear", "align_corners": False}, "from": ["small", "input"]}),
    case("resize-nearest-1d", C1, {"conv": {"out": 3, "k": 3, "stride": 3}, "id": "small"},
         {"resize": None, "from": ["small", "input"]}),
]


def flop_macs(module, x) -> int:
    """With gradients on and the math attention kernel: without gradients nn.MultiheadAttention
    takes a fused path whose matmuls FlopCounterMode cannot see."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        module(x)
    return fc.get_total_flops() // 2


def real_output_shapes(module, net, x):
    """Per-sample output of every node that has a module, by forward hooks."""
    seen = {}
    hooks = []
    for node in net.nodes:
        try:
            sub = module.get_submodule(node.name)
        except AttributeError:
            continue    # merges are expressions in forward
        hooks.append(sub.register_forward_hook(       # (attention returns its weights too)
            lambda m, i, o, name=node.name: seen.__setitem__(name, tuple((o[0] if isinstance(o, tuple) else o).shape[1:]))))
    y = module(x)
    for h in hooks:
        h.remove()
    return y, seen


@pytest.mark.parametrize("input,layers,keys", CASES)
def test_op_matches_module(input, layers, keys):
    net = archc.load(spec(input, *layers))
    m = net.to_module()
    torch.manual_seed(0)
    x = torch.randn(2, *input)
    for train in (False, True):
        m.train(train)
        with torch.no_grad():
            y, seen = real_output_shapes(m, net, x)
        assert tuple(y.shape[1:]) == net.output_shapes[0]
        assert set(seen) == {n.name for n in net.nodes if n.op.arity == 1 and not n.op.holds_parameter
                             and n.op.module(n.args, n.in_shapes, n.out) is not None}
        for node in net.nodes:
            if node.name in seen:
                assert seen[node.name] == node.out, node.name
    assert net.params == sum(p.numel() for p in m.parameters())
    assert net.buffers == sum(b.numel() for b in m.buffers())
    real = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert list(net.state_dict_shapes().items()) == list(real.items())
    if keys is not None:
        assert list(real) == keys
    m.eval()
    assert net.macs == flop_macs(m, x[:1])
    assert net.flops >= 2 * net.macs
    assert all(isinstance(n.flops, int) and n.flops >= 0 for n in net.nodes)


def test_every_builtin_op_has_a_case():
    used = set()

    def walk(v):
        if isinstance(v, dict):
            used.update(v)
            for w in v.values():
                walk(w)
        elif isinstance(v, (list, tuple)):
            for w in v:
                walk(w)
        elif isinstance(v, str):
            used.add(v)
    for p in CASES:
        walk(p.values[1])
    builtin = {n for n, op in REGISTRY.items() if type(op).__module__.startswith("archc.ops.")}
    assert builtin - used == set()
    assert len(CASES) >= 70


# -- TensorFlow 'same': out = ceil(in / stride), whatever the kernel and dilation ---------------

@pytest.mark.parametrize("op,size,k,stride,dilation", [
    ("conv", 8, 3, 2, 1), ("conv", 7, 4, 2, 1), ("conv", 9, 3, 3, 2), ("conv", 5, 5, 1, 1),
    ("conv", 10, 1, 4, 1), ("maxpool", 8, 3, 2, 1), ("maxpool", 7, 2, 2, 1), ("maxpool", 9, 3, 3, 1),
    ("dwconv", 9, 5, 2, 1), ("sepconv", 7, 3, 2, 1), ("conv_bn", 6, 3, 2, 2),
])
def test_same_padding_is_tensorflow(op, size, k, stride, dilation):
    args = {"k": k, "stride": stride, "pad": "same"}
    if op in ("conv", "sepconv", "conv_bn"):
        args["out"] = 3
    if dilation != 1:
        args["dilation"] = dilation
    input = (2, size, size + 1)
    net = archc.load(spec(input, {op: args}))
    want = (ceil(size / stride), ceil((size + 1) / stride))
    assert net.output_shapes[0][1:] == want
    y = net.to_module().eval()(torch.randn(1, *input))
    assert tuple(y.shape[2:]) == want


def test_same_padding_puts_the_extra_on_the_end():
    """TensorFlow pads (0, 1) for k 3 stride 2 on an even size: the first output sees only
    the first two input rows; compare with an explicit F.pad + valid conv."""
    net = archc.load(spec((1, 4, 4), {"conv": {"out": 1, "k": 3, "stride": 2, "pad": "same", "bias": False}}))
    m = net.to_module().eval()
    x = torch.randn(1, 1, 4, 4)
    w = m.conv1.weight
    want = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), w, stride=2)
    torch.testing.assert_close(m(x), want)


# -- module semantics beyond the numbers ----------------------------------------------------------

def test_sepconv_is_depthwise_then_pointwise():
    net = archc.load(spec(C2, {"sepconv": {"out": 6, "k": 3, "pad": 1}}))
    m = net.to_module().eval()
    x = torch.randn(2, *C2)
    s = m.sepconv1
    mid = torch.nn.functional.conv2d(x, s.conv1.weight, padding=1, groups=4)
    torch.testing.assert_close(m(x), torch.nn.functional.conv2d(mid, s.pointwise.weight))


def test_se_scales_by_the_gate():
    net = archc.load(spec(C2, {"se": {"squeeze": 2}}))
    m = net.to_module().eval()
    x = torch.randn(2, *C2)
    se = m.se1
    g = torch.sigmoid(se.fc2(torch.relu(se.fc1(x.mean((2, 3), keepdim=True)))))
    torch.testing.assert_close(m(x), x * g)


def test_split_and_shuffle_match_shufflenet():
    x = torch.randn(2, 6, 3, 3)
    halves = [archc.load(spec((6, 3, 3), {"split": i})).to_module()(x) for i in (0, 1)]
    for got, want in zip(halves, x.chunk(2, dim=1)):
        torch.testing.assert_close(got, want)
    y = archc.load(spec((6, 3, 3), {"channel_shuffle": 2})).to_module()(x)
    torch.testing.assert_close(y, x.view(2, 2, 3, 3, 3).transpose(1, 2).reshape(2, 6, 3, 3))


def test_drop_path_is_identity_in_eval_and_per_sample_in_train():
    m = archc.load(spec(C1, {"drop_path": 0.5})).to_module()
    x = torch.ones(64, *C1)
    assert torch.equal(m.eval()(x), x)
    y = m.train()(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()     # one draw per sample


def test_conv_bn_generated_code_names_children():
    src = archc.load(spec(C2, {"conv_bn": {"out": 4, "k": 1, "names": ["conv", "bn"], "eps": 0.001}})).source()
    assert "('conv', nn.Conv2d(4, 4, 1, bias=False))" in src
    assert "('bn', nn.BatchNorm2d(4, eps=0.001))" in src
    assert "('act', nn.ReLU(inplace=True))" in src     # BN's output, read by nothing else


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("input,layer,words", [
    ((3, 4, 4), {"conv": {"out": 8, "k": 5}}, ["kernel 5 is larger than the padded input 4x4"]),
    ((3, 4, 4), {"maxpool": 5}, ["larger than the padded input"]),
    ((3, 8, 8), {"conv": {"out": 8, "k": 3, "groups": 2}}, ["groups=2", "input channels 3"]),
    ((4, 8, 8), {"conv": {"out": 6, "k": 3, "groups": 4}}, ["groups=4", "out 6"]),
    ((16, 5, 5), {"linear": 10}, ["add 'flatten'"]),
    ((3, 8, 8), {"conv": {"out": 8, "k": 3, "stride": 0}}, ["stride"]),
    ((3, 8, 8), {"conv": {"out": 8, "k": [3, 3, 3]}}, ["kernel needs 2 values"]),
    ((6, 8, 8), {"groupnorm": 4}, ["groups=4", "input channels 6"]),
    ((6, 8, 8), {"channel_shuffle": 4}, ["groups=4"]),
    ((5, 8, 8), {"split": 1}, ["multiple of 2"]),
    ((4, 8, 8), {"split": {"index": 2, "parts": 2}}, ["index 2 must be below parts 2"]),
    ((8, 4, 4), "se", ["reduce 16 leaves no channels of 8"]),
    ((8, 4, 4), {"se": {"squeeze": 2, "reduce": 4}}, ["not both"]),
    ((8, 4, 4), {"se": {"gate": "prelu"}}, ["weights"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 1, "act": "rleu"}}, ["unknown activation 'rleu'", "did you mean 'relu'"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 1, "names": ["conv"]}}, ["names needs 2 or 3 child names"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 1, "act": None, "names": ["c", "b", "a"]}},
     ["names needs 2 child names"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 1, "names": ["conv", "b.n", "act"]}}, ["Python identifier"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 9}}, ["kernel 9 is larger"]),
    ((8, 4, 4), {"dwconv": {"k": 3, "out": 12}}, ["depthwise out 12 must be a multiple of the input channels 8"]),
    ((8, 4, 4), {"dwconv": {"k": 3, "out": 16, "mult": 3}}, ["not input channels 8 x mult 3"]),
    ((8, 4, 4), {"conv_bn": {"out": 4, "k": 1, "act": {"leaky_relu": {"slop": 0.2}}}},
     ["unknown key 'slop'", "did you mean 'slope'"]),
    ((8, 4, 4), {"upsample": 0}, ["must be positive, got 0"]),
    ((8, 4, 4), {"conv_transpose": {"out": 4, "k": 3, "stride": 2, "output_padding": 2}}, ["output_padding 2"]),
    ((8, 4, 4), {"pad": {"pad": 4, "mode": "reflect"}}, ["reflect pad 4 must be smaller"]),
    ((8, 4, 4), {"pad": [1, 1]}, ["pad needs 4 values"]),
    ((8, 4, 4), {"pad": {"pad": 1, "mode": "reflect", "value": 1.0}}, ["value is for mode 'constant'"]),
    ((8, 4, 4), {"upsample": {"scale": 2, "size": 8}}, ["exactly one of scale or size"]),
    ((8, 4, 4), {"upsample": {"scale": 2, "mode": "trilinear"}}, ["'trilinear' needs a 3d input"]),
    ((8, 4, 4), {"upsample": {"scale": 2, "align_corners": True}}, ["align_corners"]),
    ((8, 4, 4), {"layernorm": 4}, ["last 4 dims of a rank-3 input"]),
    ((16,), {"lrn": 3}, ["needs input [C, L]"]),
    ((8, 4, 4), {"drop_path": 1.5}, ["'p'", "1.5"]),
])
def test_errors_are_spec_errors_with_a_message(input, layer, words):
    with pytest.raises(archc.SpecError) as e:
        archc.load(spec(input, layer))
    for w in words:
        assert w in str(e.value)


def test_merge_errors():
    with pytest.raises(archc.SpecError, match="shapes differ"):
        archc.load(spec(C2, *merge("add", None, 4, 5)))
    with pytest.raises(archc.SpecError, match="shapes differ outside dim"):
        archc.load(spec(C2, {"conv": {"out": 4, "k": 3}, "id": "a"},
                        {"conv": {"out": 4, "k": 1}, "id": "b", "from": "input"},
                        {"concat": None, "from": ["a", "b"]}))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_support_classes_script_and_export(tmp_path):
    """Every helper class the ops put in generated code works under torch.jit.script and
    torch.export, and gives the eager result."""
    import importlib.util
    net = archc.load(spec(
        (8, 9, 9),
        {"conv": {"out": 8, "k": 3, "stride": 2, "pad": "same"}},
        {"maxpool": {"k": 2, "stride": 2, "pad": "same"}},
        {"sepconv": {"out": 8, "k": 3, "stride": 2, "pad": "same"}},
        {"sepconv": {"out": 16, "k": 3, "pad": 1}},
        {"se": {"reduce": 4, "gate": "hardsigmoid"}},
        {"split": 1}, {"channel_shuffle": 2}, {"drop_path": 0.2}, "gap"))
    path = tmp_path / "gen.py"
    path.write_text(net.source())
    sp = importlib.util.spec_from_file_location("gen", path)
    mod = importlib.util.module_from_spec(sp)
    sp.loader.exec_module(mod)
    m = mod.T().eval()
    x = torch.randn(2, 8, 9, 9)
    want = m(x)
    torch.testing.assert_close(torch.jit.script(m)(x), want)
    torch.testing.assert_close(torch.export.export(m, (x,)).module()(x), want)


@pytest.mark.parametrize("size,k,s", [(5, 2, 2), (8, 3, 2), (7, 2, 1), (6, 3, 3)])
def test_avgpool_same_averages_real_inputs_only(size, k, s):
    """TensorFlow's 'same' average pooling: each window's mean over the inputs it really covers."""
    net = archc.load({"archc": 1, "name": "p", "input": [1, size, size],
                      "layers": [{"avgpool": {"k": k, "stride": s, "pad": "same"}}]})
    x = torch.arange(size * size, dtype=torch.float32).reshape(1, 1, size, size)
    got = net.to_module()(x)[0, 0]
    out = -(-size // s)
    lo = max((out - 1) * s + k - size, 0) // 2
    want = torch.empty(out, out)
    for i in range(out):
        for j in range(out):
            r0, c0 = i * s - lo, j * s - lo
            win = x[0, 0, max(r0, 0):max(r0 + k, 0), max(c0, 0):max(c0 + k, 0)]
            want[i, j] = win.mean()
    assert got.shape == want.shape == tuple(net.nodes[-1].out[1:])
    torch.testing.assert_close(got, want)
