"""The training-memory estimate (archc/ir/memory.py) against what PyTorch really keeps.

The oracle: one training-mode forward of the emitted module under
torch.autograd.graph.saved_tensors_hooks, recording every tensor autograd saves for backward,
deduplicated by storage (untyped_storage().data_ptr(): a view, an in-place result and a tensor
saved by two ops are one allocation), and counting each storage's bytes once. Parameters and
buffers are left out (they are counted as such, not as activations). It runs on the CPU, so the
estimate is asked for PyTorch's CPU kernels (`device="cpu"`): they differ from CUDA's only in
the dropout mask (a float noise tensor instead of a bool mask).

Every op family is checked exactly on a one-op network; every zoo entry exactly at a small
input and batch 2, the 39 heaviest with --heavy (bench/zoo_heavy.py). The value of each weight
does not change what autograd saves, so modules are built on the meta device and given
uninitialised storage: building VGG's 138 M weights with their init would cost more than the
rest of the test."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import SpecError
from archc.ir.memory import estimate, saved_bytes
from archc.spec import zoo
from zoo_params import zoo_params

SPECS = Path(__file__).parent / "specs"
BATCH = 2


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # two cores shared with other jobs: more threads only spin; denormals would crawl
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_num_threads(threads)
    torch.set_flush_denormal(False)


def empty_module(net):
    """The emitted module in training mode, its weights uninitialised (their values change
    nothing autograd or the allocator keeps)."""
    with torch.device("meta"):
        m = net.to_module()
    m = m.to_empty(device="cpu").train()
    for b in m.buffers():       # integer buffers index things (Swin's relative_position_index): in range
        if not b.is_floating_point():
            b.zero_()
    return m


def measured_saved_bytes(net) -> int:
    m = empty_module(net)
    state = {t.untyped_storage().data_ptr() for t in [*m.parameters(), *m.buffers()]}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in state:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t        # held by the graph until `out` goes: no address is reused meanwhile

    x = torch.rand(BATCH, *net.input)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = m(x)
    total = sum(seen.values())
    del out
    return total


def one_op(input, *layers):
    return {"archc": 1, "name": "one_op", "input": list(input), "layers": list(layers)}


CONV = {"conv": {"out": 4, "k": 3}}
OPS = {
    "conv": [CONV],
    "conv_same_stride2": [{"conv": {"out": 4, "k": 3, "pad": "same", "stride": 2}}],   # keeps a padded copy
    "conv_1d": [CONV, {"maxpool": 2}],
    "conv_3d": [CONV, {"maxpool": 2}, {"adaptive_avgpool": 1}],
    "conv_transpose": [CONV, {"conv_transpose": {"out": 3, "k": 3, "stride": 2}}],
    "dwconv": [CONV, {"dwconv": 3}],
    "sepconv": [CONV, {"sepconv": {"out": 5, "k": 3}}],
    "sepconv_same": [CONV, {"sepconv": {"out": 5, "k": 3, "stride": 2, "pad": "same"}}],
    "conv_bn_relu": [CONV, {"conv_bn": {"out": 5, "k": 3}}],
    "conv_bn_silu": [CONV, {"conv_bn": {"out": 5, "k": 3, "act": "silu"}}],
    "conv_bn_none": [CONV, {"conv_bn": {"out": 5, "k": 3, "act": "none"}}],
    "conv_bn_relu_inplace": [CONV, {"conv_bn": {"out": 5, "k": 3, "act": {"relu": {"inplace": True}}}}],
    "bn_relu_conv": [CONV, "bn", "relu", CONV],
    "bn_no_stats": [CONV, {"bn": {"track_running_stats": False, "affine": False}}],
    "bn_1d_features": ["flatten", "bn", "relu", {"linear": 3}],
    "layernorm": [CONV, {"layernorm": 1}, {"layernorm": {}}],
    "groupnorm": [CONV, {"groupnorm": 2}],
    "layernorm_channels": [CONV, {"layernorm": {"over": "channels"}}, CONV],
    # ConvNeXt's channels-last MLP: the views, a LayerNorm and Linears over the last dim, a layer scale
    "channels_last": [CONV, {"permute": [1, 2, 0]}, {"layernorm": 1}, {"linear": {"out": 6, "over": "last"}}, "gelu",
                      {"linear": {"out": 4, "over": "last"}}, {"permute": [2, 0, 1]}, {"layer_scale": {"value": 1e-6}},
                      CONV],
    "lrn": [CONV, {"lrn": 3}],
    "maxpool": [CONV, {"maxpool": {"k": 3, "stride": 2, "ceil_mode": True}}],
    "maxpool_same": [CONV, {"maxpool": {"k": 3, "stride": 2, "pad": "same"}}],
    "avgpool": [CONV, {"avgpool": 2}],
    "avgpool_same": [CONV, {"avgpool": {"k": 3, "stride": 2, "pad": "same"}}],
    "adaptive_avgpool": [CONV, {"adaptive_avgpool": 3}, {"adaptive_avgpool": 1}],
    "adaptive_maxpool": [CONV, {"adaptive_maxpool": 2}],
    "gap": [CONV, "gap", {"linear": 3}],
    "gmp": [CONV, "gmp", {"linear": {"out": 3, "bias": False}}],
    "dropout": [CONV, "flatten", "dropout", {"linear": 3}],
    "dropout_channel": [CONV, {"dropout": {"p": 0.3, "channel": True}}, {"conv": {"out": 4, "k": 1}}],
    "dropout_p0": [CONV, {"dropout": 0.0}, {"conv": {"out": 4, "k": 1}}],
    "drop_path_row": [CONV, {"drop_path": 0.2}, {"conv": {"out": 4, "k": 1}}],
    "drop_path_batch": [CONV, {"drop_path": {"p": 0.2, "mode": "batch"}}, {"conv": {"out": 4, "k": 1}}],
    "pad_modes": [CONV, {"pad": 1}, {"pad": {"pad": 1, "mode": "reflect"}},
                  {"pad": {"pad": 1, "mode": "replicate"}}, {"pad": {"pad": 1, "mode": "circular"}}],
    "upsample": [CONV, {"upsample": 2}, {"upsample": {"scale": 2, "mode": "bilinear"}},
                 {"upsample": {"scale": 2, "mode": "area"}}],
    # an input's size read in forward (LR-ASPP's head): bilinear keeps nothing, area its input
    "resize": [{"conv": {"out": 4, "k": 3, "pad": 1}, "id": "a"}, {"conv": {"out": 4, "k": 3, "stride": 2}, "id": "b"},
               {"resize": {"mode": "bilinear", "align_corners": False}, "from": ["b", "a"]}, {"conv": {"out": 2, "k": 1}}],
    "resize_area": [{"conv": {"out": 4, "k": 3, "pad": 1}, "id": "a"}, {"conv": {"out": 4, "k": 2, "stride": 2}, "id": "b"},
                    {"resize": {"mode": "area"}, "from": ["b", "a"]}, {"conv": {"out": 2, "k": 1}}],
    "shuffle_split_reshape": [CONV, {"channel_shuffle": 2}, {"split": 1}, {"reshape": [2, 36]},
                              {"conv": {"out": 4, "k": 1}}],
    "identity_scale": [CONV, "identity", {"scale": 0.5}, CONV],
    "se": [{"conv": {"out": 8, "k": 3}}, {"se": {"squeeze": 2}}],
    "se_silu_hardsigmoid": [{"conv": {"out": 8, "k": 3}},
                            {"se": {"squeeze": 2, "act": "silu", "gate": "hardsigmoid"}}],
    "prelu_softmax": [CONV, {"prelu": {"channels": True}}, "softmax"],
    # ViT's pieces: patches to tokens, class token, position embedding, attention (fused kernel,
    # and the math path its dropout takes), the class token out
    "tokens": [CONV, {"flatten": 1}, {"permute": [1, 0]}, {"class_token": None}, {"pos_embedding": None},
               {"layernorm": 1}, {"self_attention": 2}, {"select": 0}, {"linear": {"out": 3}}],
    "attention_dropout": [{"linear": {"out": 8, "over": "last"}}, {"self_attention": {"heads": 2, "dropout": 0.2}},
                          {"linear": {"out": 4, "over": "last"}}],
    # Swin's: shifted windows over a map padded to whole windows, patch merging of an odd size
    "windows": [CONV, {"permute": [1, 2, 0]}, {"layernorm": 1}, {"window_attention": {"heads": 2, "window": 4, "shift": 2}},
                "patch_merging", {"linear": {"out": 3, "over": "last"}}],
    "windows_v2": [CONV, {"permute": [1, 2, 0]}, {"window_attention": {"heads": 2, "window": 4, "shift": 2, "version": 2}},
                   {"layernorm": 1}, {"patch_merging": {"version": 2}}, {"linear": {"out": 3, "over": "last"}}],
    # MaxViT's: window and grid partition attention on [C, H, W] (one head and two), dropouts
    "partition": [{"conv": {"out": 8, "k": 3, "pad": 1}}, {"partition_attention": {"head_dim": 8, "side": 2, "kind": "window"}},
                  {"partition_attention": {"head_dim": 4, "side": 4, "kind": "grid", "sd_prob": 0.1}}, CONV],
    "partition_dropout": [{"conv": {"out": 8, "k": 3, "pad": 1}},
                          {"partition_attention": {"head_dim": 4, "side": 2, "kind": "grid", "attention_dropout": 0.1,
                                                   "mlp_dropout": 0.2, "mlp_ratio": 2}}, CONV],
    "windows_dropout": [CONV, {"permute": [1, 2, 0]}, {"layernorm": 1},
                        {"window_attention": {"heads": 2, "window": 3, "attention_dropout": 0.1, "dropout": 0.2}},
                        {"linear": {"out": 3, "over": "last"}}],
}
for _act in ("relu", "relu6", "leaky_relu", "elu", "gelu", "silu", "swish", "hardswish", "hardsigmoid",
             "sigmoid", "tanh", "mish"):
    OPS[_act] = [CONV, _act, {"conv": {"out": 4, "k": 1}}]
    if _act not in ("gelu", "sigmoid", "tanh"):   # in place: some keep the result, some a copy of the input
        OPS[f"{_act}_inplace"] = [CONV, "bn", {_act: {"inplace": True}}, {"conv": {"out": 4, "k": 1}}]
INPUTS = {"conv_1d": (3, 8), "conv_3d": (3, 6, 6, 6), "attention_dropout": (7, 6)}
MERGES = [{"conv": {"out": 4, "k": 3, "pad": 1}, "id": "a"}, {"conv": {"out": 4, "k": 1}, "from": "input", "id": "b"},
          {"add": None, "from": ["a", "b"], "id": "s"}, {"mul": None, "from": ["a", "b"], "id": "p"},
          {"concat": None, "from": ["s", "p", "a"]}, "relu", {"conv": {"out": 2, "k": 1}}]


@pytest.mark.parametrize("case", list(OPS))
def test_op_saves_what_pytorch_saves(case):
    net = archc.load(one_op(INPUTS.get(case, (3, 8, 8)), *OPS[case]))
    assert saved_bytes(net, BATCH, device="cpu") == measured_saved_bytes(net)


def test_merges_and_residual_wiring():
    # add and concat keep nothing; mul keeps both factors; two consumers of one tensor count it once
    net = archc.load(one_op((3, 8, 8), *MERGES))
    assert saved_bytes(net, BATCH, device="cpu") == measured_saved_bytes(net)


def test_every_op_is_checked():
    from archc.ops import REGISTRY
    used = set()
    for case, layers in [*OPS.items(), ("merges", MERGES)]:
        used |= {n.op.name for n in archc.load(one_op(INPUTS.get(case, (3, 8, 8)), *layers)).nodes}
    built_in = {op.name for op in REGISTRY.values() if type(op).__module__.startswith("archc.ops.")}
    assert built_in - used == set()


def small_input(name: str):
    """The entry at the smallest frame it compiles with, from a short list (its own if smaller):
    the last two dims shrink; the channels, and a video's frames ([C, T, H, W]), stay."""
    net = archc.load(name)
    for size in (32, 64, 80, 96, 128, 160, 224, 299):
        if len(net.input) < 3 or size >= net.input[-1]:
            return net
        try:
            return archc.load(name, input="x".join(map(str, [*net.input[:-2], size, size])))
        except SpecError:
            continue
    return net


