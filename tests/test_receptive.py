"""Receptive fields (archc/ir/receptive.py) against a brute-force measurement on the emitted module.

The measurement: build `net.to_module()`, make every weight a positive constant and every bias
zero, feed a positive input, and backpropagate from one output position (the centre, all
channels). The input positions with a non-zero gradient are the ones that output depends on;
their extent along each dim must be the computed field [start + c * jump, ... + size - 1]
clipped to the input. Why nothing cancels by accident:
- positive inputs, positive weights, zero biases: every activation is positive, so ReLU passes
  every gradient (no dead units), and no sum of contributions is zero;
- eval mode: BatchNorm is a positive affine map (running mean 0, variance 1), dropout is off;
- max pooling sends its gradient to one input per window, which hides the rest of the window:
  each nn.MaxPoolNd is swapped for an nn.AvgPoolNd of the same kernel, stride, padding and
  ceil_mode (the same windows: PyTorch computes both output sizes with one formula), whose
  gradient reaches every input in the window;
- float64, so the small gradients at the edges of a deep field do not underflow.
Dilated convolutions leave holes inside the field; the extent (first to last position) is what
the field's size describes."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import archc
from archc.ir.receptive import receptive_fields
from archc.report.summary import module_index

SPECS = Path(__file__).parent / "specs"


def spec(name, input, layers):
    return {"archc": 1, "name": name, "input": input, "layers": layers}


SEQ_2D = spec("seq2d", [2, 72, 72], [
    {"conv": {"out": 4, "k": 3, "pad": 1}},
    {"conv": {"out": 4, "k": 5, "stride": 2, "pad": 2}},
    {"maxpool": {"k": 3, "stride": 2, "pad": 1}},
    {"conv": {"out": 4, "k": 3}},
    {"avgpool": 2},
    {"conv": {"out": 4, "k": [3, 5], "stride": [1, 2], "pad": [1, 0]}},
    "relu"])
SAME_PAD = spec("same_pad", [1, 40, 40], [          # TensorFlow 'same': asymmetric padding
    {"conv": {"out": 3, "k": 4, "stride": 2, "pad": "same"}},
    {"maxpool": {"k": 3, "stride": 2, "pad": 1, "ceil_mode": True}},
    {"conv": {"out": 3, "k": 3, "stride": 2, "pad": "same"}}])
SEQ_1D = spec("seq1d", [2, 160], [
    {"conv": {"out": 4, "k": 7, "stride": 2, "pad": 3}}, "relu",
    {"maxpool": {"k": 3, "stride": 2, "pad": 1}},
    {"conv": {"out": 4, "k": 3, "dilation": 2, "pad": 2}},
    {"avgpool": {"k": 3, "stride": 2}}])
SEQ_3D = spec("seq3d", [1, 24, 20, 22], [
    {"conv": {"out": 2, "k": 3, "pad": 1}},
    {"conv": {"out": 2, "k": [3, 1, 5], "stride": 2}},
    {"avgpool": 2},
    {"conv": {"out": 2, "k": 3, "pad": [1, 0, 1]}}])
DILATED = spec("dilated", [1, 80, 80], [            # a context module: fields of 3, 7, 15, 31, 63
    {"conv": {"out": 2, "k": 3, "pad": 1}},
    {"conv": {"out": 2, "k": 3, "dilation": 2, "pad": 2}}, "relu",
    {"conv": {"out": 2, "k": 3, "dilation": 4, "pad": 4}}, "relu",
    {"conv": {"out": 2, "k": 3, "dilation": 8, "pad": 8}},
    {"dwconv": {"k": 3, "dilation": 16, "pad": 16}}])
INCEPTION = SPECS / "inception_small.yaml"        # GoogLeNet-like: four branches, a max-pool branch, concat
RESNET = SPECS / "resnet_small.yaml"              # bottlenecks with strided downsample shortcuts, add


def positive_module(net) -> nn.Module:
    """The emitted module with positive constant weights, zero biases, max pools as avg pools."""
    m = net.to_module()
    for name, sub in list(m.named_modules()):
        for attr, child in list(sub.named_children()):
            if isinstance(child, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
                assert child.dilation in (1, (1,), (1, 1), (1, 1, 1)), "an avg pool has no dilation"
                avg = getattr(nn, type(child).__name__.replace("Max", "Avg"))
                setattr(sub, attr, avg(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear)):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.weight.fill_(1.0)
                mod.bias.zero_()
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    return m.double().eval()


def watched(net) -> dict[str, int]:
    """Module path -> position of the node whose output the module returns (ops and blocks)."""
    pos = {n.name: i for i, n in enumerate(net.nodes)}
    out = {}
    for path in module_index(net.root):
        inside = [i for name, i in pos.items() if name == path or name.startswith(path + ".")]
        if inside:
            out[path] = max(inside)
    return out


def measured_extents(m: nn.Module, net, paths: dict[str, int]):
    """{module path: (output shape, [(first, last) input position per spatial dim])}."""
    outputs = {}
    for path in paths:
        m.get_submodule(path).register_forward_hook(lambda mod, i, o, p=path: outputs.setdefault(p, o))
    torch.manual_seed(0)
    x = (torch.rand(1, *net.input, dtype=torch.float64) + 0.5).requires_grad_()
    m(x)
    result = {}
    for path, y in outputs.items():
        centre = tuple(s // 2 for s in y.shape[2:])
        (g,) = torch.autograd.grad(y[(0, slice(None), *centre)].sum(), x, retain_graph=True)
        hit = g[0].abs().sum(0).nonzero()
        assert len(hit), path
        result[path] = (tuple(y.shape[1:]),
                        [(int(hit[:, d].min()), int(hit[:, d].max())) for d in range(hit.shape[1])])
    return result


def expected_extent(field, out_shape, input_shape):
    ext = []
    for d, size in enumerate(input_shape[1:]):
        if field.whole:
            ext.append((0, size - 1))
            continue
        c = out_shape[1 + d] // 2
        lo = field.start[d] + c * field.jump[d]
        assert lo == int(lo) and field.size[d] == int(field.size[d])
        ext.append((max(int(lo), 0), min(int(lo + field.size[d] - 1), size - 1)))
    return ext


CASES = {"seq2d": (SEQ_2D, None), "same_pad": (SAME_PAD, None), "seq1d": (SEQ_1D, None),
         "seq3d": (SEQ_3D, None), "dilated": (DILATED, None), "inception": (INCEPTION, "3x48x48"),
         "resnet": (RESNET, "3x64x64")}


@pytest.mark.parametrize("case", list(CASES))
def test_field_matches_gradient_support(case):
    src, input_ = CASES[case]
    net = archc.load(src, input=input_)
    fields = receptive_fields(net)
    paths = watched(net)
    got = measured_extents(positive_module(net), net, paths)
    assert len(got) == len(paths) >= 3
    unclipped = 0
    for path, (out_shape, extent) in got.items():
        f = fields[paths[path]]
        assert extent == expected_extent(f, out_shape, net.input), \
            f"{case} {path}: measured {extent}, field size {f.size} jump {f.jump} start {f.start}"
        if not f.whole:
            unclipped += all(f.start[d] + out_shape[1 + d] // 2 * f.jump[d] >= 0 for d in range(len(f.size)))
    assert unclipped >= 2     # the comparisons are not all clipped to the whole input


def test_known_fields():
    # published receptive fields (Araujo et al., Distill 2019): AlexNet 195, VGG-16 212,
    # Inception v3 1311, ResNet-50 (torchvision layout, stride on the 3x3) 427
    for name, layer, size in [("alexnet", "features.12", 195), ("vgg16", "features.30", 212),
                              ("inception_v3", "Mixed_7c", 1311), ("resnet50", "layer4", 427)]:
        net = archc.load(name)
        fields = receptive_fields(net)
        last = max(i for i, n in enumerate(net.nodes) if n.name == layer or n.name.startswith(layer + "."))
        assert fields[last].size == (size, size), name
        assert fields[last].jump == (32, 32), name


def test_branches_take_the_hull():
    net = archc.load(INCEPTION)
    fields = dict(zip((n.name for n in net.nodes), receptive_fields(net)))
    cat = next(n.name for n in net.nodes if n.name.startswith("inc3a.") and n.op.name == "concat")
    branches = [fields[n] for n in ("inc3a.branch1.relu1", "inc3a.branch2.1.relu1", "inc3a.branch3.1.relu1")]
    assert fields[cat].size == max(f.size for f in branches)          # the 5x5 branch
    assert fields[cat].start == min(f.start for f in branches)


def test_global_ops_make_the_whole_input():
    net = archc.load(RESNET)
    fields = receptive_fields(net)
    kinds = {n.op.name: f for n, f in zip(net.nodes, fields)}
    assert kinds["adaptive_avgpool"].whole and kinds["linear"].whole
    assert kinds["adaptive_avgpool"].size == (32, 32) and kinds["adaptive_avgpool"].jump is None
    assert not any(f.whole for n, f in zip(net.nodes, fields) if n.op.name == "conv")
    # squeeze-excitation reads every position: after it, the field is the whole input
    se = archc.load(spec("se", [8, 16, 16], [{"conv": {"out": 8, "k": 3}}, {"se": {"squeeze": 2}}]))
    assert [f.whole for f in receptive_fields(se)] == [False, True]


def test_fractional_strides_and_mlp():
    up = archc.load(spec("up", [1, 16, 16], [{"conv": {"out": 2, "k": 3, "stride": 2, "pad": 1}},
                                            {"upsample": 2}, {"conv": {"out": 2, "k": 3, "pad": 1}}]))
    f = receptive_fields(up)
    assert f[1].jump == (1, 1) and f[1].size == (3, 3)       # nearest x2 halves the jump
    assert f[2].size == (5, 5) and f[2].jump == (1, 1)       # 3 taps at jump 1: up to 2 conv outputs
    mlp = archc.load(spec("mlp", [8], [{"linear": 4}, "relu", {"linear": 2}]))
    assert receptive_fields(mlp) == [None, None, None]


def test_summary_rf_columns_and_json():
    net = archc.load(RESNET)
    data = net.summary(rf=True)
    assert data["layers"][0]["rf"] == {"size": [3, 3], "jump": [1, 1], "start": [-1, -1], "whole": False}
    assert data["layers"][-1]["rf"]["whole"] is True
    folded = net.summary(rf=True, depth=1)
    by_name = {r["name"]: r["rf"] for r in folded["layers"]}
    full = {r["name"]: r["rf"] for r in data["layers"]}
    assert by_name["layer2"] == full["layer2.1.relu3"]       # a folded row shows its last layer's field
    plain = net.summary()
    assert all("rf" not in r for r in plain["layers"])
