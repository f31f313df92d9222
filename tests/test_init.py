"""Weight initialisation in the spec language: schemes and their aliases, presets, rules (spec,
block, layer), the static plan, the generated `_init_weights`, and located errors."""
from __future__ import annotations

import importlib.util
import math
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import SpecError
from archc.ir.init import Scheme, plan

sys.path.insert(0, str(Path(__file__).parent))
from reference_util import init_fixture, init_mismatches, init_stats  # noqa: E402
from test_codegen import without_in_place  # noqa: E402


def net_of(text: str, **kw):
    return archc.load(textwrap.dedent(text), **kw)


def spec(layers: str, init: str = "", blocks: str = "", input: str = "[3, 16, 16]") -> str:
    return f"archc: 1\nname: t\ninput: {input}\n{init}\n{blocks}\nlayers:\n{textwrap.indent(textwrap.dedent(layers), '  ')}"


def scheme_of(value: str) -> Scheme:
    """The scheme a one-layer spec gives its linear weight."""
    net = net_of(spec(f"- flatten\n- linear: {{out: 4, init: {{weight: {value}}}}}", input="[8]"))
    return plan(net)["linear1.weight"]


@pytest.mark.parametrize("written, name, params", [
    ("zeros", "zeros", {}),
    ("0.5", "constant", {"value": 0.5}),
    ("{constant: 2}", "constant", {"value": 2}),
    ("{normal: 0.01}", "normal", {"std": 0.01}),
    ("{normal: {mean: 1, std: 2}}", "normal", {"mean": 1.0, "std": 2.0}),
    ("{kaiming_normal: {mode: fan_out, nonlinearity: relu}}", "kaiming_normal",
     {"mode": "fan_out", "nonlinearity": "relu"}),
    ("xavier_uniform", "xavier_uniform", {}),
    ("{trunc_normal: 0.02}", "trunc_normal", {"std": 0.02}),
    ("orthogonal", "orthogonal", {}),
    # Keras's names, with Keras's own defaults and meanings
    ("glorot_uniform", "xavier_uniform", {}),
    ("he_normal", "variance_scaling", {"scale": 2.0}),
    ("glorot_normal", "variance_scaling", {"mode": "fan_avg"}),
    ("lecun_uniform", "variance_scaling", {"distribution": "uniform"}),
    ("random_normal", "normal", {"std": 0.05}),
    ("{random_uniform: {minval: -1, maxval: 1}}", "uniform", {"a": -1.0}),
    ("{truncated_normal: {stddev: 0.1}}", "trunc_normal", {"std": 0.1, "a": -0.2, "b": 0.2}),
    # Paddle's names
    ("{Normal: {mean: 0, std: 0.02}}", "normal", {"std": 0.02}),
    ("XavierUniform", "xavier_uniform", {}),
    ("KaimingNormal", "kaiming_normal", {"nonlinearity": "relu"}),
    ("{Uniform: {low: -0.1, high: 0.1}}", "uniform", {"a": -0.1, "b": 0.1}),
])
def test_schemes_and_aliases(written, name, params):
    s = scheme_of(written)
    assert s.name == name
    assert dict(s.params) == pytest.approx(params) if all(isinstance(v, float) for v in params.values()) \
        else dict(s.params) == params


