"""Issue 10, the files the training side reads: weights, checkpoints, IDX and CIFAR files and
synthetic sizes are checked against what they claim before anything large is allocated, and a
bad `train:` setting is located in the spec. Each example with its exact message, exit 2."""
from __future__ import annotations

import os
import pickle
import struct

import pytest

torch = pytest.importorskip("torch")

from hostile import raise_hint  # noqa: E402
from test_limits import invoke  # noqa: E402
from archc.train.config import FIELDS  # noqa: E402

SPEC = "archc: 1\nname: net\ninput: [1, 8, 8]\nlayers: [flatten, {linear: 10}]\n"


@pytest.fixture
def here(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def first_error(args) -> str:
    r = invoke(args)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    return r.stderr.strip().splitlines()[-1]


def test_weights_holding_a_list_or_ints(here):
    torch.save([1, 2, 3], here / "list.pt")
    assert first_error(["build", "s.yaml", "--weights", "list.pt"]) == \
        "list.pt: holds a list, not a state_dict (a mapping of names to tensors)"
    torch.save({"linear1.weight": 1, "linear1.bias": 2}, here / "ints.pt")
    assert first_error(["build", "s.yaml", "--weights", "ints.pt"]) == \
        "ints.pt: entry 'linear1.weight' holds a int, not a tensor: not a state_dict"


def test_weights_fifo_is_refused_not_waited_on(here):
    os.mkfifo(here / "w.pt")
    assert first_error(["build", "s.yaml", "--weights", "w.pt"]) == "w.pt: is not a regular file, not a weights file"


def test_checkpoint_without_config_or_model(here):
    r = invoke(["train", "s.yaml", "--data", "synthetic:32", "--epochs", "1", "--out", "run"])
    assert r.exit_code == 0, r.output
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "scaler": {}, "epoch": 1, "history": [],
                "rng": {}, "normalize": {}}, here / "run" / "last.pt")      # a real run, its checkpoint cut
    assert first_error(["train", "--resume", "run"]) == "run/last.pt: not an archc run checkpoint: no 'config' entry"
    torch.save({"config": {}, "normalize": {"mean": torch.zeros(1), "std": torch.ones(1)}}, here / "c.pt")
    assert first_error(["eval", "s.yaml", "--weights", "c.pt", "--data", "synthetic:8"]) == \
        "c.pt: not an archc run checkpoint: no 'model' entry"


def test_idx_header_claiming_2_31_squared(here):
    (here / "m").mkdir()
    for split in ("train", "t10k"):
        (here / "m" / f"{split}-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 2**31, 4))
        (here / "m" / f"{split}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 1) + b"\0")
    assert first_error(["train", "s.yaml", "--data", "mnist:m", "--out", "o"]) == (
        "m/train-images-idx3-ubyte: the IDX header claims an array [2147483648, 2147483648, 4]: "
        "18,446,744,073,709,551,616 bytes is over the limit of 4,294,967,296; " + raise_hint("data_bytes"))


def test_synthetic_billion(here):
    assert first_error(["train", "s.yaml", "--data", "synthetic:1000000000", "--out", "o"]) == (
        "error: synthetic:1000000000 of shape [1, 8, 8] is too large: 256,000,000,000 bytes is over the limit "
        "of 4,294,967,296; " + raise_hint("data_bytes"))


# 100-byte CIFAR batches claiming a large array: numpy's ndarray called by the pickle, and an
# ndarray "reconstructed" at a large shape (both allocate gigabytes from nothing)
CALLED = b"cnumpy\nndarray\nJ\x00\x5e\xd0\x32\x85q\x00R"
RECONSTRUCTED = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\x5e\xd0\x32\x85U\x01b\x87R"


@pytest.mark.parametrize("claim,why", [
    (CALLED, "refused: an array allocated by the pickle itself, not read from it"),
    (RECONSTRUCTED, "refused: an array of shape (852516352,) reconstructed from nothing"),
])
def test_tiny_cifar_pickles_claiming_large_arrays(here, claim, why):
    (here / "c").mkdir()
    blob = b"\x80\x02}(X\x04\x00\x00\x00data" + claim + b"X\x06\x00\x00\x00labels]u."
    assert len(blob) < 100
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (here / "c" / f).write_bytes(blob)
    assert first_error(["train", "s.yaml", "--data", "cifar10:c", "--out", "o"]) == \
        f"error: c/data_batch_1: not a CIFAR batch (UnpicklingError: {why})"
    # a real batch still reads
    import numpy as np
    ok = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]})
    from archc.train.data.cifar import load_pickle
    (here / "ok").write_bytes(ok)
    assert load_pickle(here / "ok")["data"].shape == (2, 3072)


@pytest.mark.parametrize("section,message", [
    ("  lr: -1\n", "s.yaml:6:7: train.lr: Input should be greater than 0 (got -1)"),
    ("  optimizer: {name: sgd, momentum: 7}\n", "s.yaml:6:36: train.momentum: Input should be less than 1 (got 7)"),
    ("  epochs: many\n", "s.yaml:6:11: train.epochs: Input should be a valid integer, unable to parse string as an "
                         "integer (got 'many')"),
    ("  bogus: 1\n", "s.yaml:6:10: train: unknown key 'bogus'; known: " + ", ".join(FIELDS)),
])
def test_bad_train_settings_are_located(here, section, message):
    (here / "s.yaml").write_text(SPEC + "train:\n" + section)
    assert first_error(["train", "s.yaml", "--out", "o"]) == message
