"""What a run logs besides metrics.jsonl: metrics.csv (the same records, rewritten whole each
epoch, consistent after a resume), TensorBoard event files (--tensorboard; the package named when
absent), and --early-stop on the validation score (recorded, and decided the same on resume)."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from test_cli import cli_in

TESTS = Path(__file__).parent
PLAIN = TESTS / "specs" / "plain_cnn.yaml"                    # 1x8x8, 10 classes, no BN
ARGS = [PLAIN, "--data", "synthetic:64", "--batch-size", "16", "--device", "cpu", "-q"]


@pytest.fixture
def cli(monkeypatch, tmp_path):
    return cli_in(monkeypatch, tmp_path, expect=None)


def jsonl(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def as_csv(records: list[dict]) -> list[dict]:
    """Records as csv.DictReader gives them back: strings, '' for null and for absent keys."""
    keys = [k for r in records for k in r]
    return [{k: "" if r.get(k) is None else str(r[k]) for k in dict.fromkeys(keys)} for r in records]


def test_metrics_csv_holds_the_same_records_and_a_resume_keeps_it_consistent(cli, tmp_path):
    assert cli("train", *ARGS, "--epochs", "1", "--out", "a").exit_code == 0
    out = tmp_path / "a"
    # a crash after the checkpoint leaves an epoch the checkpoint does not know: the resume drops it
    with open(out / "metrics.csv", "a") as f:
        f.write("2,9,9,9,9,9,9,9\n")
    assert cli("train", "--resume", "a", "--epochs", "3", "-q").exit_code == 0
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows == as_csv(jsonl(out))
    assert not list(out.glob(".*"))                     # written through temporary files, none left


def test_metrics_csv_ends_with_the_test_record_when_there_is_a_test_split(cli, tmp_path):
    from test_runs import write_idx
    import numpy as np
    rng, d = np.random.default_rng(0), tmp_path / "mnist"
    d.mkdir()
    for split, n in (("train", 60), ("t10k", 20)):
        write_idx(d / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 8, 8)).astype(np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    r = cli("train", PLAIN, "--data", f"mnist:{d}", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
            "-q", "--out", "m")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "m" / "metrics.csv")))
    assert rows == as_csv(jsonl(tmp_path / "m")) and rows[-1]["split"] == "test" and rows[-1]["epoch"] == ""


def scalars(directory: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(directory))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="the tensorboard extra")
def test_tensorboard_event_files_hold_each_epoch_and_a_resume_continues_them(cli, tmp_path):
    assert cli("train", *ARGS, "--epochs", "2", "--tensorboard", "--out", "a").exit_code == 0
    board = tmp_path / "a" / "tensorboard"
    records = jsonl(tmp_path / "a")
    got = scalars(board, "train/loss")
    assert [s for s, _ in got] == [1, 2]
    assert [v for _, v in got] == pytest.approx([r["train_loss"] for r in records])
    assert [s for s, _ in scalars(board, "val/acc")] == [1, 2] and scalars(board, "lr")
    assert cli("train", "--resume", "a", "--epochs", "3", "-q").exit_code == 0
    assert [s for s, _ in scalars(board, "train/loss")] == [1, 2, 3]


def test_tensorboard_missing_is_named_with_what_to_install(cli, tmp_path, monkeypatch):
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find(name, *a))
    r = cli("train", *ARGS, "--epochs", "1", "--tensorboard", "--out", "a")
    assert r.exit_code == 1 and "pip install tensorboard" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "a").exists()


def test_early_stop_on_a_stalled_validation_score_is_recorded_and_resume_safe(cli, tmp_path):
    # a learning rate of 0 everywhere: the validation score never gets better than epoch 1's
    r = cli("train", *ARGS[:-1], "--epochs", "6", "--early-stop", "2", "--lr-scale", "*=0", "--out", "a")
    assert r.exit_code == 0, r.output
    assert "early stop: no better val_acc/val_loss in 2 epochs (patience 2); best epoch 1" in r.output
    assert [m["epoch"] for m in jsonl(tmp_path / "a")] == [1, 2, 3]
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["early_stop"] == {"patience": 2, "best_epoch": 1, "stopped_after_epoch": 3}
    assert run["config"]["early_stop"] == 2
    r = cli("train", "--resume", "a", "--epochs", "8")      # the same history decides the same
    assert r.exit_code == 0 and "early stop" in r.output and len(jsonl(tmp_path / "a")) == 3
    r = cli("train", "--resume", "a", "--epochs", "4", "--early-stop", "0", "-q")
    assert r.exit_code == 0 and [m["epoch"] for m in jsonl(tmp_path / "a")] == [1, 2, 3, 4]


def test_early_stop_without_a_validation_split_is_refused(cli, tmp_path):
    r = cli("train", *ARGS, "--epochs", "2", "--early-stop", "2", "--val-fraction", "0", "--out", "a")
    assert r.exit_code == 2 and "--early-stop watches the validation score" in r.output
    assert "--val-fraction above 0" in r.output and not (tmp_path / "a").exists()
