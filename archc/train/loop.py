"""The training loop: `train(net, data, cfg, out_dir)`.

Writes out_dir/metrics.jsonl (one object per epoch), last.pt and best.pt (atomic), model.py
(the emitted source), curves.png, and run.json / spec.yaml (what was trained). A run
interrupted with Ctrl-C saves last.pt at the exact batch it reached; `resume=` continues from
there, and in deterministic mode ends with the same weights, bit for bit, as a run never
interrupted. A loss that turns nan/inf stops the run with Diverged (a SpecError: the CLI exits
2), and leaves the last good checkpoint in place.

Several processes (`place`, from torch.distributed.run's environment): the model is wrapped in
DistributedDataParallel, each process walks its DistributedSampler share of every global batch,
epoch metrics are summed over processes, and only rank 0 logs and writes files.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from archc.errors import SpecError
from archc.train.checkpoint import (load_checkpoint, rng_state, save_atomic, set_rng_state, watch_sigint,
                                    write_text_atomic)
from archc.train.config import TrainConfig
from archc.train.data import Data
from archc.train.dist import Place, all_sum, barrier, device_for, join
from archc.train.fit import fit_network
from archc.train.record import check_out_dir, make_record, note
from archc.train.finetune import Freezer, init_weights, lr_scales
from archc.train.optim import base_lr, make_optimizer, make_scheduler
from archc.train.preflight import (IMAGENET, keeps_torch_settings, normalisation, notes, preflight,
                                   refuse_unworkable, set_torch_switches)
from archc.train.report import (Progress, TensorBoard, early_stop, epoch_line, score,
                                 write_curves, write_metrics_csv)
from archc.train.runner import Runner, evaluate, iterate, on_device, per_process_batch

__all__ = ["train", "preflight", "Diverged", "Runner", "fit_network", "evaluate", "normalisation", "notes",
           "IMAGENET"]


class Diverged(SpecError):
    """The loss became nan or inf: the run stopped; the last good checkpoint is kept."""


def _wrap(model, cfg: TrainConfig, dev: torch.device, place: Place):
    """The module training steps call: DistributedDataParallel over several processes."""
    if not place.distributed:
        return None
    from torch.nn.parallel import DistributedDataParallel
    if cfg.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


@keeps_torch_settings
def train(net, data: Data, cfg: TrainConfig, out_dir, resume=None, quiet: bool = False,
          log: Callable[[str], None] = print, progress: Callable[[str], None] | None = None,
          checkpoint: dict | None = None, place: Place = Place(), changes: dict | None = None,
          init: dict | None = None) -> list[dict]:
    """Train net on data; returns the metrics history (one dict per epoch). log gets one line
    per epoch (none when quiet); progress, if given (a terminal), a bar redrawn twice a second,
    which needs no host sync. `checkpoint` is resume's last.pt when the caller has already read
    it (the CLI reads the run's settings from it). `place`: this process's rank and world size
    (rank 0 of 1 unless launched by torch.distributed.run). `changes`: what --override changed
    on a resumed run ({"data": [old, new]}), kept in run.json. `init`: {"weights": FILE or
    torchvision[:NAME] / timm[:TAG], "ignore_unexpected": bool}, the start of a new run
    (loaded by key, not strictly; recorded in run.json, never applied again on resume).

    out_dir must not hold another run's files (record.check_out_dir): only a resume of the run in
    that directory writes there. With a test split, the best.pt weights are scored on it at the
    end, once: the final record of metrics.jsonl."""
    say = log if place.main and not quiet else (lambda s: None)
    progress = progress if place.main else None
    out = Path(out_dir)
    if resume is not None:
        resume = Path(resume).parent if Path(resume).is_file() else Path(resume)
    check_out_dir(out, resume)         # every process, before any of them writes (join waits)
    net = fit_network(net, data, cfg, say)
    for line in notes(cfg, data):
        say(line)
    dev = device_for(place, cfg.device)
    refuse_unworkable(cfg, data, dev, place)
    set_torch_switches(cfg, dev)
    join(place, dev)
    if place.distributed:
        import torch.distributed as dist
        say(f"DistributedDataParallel: {place.world_size} process{'es' if place.world_size > 1 else ''}, "
            f"{dist.get_backend()} on {dev.type}")
    ckpt = checkpoint if checkpoint is not None else load_checkpoint(resume) if resume is not None else None
    if ckpt is not None and init is not None:
        raise SpecError(f"--init-from starts a new run; the run in {resume} continues from its last.pt "
                        f"(leave --init-from out, or start a new run with --init-from {resume}/last.pt)")
    freezer = Freezer(net, cfg)
    scales = lr_scales(net, cfg)
    if ckpt is None:
        torch.manual_seed(cfg.seed), np.random.seed(cfg.seed % 2**32), random.seed(cfg.seed)
    model = net.to_module()
    started = None
    if ckpt is None and init is not None:
        started = init_weights(model, net, init["weights"], init.get("ignore_unexpected", False), say)
    model = model.to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        mean, std = ckpt["normalize"]["mean"], ckpt["normalize"]["std"]
    else:
        mean, std = normalisation(cfg, data)
    start_epoch = ckpt["epoch"] if ckpt is not None else 0
    freezer.apply(model, start_epoch)           # before DDP, which only syncs what trains
    if freezer.keys:
        say(freezer.describe(model))
    run = Runner(model, cfg, dev, mean, std, train_model=_wrap(model, cfg, dev, place))
    train_split, val_split = on_device(data.train, dev), on_device(data.val, dev)
    steps = len(range(0, -(-len(data.train) // place.world_size), per_process_batch(cfg, place)))
    opt = make_optimizer(model, cfg, scales)
    sched = make_scheduler(opt, cfg, steps)
    scheduled = cfg.schedule != "constant" or cfg.warmup > 0    # else the rate never moves
    scaler = torch.amp.GradScaler(dev.type, enabled=cfg.amp == "fp16")
    history: list[dict] = []
    start, skip, partial = 0, 0, None
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        history, start = list(ckpt["history"]), ckpt["epoch"]
        if cfg.epochs < start:
            raise SpecError(f"--epochs {cfg.epochs} is fewer than the {start} the run in {resume} has done; "
                            f"give --epochs {start + 1} or more to continue it")
        skip, partial = ckpt.get("step", 0), ckpt.get("partial") if place.main else None
        set_rng_state(ckpt["rng"])
        if start < cfg.epochs:
            say(f"resuming from {resume} at epoch {start + 1}" + (f", batch {skip + 1}" if skip else ""))
    board = None
    out.mkdir(parents=True, exist_ok=True)     # only now: bad input above leaves no directory behind
    if place.main:
        _write_run_files(net, data, cfg, out, mean, std, resume, changes, start, started)
        # rewrite the logs from the checkpoint: epochs after it (from a crashed run) are dropped
        write_text_atomic(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
        write_metrics_csv(history, out / "metrics.csv")
        board = TensorBoard(out / "tensorboard", start) if cfg.tensorboard else None

    def state(epoch: int, step: int = 0, part=None) -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "epoch": epoch, "step": step, "partial": part, "rng": rng_state(),
                "history": list(history), "config": cfg.model_dump(),
                "normalize": {"mean": mean.cpu(), "std": std.cpu()},
                "spec": {"file": net.file, "variant": net.variant, "input": list(net.input)},
                "world_size": place.world_size}

    best = max((score(h) for h in history), default=None)
    # several processes: a peer's exit on Ctrl-C can surface here as a communication error
    tracking = watch_sigint(hold=False) if place.distributed else nullcontext(lambda: False)
    acc = torch.zeros(2, device=dev, dtype=torch.float64)   # loss sum, correct: on device
    with tracking as interrupted_run:
        for epoch in range(start, cfg.epochs):
            if cfg.early_stop and (stop := early_stop(history, cfg.early_stop)):
                say(stop["message"])
                if place.main:
                    note(out, "early_stop", {k: v for k, v in stop.items() if k != "message"})
                break
            if freezer.apply(model, epoch):
                say(f"epoch {epoch + 1}: unfrozen, every parameter trains")
                if place.distributed:               # DDP syncs only what trained when it was made
                    run.rewrap(_wrap(model, cfg, dev, place))
            seen, done = 0, skip
            try:
                acc.zero_()
                if partial is not None:
                    acc += partial["acc"].to(dev)
                    seen = partial["seen"]
                if place.distributed:
                    # each process its own dropout/augmentation draws, the same after a resume
                    torch.manual_seed(cfg.seed + place.rank + place.world_size * epoch)
                model.train()
                freezer.hold_norms(model)
                t0 = time.perf_counter()
                bar = Progress(progress, epoch + 1, cfg.epochs, steps, place.world_size)
                it = itertools.islice(iterate(train_split, cfg, dev, shuffle=True, epoch=epoch, place=place),
                                      skip, None)
                skip, partial = 0, None
                loss_sum, n_correct = acc[0], acc[1]     # views: updated in place, one op each
                for x, y in it:
                    x, y = run.prep(x, y, train=True)
                    loss, correct = run.forward(x, y)
                    opt.zero_grad(set_to_none=True)
                    if scaler.is_enabled():             # fp16: scaled loss, unscaled before clipping
                        scaler.scale(loss).backward()
                        if cfg.grad_clip:
                            scaler.unscale_(opt)
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        scaler.step(opt)
                        scaler.update()
                    else:
                        loss.backward()
                        if cfg.grad_clip:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                        opt.step()
                    if scheduled:
                        sched.step()
                    loss_sum.add_(loss.detach(), alpha=len(y))
                    n_correct.add_(correct)
                    seen += len(y)
                    done += 1
                    bar.update(done, seen)
                # the one host sync of the epoch, summed over processes
                sums = torch.cat([acc, torch.tensor([seen], dtype=torch.float64, device=dev)])
                loss_sum, correct, total = all_sum(sums).tolist()
                train_loss = loss_sum / max(total, 1)
                if not np.isfinite(train_loss):
                    kept = f"{out / 'last.pt'} (epoch {start if not history else history[-1]['epoch']})" \
                        if (out / "last.pt").exists() else "none (it diverged in the first epoch)"
                    raise Diverged(f"the training loss became {train_loss} in epoch {epoch + 1}; stopped. "
                                   f"Last good checkpoint: {kept}. Try a lower --lr (now {cfg.lr:g}), "
                                   f"grad_clip, or warmup")
                seconds = time.perf_counter() - t0
                rec = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": correct / max(total, 1),
                       "val_loss": None, "val_acc": None}
                if val_split is not None:
                    v = evaluate(run, val_split, cfg, place)
                    rec.update(val_loss=v["loss"], val_acc=v["acc"])
                    if "top5" in v:
                        rec["val_top5"] = v["top5"]
            except (KeyboardInterrupt, Exception) as e:
                if not (isinstance(e, KeyboardInterrupt) or interrupted_run()):
                    raise
                # saved at the batch reached (all of them, if in validation): resume finishes the epoch
                if place.main:
                    _save_interrupted(state(epoch, done, {"acc": acc.cpu(), "seen": seen}), out)
                    say(f"interrupted in epoch {epoch + 1} at batch {done}: saved {out / 'last.pt'}; "
                        f"continue with `archc train --resume {out}`")
                raise KeyboardInterrupt from None
            rec.update(lr=base_lr(opt), seconds=round(time.perf_counter() - t0, 4),
                       samples_per_s=round(total / max(seconds, 1e-9), 1))
            history.append(rec)
            with watch_sigint(hold=True) as interrupted:    # an epoch's files are written whole
                if place.main:
                    best = _record(rec, history, best, state(epoch + 1), out)
                    if board is not None:
                        board.epoch(rec)
                say(epoch_line(rec, cfg.epochs))
            if interrupted():
                say(f"interrupted after epoch {epoch + 1}: saved {out / 'last.pt'}; continue with "
                    f"`archc train --resume {out}`")
                raise KeyboardInterrupt
    if start >= cfg.epochs and ckpt is not None:
        say(f"the run in {out} has done all its {cfg.epochs} epochs: --epochs N continues it to N")
    if data.test is not None:
        _final_test(run, data, cfg, out, place, say, history, board)
    if board is not None:
        board.close()
    return history


def _final_test(run: Runner, data: Data, cfg: TrainConfig, out: Path, place: Place, say, history: list[dict],
                board=None) -> None:
    """best.pt's weights (chosen on validation) scored once on the test split, recorded as the
    last line of metrics.jsonl. Every process reads best.pt: rank 0 wrote it, then all wait."""
    barrier()
    best = load_checkpoint(out / "best.pt")
    run.model.load_state_dict(best["model"])
    t = evaluate(run, on_device(data.test, run.dev), cfg, place)
    rec = {"split": "test", "weights": "best.pt", "best_epoch": best["epoch"],
           "test_loss": t["loss"], "test_acc": t["acc"], "samples": len(data.test)}
    if "top5" in t:
        rec["test_top5"] = t["top5"]
    if place.main:
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        write_metrics_csv([*history, rec], out / "metrics.csv")
        if board is not None:
            board.test(rec)
    top5 = f"  test_top5 {t['top5']:.4f}" if "top5" in t else ""
    say(f"test (best.pt, epoch {best['epoch']}): test_loss {t['loss']:.4f}  test_acc {t['acc']:.4f}"
        f"{top5}  ({len(data.test)} samples)")


def _record(rec: dict, history: list[dict], best, state: dict, out: Path):
    """An epoch's files: its metrics line, last.pt, best.pt when it is the best, curves.png."""
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    write_metrics_csv(history, out / "metrics.csv")
    save_atomic(state, out / "last.pt")
    if best is None or score(rec) > best:
        best = score(rec)
        shutil.copyfile(out / "last.pt", out / ".best.pt.tmp")
        os.replace(out / ".best.pt.tmp", out / "best.pt")
    write_curves(history, out / "curves.png")
    return best


def _save_interrupted(state: dict, out: Path) -> None:
    # a second Ctrl-C while saving would leave the older last.pt: the file goes down first
    with watch_sigint(hold=True):
        save_atomic(state, out / "last.pt")


def _write_run_files(net, data: Data, cfg: TrainConfig, out: Path, mean, std, resume, changes,
                     start: int, started: dict | None = None) -> None:
    """model.py, a copy of the spec, run.json. A resumed run keeps its record's history of
    deliberate changes (--override) and adds this one's, and keeps how the run started
    (--init-from)."""
    write_text_atomic(out / "model.py", net.source())
    if Path(net.file).is_file():
        write_text_atomic(out / f"spec{Path(net.file).suffix}", Path(net.file).read_text())
    kept, before = [], {}
    if resume is not None and (resume / "run.json").is_file():
        try:
            before = json.loads((resume / "run.json").read_text())
            kept = before.get("changes", [])
        except (OSError, ValueError, AttributeError):
            kept, before = [], {}
    if changes:
        kept = [*kept, {"at_epoch": start, **changes}]
    elsewhere = resume if resume is not None and resume.resolve() != out.resolve() else None
    run = make_record(net, data, cfg, mean, std, resumed_from=elsewhere, changes=kept,
                      init_from=started if started is not None else before.get("init_from"))
    write_text_atomic(out / "run.json", json.dumps(run, indent=1, default=str) + "\n")
