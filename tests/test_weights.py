"""Loading a PyTorch state_dict into an emitted module: strictly, with torch.load(weights_only=True),
and a mismatch listed by key name (exit 2 from the CLI, never a traceback)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from reference_util import deterministic_

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A state_dict saved as torchvision/timm ship theirs: a plain dict of tensors."""
    net = archc.load(SPECS / "resnet_small.yaml")
    state = deterministic_(net.to_module()).state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet_small.pth"
    torch.save(state, path)
    return path, state


def test_to_module_loads_weights_exactly(checkpoint):
    path, state = checkpoint
    model = archc.load(SPECS / "resnet_small.yaml").to_module(weights=path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_wrapped_checkpoints_are_accepted(checkpoint, tmp_path):
    path, state = checkpoint
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "epoch": 3}, wrapped)
    archc.load(SPECS / "resnet_small.yaml").to_module(weights=wrapped)


def test_build_with_weights(checkpoint, tmp_path):
    path, _ = checkpoint
    out = tmp_path / "m.py"
    r = CliRunner().invoke(main, ["build", str(SPECS / "resnet_small.yaml"), "--weights", str(path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith('"""resnet_small')


def test_mismatch_lists_keys_by_name(checkpoint, tmp_path):
    path, state = checkpoint
    bad = dict(state)
    bad.pop("fc.bias")
    bad["extra.weight"] = torch.zeros(3)
    bad["conv1.weight"] = torch.zeros(1, 1, 1, 1)
    broken = tmp_path / "bad.pth"
    torch.save(bad, broken)
    with pytest.raises(archc.SpecError) as e:
        archc.load(SPECS / "resnet_small.yaml").to_module(weights=broken)
    msg = str(e.value)
    assert "missing (1): fc.bias" in msg
    assert "unexpected (1): extra.weight" in msg
    assert "mis-shaped (1): conv1.weight: checkpoint [1, 1, 1, 1] vs model [16, 3, 3, 3]" in msg
    r = CliRunner().invoke(main, ["build", str(SPECS / "resnet_small.yaml"), "--weights", str(broken)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "missing (1): fc.bias" in r.stderr


def test_unsafe_or_missing_files_are_clear_errors(tmp_path):
    net = archc.load(SPECS / "resnet_small.yaml")
    with pytest.raises(archc.SpecError, match="no such weights file"):
        net.to_module(weights=tmp_path / "nope.pth")
    pickled = tmp_path / "obj.pth"
    torch.save({"model": object()}, pickled)      # needs unsafe unpickling: refused
    with pytest.raises(archc.SpecError, match="weights_only=True"):
        net.to_module(weights=pickled)
