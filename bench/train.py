"""Training throughput: `archc train`'s loop against a minimal hand-written PyTorch loop, same
model, data, batch size and optimizer, measured alternately in one process; and the accuracy
runs of the issue on Fashion-MNIST. Writes the `training` section of docs/benchmarks.md.

    .venv/bin/python bench/train.py              # throughput + accuracy runs (about 15 min on 2 cores)
    .venv/bin/python bench/train.py --no-accuracy --rounds 2     # throughput only, quicker

The hand-written loop is the one an expert writes for data that fits in memory: the whole
split converted to normalised float32 once, a randperm per epoch, tensor slices, SGD with
momentum. archc's loop also keeps data as uint8 and converts each batch, reports metrics and
checks for nan once an epoch. samples/s: the median over a run's epochs after the first (which
warms the allocator); the ratio is the median over rounds of short runs alternating in one
process; both sides run on the same threads.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import archc  # noqa: E402
from archc.train.config import make_config  # noqa: E402
from archc.train.data import open_data  # noqa: E402
from archc.errors import SpecError  # noqa: E402
from archc.train.data.idx import fashion_mnist_dir  # noqa: E402
from archc.train.loop import train  # noqa: E402
from doc import write_section  # noqa: E402
from run import machine  # noqa: E402

MIN_RATIO = 0.95
LR, MOMENTUM = 0.05, 0.9


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def workloads(have_fashion: bool):
    """(label, spec, data argument, batch size, epochs a run: enough for a steady median)."""
    fashion = "fashion-mnist" if have_fashion else "synthetic:60000"
    return [("LeNet-5, Fashion-MNIST 1x28x28" + ("" if have_fashion else " (synthetic)"),
             "specs/lenet5.yaml", fashion, 128, 2),
            ("digits CNN, digits 1x8x8", "specs/digits_cnn.yaml", "digits", 32, 4),
            ("CIFAR-10 CNN (textbook), 3x32x32 synthetic", "specs/textbook/cifar10_cnn.yaml",
             "synthetic:2048", 128, 2)]


def fitted(spec: str, data):
    from archc.train.fit import fit_network
    cfg = make_config({}, device="cpu")
    return fit_network(archc.load(str(ROOT / spec)), data, cfg, lambda s: None)


def archc_rate(net, data, batch: int, epochs: int) -> float:
    cfg = make_config({}, device="cpu", epochs=epochs, batch_size=batch, lr=LR, momentum=MOMENTUM,
                      optimizer="sgd", schedule="constant")
    data.val = None        # throughput of training steps only
    with tempfile.TemporaryDirectory() as out:
        hist = train(net, data, cfg, out, quiet=True)
    return statistics.median(h["samples_per_s"] for h in hist[1:])


def hand_rate(net, data, batch: int, epochs: int) -> float:
    """The minimal loop: normalised float data once, randperm, slices, SGD."""
    torch.manual_seed(0)
    model = net.to_module()
    x = data.train.x.float().div_(255) if data.train.x.dtype == torch.uint8 else data.train.x.float()
    dims = [0] + list(range(2, x.ndim))
    x = (x - x.mean(dims, keepdim=True)) / x.std(dims, keepdim=True)
    y = data.train.y
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    model.train()
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rates.append(len(y) / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def throughput(rounds: int, have_fashion: bool) -> list[dict]:
    """Short runs of each side alternating in one process, many rounds: this shared machine's
    speed drifts by a third over minutes, and close alternation cancels the drift, where
    separate processes or long runs measure it instead."""
    rows = []
    for label, spec, arg, batch, epochs in workloads(have_fashion):
        log(f"throughput: {label}")
        data = open_data(arg, val_fraction=0, seed=0, input_shape=archc.load(str(ROOT / spec)).input)
        net = fitted(spec, data)
        rates: dict[str, list[float]] = {"archc": [], "hand": []}
        for r in range(rounds):
            for side in (("archc", "hand") if r % 2 == 0 else ("hand", "archc")):
                rate = (archc_rate if side == "archc" else hand_rate)(net, data, batch, epochs)
                rates[side].append(rate)
        ratios = [x / y for x, y in zip(rates["archc"], rates["hand"])]
        a, h = statistics.median(rates["archc"]), statistics.median(rates["hand"])
        rows.append({"label": label, "batch": batch, "samples": len(data.train), "archc": a,
                     "hand": h, "ratio": statistics.median(ratios), "rounds": rounds,
                     "spread": (min(ratios), max(ratios))})
        log(f"   archc {a:,.0f}/s  hand {h:,.0f}/s  ratio {statistics.median(ratios):.3f} "
            f"({min(ratios):.3f}..{max(ratios):.3f})")
    return rows


def accuracy_runs() -> list[dict]:
    """The issue's runs, as a user types them, each in its own process."""
    runs = [("`archc train specs/lenet5.yaml --data fashion-mnist --epochs 10`", 0.89,
             ["specs/lenet5.yaml", "--data", "fashion-mnist", "--epochs", "10"]),
            # archc's own recipe for this network (the spec's train: section is now the book's,
            # whose ImageNet constants have three channels to Fashion-MNIST's one)
            ("`archc train specs/textbook/cifar10_cnn.yaml --data fashion-mnist --epochs 5 --optimizer sgd "
             "--lr 0.05 --schedule cosine --batch-size 128 --no-flip --no-vflip --mean 0.286 --std 0.353`", 0.91,
             ["specs/textbook/cifar10_cnn.yaml", "--data", "fashion-mnist", "--epochs", "5", "--optimizer", "sgd",
              "--lr", "0.05", "--schedule", "cosine", "--batch-size", "128", "--no-flip", "--no-vflip",
              "--mean", "0.286", "--std", "0.353"]),
            ("`archc train digits_cnn` (the embedded default)", 0.95, ["digits_cnn"])]
    rows = []
    for label, target, args in runs:
        log(f"accuracy: {label}")
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "archc.cli", "train", *args, "--out", out, "-q"],
                               cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode:
                raise SystemExit(f"{label} failed:\n{r.stderr}")
            rows_ = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
        hist = [h for h in rows_ if "epoch" in h]
        test = next((h["test_acc"] for h in rows_ if h.get("split") == "test"), None)
        best = max(hist, key=lambda h: h["val_acc"])
        rows.append({"label": label, "target": target, "final": test if test is not None else hist[-1]["val_acc"],
                     "best": best["val_acc"], "best_epoch": best["epoch"], "epochs": len(hist),
                     "wall": wall, "curve": [round(h["val_acc"], 4) for h in hist]})
        log(f"   final {hist[-1]['val_acc']:.4f}  best {best['val_acc']:.4f}  {wall:.0f} s")
    return rows


