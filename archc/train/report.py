"""What a run shows and leaves behind besides checkpoints: the progress bar on a terminal, one
line an epoch, and curves.png (loss and accuracy per epoch) drawn from metrics.jsonl."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


class Progress:
    """A bar with batch count, throughput and time left, redrawn at most twice a second; it
    counts samples on the host (batch lengths), so drawing it never waits for the device."""

    def __init__(self, show: Callable[[str], None] | None, epoch: int, epochs: int, steps: int,
                 world_size: int = 1, width: int = 24):
        self.show, self.epoch, self.epochs, self.steps = show, epoch, epochs, steps
        self.world, self.width = world_size, width
        self.t0 = self.shown = time.perf_counter()

    def update(self, done: int, seen: int) -> None:
        if self.show is None:
            return
        now = time.perf_counter()
        if now - self.shown < 0.5:
            return
        self.shown = now
        rate = seen * self.world / max(now - self.t0, 1e-9)
        left = (self.steps - done) * (now - self.t0) / max(done, 1)
        fill = round(self.width * done / max(self.steps, 1))
        bar = "#" * fill + "." * (self.width - fill)
        self.show(f"epoch {self.epoch}/{self.epochs} [{bar}] {done}/{self.steps}  "
                  f"{rate:,.0f} samples/s  {left:.0f}s left")


def epoch_line(rec: dict, epochs: int) -> str:
    val = "" if rec["val_acc"] is None else f"  val_loss {rec['val_loss']:.4f}  val_acc {rec['val_acc']:.4f}"
    return (f"epoch {rec['epoch']}/{epochs}  train_loss {rec['train_loss']:.4f}  "
            f"train_acc {rec['train_acc']:.4f}{val}  lr {rec['lr']:.3g}  "
            f"{rec['seconds']:.1f}s  {rec['samples_per_s']:.0f} samples/s")


def write_curves(history: list[dict], path: str | Path) -> bool:
    """Loss and accuracy per epoch, train and validation, as a PNG. False (nothing written)
    when matplotlib is not installed: curves are a convenience, never a reason to fail a run."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [float("nan") if v is None else v for v in values], style,
                        markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_acc.set_ylim(top=1.0)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return True
