"""An `id` on a child of a seq (LR-ASPP's `low`, torchvision's IntermediateLayerGetter): the
class's later layers read that tensor; forward runs the seq's children in a loop and keeps it.
The generated module equals the IR run node by node, for the spec's vars and others, and
scripts; misplaced ids are located."""
from __future__ import annotations

import textwrap

import pytest

import archc
from archc.errors import SpecError

torch = pytest.importorskip("torch")
from ir_exec import run_ir  # noqa: E402
from reference_util import deterministic_  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

# a running channel count before the cut (the repeat's), another after it; a cut in a block too
SPEC = """\
archc: 1
name: taps
input: [3, 16, 16]
vars: {widths: [4, 6, 8, 10]}
blocks:
  unit:
    params: {out: int}
    layers:
      - conv: {out: $out, k: 3, pad: 1}
      - relu
  head:
    layers:
      - name: body
        seq:
          - conv: {out: 5, k: 1}
          - {relu: null, id: mid}
          - conv: {out: 7, k: 3, stride: 2, pad: 1}
      - {upsample: {scale: 2}, id: up}
      - {conv: {out: 7, k: 1}, from: mid, id: side}
      - {add: null, from: [up, side]}
layers:
  - name: backbone
    seq:
      - conv: {out: 4, k: 3, pad: 1}
      - {unit: {out: "${widths[i]}"}, repeat: 3, id: low}
      - {unit: {out: "${widths[i + 3]}"}, repeat: "${len(widths) - 3}"}
  - head
  - {conv: {out: 3, k: 1}, id: high}
  - {conv: {out: 3, k: 1}, from: low, id: lowc}
  - {add: null, from: [high, lowc]}
"""


def load(text: str, **vars_):
    return archc.load(textwrap.dedent(text), **vars_)


@pytest.mark.parametrize("widths", [None, [2, 3, 4, 5, 6, 7], [4, 4, 4, 4]])
def test_the_module_equals_the_ir(widths):
    net = load(SPEC, **({"widths": widths} if widths else {}))
    model = deterministic_(net.to_module()).eval()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), run_ir(net, model.state_dict(), x))
    assert sum(p.numel() for p in model.parameters()) == net.params


def test_forward_cuts_the_seq_where_the_id_is():
    src = load(SPEC).source()
    assert ("low = x\n        for i, layer in enumerate(self.backbone):\n            x = layer(x)\n"
            "            if i == 3:\n                low = x\n") in src
    assert "low_channels = channels\n" in src              # the running count changes after the cut
    assert "nn.Conv2d(low_channels, 3, 1)" in src
    assert "            if i == 1:\n                mid = x\n        up = self.upsample1(x)" in src


def test_the_module_scripts():
    model = load(SPEC).to_module().eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(model)(x), model(x))


def test_a_cut_after_the_last_child_runs_the_seq_once():
    src = load("""\
        archc: 1
        name: last
        input: [3, 8, 8]
        layers:
          - name: features
            seq:
              - conv: {out: 4, k: 3, pad: 1}
              - {relu: null, id: feat}
          - {conv: {out: 2, k: 1}, from: feat}
        """).source()
    assert "feat = self.features(x)\n        x = self.conv1(feat)" in src


def test_the_tapped_tensor_is_never_overwritten():
    """A relu after the cut reads what the cut names: it may not run in place."""
    net = load("""\
        archc: 1
        name: keep
        input: [3, 8, 8]
        layers:
          - name: features
            id: out
            seq:
              - conv: {out: 4, k: 3, pad: 1}
              - {relu: null, id: a}
              - relu
          - {add: null, from: [a, out]}
        """)
    src = net.source()
    assert "nn.ReLU(inplace=True),\n            nn.ReLU(),\n" in src
    model = deterministic_(net.to_module()).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), run_ir(net, model.state_dict(), x))


BAD = {
    "nested": ("""\
        - name: features
          seq:
            - seq:
                - {conv: {out: 4, k: 1}, id: a}
        """, "an 'id' inside a seq goes on a child of a seq that is a layer"),
    "when": ("""\
        - name: features
          seq:
            - {conv: {out: 4, k: 1}, id: a, when: "${True}"}
        """, "cannot go with 'when:'"),
    "duplicate": ("""\
        - name: features
          seq:
            - {conv: {out: 4, k: 1}, id: a}
            - {relu: null, id: a}
        """, "duplicate id 'a'"),
    "clash": ("""\
        - {conv: {out: 4, k: 1}, id: a}
        - name: features
          seq:
            - {relu: null, id: a}
        """, "duplicate id 'a'"),
    "from": ("""\
        - name: features
          seq:
            - {conv: {out: 4, k: 1}, from: input}
        """, "'from' is not available inside a seq"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_misplaced_ids_are_located(case):
    layers, message = BAD[case]
    text = "archc: 1\nname: bad\ninput: [3, 8, 8]\nlayers:\n" + textwrap.indent(textwrap.dedent(layers), "  ")
    with pytest.raises(SpecError) as info:
        archc.load(text)
    assert message in info.value.message
    assert info.value.loc is not None


def test_a_cut_after_a_varying_count_is_located_at_build():
    net = load("""\
        archc: 1
        name: varying
        input: [3, 8, 8]
        vars: {n: 2}
        layers:
          - name: features
            seq:
              - {conv: {out: 4, k: 1}, repeat: $n}
              - {relu: null, id: a}
          - {conv: {out: 2, k: 1}, from: a}
        """)
    assert net.params > 0                                   # the analysis has the values
    with pytest.raises(SpecError) as info:
        net.source()
    assert "must follow a constant number of children" in info.value.message
    assert info.value.loc is not None
