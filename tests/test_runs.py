"""A run remembers itself and is never silently damaged: --resume and eval --run rebuild the run
from run.json, flags that contradict it are refused (or changed with --override, and recorded),
--out never writes over another run, a broken run.json is named by its path, there is no
silent default data set, a data set's test split is scored once at the end on best.pt, and
commands that need torch say which extra to install when it is absent."""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import archc
from archc.errors import SpecError
from archc.train import loop
from archc.train.data import channel_stats, open_data
from test_cli import cli_in

TESTS = Path(__file__).parent
PLAIN = TESTS / "specs" / "plain_cnn.yaml"                    # 1x8x8, 10 classes, no BN
FAST = ["--batch-size", "16", "--device", "cpu", "-q"]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture
def cli(monkeypatch, tmp_path):
    return cli_in(monkeypatch, tmp_path, expect=None)


@pytest.fixture
def spec(tmp_path) -> Path:
    """A copy of plain_cnn that a test may edit."""
    return Path(shutil.copy(PLAIN, tmp_path / "net.yaml"))


@pytest.fixture
def run_a(cli, spec, tmp_path) -> Path:
    """One epoch of plain_cnn on 64 synthetic samples in tmp/a."""
    r = cli("train", spec, "--data", "synthetic:64", "--epochs", "1", "--out", "a", *FAST)
    assert r.exit_code == 0, r.output
    return tmp_path / "a"


