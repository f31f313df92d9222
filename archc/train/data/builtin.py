"""Sources that need no files: scikit-learn's bundled 8x8 digits (the offline default) and
synthetic tensors of any input shape (benchmarks, smoke tests)."""
from __future__ import annotations

import math

import torch

from archc import limits
from archc.errors import SpecError
from archc.train.data.core import Data, TensorData, split_indices


def open_digits(*, val_fraction: float = 0.1, seed: int = 0) -> Data:
    """1797 digits as float [N, 1, 8, 8] in [0, 1] (the 0..16 ink counts / 16); a seeded split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("the digits data set ships with scikit-learn: pip install scikit-learn") from None
    d = load_digits()  # read from the package's own files: no network
    all_ = TensorData(torch.from_numpy(d.images).float().div_(16).unsqueeze(1),
                      torch.from_numpy(d.target))
    tr, va = split_indices(len(all_), val_fraction, seed)
    return Data(name="digits", train=all_.subset(tr), val=all_.subset(va) if len(va) else None, num_classes=10,
                sample_shape=(1, 8, 8), classes=[str(i) for i in range(10)])


def open_synthetic(n: int, input_shape, *, num_classes: int = 10, val_fraction: float = 0.1,
                   seed: int = 0) -> Data:
    """n standard-normal samples of input_shape with uniform random labels, seeded."""
    if input_shape is None:
        raise SpecError("synthetic data needs the network's input shape (input_shape=net.input)")
    if n < 1 or num_classes < 1:
        raise SpecError(f"synthetic: need at least one sample and one class, got {n} and {num_classes}")
    shape = tuple(int(s) for s in input_shape)
    nbytes = n * math.prod(shape) * 4                   # float32, checked before anything is made
    if nbytes > limits.current().data_bytes:
        raise limits.too_large("data_bytes", f"synthetic:{n} of shape {list(shape)} is too large", nbytes)
    g = torch.Generator().manual_seed(seed)
    all_ = TensorData(torch.randn((n, *shape), generator=g),
                      torch.randint(num_classes, (n,), generator=g))
    tr, va = split_indices(n, val_fraction, seed)
    return Data(name=f"synthetic:{n}", train=all_.subset(tr),
                val=all_.subset(va) if len(va) else None,
                num_classes=num_classes, sample_shape=shape,
                classes=[str(i) for i in range(num_classes)])