BAD = [
    # (layers, init, blocks, message fragment)
    ("- conv: {out: 4, k: 3, init: {weight: kaiming_nromal}}", "", "",
     "unknown init scheme 'kaiming_nromal' (did you mean 'kaiming_normal'?)"),
    ("- conv: {out: 4, k: 3, init: {wieght: zeros}}", "", "", "'conv' has no tensor 'wieght' (did you mean 'weight'?)"),
    ("- conv: {out: 4, k: 3, init: {weight: {normal: {sdt: 1}}}}", "", "", "'normal' has no param 'sdt'"),
    ("- conv: {out: 4, k: 3, init: {weight: {kaiming_normal: {mode: fan_avg}}}}", "", "",
     "'mode' must be one of fan_in, fan_out, got 'fan_avg'"),
    ("- conv: {out: 4, k: 3, init: {bias: kaiming_normal}}", "", "", "'kaiming_normal' needs fans"),
    ("- relu: {init: {weight: zeros}}", "", "", "'relu' has no tensor 'weight'; tensors: none"),
    ("- conv: {out: 4, k: 3}", "init: [{op: convv, weight: zeros}]", "", "init rules select"),
    ("- conv: {out: 4, k: 3}", "init: [{weight: zeros}]", "", "an init rule needs 'op'"),
    ("- conv: {out: 4, k: 3}", "init: [{op: bn, runing_var: ones}]", "", "did you mean 'running_var'"),
    ("- conv: {out: 4, k: 3}", "init: [{name: conv2, weight: zeros}]", "",
     "init rule names 'conv2', which is no layer with tensors (did you mean 'conv1'?)"),
    ("- conv: {out: 4, k: 3}", "init: padle", "", "unknown init preset 'padle' (did you mean 'paddle'?)"),
    ("- flatten\n- linear: 4", "init: [{op: linear, weight: paddle_conv}]", "", "'paddle_conv' starts only conv"),
    ("- conv: {out: 4, k: 3}", "init: [{op: conv, weight: zeros, when: 3}]", "", "'when' must be true or false"),
    ("- conv: {out: 4, k: 3}", "init: {preset: torch, rulez: []}", "", "'init' takes 'preset' and 'rules'"),
    ("- conv: {out: 4, k: 3}\n- bn", "init: [{op: [conv, bn], weight: default}]", "",
     "'default' differs between nn.BatchNorm2d and nn.Conv2d: give each its own rule"),
    ("- b", "", "blocks:\n  b:\n    layers: [{conv: {out: 4, k: 3}}]", None),
    ("- b: {init: {weight: zeros}}", "", "blocks:\n  b:\n    layers: [{conv: {out: 4, k: 3}}]",
     "'init' goes on a layer that holds tensors"),
    ("- conv: {out: 4, k: 3}", "", "blocks:\n  b:\n    init: [{name: conv9, weight: zeros}]\n"
     "    layers: [{conv: {out: 4, k: 3}}]", None),
]


@pytest.mark.parametrize("layers, init, blocks, message", BAD)
def test_located_errors(layers, init, blocks, message):
    text = spec(layers, init, blocks)
    if message is None:          # good specs (an unused block's rules are not checked)
        net_of(text)
        return
    with pytest.raises(SpecError) as e:
        net_of(text)
    assert message in e.value.message
    assert e.value.loc is not None and e.value.loc.line > 0


def test_block_rule_naming_a_missing_layer_is_located_at_the_rule():
    text = spec("- b", "", "blocks:\n  b:\n    init: [{name: conv9, weight: zeros}]\n"
                "    layers: [{conv: {out: 4, k: 3}}]")
    with pytest.raises(SpecError) as e:
        net_of(text)
    assert "init rule names 'conv9'" in e.value.message and "block 'b'" in e.value.message
    assert e.value.loc.line == 7


ORDERED = """
archc: 1
name: ordered
input: [3, 8, 8]
vars: {zero: true}
init:
  - {op: [conv, bn], weight: ones}            # every conv and bn weight: 1
  - {op: conv, bias: 0.5}
  - {name: "b*.c2", weight: 2}                # later rules win: the blocks' c2 convs get 2
blocks:
  blk:
    init:
      - {name: c2, bias: 3}                   # block rules win over the spec's
      - {name: bn, weight: zeros, when: $zero}
    layers:
      - conv: {out: 4, k: 3, pad: 1, name: c1}
      - conv: {out: 4, k: 3, pad: 1, name: c2, init: {bias: 4}}   # the layer's own init wins last
      - bn: {name: bn}
layers:
  - conv: {out: 4, k: 3, pad: 1, bias: false}
  - {blk: null, name: b1}
  - {blk: null, name: b2}
  - flatten
  - linear: {out: 3, init: {weight: {constant: 7}, bias: -1}}
"""


def constants(model) -> dict[str, float]:
    return {k: v.flatten()[0].item() for k, v in model.state_dict().items()
            if v.is_floating_point() and v.numel() and bool((v == v.flatten()[0]).all())}


def test_rule_order_spec_then_blocks_then_layers():
    net = net_of(ORDERED)
    want = {"conv1.weight": 1, "b1.c1.weight": 1, "b1.c1.bias": 0.5, "b1.c2.weight": 2, "b1.c2.bias": 4,
            "b1.bn.weight": 0, "b2.c2.bias": 4, "linear1.weight": 7, "linear1.bias": -1}
    got = constants(net.to_module())
    for k, v in want.items():
        assert got[k] == v, k
    # the static plan says the same thing, tensor by tensor
    p = plan(net)
    assert p["b1.c2.bias"] == Scheme("constant", (("value", 4),))
    assert p["b1.bn.weight"].name == "zeros" and "b1.bn.bias" not in p
    # `when: false` drops the block rule
    assert constants(net_of(ORDERED, zero=False).to_module())["b1.bn.weight"] == 1


