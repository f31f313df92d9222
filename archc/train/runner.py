"""One training step and one evaluation: the Runner (model, device, normalisation, augmentation,
loss), and the walk over a split (tensor slices in memory, a DataLoader for files), sharded
across processes when there are several."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from archc.errors import SpecError
from archc.train.augment import Augment
from archc.train.config import TrainConfig
from archc.train.data import TensorData, as_float, batches, sampler
from archc.train.dist import Place, all_sum


class Runner:
    """What one step and one evaluation need. `model` is the plain module (evaluation runs it
    directly, so that no process waits on another); `train_model` is what training steps call:
    the DistributedDataParallel wrapper in a multi-process run, else the model itself."""

    def __init__(self, model, cfg: TrainConfig, dev: torch.device, mean, std, train_model=None):
        self.model, self.cfg, self.dev = model, cfg, dev
        compiled = torch.compile if cfg.compile else (lambda m: m)
        self.eval_fwd = compiled(model)
        self.fwd = self.eval_fwd if train_model is None else compiled(train_model)
        self.mean, self.std = mean.to(dev), std.clamp_min(1e-8).to(dev)
        self._affine: dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor]] = {}
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
        self.augment = Augment(cfg.crop, cfg.flip, cfg.rotate, cfg.vflip)
        self.top5 = "top5" in cfg.metrics

    def affine(self, ndim: int, pixels: bool):
        """(scale, shift) with normalise(as_float(x)) == x * scale + shift, shaped to broadcast
        over a batch of `ndim` dims: one fused op a batch instead of three (small networks
        spend a noticeable share of a step on them)."""
        key = (ndim, pixels)
        if key not in self._affine:
            view = (1, -1) + (1,) * (ndim - 2)
            scale = 1 / (self.std * (255 if pixels else 1))
            self._affine[key] = (scale.view(view), (-self.mean / self.std).view(view))
        return self._affine[key]

    def prep(self, x, y, train: bool = False):
        x = x.to(self.dev, non_blocking=True)
        if train and self.augment:
            x = self.augment(as_float(x))
        if self.cfg.normalize:
            scale, shift = self.affine(x.ndim, x.dtype == torch.uint8)
            x = torch.addcmul(shift, x.float(), scale)
        else:
            x = as_float(x)
        if x.ndim == 4 and not x.is_contiguous(memory_format=self.fmt):
            x = x.contiguous(memory_format=self.fmt)
        return x, y.to(self.dev, non_blocking=True)

    def forward(self, x, y):
        """(loss, number correct) of a training batch, both on the device (no host sync)."""
        return self.score(self.fwd, x, y)

    def score(self, fwd, x, y, top5: bool = False):
        """(loss, number correct) of a batch; with top5, also the number whose label is among
        the 5 highest logits."""
        if self.amp is None:
            out = fwd(x)
        else:
            with torch.autocast(self.dev.type, dtype=self.amp):
                out = fwd(x)
        if isinstance(out, (tuple, list)):      # training-only heads: weighted into the loss
            losses = [self.loss(o.float(), y) for o in out]
            loss, main = losses[0] + self.cfg.aux_weight * sum(losses[1:]), out[0]
        else:                                   # the common case, in as few ops as possible
            main = out if self.amp is None else out.float()
            loss = self.loss(main, y)
        main = main.detach()
        pred = (main.squeeze(1) > 0).long() if self.cfg.loss == "bce" else main.argmax(1)
        if top5:
            k = min(5, main.shape[1]) if self.cfg.loss != "bce" else 1
            hit5 = (main.topk(k, 1).indices == y[:, None]).any(1) if k > 1 else pred == y
            return loss, (pred == y).sum(), hit5.sum()
        return loss, (pred == y).sum()

    def loss(self, logits, y):
        if self.cfg.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
        if not self.cfg.from_logits:      # probabilities: Keras's clipped cross-entropy
            p = logits.clamp(1e-7, 1 - 1e-7)
            return F.nll_loss(p.log(), y) if not self.cfg.label_smoothing else \
                F.cross_entropy(p.log(), y, label_smoothing=self.cfg.label_smoothing)
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)


def per_process_batch(cfg: TrainConfig, place: Place) -> int:
    """--batch-size is the global batch: each of the processes takes an equal share."""
    if cfg.batch_size % place.world_size:
        raise SpecError(f"batch size {cfg.batch_size} does not split evenly over "
                        f"{place.world_size} processes; use a multiple of {place.world_size}")
    return cfg.batch_size // place.world_size


def iterate(split, cfg: TrainConfig, dev, *, shuffle: bool, epoch: int, place: Place = Place(),
            size: int | None = None):
    """Training batches of this process: tensor slices for in-memory data, a DataLoader with
    torch's DistributedSampler for file data; the same order either way (data.order)."""
    size = size or per_process_batch(cfg, place)
    if isinstance(split, TensorData):
        return batches(split, size, shuffle=shuffle, seed=cfg.seed, epoch=epoch,
                       rank=place.rank, world_size=place.world_size)
    from torch.utils.data import DataLoader
    s = sampler(split, shuffle=shuffle, seed=cfg.seed, rank=place.rank, world_size=place.world_size)
    s.set_epoch(epoch)
    # its own generator: seeding workers must not draw from the global RNG that dropout uses,
    # or file data and the same data in memory would train differently
    seeds = torch.Generator().manual_seed(cfg.seed + epoch)
    return iter(DataLoader(split, size, sampler=s, num_workers=cfg.workers, generator=seeds,
                           pin_memory=dev.type == "cuda", persistent_workers=False))


def shard(split, place: Place):
    """This process's share of an evaluation split: every world_size-th sample, no padding, so
    the shares add up to the split exactly once."""
    if not place.distributed:
        return split
    idx = torch.arange(place.rank, len(split), place.world_size)
    return split.subset(idx) if isinstance(split, TensorData) else Subset(split, idx.tolist())


@torch.no_grad()
def evaluate(run: Runner, split, cfg: TrainConfig, place: Place = Place()) -> dict[str, float]:
    """Mean loss and accuracy (and top-5 accuracy, when asked for) over a split; with several
    processes, each scores its shard and the sums are added up (the one collective of an
    evaluation)."""
    run.model.eval()
    total = torch.zeros(3, device=run.dev, dtype=torch.float64)   # loss sum, correct, top-5
    n = 0
    for x, y in iterate(shard(split, place), cfg, run.dev, shuffle=False, epoch=0,
                        size=cfg.val_batch_size or cfg.batch_size):
        x, y = run.prep(x, y)
        loss, correct, *five = run.score(run.eval_fwd, x, y, True) if run.top5 else run.score(run.eval_fwd, x, y)
        total += torch.stack([loss.double() * len(y), correct.double(),
                              five[0].double() if five else correct.double()])
        n += len(y)
    sums = torch.cat([total, torch.tensor([n], dtype=torch.float64, device=run.dev)])
    loss_sum, correct, top5, n = all_sum(sums).tolist()   # the one host sync of an evaluation
    out = {"loss": loss_sum / max(n, 1), "acc": correct / max(n, 1)}
    if run.top5:
        out["top5"] = top5 / max(n, 1)
    return out


def on_device(split, dev):
    """An in-memory split moved to the GPU once, rather than copied there every batch."""
    if isinstance(split, TensorData) and dev.type == "cuda":
        return TensorData(split.x.to(dev), split.y.to(dev))
    return split
