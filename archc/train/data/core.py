"""What every source returns (Data, TensorData) and how the loop walks it: batches(), sampler(),
channel_stats(). In-memory data is served by slicing tensors, never sample by sample."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset, DistributedSampler, Subset

from archc.errors import SpecError


class DataError(SpecError):
    """Bad data found while reading samples. A DataLoader worker's exception comes back as
    type(e)(text of the worker's traceback); this keeps only the message, as the CLI prints it."""

    def __init__(self, message: str, loc=None):
        if message.startswith("Caught DataError") and "DataError: " in message:
            message = message.rsplit("DataError: ", 1)[1].strip()
        super().__init__(message, loc)


@dataclass
class TensorData:
    """A whole split in memory. x: [N, C, H, W], uint8 (pixels 0..255) or float (already scaled);
    y: int64 [N]. Index it with a tensor of indices to get a batch."""
    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        self.y = torch.as_tensor(self.y, dtype=torch.int64)
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"{self.x.shape[0]} samples but {self.y.shape[0]} labels")

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx):
        return self.x[idx], self.y[idx]

    def subset(self, idx: torch.Tensor) -> "TensorData":
        return TensorData(self.x[idx], self.y[idx])


@dataclass
class Data:
    """One data source, split. `train`/`val`/`test` are TensorData (in memory) or torch Datasets
    (decoded from files, for a DataLoader with workers). Where a source has no validation split
    of its own (MNIST, CIFAR: train and test), open_data carves `val` out of the training set;
    the test split is never used to choose anything. `source`: the --data argument that
    reopens it (paths absolute), as a run records it."""
    name: str
    train: TensorData | Dataset
    val: TensorData | Dataset | None
    num_classes: int
    sample_shape: tuple[int, ...]
    classes: list[str] | None = None
    test: TensorData | Dataset | None = field(default=None)
    source: str | None = None

    def subset(self, part, idx: torch.Tensor):
        return part.subset(idx) if isinstance(part, TensorData) else Subset(part, idx.tolist())


def as_float(x: torch.Tensor) -> torch.Tensor:
    """A batch as float32 in [0, 1]: uint8 pixels are divided by 255, floats pass unchanged."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices of a seeded random split; val gets round(n * val_fraction) samples,
    at least one when the fraction is positive and there are two or more samples."""
    if not 0 <= val_fraction < 1:
        raise SpecError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n > 1:
        n_val = min(max(n_val, 1), n - 1)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def order(n: int, *, shuffle: bool, seed: int = 0, epoch: int = 0, rank: int = 0,
          world_size: int = 1, drop_last: bool = False) -> torch.Tensor:
    """The indices one rank visits in one epoch: exactly the sequence of torch's
    DistributedSampler(num_replicas=world_size, rank=rank, shuffle, seed, drop_last) after
    set_epoch(epoch), so in-memory and file data, one process or many, walk the same order.
    Every rank draws the same permutation (seeded by seed + epoch), pads it by wrapping around
    (or cuts it, with drop_last) to a multiple of world_size, and takes perm[rank::world_size]."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    if shuffle:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    else:
        perm = torch.arange(n)
    if drop_last:
        perm = perm[: n - n % world_size]
    elif n % world_size:
        pad = world_size - n % world_size
        perm = torch.cat([perm, perm.repeat(pad // max(n, 1) + 1)[:pad]])
    return perm[rank::world_size]


def batches(data: TensorData, batch_size: int, shuffle: bool = True, seed: int = 0,
            epoch: int = 0, drop_last: bool = False, *, rank: int = 0,
            world_size: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) batches of an in-memory split: one randperm per epoch, then tensor slices.
    Distributed: give each process its rank and the world size; see order()."""
    idx = order(len(data), shuffle=shuffle, seed=seed, epoch=epoch, rank=rank,
                world_size=world_size, drop_last=drop_last)
    stop = len(idx) - len(idx) % batch_size if drop_last else len(idx)
    for start in range(0, stop, batch_size):
        yield data[idx[start:start + batch_size]]


def sampler(dataset: Sequence, *, shuffle: bool = True, seed: int = 0, rank: int = 0,
            world_size: int = 1, drop_last: bool = False) -> DistributedSampler:
    """torch's DistributedSampler for DataLoader(dataset, sampler=...), one process or many
    (rank and world size are given, so no process group is needed to make it). The loop calls
    .set_epoch(epoch) on it each epoch."""
    return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                              seed=seed, drop_last=drop_last)


def channel_stats(data: TensorData | Dataset, batch_size: int = 4096,
                  workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) of a split, on the as_float() scale, for normalising with computed
    statistics. One pass: sums and sums of squares in float64, chunk by chunk (a float64 copy
    of all of CIFAR would be 1.2 GB). File datasets are read through a DataLoader."""
    if isinstance(data, TensorData):
        chunks = (data.x[i:i + batch_size] for i in range(0, len(data), batch_size))
    else:
        from torch.utils.data import DataLoader
        # its own generator: reading must not move the global RNG (see runner.iterate)
        loader = DataLoader(data, batch_size=256, num_workers=workers, generator=torch.Generator())
        chunks = (x for x, _ in loader)
    total = count = sq = None
    for x in chunks:
        x = as_float(x).double().transpose(0, 1).flatten(1)  # [C, N*H*W]
        s, s2 = x.sum(1), (x * x).sum(1)
        total, sq = (s, s2) if total is None else (total + s, sq + s2)
        count = x.shape[1] + (count or 0)
    if total is None:
        raise SpecError("channel_stats of an empty dataset")
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(0).sqrt()
    return mean.float(), std.float()
