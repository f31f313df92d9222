"""What a run shows and leaves behind besides checkpoints: the progress bar on a terminal, one
line an epoch, metrics.csv (metrics.jsonl's records as a table), curves.png (loss and accuracy
per epoch), TensorBoard event files, and the confusion matrix of `archc eval --confusion`."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Callable

from archc.errors import Unavailable


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


def score(rec: dict) -> tuple:
    """Higher is better: validation accuracy, then lower validation (or train) loss."""
    if rec.get("val_acc") is not None:
        return (rec["val_acc"], -rec["val_loss"])
    return (rec["train_acc"], -rec["train_loss"])


def early_stop(history: list[dict], patience: int) -> dict | None:
    """Whether a run stops here: `patience` epochs since the best validation score (accuracy,
    then loss, as best.pt is chosen). Read from the history alone, so a resume decides the same."""
    scored = [h for h in history if h.get("val_acc") is not None]
    if not scored:
        return None
    best = max(scored, key=score)
    waited = history[-1]["epoch"] - best["epoch"]
    if waited < patience:
        return None
    return {"patience": patience, "best_epoch": best["epoch"], "stopped_after_epoch": history[-1]["epoch"],
            "message": f"early stop: no better val_acc/val_loss in {waited} epochs (patience {patience}); "
                       f"best epoch {best['epoch']} (val_acc {best['val_acc']:.4f}), stopped after epoch "
                       f"{history[-1]['epoch']}. A larger --early-stop (0: none) goes on"}


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


def write_metrics_csv(records: list[dict], path: str | Path) -> None:
    """metrics.jsonl's records as CSV, rewritten whole (atomically) each time: one row a record,
    columns in the order they first appear; a record without a column leaves it empty."""
    from archc.train.checkpoint import write_text_atomic
    columns: list[str] = []
    for r in records:
        columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in records)
    write_text_atomic(path, buf.getvalue())


def require_tensorboard() -> None:
    import importlib.util
    if importlib.util.find_spec("tensorboard") is None:
        raise Unavailable("--tensorboard writes event files with the tensorboard package, which is not installed: "
                          "pip install tensorboard (or 'archc[tensorboard]')")


class TensorBoard:
    """Event files under DIR: an epoch's metrics at step = epoch (train/loss, val/acc, lr, ...);
    the final test record at the best epoch. A resumed run drops events after its checkpoint."""

    def __init__(self, directory: Path, start: int):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(directory), purge_step=start + 1 if start else None)

    def epoch(self, rec: dict) -> None:
        for key, value in rec.items():
            if key == "epoch" or value is None:
                continue
            split, _, name = key.partition("_")
            tag = f"{split}/{name}" if split in ("train", "val") else key
            self.writer.add_scalar(tag, value, rec["epoch"])
        self.writer.flush()

    def test(self, rec: dict) -> None:
        for key in ("test_loss", "test_acc", "test_top5"):
            if key in rec:
                self.writer.add_scalar(f"test/{key[5:]}", rec[key], rec["best_epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def write_confusion(matrix, classes: list[str], path: str | Path, title: str = "") -> None:
    """The confusion matrix as a PNG (rows: true class, columns: predicted), each cell shaded by
    its share of the row and labelled with its count when the classes are few enough to read."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise Unavailable("--confusion draws with matplotlib, which is not installed: "
                          "pip install matplotlib (or 'archc[train]')") from None
    counts = [[int(c) for c in row] for row in matrix]
    k = len(counts)
    share = [[c / max(sum(row), 1) for c in row] for row in counts]
    size = min(4 + 0.45 * k, 24)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), constrained_layout=True)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    labels = [str(c) for c in classes]
    if k <= 40:
        ax.set_xticks(range(k), labels, rotation=90 if max(map(len, labels)) > 3 else 0)
        ax.set_yticks(range(k), labels)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i][j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i][j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