def test_layer_init_in_a_block_once_per_definition_or_per_instance_where_they_differ():
    blocks = """blocks:
      unit:
        params: {v: 1.0}
        layers:
          - conv: {out: 4, k: 1, name: same, init: {weight: 0.5}}
          - conv: {out: 4, k: 1, name: own, init: {weight: "${v}"}}"""
    net = net_of(spec("- unit: {v: 1.0}\n- unit: {v: 2.0}\n- unit: {v: 1.0}", blocks=blocks))
    src = net.source()
    body = src[src.index("def _init_weights"):]
    # alike in every instance: one line in the block's loop; differing: one line per instance
    assert body.count("nn.init.constant_(m.same.weight, 0.5)") == 1
    assert "m.own.weight" not in body and body.count("nn.init.constant_(self.") == 3
    got = constants(net.to_module())
    assert [got[f"unit{j}.own.weight"] for j in (1, 2, 3)] == [1.0, 2.0, 1.0]
    assert all(got[f"unit{j}.same.weight"] == 0.5 for j in (1, 2, 3))


def test_generated_code_reads_like_torchvision():
    src = archc.load("resnet18", zero_init_residual=True).source()
    body = src[src.index("def _init_weights(self, zero_init_residual):"):src.index("def forward", src.index("def _init_weights"))]
    assert "for m in self.modules():\n            if isinstance(m, nn.Conv2d):\n" \
           "                nn.init.kaiming_normal_(m.weight, mode=\"fan_out\", nonlinearity=\"relu\")" in body
    # the block rules' `when: $zero_init_residual` is the var, tested, as torchvision tests it; every
    # block class has its rule, whichever block this variant uses
    assert "        if zero_init_residual:\n            for m in self.modules():\n" \
           "                if isinstance(m, BasicBlock):\n                    nn.init.zeros_(m.bn2.weight)\n" \
           "                elif isinstance(m, Bottleneck):\n                    nn.init.zeros_(m.bn3.weight)" in body
    assert "self._init_weights(zero_init_residual)" in src
    # one source for every variant (but where it runs in place: only the blocks a network uses)
    assert without_in_place(archc.load("resnet101").source().split('"""', 2)[2]) == \
        without_in_place(archc.load("resnet18").source().split('"""', 2)[2])
    # no init section, no method: PyTorch's defaults, as torchvision's AlexNet
    assert "_init_weights" not in archc.load("alexnet").source()


def test_disjoint_classes_chain_with_elif_and_overlapping_rules_do_not():
    chained = archc.load("vgg16_bn").source()
    assert "elif isinstance(m, nn.Linear):" in chained
    overlapping = net_of(ORDERED).source()
    loop = overlapping[overlapping.index("def _init_weights"):]
    assert "elif" not in loop.split("for m in self.modules():")[0]


def test_bias_guard_only_where_some_modules_lack_it():
    src = archc.load("vgg16_bn").source()      # every conv has a bias: no guard
    assert "if m.bias is not None" not in src
    mixed = net_of(spec("- conv: {out: 4, k: 3}\n- conv: {out: 4, k: 3, bias: false}",
                        "init: [{op: conv, bias: zeros}]")).source()
    assert "if m.bias is not None:\n                    nn.init.zeros_(m.bias)" in mixed


def load_file_module(path: Path, name: str):
    spec_ = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("entry, kw", [("resnet18", {"zero_init_residual": True}), ("mobilenetv1_100", {}),
                                       ("seed_lenet_mnist", {}), ("efficientnet_b0", {}),
                                       ("seed_vgg13_cifar", {})])
def test_standalone_source_starts_like_to_module_seed_for_seed(tmp_path, entry, kw):
    net = archc.load(entry, **kw)
    path = tmp_path / f"gen_{entry}.py"
    path.write_text(net.source())
    mod = load_file_module(path, f"gen_{entry}")
    # the call the file's docstring names: `Built for: resnet18(zero_init_residual=True) on input ...`
    built_for = mod.__doc__.split("Built for: ")[1].split(" on input")[0]
    torch.manual_seed(0)
    a = eval(built_for, vars(mod)).state_dict()
    torch.manual_seed(0)
    b = net.to_module().state_dict()
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def stats_of(value: str, shape=(64, 128, 3, 3)) -> torch.Tensor:
    """The weight one conv starts with under a scheme (out, in, k, k)."""
    net = net_of(spec(f"- conv: {{out: {shape[0]}, k: {shape[2]}, init: {{weight: {value}}}}}",
                      input=f"[{shape[1]}, 8, 8]"))
    torch.manual_seed(0)
    return net.to_module().conv1.weight.detach().double()


