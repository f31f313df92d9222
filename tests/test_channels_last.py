"""What the language gained for ConvNeXt: `permute`, `linear` over the last dim, `layernorm` over
the channels of [C, ...], and `layer_scale`, a learned tensor that is a parameter of its class
(not a module). Each is checked statically (shapes, keys, receptive field, errors) and in the
generated module; the zoo's exactness tests hold ConvNeXt T/S/B/L to torchvision."""
from __future__ import annotations

import textwrap

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import SpecError
from archc.ir.receptive import receptive_fields

CNBLOCK = """
blocks:
  cnblock:
    params: {}
    residual:
      body:
        - name: block
          seq:
            - conv: {out: $c_in, k: 7, pad: 3, groups: $c_in}
            - permute: [1, 2, 0]
            - layernorm: {dims: 1, eps: 1.0e-6}
            - linear: {out: "${4 * c_in}", over: last}
            - gelu
            - linear: {out: $c_in, over: last}
            - permute: [2, 0, 1]
        - layer_scale: {value: 0.5}
          name: gamma
        - drop_path: 0.1
"""


def load(body: str, shape="[8, 14, 14]", **kw):
    return archc.load(f"archc: 1\nname: t\ninput: {shape}\n" + textwrap.dedent(body), **kw)


def error(body: str, build: bool = False) -> str:
    with pytest.raises(SpecError) as info:
        net = load(body)
        if build:
            net.source()
    return str(info.value)


def test_shapes_counts_and_keys():
    net = load(CNBLOCK + "layers:\n  - layernorm: {over: channels}\n  - cnblock\n  - gap\n  - linear: 10\n")
    shapes = {n.name: n.out for n in net.nodes}
    assert shapes["cnblock1.block.1"] == (14, 14, 8) and shapes["cnblock1.block.3"] == (14, 14, 32)
    assert shapes["cnblock1.block.6"] == (8, 14, 14)
    keys = list(net.state_dict_shapes())
    # the class's own parameter comes before its children, as torch orders a state_dict
    assert keys[:4] == ["layernorm1.weight", "layernorm1.bias", "cnblock1.gamma", "cnblock1.block.0.weight"]
    assert net.state_dict_shapes()["cnblock1.gamma"] == (8, 1, 1)
    assert net.state_dict_shapes()["cnblock1.block.3.weight"] == (32, 8)        # nn.Linear's [out, in]
    linear = next(n for n in net.nodes if n.name == "cnblock1.block.3")
    assert linear.macs == 14 * 14 * 8 * 32
    module = net.to_module()
    assert list(module.state_dict()) == keys
    assert torch.equal(module.cnblock1.gamma, torch.full((8, 1, 1), 0.5))


def test_generated_module_computes_what_the_ops_say():
    net = load(CNBLOCK + "layers:\n  - layernorm: {over: channels, eps: 1.0e-6}\n  - cnblock\n")
    module = net.to_module().eval()
    x = torch.randn(2, 8, 14, 14)
    ln = module.layernorm1
    y = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    blk = module.cnblock1
    z = blk.block[0](y).permute(0, 2, 3, 1)
    z = blk.block[5](blk.block[4](blk.block[3](blk.block[2](z)))).permute(0, 3, 1, 2)
    with torch.no_grad():
        assert torch.allclose(module(x), y + blk.gamma * z, atol=1e-6)
    src = net.source()
    assert "self.gamma = nn.Parameter(torch.full((c_in, 1, 1), 0.5))" in src
    assert "out = self.gamma * out" in src and "class LayerNorm2d(nn.LayerNorm):" in src


def test_receptive_field_goes_through_the_channels_last_section():
    net = load(CNBLOCK + "layers:\n  - cnblock\n  - cnblock\n")
    fields = dict(zip([n.name for n in net.nodes], receptive_fields(net)))
    assert fields["cnblock1.block.5"].size == (7, 7) and not fields["cnblock1.block.5"].whole
    assert fields["cnblock2.add1"].size == (13, 13)
    # normalisation statistics are not counted (docs/analysis.md), on a moved layout as elsewhere
    norm = load("layers:\n  - permute: [1, 2, 0]\n  - layernorm: 2\n  - permute: [2, 0, 1]\n  - conv: {out: 4, k: 3}\n")
    assert [f.size for f in receptive_fields(norm)] == [(1, 1), (1, 1), (1, 1), (3, 3)]
    # a window over the moved dims is not position-wise there: the field is everything
    mixed = load("layers:\n  - permute: [1, 2, 0]\n  - conv: {out: 4, k: 3, pad: 1}\n  - permute: [2, 0, 1]\n")
    assert [f.whole for f in receptive_fields(mixed)] == [False, True, True]


@pytest.mark.parametrize("layers, message", [
    ("- permute: [0, 0, 1]", "permute needs each of the 3 per-sample dims 0..2 once"),
    ("- permute: [1, 0]", "permute needs each of the 3 per-sample dims"),
    ("- linear: 4", "add 'flatten' before it, or 'over: last'"),
    ("- layernorm: {dims: 1, over: channels}", "'dims' or 'over: channels', not both"),
    ("- flatten\n  - layernorm: {over: channels}", "needs input [C, L], [C, H, W]"),
    ("- layer_scale: {shape: [3, 1]}", "does not broadcast over an input [8, 14, 14]"),
    ("- seq: [layer_scale]", "is a parameter of the class it sits in, not a module"),
    ("- {layer_scale: {}, repeat: 2}", "is a parameter of the class it sits in"),
    ("- {layer_scale: {}, init: {weight: zeros}}", "starts from its 'value:', not from 'init:'"),
])
def test_mistakes_are_located(layers, message):
    msg = error(f"layers:\n  {layers}\n")
    assert msg.startswith("<string>:") and message in msg, msg


def test_a_layer_scale_left_out_by_a_condition_is_a_located_build_error():
    body = """
    vars: {use_scale: true}
    blocks:
      b:
        params: {}
        layers:
          - {layer_scale: {}, when: $use_scale}
    layers: [b]
    """
    msg = error(body, build=True)
    assert msg.startswith("<string>:") and "under 'when:'" in msg


def test_check_and_build_from_the_command_line(tmp_path):
    spec = tmp_path / "cn.yaml"
    spec.write_text("archc: 1\nname: cn\ninput: [8, 14, 14]\n" + textwrap.dedent(CNBLOCK)
                    + "layers:\n  - cnblock\n  - seq: [layer_scale]\n")
    result = CliRunner().invoke(main, ["build", str(spec), "-o", str(tmp_path / "m.py")])
    assert result.exit_code == 2 and f"{spec}:24:11:" in result.output, result.output
    spec.write_text(spec.read_text().replace("  - seq: [layer_scale]\n", ""))
    result = CliRunner().invoke(main, ["build", str(spec), "-o", str(tmp_path / "m.py")])
    assert result.exit_code == 0, result.output
    compile((tmp_path / "m.py").read_text(), "m.py", "exec")
