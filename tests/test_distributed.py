"""Several processes through torch.distributed.run (gloo on CPU): a 2-process run equals a
single-process run of the same global batch; failures and Ctrl-C keep their exit status and
leave a checkpoint; bad input is refused before any process starts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.cli.training import _argv
from archc.train.config import make_config
from archc.train.data import open_data
from archc.train.loop import train

PLAIN = str(Path(__file__).parent / "specs" / "plain_cnn.yaml")    # no BN, no dropout
CNN = str(Path(__file__).resolve().parent.parent / "specs" / "digits_cnn.yaml")
COMMON = ["--data", "digits", "--val-fraction", "0.2", "--batch-size", "32", "--device", "cpu",
          "--deterministic"]


def archc_cli(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "archc.cli", *args], capture_output=True,
                          text=True, env=env, timeout=240, **kw)


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_equal_one_process_of_the_same_global_batch(tmp_path):
    r = archc_cli("train", PLAIN, *COMMON, "--epochs", "2", "--nproc", "2", "--out", str(tmp_path / "ddp"))
    assert r.returncode == 0, r.stderr
    assert [line.split()[1] for line in r.stdout.splitlines() if line.startswith("epoch")] == ["1/2", "2/2"]
    net = archc.load(PLAIN)
    cfg = make_config(net.train, val_fraction=0.2, batch_size=32, device="cpu",
                      deterministic=True, epochs=2)
    one = train(net, open_data("digits", val_fraction=0.2), cfg, tmp_path / "one", quiet=True)
    two = metrics(tmp_path / "ddp")
    assert len(two) == 2
    for a, b in zip(one, two):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    wa = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    wb = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert wb["world_size"] == 2 and wa["model"].keys() == wb["model"].keys()
    for k in wa["model"]:
        assert torch.allclose(wa["model"][k], wb["model"][k], rtol=1e-4, atol=1e-6), k
    # and training moved them: the equality is not that of two untrained networks
    torch.manual_seed(0)
    init = net.to_module().state_dict()
    assert all(not torch.allclose(init[k], wa["model"][k]) for k in init)


def test_a_loss_that_diverges_stops_every_process_with_one_message(tmp_path):
    r = archc_cli("train", PLAIN, *COMMON, "--lr", "1e6", "--epochs", "3", "--nproc", "2",
                  "--out", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.count("error: the training loss became") == 1, r.stderr
    assert "Traceback" not in r.stderr and "ChildFailedError" not in r.stderr


def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", CNN, "--data", "synthetic:20000", "--input", "1x8x8", "--device", "cpu",
            "--epochs", "40", "--nproc", "2", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, "-m", "archc.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()              # the first epoch line: training is under way
        assert line.startswith("epoch 1/40"), line + proc.stderr.read()
        os.killpg(proc.pid, signal.SIGINT)         # what a terminal's Ctrl-C does
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "interrupted in epoch 2" in stdout and "Traceback" not in stderr
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and ck["world_size"] == 2
    r = archc_cli("train", CNN, "--data", "synthetic:20000", "--input", "1x8x8", "--device", "cpu",
                  "--epochs", "2", "--nproc", "2", "--resume", str(out))
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stdout and [m["epoch"] for m in metrics(out)] == [1, 2]


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "33"], "batch size 33 does not split evenly over 2 processes"),
    (["--mean", "0.1,0.2"], "train.mean has 2 values; digits has 1 channel (give 1 or 1)"),
])
def test_bad_input_is_refused_before_processes_start(tmp_path, args, message):
    r = CliRunner().invoke(main, ["train", PLAIN, "--data", "digits", "--nproc", "2", "--out", str(tmp_path), *args])
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "run.json").exists()


def test_worker_command_line_repeats_the_invocation():
    from archc.cli.training import train as command
    given = ["s.yaml", "--set", "width=8", "--set", "num_classes=3", "--epochs", "3",
             "--no-flip", "--channels-last", "-q", "--nproc", "4", "--out", "o"]
    ctx = command.make_context("train", list(given))
    argv = _argv(ctx, drop={"nproc"})
    assert argv[0] == "train" and "--nproc" not in argv
    again = command.make_context("train", argv[1:]).params
    assert again.pop("nproc") == 1 and ctx.params.pop("nproc") == 4
    assert again == ctx.params