def report(m: dict, tp: list[dict], acc: list[dict] | None, argv: str) -> str:
    L = ["## Training (`bench/train.py`)", "",
         f"{m['date']}, {m['cpu']}, {m['nproc']} cores, torch {m['torch']}, commit {m['commit']}, "
         f"load average before / after {m['load_before']} / {m['load_after']}. This run: `{argv}`.", "",
         "### Throughput: `archc train` against a hand-written loop", "",
         "Same emitted module, data, batch size, SGD (lr 0.05, momentum 0.9); samples/s: the median "
         "over the epochs of a run after its first (which warms the allocator), and the ratio is the "
         "median over rounds of short runs alternating in one process (the range of the per-round "
         "ratios in brackets: this shared 2-core machine's speed drifts, and close alternation cancels "
         "the drift). The hand-written loop "
         "converts the whole split to normalised float32 once; archc keeps uint8 and converts each batch.", "",
         "| workload | batch | samples/epoch | archc samples/s | hand-written samples/s | ratio | target |",
         "|---|---:|---:|---:|---:|---:|---|"]
    for r in tp:
        ok = "met" if r["ratio"] >= MIN_RATIO else "**missed**"
        lo, hi = r["spread"]
        L.append(f"| {r['label']} | {r['batch']} | {r['samples']:,} | {r['archc']:,.0f} | {r['hand']:,.0f} | "
                 f"**{r['ratio']:.3f}x** ({lo:.2f}..{hi:.2f}) | >= {MIN_RATIO}x: {ok} |")
    L += ["", "Per-round ratios span the range in brackets: on this shared 2-core machine a 5% target is inside the noise of one run, so a median near 0.95 reads as parity, not as a verdict; docs/training.md keeps the record across runs.",
          "", "No GPU was available to this run: ResNet-50 img/s with AMP and channels_last is not measured here.", ""]
    if acc:
        L += ["### Accuracy runs", "",
              "Each command as a user types it (defaults: SGD lr 0.05, momentum 0.9, batch 128), whole "
              "process. Fashion-MNIST: 10% of the training set is held out for validation (best.pt is "
              "chosen on it) and the result is best.pt's accuracy on the 10,000-image test set; digits: "
              "the final validation accuracy.", "",
              "| run | result | best val (epoch) | target | wall time | val acc per epoch |",
              "|---|---:|---:|---|---:|---|"]
        for r in acc:
            ok = "met" if r["final"] >= r["target"] else "**missed**"
            L.append(f"| {r['label']} | **{r['final']:.4f}** | {r['best']:.4f} ({r['best_epoch']}) | "
                     f">= {r['target']}: {ok} | {r['wall']:.0f} s | {', '.join(map(str, r['curve']))} |")
        L.append("")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--no-accuracy", action="store_true", help="skip the Fashion-MNIST accuracy runs")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    try:
        have_fashion = fashion_mnist_dir() is not None
    except SpecError:
        have_fashion = False
    m = machine()
    tp = throughput(args.rounds, have_fashion)
    acc = None if args.no_accuracy or not have_fashion else accuracy_runs()
    m["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(m, tp, acc, "python bench/train.py" + "".join(" " + a for a in sys.argv[1:]))
    print(text)
    if acc is None and Path(args.out).exists():
        # throughput only: keep the accuracy runs of the last full run
        old = Path(args.out).read_text()
        if "### Accuracy runs" in old:
            kept = old.split("### Accuracy runs", 1)[1].split("<!-- end training -->", 1)[0]
            text = text.rstrip() + "\n\n### Accuracy runs" + kept.rstrip() + "\n"
    if not args.no_write:
        write_section(args.out, "training", text)
        log(f"wrote the training section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
