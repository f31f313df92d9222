"""Blocks of several inputs (`inputs: [low, high]`, LR-ASPP's head) and `resize` to another
tensor's size: the generated class takes its inputs by name, equals the IR run node by node at
several sizes, and misuse is a located error."""
from __future__ import annotations

import textwrap

import pytest

import archc
from archc.errors import SpecError
from archc.ir.receptive import receptive_fields

torch = pytest.importorskip("torch")
from ir_exec import run_ir  # noqa: E402
from reference_util import deterministic_  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

HEAD = """\
blocks:
  fuse:
    inputs: [low, high]
    params: {out: int}
    layers:
      - {conv: {out: $out, k: 1}, id: lifted}              # reads the first input, low
      - {conv: {out: $out, k: 1}, from: high, id: side}
      - {resize: {mode: bilinear, align_corners: false}, from: [side, low], id: up}
      - {add: null, from: [lifted, up]}
"""

SPEC = """\
archc: 1
name: fused
input: [3, 24, 24]
vars: {width: 6}
""" + HEAD + """\
layers:
  - {conv: {out: 4, k: 3, stride: 2, pad: 1}, id: low}
  - {conv: {out: $width, k: 3, stride: 2, pad: 1}, id: high}
  - {fuse: {out: 5}, from: [low, high], name: head}
  - {upsample: {size: ["$h_in", "$w_in"], mode: bilinear, align_corners: false}}
"""


def load(text: str, **kw):
    return archc.load(textwrap.dedent(text), **kw)


def assert_located(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        archc.load(text)
    assert message in info.value.message
    assert info.value.loc is not None


def test_the_class_takes_its_inputs_by_name():
    src = load(SPEC).source()
    assert "def __init__(self, low_channels, high_channels, out):" in src
    assert "def forward(self, low, high):" in src
    assert "up = F.interpolate(side, size=low.shape[2:], mode='bilinear', align_corners=False)" in src
    assert "self.head = Fuse(4, width, out=5)" in src
    assert "x = self.head(low, high)" in src


@pytest.mark.parametrize("size,width", [("3x24x24", 6), ("3x31x17", 6), ("3x16x16", 9)])
def test_the_module_equals_the_ir(size, width):
    net = load(SPEC, input=size, width=width)
    model = deterministic_(net.to_module()).eval()
    x = torch.randn(2, *net.input, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), run_ir(net, model.state_dict(), x))
    assert list(net.state_dict_shapes()) == list(model.state_dict())


def test_the_size_input_of_resize_reaches_no_field():
    """`up` has the field of `high`'s path alone, though it takes `low`'s size."""
    net = load(SPEC)
    fields = dict(zip([n.name for n in net.nodes], receptive_fields(net)))
    high = fields["conv2"]
    assert fields["head.resize1"].size[0] > high.size[0] - 1       # through the interpolation taps
    assert fields["head.conv2"].size == high.size                   # a 1x1 conv keeps it


BAD_BLOCKS = {
    "one input": ("inputs: [low]", "names two or more inputs"),
    "both forms": ("inputs: [low, high]\n    input: [c, h, w]", "give one of them"),
    "not layers": ("inputs: [low, high]\n    seq_body: true", "a block of several inputs wires them"),
    "running variable": ("inputs: [x, high]", "'x' or 'h'"),
    "a param": ("inputs: [out, high]", "a param"),
}


@pytest.mark.parametrize("case", sorted(BAD_BLOCKS))
def test_bad_definitions_are_located(case):
    decl, message = BAD_BLOCKS[case]
    head = HEAD.replace("inputs: [low, high]", decl)
    if "seq_body" in decl:
        head = head.replace("\n    seq_body: true", "").replace("    layers:", "    seq:").replace(
            "{add: null, from: [lifted, up]}", "relu")
    assert_located("archc: 1\nname: bad\ninput: [3, 8, 8]\n" + head +
                   "layers:\n  - {conv: {out: 4, k: 1}, id: a}\n  - {fuse: {out: 2}, from: [a, a]}\n", message)


BAD_USES = {
    "one given": ("- {fuse: {out: 2}, from: a}", "takes 2 inputs (low, high), got 1"),
    "three given": ("- {fuse: {out: 2}, from: [a, a, a]}", "takes 2 inputs (low, high), got 3"),
    "in a seq": ("- seq: [{fuse: {out: 2}}]", "takes 2 inputs (low, high), got 1"),
    "repeated": ("- {fuse: {out: 2}, from: [a, a], repeat: 2}", "it cannot repeat"),
    "one-input block given two": ("- {plain: null, from: [a, a]}", "'plain' takes one input, got 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_USES))
def test_bad_instances_are_located(case):
    use, message = BAD_USES[case]
    assert_located("archc: 1\nname: bad\ninput: [3, 8, 8]\n" + HEAD +
                   "  plain:\n    layers: [relu]\nlayers:\n  - {conv: {out: 4, k: 1}, id: a}\n  " + use + "\n", message)


def test_resize_takes_exactly_two_inputs_of_one_rank():
    base = "archc: 1\nname: r\ninput: [3, 8, 8]\nlayers:\n  - {conv: {out: 4, k: 1}, id: a}\n"
    for layer, message in [("- {resize: null, from: [a, a, a]}", "takes two inputs"),
                           ("- {flatten: null, id: f}\n  - {resize: null, from: [a, f]}", "same number"),
                           ("- {resize: {mode: linear}, from: [a, a]}", "needs a 1d input")]:
        assert_located(base + "  " + layer + "\n", message)
