"""The training loop: `train(net, data, cfg, out_dir)`.

Writes out_dir/metrics.jsonl (one object per epoch), last.pt and best.pt (atomic), model.py
(the emitted source) and run.json / spec.yaml (what was trained). A run interrupted with
Ctrl-C saves last.pt at the exact batch it reached; `resume=` continues from there, and in
deterministic mode ends with the same weights, bit for bit, as a run never interrupted.
A loss that turns nan/inf stops the run with Diverged (a SpecError: the CLI exits 2), and
leaves the last good checkpoint in place.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from archc.errors import SpecError
from archc.train.checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state, write_text_atomic
from archc.train.config import TrainConfig
from archc.train.data import Data, TensorData, as_float, batches, channel_stats, sampler
from archc.train.optim import make_optimizer, make_scheduler


class Diverged(SpecError):
    """The loss became nan or inf: the run stopped; the last good checkpoint is kept."""


def fit_network(net, data: Data, cfg: TrainConfig, say: Callable[[str], None] = print):
    """net, re-inferred where the data's sample shape or class count differs from the spec's."""
    import archc
    shape = tuple(int(s) for s in data.sample_shape)
    classes = 1 if cfg.loss == "bce" else data.num_classes
    if cfg.loss == "bce" and data.num_classes != 2:
        raise SpecError(f"loss bce is for two classes; {data.name} has {data.num_classes}")
    change: dict[str, Any] = {}
    if tuple(net.input) != shape:
        change["input"] = "x".join(map(str, shape))
    out = tuple(net.output_shapes[0])
    if out != (classes,) and "num_classes" in net.vars:
        change["num_classes"] = classes
    if change:
        was = f"{_fmt(net.input)} -> {_fmt(out)}"
        if net.file in ("<mapping>", "<string>") or not Path(net.file).exists():
            raise SpecError(f"{data.name} gives {_fmt(shape)} samples in {classes} classes but the "
                            f"spec takes {_fmt(net.input)} -> {_fmt(out)}; pass --input / --set num_classes")
        vars_ = {**net.vars, **{k: v for k, v in change.items() if k != "input"}}
        try:
            net = archc.load(net.file, variant=net.variant, input=change.get("input"), **vars_)
        except SpecError as e:
            raise SpecError(f"{data.name} gives {_fmt(shape)} samples but the spec takes "
                            f"{_fmt(net.input)}, and does not work at {_fmt(shape)}: {e}. Use data "
                            f"of the spec's shape, or a spec that fits the data") from None
        say(f"note: {', '.join(f'{k}={v}' for k, v in change.items())} to fit {data.name} "
            f"(the spec says {was})")
    out = tuple(net.output_shapes[0])
    if out != (classes,):
        raise SpecError(f"the network outputs {_fmt(out)} per sample but {data.name} needs "
                        f"{classes} logits; give the spec a num_classes var or --set it")
    return net


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda: no CUDA device is available")
    return torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")


def _setup(cfg: TrainConfig, dev: torch.device) -> None:
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif dev.type == "cuda":
        torch.backends.cudnn.benchmark = True


class Runner:
    """What one step and one evaluation need: model, device, normalisation, loss."""

    def __init__(self, model, cfg: TrainConfig, dev: torch.device, mean, std):
        self.model, self.cfg, self.dev = model, cfg, dev
        self.fwd = torch.compile(model) if cfg.compile else model
        self.mean, self.std = mean.to(dev), std.clamp_min(1e-8).to(dev)
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)

    def prep(self, x, y):
        x = as_float(x.to(self.dev, non_blocking=True))
        if self.cfg.normalize:
            view = (1, -1) + (1,) * (x.ndim - 2)
            x = (x - self.mean.view(view)) / self.std.view(view)
        if x.ndim == 4:
            x = x.contiguous(memory_format=self.fmt)
        return x, y.to(self.dev, non_blocking=True)

    def forward(self, x, y):
        """(loss, number correct) of a batch, both on the device (no host sync)."""
        with torch.autocast(self.dev.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self.fwd(x)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        losses = [self.loss(o.float(), y) for o in outs]
        loss = losses[0] + self.cfg.aux_weight * sum(losses[1:]) if len(losses) > 1 else losses[0]
        main = outs[0].detach()
        pred = (main.squeeze(1) > 0).long() if self.cfg.loss == "bce" else main.argmax(1)
        return loss, (pred == y).sum()

    def loss(self, logits, y):
        if self.cfg.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())
        return F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)


def iterate(split, cfg: TrainConfig, dev, *, shuffle: bool, epoch: int):
    """Batches of a split: tensor slices for in-memory data, a DataLoader for file data."""
    if isinstance(split, TensorData):
        return batches(split, cfg.batch_size, shuffle=shuffle, seed=cfg.seed, epoch=epoch)
    from torch.utils.data import DataLoader
    s = sampler(split, shuffle=shuffle, seed=cfg.seed)
    s.set_epoch(epoch)
    return iter(DataLoader(split, cfg.batch_size, sampler=s, num_workers=cfg.workers,
                           pin_memory=dev.type == "cuda", persistent_workers=False))


@torch.no_grad()
def evaluate(run: Runner, split, cfg: TrainConfig) -> dict[str, float]:
    run.model.eval()
    total = torch.zeros(2, device=run.dev, dtype=torch.float64)
    n = 0
    for x, y in iterate(split, cfg, run.dev, shuffle=False, epoch=0):
        x, y = run.prep(x, y)
        loss, correct = run.forward(x, y)
        total += torch.stack([loss.double() * len(y), correct.double()])
        n += len(y)
    loss_sum, correct = total.tolist()          # the one host sync of an evaluation
    return {"loss": loss_sum / max(n, 1), "acc": correct / max(n, 1)}


def _on_device(split, dev):
    # an in-memory split fits on the device: move it once rather than copying every batch
    if isinstance(split, TensorData) and dev.type == "cuda":
        return TensorData(split.x.to(dev), split.y.to(dev))
    return split


def train(net, data: Data, cfg: TrainConfig, out_dir, resume=None, quiet: bool = False,
          log: Callable[[str], None] = print,
          progress: Callable[[str], None] | None = None, checkpoint: dict | None = None) -> list[dict]:
    """Train net on data; returns the metrics history (one dict per epoch). log gets one line
    per epoch (none when quiet); progress, if given (a terminal), a batch counter twice a
    second, which needs no host sync. `checkpoint` is resume's last.pt when the caller has
    already read it (the CLI reads the run's settings from it)."""
    say = (lambda s: None) if quiet else log
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = fit_network(net, data, cfg, say)
    dev = _device(cfg)
    _setup(cfg, dev)
    ckpt = checkpoint if checkpoint is not None else load_checkpoint(resume) if resume is not None else None
    if ckpt is None:
        torch.manual_seed(cfg.seed), np.random.seed(cfg.seed % 2**32), random.seed(cfg.seed)
    model = net.to_module().to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        mean, std = ckpt["normalize"]["mean"], ckpt["normalize"]["std"]
    else:
        mean, std = channel_stats(data.train)
    run = Runner(model, cfg, dev, mean, std)
    train_split, val_split = _on_device(data.train, dev), _on_device(data.val, dev)
    steps = -(-len(data.train) // cfg.batch_size)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg, steps)
    scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16")
    history: list[dict] = []
    start, skip, partial = 0, 0, None
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        history, start = list(ckpt["history"]), ckpt["epoch"]
        skip, partial = ckpt.get("step", 0), ckpt.get("partial")
        set_rng_state(ckpt["rng"])
        say(f"resuming from {resume} at epoch {start + 1}" + (f", batch {skip + 1}" if skip else ""))
    _write_run_files(net, data, cfg, out)
    # rewrite the log from the checkpoint: epochs after it (from a crashed run) are dropped
    write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    def state(epoch: int, step: int = 0, part=None) -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch, "step": step, "partial": part, "rng": rng_state(),
                "history": list(history), "config": cfg.model_dump(),
                "normalize": {"mean": mean.cpu(), "std": std.cpu()},
                "spec": {"file": net.file, "variant": net.variant, "input": list(net.input)}}

    best = max((_score(h) for h in history), default=None)
    for epoch in range(start, cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        acc = torch.zeros(2, device=dev, dtype=torch.float64)   # loss sum, correct: on device
        seen, done, shown = 0, skip, t0
        if partial is not None:
            acc += partial["acc"].to(dev)
            seen = partial["seen"]
        it = itertools.islice(iterate(train_split, cfg, dev, shuffle=True, epoch=epoch), skip, None)
        skip, partial = 0, None
        try:
            for x, y in it:
                x, y = run.prep(x, y)
                loss, correct = run.forward(x, y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                acc += torch.stack([loss.detach().double() * len(y), correct.double()])
                seen += len(y)
                done += 1
                if progress is not None and time.perf_counter() - shown > 0.5:
                    shown = time.perf_counter()
                    progress(f"epoch {epoch + 1}/{cfg.epochs}  batch {done}/{steps}")
            loss_sum, correct = acc.tolist()         # the one host sync of the epoch
            train_loss = loss_sum / max(seen, 1)
            if not np.isfinite(train_loss):
                kept = f"{out / 'last.pt'} (epoch {start if not history else history[-1]['epoch']})" \
                    if (out / "last.pt").exists() else "none (it diverged in the first epoch)"
                raise Diverged(f"the training loss became {train_loss} in epoch {epoch + 1}; stopped. "
                               f"Last good checkpoint: {kept}. Try a lower --lr (now {cfg.lr:g}), "
                               f"grad_clip, or warmup")
            seconds = time.perf_counter() - t0
            rec = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": correct / max(seen, 1),
                   "val_loss": None, "val_acc": None}
            if val_split is not None:
                v = evaluate(run, val_split, cfg)
                rec.update(val_loss=v["loss"], val_acc=v["acc"])
        except KeyboardInterrupt:
            # saved at the batch reached (all of them, if in validation): resume finishes the epoch
            save_atomic(state(epoch, done, {"acc": acc.cpu(), "seen": seen}), out / "last.pt")
            say(f"interrupted in epoch {epoch + 1} at batch {done}: saved {out / 'last.pt'}; "
                f"continue with --resume {out}")
            raise
        rec.update(lr=opt.param_groups[0]["lr"], seconds=round(time.perf_counter() - t0, 4),
                   samples_per_s=round(seen / max(seconds, 1e-9), 1))
        history.append(rec)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        save_atomic(state(epoch + 1), out / "last.pt")
        if best is None or _score(rec) > best:
            best = _score(rec)
            shutil.copyfile(out / "last.pt", out / ".best.pt.tmp")
            os.replace(out / ".best.pt.tmp", out / "best.pt")
        say(_line(rec, cfg.epochs))
    return history


def _score(rec: dict) -> tuple:
    """Higher is better: validation accuracy, then lower validation (or train) loss."""
    if rec.get("val_acc") is not None:
        return (rec["val_acc"], -rec["val_loss"])
    return (rec["train_acc"], -rec["train_loss"])


def _line(rec: dict, epochs: int) -> str:
    val = "" if rec["val_acc"] is None else f"  val_loss {rec['val_loss']:.4f}  val_acc {rec['val_acc']:.4f}"
    return (f"epoch {rec['epoch']}/{epochs}  train_loss {rec['train_loss']:.4f}  "
            f"train_acc {rec['train_acc']:.4f}{val}  lr {rec['lr']:.3g}  "
            f"{rec['seconds']:.1f}s  {rec['samples_per_s']:.0f} samples/s")


def _write_run_files(net, data: Data, cfg: TrainConfig, out: Path) -> None:
    write_text_atomic(out / "model.py", net.source())
    if Path(net.file).is_file():
        write_text_atomic(out / f"spec{Path(net.file).suffix}", Path(net.file).read_text())
    run = {"spec": net.file, "name": net.name, "variant": net.variant, "input": list(net.input),
           "vars": net.vars, "data": data.name, "num_classes": data.num_classes,
           "config": cfg.model_dump()}
    write_text_atomic(out / "run.json", json.dumps(run, indent=1, default=str) + "\n")
