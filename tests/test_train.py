"""The training loop on scikit-learn's digits (offline, seconds): accuracy, metrics, atomic
checkpoints, exact resume, nan stop, Ctrl-C, shape fitting, config and CLI."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import SpecError
from archc.train import loop
from archc.train.config import make_config
from archc.train.data import open_data
from archc.train.loop import Diverged, Runner, train
from archc.train.optim import lr_factor

SPECS = Path(__file__).parent / "specs"
CNN = str(Path(__file__).resolve().parent.parent / "specs" / "digits_cnn.yaml")   # shipped example


@pytest.fixture(scope="module")
def digits():
    return open_data("digits")


@pytest.fixture(scope="module")
def net():
    return archc.load(CNN)


def cfg_for(net, **kw):
    return make_config(net.train, **{"device": "cpu", **kw})


def read_metrics(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def full_run(net, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return out, train(net, digits, cfg_for(net, epochs=6), out, quiet=True)


def test_digits_reach_95_percent(full_run):
    _, history = full_run
    assert len(history) == 6
    assert max(h["val_acc"] for h in history) >= 0.95
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_metrics_and_files(full_run):
    out, history = full_run
    rows = read_metrics(out)
    assert rows == history
    for i, r in enumerate(rows, 1):
        assert r["epoch"] == i
        for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "samples_per_s"):
            assert isinstance(r[k], float) and math.isfinite(r[k]), k
        assert r["samples_per_s"] > 0
    for name in ("last.pt", "best.pt", "model.py", "run.json", "spec.yaml", "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*")), "temporary files left behind"
    last = torch.load(out / "last.pt", weights_only=True)     # loads without pickle
    assert last["epoch"] == 6 and last["history"] == history
    assert {"model", "optimizer", "scheduler", "rng", "normalize", "config"} <= set(last)
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["history"][-1]["val_acc"] == max(h["val_acc"] for h in history)
    assert "class DigitsCnn" in (out / "model.py").read_text()


def test_best_pt_loads_into_emitted_source(full_run, net):
    out, _ = full_run
    net.to_module(weights=str(out / "best.pt"))     # strict: keys and shapes match the spec


def _assert_same_weights(a: Path, b: Path):
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert sa["model"].keys() == sb["model"].keys()
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in h]
    assert strip(sa["history"]) == strip(sb["history"])


def _interrupt_at(monkeypatch, call: int):
    """Make the call-th forward pass (counting evaluation batches too) raise KeyboardInterrupt."""
    calls = {"n": 0}
    real = Runner.score

    def interrupting(self, fwd, x, y):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(self, fwd, x, y)
    monkeypatch.setattr(Runner, "score", interrupting)
    return lambda: monkeypatch.setattr(Runner, "score", real)


def test_resume_at_epoch_boundary_is_exact_with_a_schedule(net, digits, tmp_path, monkeypatch):
    # 51 train + 6 val batches an epoch: call 115 is the first batch of epoch 3
    cfg = cfg_for(net, epochs=4, deterministic=True, optimizer="adamw", lr=0.01,
                  schedule="cosine", warmup=1, weight_decay=0.01)
    train(net, digits, cfg, tmp_path / "straight", quiet=True)
    restore = _interrupt_at(monkeypatch, 115)
    with pytest.raises(KeyboardInterrupt):
        train(net, digits, cfg, tmp_path / "cut", quiet=True)
    restore()
    ck = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (2, 0)
    hist = train(net, digits, cfg, tmp_path / "cut", resume=tmp_path / "cut", quiet=True)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert [r["epoch"] for r in read_metrics(tmp_path / "cut")] == [1, 2, 3, 4]
    _assert_same_weights(tmp_path / "straight" / "last.pt", tmp_path / "cut" / "last.pt")


@pytest.mark.parametrize("call, step, seen", [(70, 12, 12 * 32),      # epoch 2, batch 13
                                              (110, 51, 1617)])       # epoch 2, validating
def test_resume_after_interrupt_mid_epoch_is_exact(net, digits, tmp_path, monkeypatch, call, step, seen):
    cfg = cfg_for(net, epochs=3, deterministic=True)
    train(net, digits, cfg, tmp_path / "straight", quiet=True)
    restore = _interrupt_at(monkeypatch, call)
    with pytest.raises(KeyboardInterrupt):
        train(net, digits, cfg, tmp_path / "cut", quiet=True)
    restore()
    ck = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (1, step) and ck["partial"]["seen"] == seen
    train(net, digits, cfg, tmp_path / "cut", resume=tmp_path / "cut", quiet=True)
    _assert_same_weights(tmp_path / "straight" / "last.pt", tmp_path / "cut" / "last.pt")


def test_straight_and_resumed_runs_match(net, digits, tmp_path):
    cfg = cfg_for(net, epochs=4, deterministic=True)
    train(net, digits, cfg, tmp_path / "a", quiet=True)
    train(net, digits, cfg.model_copy(update={"epochs": 2}), tmp_path / "b", quiet=True)
    train(net, digits, cfg, tmp_path / "b", resume=tmp_path / "b" / "last.pt", quiet=True)
    _assert_same_weights(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(net, digits, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = Runner.loss

    def poisoned(self, logits, y):
        calls["n"] += 1
        loss = real(self, logits, y)
        return loss * float("nan") if calls["n"] > 130 else loss    # from epoch 3 on
    monkeypatch.setattr(Runner, "loss", poisoned)
    with pytest.raises(Diverged, match=r"nan in epoch 3.*last\.pt \(epoch 2\)"):
        train(net, digits, cfg_for(net, epochs=5), tmp_path, quiet=True)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["epoch"] == 2
    assert all(torch.isfinite(t).all() for t in ck["model"].values() if t.is_floating_point())
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2]


def test_shape_mismatch_reinfers_or_explains(digits, tmp_path):
    said = []
    wide = archc.load(CNN, input="1x28x28")
    hist = train(wide, digits, make_config({}, epochs=1, device="cpu"), tmp_path / "a", log=said.append)
    assert len(hist) == 1 and any("input=1x8x8" in s and "1x28x28" in s for s in said)
    with pytest.raises(SpecError, match=r"1x8x8.*1x32x32|1x32x32.*1x8x8"):
        train(archc.load(str(SPECS / "lenet5.yaml")), digits, make_config({}, epochs=1), tmp_path / "b")
    three = open_data("synthetic:64", input_shape=(1, 8, 8), num_classes=3)
    said.clear()
    train(archc.load(CNN), three, make_config({}, epochs=1, device="cpu"), tmp_path / "c", log=said.append)
    assert any("num_classes=3" in s for s in said)


def test_config_merges_and_rejects_unknown_keys():
    cfg = make_config({"optimizer": {"name": "SGD", "momentum": 0.8}, "schedule": "cosine", "lr": 0.1},
                      lr=0.3, epochs=None)
    assert (cfg.optimizer, cfg.momentum, cfg.schedule, cfg.lr, cfg.epochs) == ("sgd", 0.8, "cosine", 0.3, 10)
    with pytest.raises(SpecError, match="did you mean 'weight_decay'"):
        make_config({"weight_decai": 0.1})
    with pytest.raises(SpecError, match="lr"):
        make_config({}, lr=-1.0)
    with pytest.raises(SpecError, match="optimizer"):
        make_config({"optimizer": "lion"})


def test_schedules():
    cos = lr_factor(make_config({}, schedule="cosine", warmup=1, epochs=10, lr=1.0, min_lr=0.1), 10)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)     # warmup ramp
    assert cos(10) == pytest.approx(1.0) and cos(99) == pytest.approx(0.1, abs=1e-3)
    step = lr_factor(make_config({}, schedule="step", step_size=3, gamma=0.5, epochs=10), 10)
    assert (step(29), step(30), step(60)) == (1.0, 0.5, 0.25)
    one = lr_factor(make_config({}, schedule="onecycle", epochs=10), 10)
    assert one(29) == pytest.approx(1.0) and one(99) < 0.01


def test_cli_train_eval_and_errors(tmp_path):
    run = CliRunner()
    out = tmp_path / "run"
    r = run.invoke(main, ["train", CNN, "--epochs", "3", "--out", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert r.output.count("epoch ") == 3 and "val_acc" in r.output
    r = run.invoke(main, ["train", CNN, "--epochs", "4", "--resume", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert r.output == "" and [m["epoch"] for m in read_metrics(out)] == [1, 2, 3, 4]
    r = run.invoke(main, ["eval", CNN, "--weights", str(out / "best.pt"), "--data", "digits", "--format", "json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.output.strip().splitlines()[-1])
    assert m["val_acc"] == max(x["val_acc"] for x in read_metrics(out)) and m["samples"] == 180
    r = run.invoke(main, ["train", CNN, "--epochs", "1", "--lr", "1e9", "--out", str(tmp_path / "nan")])
    assert r.exit_code == 2 and "nan" in r.output and "--lr" in r.output
    r = run.invoke(main, ["train", CNN, "--out", str(tmp_path / "x"), "--data", "digitz"])
    assert r.exit_code == 2 and "did you mean 'digits'" in r.output
    r = run.invoke(main, ["train", CNN])
    assert r.exit_code == 2 and "--out" in r.output


def test_cli_rejects_unknown_train_key(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(Path(CNN).read_text().replace("batch_size: 32", "batchsize: 32"))
    r = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "did you mean 'batch_size'" in r.output


def test_interrupt_in_first_epoch_still_writes_last_pt(net, digits, tmp_path, monkeypatch):
    monkeypatch.setattr(loop.Runner, "forward", lambda self, x, y: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train(net, digits, cfg_for(net, epochs=2), tmp_path, quiet=True)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (0, 0)


def test_bf16_autocast_and_channels_last_train(net, digits, tmp_path):
    hist = train(net, digits, cfg_for(net, epochs=2, amp="bf16", channels_last=True), tmp_path, quiet=True)
    assert math.isfinite(hist[-1]["train_loss"]) and hist[-1]["val_acc"] > 0.5


def test_eval_of_a_bare_state_dict_matches_the_checkpoint(full_run, tmp_path):
    out, history = full_run
    torch.save(torch.load(out / "best.pt", weights_only=True)["model"], tmp_path / "w.pt")
    r = CliRunner().invoke(main, ["eval", CNN, "--weights", str(tmp_path / "w.pt"), "--data", "digits"])
    assert r.exit_code == 0, r.output
    assert f"val_acc {max(h['val_acc'] for h in history):.4f}" in r.output
    r = CliRunner().invoke(main, ["eval", str(SPECS / "resnet_small.yaml"), "--weights", str(tmp_path / "w.pt"),
                                  "--data", "digits"])
    assert r.exit_code == 2 and "error" in r.output


def test_cli_ctrl_c_saves_and_exits_130(tmp_path, monkeypatch):
    monkeypatch.setattr(loop.Runner, "forward", lambda self, x, y: (_ for _ in ()).throw(KeyboardInterrupt))
    r = CliRunner().invoke(main, ["train", CNN, "--out", str(tmp_path)])
    assert r.exit_code == 130 and "--resume" in r.output and (tmp_path / "last.pt").is_file()


def test_image_files_through_a_dataloader_train_as_the_same_data_in_memory(tmp_path):
    """The file path (Pillow decoding, DataLoader, DistributedSampler, worker processes) sees
    the same batches in the same order as in-memory tensors: the weights come out identical."""
    from PIL import Image
    from archc.train.data import Data, TensorData
    digits = open_data("digits", val_fraction=0)
    for i in range(240):
        folder = tmp_path / "img" / str(int(digits.train.y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (digits.train.x[i, 0].float() * 255 / 16).round().byte().numpy()
        Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
    files = open_data(f"imagefolder:{tmp_path / 'img'}", val_fraction=0.25, seed=3)
    tensors = lambda ds: TensorData(torch.stack([ds[i][0] for i in range(len(ds))]),
                                    torch.tensor([ds[i][1] for i in range(len(ds))]))
    memory = Data("memory", tensors(files.train), tensors(files.val), files.num_classes, files.sample_shape)
    net = archc.load(CNN)
    cfg = cfg_for(net, epochs=2, batch_size=16, deterministic=True, workers=1)
    a = train(net, files, cfg, tmp_path / "files", quiet=True)
    b = train(net, memory, cfg, tmp_path / "memory", quiet=True)
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in h]
    assert strip(a) == strip(b)
    wa, wb = (torch.load(tmp_path / d / "last.pt", weights_only=True)["model"] for d in ("files", "memory"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_progress_bar_shows_count_throughput_and_time_left(monkeypatch):
    from archc.train import report
    shown, clock = [], iter([0.0, 2.0, 2.1, 4.0])
    monkeypatch.setattr(report.time, "perf_counter", lambda: next(clock))
    bar = report.Progress(shown.append, epoch=2, epochs=5, steps=10, world_size=2, width=10)
    bar.update(done=5, seen=80)          # at 2 s: half done, 2 x 80 samples in 2 s
    bar.update(done=6, seen=96)          # 0.1 s later: not redrawn
    assert shown == ["epoch 2/5 [#####.....] 5/10  80 samples/s  2s left"]