@pytest.mark.parametrize("name", zoo_params())      # the heaviest with --heavy: bench/zoo_heavy.py
def test_zoo_estimate_equals_what_pytorch_saves(name):
    net = small_input(name)
    est, got = saved_bytes(net, BATCH, device="cpu"), measured_saved_bytes(net)
    assert est == got, f"{name} at {list(net.input)}: estimate {est:,} B, PyTorch saves {got:,} B ({est / got:.4f})"


# Zoo entries with every op family the allocator check can hold exactly. A product by a Python
# number (Swin's and Inception-ResNet's scales, LRN) also leaves autograd a float64 0-dim tensor
# of 8 bytes that saved_tensors_hooks does not see: Swin-T at 64x64 keeps 96 B more than its
# 29.5 MB estimate (docs/analysis.md).
ALLOCATOR_CHECKED = ["resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121", "googlenet", "vit_b_32",
                     "convnext_tiny"]


@pytest.mark.parametrize("name", ALLOCATOR_CHECKED)
def test_the_cpu_allocator_holds_the_estimated_activations_at_the_end_of_the_forward(name):
    """The training step's activation memory at its peak, between forward and backward, by the
    CPU allocator's own count (torch.profiler's memory records: every allocation and free, in
    bytes asked for), equals the estimate: in-place ops allocate nothing, views nothing, and
    what autograd keeps is all that stays."""
    from torch.profiler import ProfilerActivity, profile
    net = small_input(name)
    m = empty_module(net)
    x = torch.rand(BATCH, *net.input)
    outputs(m(x))[0].sum().backward()           # first calls allocate caches that stay: not ours
    m.zero_grad(set_to_none=True)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        outs = outputs(m(x.clone()))            # the input counts where an op keeps it, as estimated
        graph = [o.grad_fn for o in outs]       # keeps what backward needs; an output no op saved is freed
        del outs
    held = sum(e.self_cpu_memory_usage for e in prof.events())
    assert graph and held == saved_bytes(net, BATCH, device="cpu")


