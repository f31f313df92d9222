"""What the language gained for DeepLabV3: a `parallel` whose branches are numbered in one
nn.ModuleList (`module_list: convs`, torchvision's ASPP), and a seq block whose last layers need
the input's size (torchvision's ASPPPooling: an nn.Sequential with a forward that upsamples back).
Checked statically (names, counts, errors) and in the generated module, at two input sizes."""
from __future__ import annotations

import textwrap

import pytest
import torch

import archc
from archc.errors import SpecError

ASPP = """
blocks:
  pooling:
    params: {}
    seq:
      - adaptive_avgpool: 1
      - conv: {out: 4, k: 1, bias: false}
      - bn
      - relu
      - upsample: {size: ["$h_in", "$w_in"], mode: bilinear, align_corners: false}
  dilated:
    params: {rate: int}
    seq:
      - conv: {out: 4, k: 3, pad: $rate, dilation: $rate, bias: false}
      - bn
  aspp:
    params: {rates: list}
    layers:
      - parallel:
          module_list: convs
          branches:
            - [conv: {out: 4, k: 1, bias: false}, bn, relu]
            - dilated: "${rates[0]}"
            - dilated: "${rates[1]}"
            - pooling: {}
      - conv: {out: 4, k: 1, name: project}
layers:
  - aspp: {rates: [2, 3]}
    name: head
"""


def load(body: str, shape="[6, 12, 12]"):
    return archc.load(f"archc: 1\nname: t\ninput: {shape}\n" + textwrap.dedent(body))


def module_of(net):
    scope: dict = {}
    exec(compile(net.source(), "<generated>", "exec"), scope)
    torch.manual_seed(0)
    return next(v for k, v in scope.items() if k.lower() == "t")()


def error(body: str, build: bool = False) -> SpecError:
    with pytest.raises(SpecError) as info:
        net = load(body)
        if build:
            net.source()
    return info.value


def test_branches_numbered_in_one_module_list():
    net = load(ASPP)
    keys = list(net.state_dict_shapes())
    assert keys[:2] == ["head.convs.0.0.weight", "head.convs.0.1.weight"]
    assert "head.convs.1.0.weight" in keys and "head.convs.3.1.weight" in keys
    assert keys[-2:] == ["head.project.weight", "head.project.bias"]
    assert list(net.output_shapes[0]) == [4, 12, 12]
    assert net.params == 6 * 4 + 8 + 2 * (6 * 4 * 9 + 8) + 6 * 4 + 8 + 16 * 4 + 4
    source = net.source()
    assert "self.convs = nn.ModuleList([" in source
    assert "convs = [branch(x) for branch in self.convs]" in source
    assert "x = torch.cat(convs, 1)" in source


@pytest.mark.parametrize("size", [12, 17])
def test_generated_module_matches_the_static_view(size):
    net = load(ASPP)
    module = module_of(net).eval()
    got = {k: list(v.shape) for k, v in module.state_dict().items()}
    assert got == {k: list(v) for k, v in net.state_dict_shapes().items()}
    assert list(got) == list(net.state_dict_shapes())
    out = module(torch.randn(2, 6, size, size))       # the pooling branch follows the input's size
    assert out.shape == (2, 4, size, size)


def test_seq_block_with_a_size_following_tail_runs_it_in_forward():
    source = load(ASPP).source()
    start = source.index("class Pooling(nn.Sequential):")
    pooling = source[start:source.index("\nclass ", start)]
    assert "        for module in self:\n            x = module(x)\n" \
           "        return F.interpolate(x, size=(h_in, w_in), mode='bilinear', align_corners=False)" in pooling
    assert "h_in = x.shape[-2]" in pooling


def test_module_list_needs_a_list_of_branches():
    e = error("""
    layers:
      - parallel: {module_list: convs, branches: {a: relu, b: relu}}
    """)
    assert e.loc is not None and (e.loc.line, e.loc.col) == (6, 16)
    assert "'module_list' numbers a list of branches from 0" in str(e)


def test_module_list_name_is_checked_and_claimed():
    assert "identifier" in str(error("""
    layers:
      - parallel: {module_list: "a b", branches: [relu, relu]}
    """))
    e = error("""
    layers:
      - conv: {out: 4, k: 1, name: convs}
      - parallel: {module_list: convs, branches: [relu, relu]}
    """)
    assert "duplicate name 'convs'" in str(e)


def test_a_branch_with_when_cannot_sit_in_a_module_list():
    e = error("""
    vars: {use_conv: true}
    blocks:
      b:
        params: {}
        layers:
          - parallel:
              module_list: convs
              branches:
                - [{conv: {out: 4, k: 1}, when: $use_conv}, relu]
                - relu
    layers:
      - b: {}
    """, build=True)
    assert "a branch of module_list 'convs' must be one module" in str(e)
    assert e.loc is not None


def test_a_size_following_layer_inside_a_sequential_is_a_located_error():
    e = error("""
    blocks:
      b:
        params: {}
        seq:
          - upsample: {size: ["$h_in", "$w_in"]}
          - conv: {out: 4, k: 1}
    layers:
      - b: {}
    """, build=True)
    assert "an nn.Sequential cannot hold it" in str(e)
    assert e.loc is not None and e.loc.line == 9
