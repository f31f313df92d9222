"""Data sets for `archc train --data NAME[:PATH]`.

    data = open_data("mnist:~/data/mnist")         # or cifar10, digits, imagefolder:DIR, ...
    for x, y in batches(data.train, 128, shuffle=True, seed=0, epoch=e):
        logits = net(normalise(as_float(x)))

In-memory sources (mnist, fashion-mnist, cifar10, cifar100, digits, synthetic) give TensorData,
walked with batches(); file sources (imagefolder, files) give torch Datasets, for
DataLoader(ds, batch_size, sampler=sampler(ds, seed=...), num_workers=...) with
sampler.set_epoch(e) each epoch. Both yield uint8 pixels or floats; as_float() scales a batch
to [0, 1] and channel_stats() gives the per-channel mean/std on that scale.

Several processes (DDP): sampler() is torch's DistributedSampler, and batches(..., rank=r,
world_size=w) walks in-memory data in exactly DistributedSampler's order (every rank draws the
same seeded permutation and takes perm[rank::world_size], padded so that the ranks step
together).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from archc.errors import SpecError, did_you_mean
from archc.train.data.core import (
    Data, DataError, TensorData, as_float, batches, channel_stats, order, sampler, split_indices)
from archc.train.data.remote import data_root, download

__all__ = ["open_data", "Data", "DataError", "TensorData", "as_float", "batches",
           "channel_stats", "order", "sampler", "split_indices", "data_root", "download"]
SOURCES = ["mnist", "fashion-mnist", "cifar10", "cifar100", "imagefolder", "files", "digits",
           "synthetic"]
ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
           "cifar-10": "cifar10", "cifar-100": "cifar100", "image-folder": "imagefolder"}


def open_data(arg: str, *, val_fraction: float = 0.1, seed: int = 0, input_shape=None,
              num_classes: int | None = None, size: tuple[int, int] | None = None,
              rule: dict[str, int] | None = None, download: bool = True, fetch=None) -> Data:
    """The data set named by a --data argument, NAME[:PATH].

    val_fraction, seed: the held-out split of sources without one of their own (digits,
    synthetic, image files without val/; MNIST and CIFAR, whose test split stays apart). input_shape: the network's per-sample input, which
    synthetic data takes and image files take their channel count from. num_classes: for
    synthetic (default 10). size: (H, W) to resize image files to (otherwise they must all
    be one size). rule: prefix -> label for files:DIR. download: fetch MNIST/CIFAR when the
    files are absent (fetch: url -> bytes, for tests). Every user error is a SpecError."""
    data = _open(arg, val_fraction=val_fraction, seed=seed, input_shape=input_shape,
                 num_classes=num_classes, size=size, rule=rule, download=download, fetch=fetch)
    if data.val is None and data.test is not None:
        data = carve_val(data, val_fraction, seed)
    data.source = source_of(arg)
    return data


def source_of(arg: str) -> str:
    """The --data argument in the form that reopens the same data from anywhere: the name
    without aliases, a path made absolute (`mnist:~/d` -> `mnist:/home/me/d`)."""
    name, _, path = arg.partition(":")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    if path and name not in ("synthetic",):
        path = str(Path(os.path.expanduser(path)).absolute())
    return f"{name}:{path}" if path else name


def carve_val(data: Data, val_fraction: float, seed: int) -> Data:
    """A validation split of val_fraction of the training set (seeded), for sources that have
    only train and test: best.pt is chosen on it, and the test split stays unseen."""
    tr, va = split_indices(len(data.train), val_fraction, seed)
    val = data.subset(data.train, va) if len(va) else None
    return replace(data, train=data.subset(data.train, tr), val=val)


def _open(arg: str, *, val_fraction, seed, input_shape, num_classes, size, rule, download, fetch) -> Data:
    name, _, path = arg.partition(":")
    name = ALIASES.get(name.strip().lower(), name.strip().lower())
    path = path or None
    if name in ("mnist", "fashion-mnist"):
        from archc.train.data.idx import open_mnist
        return open_mnist(name, path, download=download, fetch=fetch)
    if name in ("cifar10", "cifar100"):
        from archc.train.data.cifar import open_cifar
        return open_cifar(name, path, download=download, fetch=fetch)
    if name in ("imagefolder", "files"):
        if path is None:
            raise SpecError(f"--data {name} needs a directory: {name}:DIR")
        from archc.train.data import images
        channels = int(input_shape[0]) if input_shape is not None else None
        kw = dict(val_fraction=val_fraction, seed=seed, size=size, channels=channels)
        if name == "files":
            return images.open_files(path, rule=rule, **kw)
        return images.open_imagefolder(path, **kw)
    if name == "digits":
        if path:
            raise SpecError("digits takes no path: the data ship with scikit-learn")
        from archc.train.data.builtin import open_digits
        return open_digits(val_fraction=val_fraction, seed=seed)
    if name == "synthetic":
        from archc.train.data.builtin import open_synthetic
        try:
            n = int(path) if path else 1024
        except ValueError:
            raise SpecError(f"synthetic:N takes a number of samples, not '{path[:40]}'") from None
        return open_synthetic(n, input_shape, num_classes=num_classes or 10,
                              val_fraction=val_fraction, seed=seed)
    raise SpecError(f"unknown data set '{name}'{did_you_mean(name, SOURCES)}; "
                    f"known: {', '.join(SOURCES)}")