def write_idx(path: Path, a: np.ndarray) -> None:
    code = {np.uint8: 0x08}[a.dtype.type]
    blob = bytes([0, 0, code, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes()
    path.write_bytes(gzip.compress(blob))


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """An MNIST-format set of 8x8 images with a learnable label (the brightest quadrant)."""
    rng, d = np.random.default_rng(0), tmp_path / "mnist"
    d.mkdir()
    for split, n in (("train", 200), ("t10k", 40)):
        y = rng.integers(0, 4, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 8, 8)).astype(np.uint8)
        for i, label in enumerate(y):
            r, c = divmod(int(label), 2)
            x[i, r * 4:r * 4 + 4, c * 4:c * 4 + 4] += 150
        write_idx(d / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", y)
    return d


# -- resume reads the run -------------------------------------------------------------------
def test_resume_without_flags_continues_the_runs_own_spec_and_data(cli, run_a):
    before = json.loads((run_a / "run.json").read_text())
    assert before["data"] == "synthetic:64" and before["split"]["train"] == 58
    r = cli("train", "--resume", "a", "--epochs", "2")          # the README's example, no flags
    assert r.exit_code == 0, r.output
    assert "resuming from a at epoch 2" in r.output
    after = json.loads((run_a / "run.json").read_text())
    assert {k: after[k] for k in ("spec", "data", "split", "vars", "input", "normalize")} == \
        {k: before[k] for k in ("spec", "data", "split", "vars", "input", "normalize")}
    assert [m["epoch"] for m in metrics(run_a)] == [1, 2]


@pytest.mark.parametrize("flags, says", [
    (["--data", "digits"], "--data digits says otherwise than the run's data synthetic:64"),
    (["--set", "num_classes=3"], "--set num_classes=3 says otherwise than the run's var num_classes 10"),
    (["--input", "1x9x9"], "--input 1x9x9 says otherwise than the run's input 1x8x8"),
    (["--val-fraction", "0.2"], "--val-fraction 0.2 says otherwise than the run's val_fraction 0.1"),
    (["--seed", "3"], "--seed 3 says otherwise than the run's seed 0"),
    (["--mean", "0.5"], "--mean 0.5 says otherwise than the run's mean"),
    ([str(TESTS / "specs" / "lenet5.yaml")], "says otherwise than the run's spec"),
])
def test_a_flag_that_contradicts_the_run_is_refused_and_changes_nothing(cli, run_a, flags, says):
    before = snapshot(run_a)
    spec_first = flags[:1] if not flags[0].startswith("-") else []
    r = cli("train", *spec_first, "--resume", "a", "--epochs", "2", *flags[len(spec_first):])
    assert r.exit_code == 2 and says in r.output and "--override" in r.output, r.output
    assert str(Path("a") / "run.json") in r.output
    assert snapshot(run_a) == before


def test_repeating_the_runs_own_values_is_no_contradiction(cli, run_a, spec):
    r = cli("train", spec, "--resume", "a", "--epochs", "2", "--data", "synthetic:64", "--seed", "0",
            "--set", "num_classes=10", "--input", "1x8x8")
    assert r.exit_code == 0, r.output


def test_override_changes_the_run_deliberately_and_records_it(cli, run_a):
    r = cli("train", "--resume", "a", "--epochs", "2", "--data", "synthetic:80", "--override", *FAST)
    assert r.exit_code == 0, r.output
    run = json.loads((run_a / "run.json").read_text())
    assert run["data"] == "synthetic:80" and run["split"]["train"] == 72
    assert run["changes"] == [{"at_epoch": 1, "data": ["synthetic:64", "synthetic:80"]}]
    assert cli("train", "--out", "b", "--override", PLAIN).exit_code == 2     # only with --resume


def test_a_spec_edited_since_the_run_started_is_refused(cli, run_a, spec):
    spec.write_text(spec.read_text().replace("out: 8", "out: 9"))
    r = cli("train", "--resume", "a", "--epochs", "2")
    assert r.exit_code == 2 and "has changed since the run in a started" in r.output
    assert str(Path("a") / "spec.yaml") in r.output


# -- never writing over a run ----------------------------------------------------------------
def test_out_on_an_existing_run_is_refused_with_the_fix(cli, run_a, spec, tmp_path):
    before = snapshot(run_a)
    r = cli("train", spec, "--data", "synthetic:64", "--out", "a", *FAST)
    assert r.exit_code == 2 and "holds a run already" in r.output and "archc train --resume a" in r.output
    assert snapshot(run_a) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.py").write_text("mine")
    r = cli("train", spec, "--data", "synthetic:64", "--out", "mine", *FAST)
    assert r.exit_code == 2 and "model.py, which a run would overwrite" in r.output
    assert (tmp_path / "mine" / "model.py").read_text() == "mine"
    # a run continued into a new directory leaves the original as it was
    r = cli("train", "--resume", "a", "--out", "b", "--epochs", "2", *FAST)
    assert r.exit_code == 0, r.output
    assert snapshot(run_a) == before and json.loads((tmp_path / "b" / "run.json").read_text())["resumed_from"] == "a"
    with pytest.raises(SpecError, match="holds a run already"):       # the Python API as well
        loop.train(archc.load(PLAIN), open_data("synthetic:32", input_shape=(1, 8, 8)),
                   loop.TrainConfig(epochs=1, device="cpu"), tmp_path / "a")


@pytest.mark.parametrize("content, says", [
    (None, "run.json: no such file"),
    ("{not json", "run.json: cannot read the run's record"),
    ('{"spec": "x"}', "run.json: not a run record of this archc: no variant"),
    ("[1, 2]", "run.json: not a run record (a JSON list"),
])
def test_a_missing_or_corrupt_run_json_is_named_by_its_path(cli, run_a, content, says):
    if content is None:
        (run_a / "run.json").unlink()
    else:
        (run_a / "run.json").write_text(content)
    for args in (["train", "--resume", "a"], ["eval", "--run", "a"]):
        r = cli(*args)
        assert r.exit_code == 2 and f"{Path('a') / says}" in r.output, r.output
        assert "Traceback" not in r.output


def test_the_ctrl_c_hint_continues_the_right_run(cli, spec, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = loop.Runner.forward

    def interrupt_in_epoch_2(self, x, y):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(self, x, y)
    monkeypatch.setattr(loop.Runner, "forward", interrupt_in_epoch_2)
    r = cli("train", spec, "--data", "synthetic:64", "--epochs", "2", "--out", "run",
            "--batch-size", "16", "--device", "cpu")
    assert r.exit_code == 130
    hint = re.search(r"`archc (train --resume \S+)`", r.output).group(1).split()
    monkeypatch.setattr(loop.Runner, "forward", real)
    r = cli(*hint)                     # exactly what it says, nothing more
    assert r.exit_code == 0, r.output
    assert "resuming from run at epoch 2, batch 2" in r.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["data"] == "synthetic:64"


# -- data: no default, a validation split, the test split apart ---------------------------------
def test_no_silent_default_data_set(cli, spec, tmp_path):
    r = cli("train", spec, "--out", "x")
    assert r.exit_code == 2 and "--data" in r.output and not (tmp_path / "x").exists()
    assert archc.load("digits_cnn").train["data"] == "digits"     # the embedded example names its own
    r = cli("eval", spec, "--weights", spec)
    assert r.exit_code == 2 and "eval needs --data" in r.output


def test_test_split_is_scored_once_on_best_pt_and_eval_reads_the_run(cli, tiny_mnist, tmp_path):
    r = cli("train", PLAIN, "--data", f"mnist:{tiny_mnist}", "--epochs", "3", "--out", "m",
            "--set", "num_classes=4", "--lr", "0.05", "--batch-size", "20", "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = tmp_path / "m"
    run = json.loads((out / "run.json").read_text())
    assert run["split"] == {"val_fraction": 0.1, "seed": 0, "train": 180, "val": 20, "test": 40}
    *epochs, final = metrics(out)
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and "test_acc" not in epochs[-1]
    best = max(epochs, key=lambda e: (e["val_acc"], -e["val_loss"]))
    assert final["split"] == "test" and final["best_epoch"] == best["epoch"] and final["samples"] == 40
    assert f"test_acc {final['test_acc']:.4f}" in r.output
    r = cli("eval", "--run", "m", "--split", "test", "--format", "json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.output.strip().splitlines()[-1])
    assert got["test_acc"] == pytest.approx(final["test_acc"]) and got["samples"] == 40
    got = json.loads(cli("eval", "--run", "m", "--format", "json").output.strip().splitlines()[-1])
    assert got["val_acc"] == pytest.approx(best["val_acc"]) and got["samples"] == 20
    r = cli("eval", "--run", "m", "--data", "digits")
    assert r.exit_code == 2 and "says otherwise than the run's data mnist:" in r.output


def test_run_json_records_the_normalisation_used_and_the_class_names(cli, run_a, tiny_mnist):
    run = json.loads((run_a / "run.json").read_text())
    data = open_data("synthetic:64", input_shape=(1, 8, 8))
    mean, std = channel_stats(data.train)
    assert run["normalize"]["mean"] == pytest.approx(mean.tolist()) and run["normalize"]["std"] == pytest.approx(std.tolist())
    assert run["classes"] == [str(i) for i in range(10)]
    ck = torch.load(run_a / "last.pt", weights_only=True)
    assert ck["normalize"]["mean"].tolist() == pytest.approx(run["normalize"]["mean"])
    r = cli("train", PLAIN, "--data", f"fashion-mnist:{tiny_mnist}", "--epochs", "1", "--out", "f",
            "--mean", "0.5", "--std", "0.5", *FAST)
    assert r.exit_code == 0, r.output
    run = json.loads((run_a.parent / "f" / "run.json").read_text())
    assert run["normalize"] == {"mean": [0.5], "std": [0.5]}
    assert run["classes"][0] == "T-shirt/top" and run["num_classes"] == 10


# -- shapes, missing extras ----------------------------------------------------------------------
def test_an_input_of_another_rank_is_refused(cli):
    r = cli("summary", "lenet5", "--input", "32x32")
    assert r.exit_code == 2 and "--input 32x32 has 2 dims but the spec's input [1, 32, 32] has 3" in r.output
    with pytest.raises(SpecError, match="has 2 dims"):
        archc.load("lenet5", input="32x32")
    assert archc.load("lenet5", input="1x28x28").input == (1, 28, 28)


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] == "torch" else _find(name, *a)
from archc.cli import main
sys.argv = ["archc", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("args", [["train", "digits_cnn", "--out", "x"], ["eval", "--run", "."]])
def test_without_torch_train_and_eval_say_which_extra_to_install(tmp_path, args):
    r = subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60, env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    assert r.returncode == 1, r.stderr
    assert "needs torch, which is not installed: pip install 'archc[train]'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x").exists()
    # the analysis path goes on working without torch
    r = subprocess.run([sys.executable, "-c", BLOCK_TORCH, "summary", "lenet5"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0 and "conv" in r.stdout, r.stderr
