"""archc export: three zoo entries round-trip in each format (ONNX through onnxruntime,
torch.export, TorchScript) under deterministic weights given with --weights; the command's own
check runs batches of 1 and 3, and the test loads each written file again and runs a batch of 5
(the batch dimension is dynamic). A check that fails exits 1 and writes nothing."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import archc
from reference_util import deterministic_
from test_cli import cli_in

ENTRIES = [("lenet5", None), ("mobilenet_v2", "3x32x32"), ("resnet18", "3x32x32")]
FORMATS = ["onnx", "pt2", "ts"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Deterministic weights (outputs of order 1: mobilenet_v2's own start gives outputs of 1e-9,
    which would make any comparison pass)."""
    root = tmp_path_factory.mktemp("weights")
    out = {}
    for name, size in ENTRIES:
        net = archc.load(name, input=size)
        model = deterministic_(net.to_module()).eval()
        torch.save(model.state_dict(), root / f"{name}.pth")
        out[name] = (root / f"{name}.pth", net, model)
    return out


def run_file(path: Path, x: torch.Tensor) -> torch.Tensor:
    if path.suffix == ".onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    if path.suffix == ".pt2":
        return torch.export.load(path).module()(x)
    return torch.jit.load(path)(x)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,size", ENTRIES)
def test_round_trip(monkeypatch, tmp_path, weights, name, size, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    path, net, model = weights[name]
    out = tmp_path / f"{name}.{fmt}"
    run = cli_in(monkeypatch, tmp_path)
    r = run("export", name, *(["--input", size] if size else []), "--weights", path, "-o", out.name)
    checks = re.findall(r"batch (\d): max abs error (\S+) \(outputs up to (\S+); tolerance (\S+)\)", r.stdout)
    assert [c[0] for c in checks] == ["1", "3"], r.stdout
    for _, err, scale, tol in checks:
        assert float(err) <= float(tol) and float(scale) > 0.01
    print(f"{name} {fmt}: " + "; ".join(f"batch {b} max abs error {e}" for b, e, _, _ in checks))
    x = torch.randn(5, *net.input, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        got, want = run_file(out, x), model(x)
    assert got.shape == want.shape == (5, *net.output_shapes[0])
    assert float((got - want).abs().max()) <= 1e-5 + 1e-4 * float(want.abs().max())


def test_a_failed_check_exits_1_and_writes_nothing(monkeypatch, tmp_path):
    from archc.emit import export
    monkeypatch.setattr(export, "ATOL", -1.0)        # no export can meet a negative tolerance
    run = cli_in(monkeypatch, tmp_path)
    r = run("export", "lenet5", "-o", "m.ts", code=1)
    assert "FAILED" in r.stdout and "max abs error" in r.stdout
    assert "m.ts was not written" in r.stderr and not (tmp_path / "m.ts").exists()
    assert list(tmp_path.iterdir()) == []            # nor any temporary file


def test_bad_names_and_absent_packages_are_clear(monkeypatch, tmp_path):
    run = cli_in(monkeypatch, tmp_path)
    r = run("export", "lenet5", "-o", "m.zip", code=2)
    assert "name it model.onnx (ONNX), model.pt2 (torch.export) or model.ts (TorchScript)" in r.stderr
    monkeypatch.setitem(sys.modules, "onnxruntime", None)        # as if not installed
    r = run("export", "lenet5", "-o", "m.onnx", code=2)
    assert "ONNX export needs onnxruntime (not installed): pip install 'archc[export]'" in r.stderr
    assert "Traceback" not in r.output and list(tmp_path.iterdir()) == []
