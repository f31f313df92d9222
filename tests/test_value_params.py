"""Block instances that differ only in a value the class writes as given (stochastic depth's rate)
share one translation; any other use of the param keeps each instance's own, and the code is
right for every instance either way."""
from __future__ import annotations

import pytest

import archc
from archc.emit import classes
from archc.emit.value_params import value_params

SPEC = """\
archc: 1
name: rates
input: [4, 8, 8]
blocks:
  unit:
    params: {sd_prob: float, width: 4}
    residual:
      body:
        - conv: {out: $width, k: 3, pad: 1}
        - relu
        - {drop_path: {p: $sd_prob}, USE}
layers:
  - {unit: {sd_prob: "${0.1 * i}"}, repeat: 5}
  - flatten
"""


def blocks_of(net):
    return getattr(net, "ir", net).definition.blocks


def net_with(tmp_path, use: str):
    path = tmp_path / "rates.yaml"
    path.write_text(SPEC.replace(", USE", use))
    return archc.load(path)


@pytest.fixture
def translations(monkeypatch):
    calls = []
    real = classes.BlockClasses.translate

    def counted(self, block, params, in_shape):
        calls.append(block)
        return real(self, block, params, in_shape)
    monkeypatch.setattr(classes.BlockClasses, "translate", counted)
    return calls


def test_a_rate_alone_shares_one_translation(tmp_path, translations):
    net = net_with(tmp_path, "")
    src = net.source()
    assert translations == ["unit"]
    assert src.count("class Unit(") == 1
    torch = pytest.importorskip("torch")
    model = net.to_module()
    rates = [m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert model(torch.randn(1, 4, 8, 8)).shape == (1, 256)


@pytest.mark.parametrize("use", [
    ', when: "${sd_prob > 0}"',                 # a condition on it
    ', name: "drop"',                           # (control: nothing else reads it)
])
def test_a_rate_read_elsewhere_is_translated_per_instance(tmp_path, translations, use):
    net = net_with(tmp_path, use)
    net.source()
    shared = "when" not in use
    assert translations == (["unit"] if shared else ["unit"] * 5)
    pytest.importorskip("torch")
    rates = [m.p for m in net.to_module().modules() if type(m).__name__ == "DropPath"]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4] if not shared else [0.0, 0.1, 0.2, 0.3, 0.4])


def test_which_params_are_values(tmp_path):
    cases = {
        "": {"sd_prob"},
        ', when: "${sd_prob > 0}"': set(),
    }
    for use, want in cases.items():
        net = net_with(tmp_path, use)
        assert value_params(blocks_of(net), "unit", {}) == want
