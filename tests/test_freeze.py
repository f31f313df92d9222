"""Freezing and per-part learning rates: frozen parameters and BatchNorm statistics stay exactly
as they started (BN in eval mode), --unfreeze-at trains everything from that epoch, a resumed run
is bit-exact across the unfreezing, --lr-scale's last matching pattern wins, bad patterns are
refused with the nearest name, and archc summary --freeze counts it all statically."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import SpecError
from archc.train import loop
from archc.train.config import make_config
from archc.train.data import open_data
from test_cli import cli_in

TESTS = Path(__file__).parent
SMALL = TESTS / "specs" / "resnet_small.yaml"         # BN everywhere; @tiny is 3x16x16, 5 classes
ARGS = ["--variant", "tiny", "--data", "synthetic:40", "--batch-size", "10", "--device", "cpu", "-q"]


@pytest.fixture
def cli(monkeypatch, tmp_path):
    return cli_in(monkeypatch, tmp_path, expect=None)


@pytest.fixture
def start(tmp_path) -> dict[str, torch.Tensor]:
    """A known start, saved as w.pt: the weights every run of these tests begins from."""
    torch.manual_seed(5)
    state = archc.load(str(SMALL), variant="tiny").to_module().state_dict()
    torch.save(state, tmp_path / "w.pt")
    return state


def last(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "last.pt", weights_only=True)["model"]


def watch(monkeypatch) -> list[tuple[bool, bool]]:
    """(layer1.0.conv1 requires grad, layer1.0.bn1 in training mode) at every training step."""
    seen = []
    real = loop.Runner.forward

    def forward(self, x, y):
        mods, params = dict(self.model.named_modules()), dict(self.model.named_parameters())
        seen.append((params["layer1.0.conv1.weight"].requires_grad, mods["layer1.0.bn1"].training))
        return real(self, x, y)
    monkeypatch.setattr(loop.Runner, "forward", forward)
    return seen


def test_frozen_layers_and_their_batchnorm_statistics_stay_as_loaded(cli, start, tmp_path, monkeypatch):
    seen = watch(monkeypatch)
    r = cli("train", SMALL, *ARGS, "--epochs", "2", "--init-from", "w.pt", "--freeze", "layer1", "--out", "a")
    assert r.exit_code == 0, r.output
    assert seen and set(seen) == {(False, False)}        # no gradient, BN in eval mode, every step
    after = last(tmp_path / "a")
    layer1 = [k for k in start if k.startswith("layer1.")]
    assert any("running_mean" in k for k in layer1) and any("num_batches_tracked" in k for k in layer1)
    assert all(torch.equal(start[k], after[k]) for k in layer1)
    assert not torch.equal(start["layer2.0.conv1.weight"], after["layer2.0.conv1.weight"])
    assert not torch.equal(start["layer2.0.bn1.running_mean"], after["layer2.0.bn1.running_mean"])


def test_unfreeze_at_trains_everything_from_that_epoch(cli, start, tmp_path, monkeypatch):
    seen = watch(monkeypatch)
    r = cli("train", SMALL, *ARGS[:-1], "--epochs", "2", "--init-from", "w.pt", "--freeze", "layer1",
            "--unfreeze-at", "2", "--out", "a")
    assert r.exit_code == 0, r.output
    assert "frozen until epoch 2" in r.output and "epoch 2: unfrozen, every parameter trains" in r.output
    assert seen == [(False, False)] * 4 + [(True, True)] * 4        # 4 steps an epoch
    after = last(tmp_path / "a")
    assert not torch.equal(start["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert not torch.equal(start["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])


@pytest.mark.parametrize("call", [3, 7])        # epoch 1 (frozen) batch 3; epoch 2 (unfrozen) batch 2
def test_resume_across_the_unfreezing_is_bit_exact(tmp_path, monkeypatch, call):
    net = archc.load(str(SMALL), variant="tiny")
    data = open_data("synthetic:40", input_shape=(3, 16, 16), num_classes=5)
    cfg = make_config({}, epochs=3, batch_size=10, device="cpu", deterministic=True, freeze=["layer1"],
                      unfreeze_at=2, lr_scale=["layer3.*=0.1"], weight_decay=1e-4)
    loop.train(net, data, cfg, tmp_path / "straight", quiet=True)
    calls = {"n": 0}
    real = loop.Runner.score

    def interrupting(self, fwd, x, y, *a):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(self, fwd, x, y, *a)
    monkeypatch.setattr(loop.Runner, "score", interrupting)
    with pytest.raises(KeyboardInterrupt):
        loop.train(net, data, cfg, tmp_path / "cut", quiet=True)
    monkeypatch.setattr(loop.Runner, "score", real)
    loop.train(net, data, cfg, tmp_path / "cut", resume=tmp_path / "cut", quiet=True)
    a, b = (torch.load(tmp_path / d / "last.pt", weights_only=True) for d in ("straight", "cut"))
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in h]  # noqa: E731
    assert strip(a["history"]) == strip(b["history"])
    scales = sorted({g["lr_scale"] for g in b["optimizer"]["param_groups"]})
    assert scales == [0.1, 1.0]


def test_lr_scale_the_last_matching_pattern_wins(cli, start, tmp_path):
    r = cli("train", SMALL, *ARGS, "--epochs", "1", "--init-from", "w.pt", "--lr-scale", "layer1=0",
            "--lr-scale", "layer1.0.conv1=1", "--lr", "0.1", "--out", "a")
    assert r.exit_code == 0, r.output
    after = last(tmp_path / "a")
    assert torch.equal(start["layer1.1.conv1.weight"], after["layer1.1.conv1.weight"])     # factor 0
    assert torch.equal(start["layer1.0.bn1.weight"], after["layer1.0.bn1.weight"])
    assert not torch.equal(start["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])  # factor 1
    assert json.loads((tmp_path / "a" / "metrics.jsonl").read_text())["lr"] == 0.1       # the base rate


@pytest.mark.parametrize("flags, says", [
    (["--freeze", "layr2"], "--freeze 'layr2' matches no layer with parameters or buffers in resnet_small "
                             "(did you mean 'layer2'?)"),
    (["--freeze", "relu"], "--freeze 'relu' matches only layers without parameters or buffers (relu)"),
    (["--freeze", "*"], "freezes every parameter of resnet_small: nothing would train"),
    (["--lr-scale", "layer2.*"], "expected PATTERN=FACTOR such as 'layer4.*=0.1', found 'layer2.*'"),
    (["--lr-scale", "fcc=0.1"], "--lr-scale 'fcc' matches no layer with parameters or buffers in resnet_small "
                                "(did you mean 'fc'?)"),
    (["--unfreeze-at", "2"], "unfreeze_at needs freeze patterns (--freeze PATTERN)"),
    (["--freeze", "layer1", "--unfreeze-at", "1"], "train.unfreeze_at: Input should be greater than or equal to 2"),
])
def test_bad_patterns_are_refused_before_the_run_starts(cli, tmp_path, flags, says):
    r = cli("train", SMALL, *ARGS, "--epochs", "1", *flags, "--out", "a")
    assert r.exit_code == 2 and says in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "a").exists()


def test_backbone_and_head_are_parts_of_any_network():
    from archc.ir.parts import head_nodes, select
    heads = {name: [n.name for n in head_nodes(archc.load(name))]
             for name in ("resnet18", "vgg16", "mobilenet_v2", "squeezenet1_0", "googlenet_aux")}
    assert heads == {"resnet18": ["fc"], "vgg16": ["classifier.6"], "mobilenet_v2": ["classifier.1"],
                     "squeezenet1_0": ["classifier.1"], "googlenet_aux": ["aux1.fc2", "aux2.fc2", "fc"]}
    net = archc.load("resnet18")
    assert set(select(net, "backbone")) | set(select(net, "head")) == set(net.state_dict_shapes())
    assert select(net, "head") == ["fc.weight", "fc.bias"]
    assert select(net, "conv1") == ["conv1.weight"]              # anchored: not layer1.0.conv1
    assert len(select(net, "*.conv1")) == 8 and len(select(net, "layer1")) == 24


def test_summary_freeze_marks_frozen_layers_and_counts_trainable_params(monkeypatch, tmp_path):
    cli = cli_in(monkeypatch, tmp_path, expect=None)
    r = cli("summary", "resnet18", "--freeze", "backbone", "--format", "json", "--depth", "1")
    s = json.loads(r.stdout)
    assert s["trainable_params"] == 513_000 and s["params"] == 11_689_512 and s["freeze"] == ["backbone"]
    rows = {row["name"]: row["frozen_params"] for row in s["layers"]}
    assert rows["fc"] == 0 and rows["layer4"] == 8_393_728 and rows["conv1"] == 9_408
    r = cli("summary", "resnet18", "--freeze", "conv1,bn1", "--freeze", "layer1.0", "--depth", "2")
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert "conv (frozen)" in lines["conv1"] and "basic_block (frozen)" in lines["layer1.0"]
    assert "(frozen" not in lines["layer1.1"]
    assert "Trainable params       11,605,992 (11.61 M; frozen: conv1, bn1, layer1.0)" in r.stdout
    r = cli("summary", "resnet18", "--freeze", "layer1.*.bn1", "--depth", "1", "--format", "csv")
    assert "\nlayer1,stage,\"[64, 56, 56]\",\"[64, 56, 56]\",147968,516,462422016,927653888,False,256\n" in r.stdout
    r = cli("summary", "resnet18", "--freeze", "layr4")
    assert r.exit_code == 2 and "did you mean 'layer4'?" in r.stderr
    assert archc.load("resnet18").summary(freeze=["head"])["trainable_params"] == 11_689_512 - 513_000


def test_summary_freeze_stays_static():
    code = ("import sys; from archc.cli import main\n"
            "main(['summary', 'resnet18', '--freeze', 'backbone'], standalone_mode=False)\n"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("False"), r.stderr


def test_freeze_works_from_the_python_api_too(tmp_path):
    net = archc.load(str(SMALL), variant="tiny")
    data = open_data("synthetic:40", input_shape=(3, 16, 16), num_classes=5)
    with pytest.raises(SpecError, match="did you mean 'layer2'"):
        loop.train(net, data, make_config({}, epochs=1, device="cpu", freeze="layer2x"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_two_processes_with_freezing_and_unfreezing_equal_one(tmp_path):
    """DDP syncs only what trains when it is made: unfreezing makes a new wrapper, or the
    unfrozen gradients would stay each process's own."""
    from test_distributed import COMMON, PLAIN, archc_cli
    flags = ["--epochs", "2", "--freeze", "conv1", "--unfreeze-at", "2", "--lr-scale", "linear1=0.5"]
    r = archc_cli("train", PLAIN, *COMMON, *flags, "--nproc", "2", "--out", str(tmp_path / "ddp"))
    assert r.returncode == 0 and "epoch 2: unfrozen" in r.stdout, r.stderr
    net = archc.load(PLAIN)
    cfg = make_config(net.train, val_fraction=0.2, batch_size=32, device="cpu", deterministic=True, epochs=2,
                      freeze=["conv1"], unfreeze_at=2, lr_scale=["linear1=0.5"])
    loop.train(net, open_data("digits", val_fraction=0.2), cfg, tmp_path / "one", quiet=True)
    wa, wb = (torch.load(tmp_path / d / "last.pt", weights_only=True)["model"] for d in ("one", "ddp"))
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6), k
    torch.manual_seed(0)
    assert not torch.allclose(net.to_module().state_dict()["conv1.weight"], wb["conv1.weight"])
    r = archc_cli("train", PLAIN, *COMMON, "--freeze", "conv9", "--nproc", "2", "--out", str(tmp_path / "bad"))
    assert r.returncode == 2 and r.stderr.count("did you mean 'conv1'") == 1      # once, before any launch
    assert not (tmp_path / "bad").exists()