def outputs(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def test_breakdown_arithmetic():
    net = archc.load(SPECS / "resnet_small.yaml")
    adam = estimate(net, batch=64, optimizer="adam")
    assert adam.params_bytes == adam.grads_bytes == 4 * net.params
    assert adam.optimizer_bytes == 2 * adam.params_bytes
    assert estimate(net, 64, optimizer="sgd-momentum").optimizer_bytes == adam.params_bytes
    assert estimate(net, 64, optimizer="sgd").optimizer_bytes == 0
    assert adam.total_bytes == (adam.params_bytes + adam.buffers_bytes + adam.grads_bytes
                                + adam.optimizer_bytes + adam.activations_bytes)
    half = estimate(net, 64, dtype="bfloat16")
    assert half.params_bytes * 2 == adam.params_bytes
    assert half.activations_bytes < adam.activations_bytes < 2 * half.activations_bytes + 64 * 1024
    one, two = saved_bytes(net, 1), saved_bytes(net, 2)
    assert saved_bytes(net, 64) == one + 63 * (two - one)       # linear in the batch
    with pytest.raises(SpecError, match="unknown optimizer"):
        estimate(net, 8, optimizer="lamb")


def test_dropout_mask_is_bool_on_cuda():
    net = archc.load(one_op((3, 8, 8), CONV, "flatten", "dropout", {"linear": 3}))
    mask = 4 * 6 * 6
    assert saved_bytes(net, 1, device="cpu") - saved_bytes(net, 1, device="cuda") == mask * 4 - mask


# -- the command line ------------------------------------------------------------------------------

def cli(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_summary_memory_json_and_table():
    spec = SPECS / "resnet_small.yaml"
    plain = json.loads(cli("summary", spec, "--format", "json").stdout)
    data = json.loads(cli("summary", spec, "--format", "json", "--memory", "--batch", "64",
                          "--optimizer", "sgd-momentum").stdout)
    mem = data["memory"]
    net = archc.load(spec)
    assert mem["batch"] == 64 and mem["optimizer"] == "sgd-momentum" and mem["dtype"] == "float32"
    assert mem["saved_activations_bytes"] == saved_bytes(net, 64)
    assert mem["optimizer_bytes"] == mem["grads_bytes"] == mem["params_bytes"] == 4 * net.params
    for key in plain:
        assert data[key] == plain[key] or key == "memory"
    assert {k: mem[k] for k in plain["memory"]} == plain["memory"]
    bf16 = json.loads(cli("summary", spec, "--format", "json", "--batch", "64", "--dtype", "bf16").stdout)
    assert bf16["memory"]["dtype"] == "bfloat16" and bf16["memory"]["optimizer"] == "adam"
    table = cli("summary", spec, "--memory").stdout
    assert table.startswith(cli("summary", spec).stdout)
    assert "Training memory (batch 32, float32, adam)" in table and "Activations saved for backward" in table
    result = cli("summary", spec, "--memory", "--format", "csv", ok=False)
    assert result.exit_code == 2 and "CSV" in result.stderr


@pytest.mark.parametrize("form,args", [("rf.txt", ["--rf"]), ("rf.md", ["--rf", "--format", "md"]),
                                       ("rf.csv", ["--rf", "--format", "csv"]),
                                       ("rf.json", ["--rf", "--format", "json"]),
                                       ("memory.txt", ["--memory", "--batch", "64"]),
                                       ("memory.md", ["--memory", "--batch", "64", "--format", "md"])])
def test_rf_and_memory_golden(form, args, monkeypatch):
    from test_cli import COLOUR_ENV, check_golden
    for var in COLOUR_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(SPECS)
    check_golden(f"inception_small.{form}", cli("summary", "inception_small.yaml", *args).stdout)
