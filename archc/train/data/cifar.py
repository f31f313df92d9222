"""CIFAR-10 / CIFAR-100 from the python-pickle batch directories.

The batches are pickles of plain dicts holding a uint8 numpy array [N, 3072] (each row the R,
G and B planes of a 32x32 image) and a list of labels. A pickle can call any importable
function, so they are read with an Unpickler that resolves only numpy's array reconstruction
helpers: a crafted "batch" cannot run code."""
from __future__ import annotations

import codecs
import math
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from archc import limits
from archc.emit.weights import regular_file
from archc.errors import Location, SpecError
from archc.train.data.core import Data, TensorData

try:  # numpy >= 2 moved numpy.core to numpy._core; pickles name either
    from numpy._core import multiarray, numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray, numeric


def _latin1_encode(text, encoding="latin1"):
    # Python 3 pickles of bytes at protocol 2 call _codecs.encode(str, 'latin1'); no other codec
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"codec {encoding!r} refused")
    return codecs.encode(text, "latin1")


# numpy's helpers as a pickle may call them, but never to allocate what the file does not hold:
# an ndarray pickle reconstructs an empty array and then fills it from bytes in the file, so a
# shape claimed there (np.ndarray((3_000_000_000,)) in 100 bytes) is refused.
class _NdarrayType:
    """`numpy.ndarray` as a pickle names it: the class _reconstruct is given, never called."""
    def __call__(self, *a, **k):
        raise pickle.UnpicklingError("refused: an array allocated by the pickle itself, not read from it")


NDARRAY = _NdarrayType()


def _reconstruct(subtype, shape, dtype):
    if subtype is not NDARRAY or not isinstance(shape, tuple) or math.prod(shape) > 1:
        raise pickle.UnpicklingError(f"refused: an array of shape {shape!r} reconstructed from nothing")
    return multiarray._reconstruct(np.ndarray, shape, dtype)


def _scalar(dtype, *obj):
    if not isinstance(dtype, np.dtype) or dtype.itemsize > 64:
        raise pickle.UnpicklingError("refused: a numpy scalar of an unusual type")
    return multiarray.scalar(dtype, *obj)


ALLOWED = {}
for _mod in ("numpy.core", "numpy._core"):
    ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _reconstruct
    ALLOWED[(f"{_mod}.multiarray", "scalar")] = _scalar
    ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5: data in the file
ALLOWED.update({("numpy", "ndarray"): NDARRAY, ("numpy", "dtype"): np.dtype,
                ("_codecs", "encode"): _latin1_encode})

LAYOUT = {  # name -> (folder in the archive, train files, test file, label key, meta file, names key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                "labels", "batches.meta", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "fine_labels", "meta", "fine_label_names"),
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: CIFAR batches hold "
                                         f"only numpy arrays and plain data") from None


def load_pickle(path: Path) -> dict:
    """A batch file as a dict with str keys (Python 2 pickles decode with latin1, as numpy needs)."""
    regular_file(path, "CIFAR batch")
    if path.stat().st_size > limits.current().data_bytes:
        raise limits.too_large("data_bytes", "CIFAR batch too large", path.stat().st_size,
                               Location(str(path)))
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - any failure of a corrupt or hostile pickle
        raise SpecError(f"{path}: not a CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise SpecError(f"{path}: not a CIFAR batch (a {type(obj).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batches(paths: list[Path], label_key: str) -> TensorData:
    xs, ys = [], []
    for p in paths:
        b = load_pickle(p)
        x, y = b.get("data"), b.get(label_key)
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            raise SpecError(f"{p}: 'data' must be a uint8 array [N, 3072], found "
                            f"{getattr(x, 'dtype', type(x).__name__)} {list(getattr(x, 'shape', []))}")
        if y is None or len(y) != len(x):
            raise SpecError(f"{p}: '{label_key}' must hold {len(x)} labels, found "
                            f"{'none' if y is None else len(y)}")
        xs.append(x)
        ys.append(np.asarray(y, dtype=np.int64))
    x = torch.from_numpy(np.concatenate(xs).reshape(-1, 3, 32, 32))
    return TensorData(x, torch.from_numpy(np.concatenate(ys)))


def batch_dir(name: str, directory: Path) -> Path | None:
    """The folder holding the batches: DIR itself or the archive's folder inside it."""
    folder, train, test = LAYOUT[name][:3]
    for d in (directory / folder, directory):
        if all((d / f).is_file() for f in [*train, test]):
            return d
    return None


def open_cifar(name: str, directory: str | None, *, download: bool = True, fetch=None) -> Data:
    """cifar10 / cifar100: train and test; open_data carves the validation split out of train."""
    from archc.train.data import remote as dl
    folder, train, test, label_key, meta, names_key = LAYOUT[name]
    root = dl.data_root() / name if directory is None else Path(os.path.expanduser(directory))
    d = batch_dir(name, root)
    if d is None and download:
        dl.download(name, root, fetch=fetch)
        d = batch_dir(name, root)
    if d is None:
        raise SpecError(f"{name}: {root} holds neither {folder}/ nor the batch files "
                        f"{', '.join([*train, test])}")
    tr, te = read_batches([d / f for f in train], label_key), read_batches([d / test], label_key)
    classes = load_pickle(d / meta).get(names_key) if (d / meta).is_file() else None
    if classes is None and name == "cifar10":
        classes = CIFAR10_CLASSES
    n = len(classes) if classes else int(max(tr.y.max(), te.y.max())) + 1
    return Data(name=name, train=tr, val=None, test=te, num_classes=n, sample_shape=(3, 32, 32),
                classes=list(classes) if classes else None)