def test_schemes_have_the_spread_their_definitions_give():
    fan_in, fan_out = 128 * 9, 64 * 9
    w = stats_of("{kaiming_normal: {mode: fan_out, nonlinearity: relu}}")
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.03)
    w = stats_of("he_normal")          # Keras: a normal cut at 2 std, variance kept at 2 / fan_in
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    assert w.abs().max().item() <= 2 * math.sqrt(2 / fan_in) / 0.87962566103423978 + 1e-9
    w = stats_of("lecun_uniform")
    assert w.abs().max().item() <= math.sqrt(3 / fan_in)
    assert w.abs().max().item() > 0.99 * math.sqrt(3 / fan_in)
    w = stats_of("glorot_normal")
    assert w.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.03)
    w = stats_of("paddle_conv")        # Paddle: Normal(0, sqrt(2 / (k_h * k_w * C_in)))
    assert w.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.03)
    w = stats_of("default")            # PyTorch's own: kaiming_uniform(a=sqrt(5)): bound 1/sqrt(fan_in)
    assert w.abs().max().item() <= 1 / math.sqrt(fan_in)
    assert w.abs().max().item() > 0.99 / math.sqrt(fan_in)
    w = stats_of("{trunc_normal: {std: 0.02, a: -0.04, b: 0.04}}")
    assert w.abs().max().item() <= 0.04


def test_paddle_preset_counts_every_input_channel_of_a_grouped_conv():
    net = net_of(spec("- conv: {out: 64, k: 3, groups: 8}", "init: paddle", input="[64, 8, 8]"))
    torch.manual_seed(0)
    w = net.to_module().conv1.weight.detach().double()
    assert w.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)   # not 64 / 8 * 9


def test_default_bias_and_prelu_reset():
    net = net_of(spec("- conv: {out: 64, k: 3, init: {bias: default}}\n- prelu: {init: 0.3}\n"
                      "- prelu: {channels: true, init: {weight: default}}",
                      "init: [{op: conv, bias: 1}, {op: prelu, weight: 2}]", input="[128, 8, 8]"))
    torch.manual_seed(0)
    m = net.to_module()
    b = m.conv1.bias.detach()
    assert b.abs().max().item() <= 1 / math.sqrt(128 * 9) and b.std().item() > 0
    assert m.prelu1.weight.item() == 2                          # the rule
    assert torch.all(m.prelu2.weight == 0.25)                   # its own default, restored


def test_keras_preset_zero_biases_and_glorot_kernels():
    net = archc.load("seed_vgg13_cifar")
    torch.manual_seed(0)
    m = net.to_module()
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert all(bool((c.bias == 0).all()) for c in convs)
    w = convs[1].weight.detach()
    fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
    assert w.abs().max().item() <= math.sqrt(6 / (fan_in + fan_out))


TEXTBOOK = Path(archc.__file__).parent / "zoo" / "textbook"
FRAMEWORK = {"paddle": ("lenet_paddle", "alexnet_paddle", "vgg16_paddle", "googlenet_paddle", "resnet_paddle",
                        "simplenet"),
             "keras": ("lenet5_tf", "vgg13_cifar_tf", "resnet_cifar_tf"),
             "torch": ("food11", "cifar10_cnn")}


@pytest.mark.parametrize("preset, name", [(p, n) for p, names in FRAMEWORK.items() for n in names])
def test_textbook_specs_start_as_their_framework_and_say_so(preset, name):
    import yaml
    text = (TEXTBOOK / f"{name}.yaml").read_text()
    assert yaml.safe_load(text)["init"] == preset
    header = text[:text.index("archc: 1")]
    assert f"`init: {preset}`" in header


def test_init_check_catches_a_wrong_start():
    """The zoo's init test (test_zoo) fails when a network starts with PyTorch's defaults
    instead of its reference's kaiming normal convs."""
    torch.manual_seed(0)
    m = archc.load("resnet18").to_module()
    ref = init_fixture("resnet18")
    assert init_mismatches(init_stats(m), ref) == []
    for x in m.modules():
        if isinstance(x, torch.nn.Conv2d):
            x.reset_parameters()
    bad = init_mismatches(init_stats(m), ref)
    assert len(bad) >= 20 and all("conv" in b or "downsample.0" in b for b in bad)


def test_toml_init_equals_yaml():
    a = archc.load("specs/resnet50.yaml")
    b = archc.load("specs/resnet50.toml")
    assert a.source().split("\n", 1)[1] == b.source().split("\n", 1)[1]    # all but the file name
    assert plan(a) == plan(b) != {}
