"""Speed of archc's generated modules against hand-written ones (bench/handwritten.py, written
the way torchvision writes them), measured side by side in one process.

For each network: both modules get the same weights; then rounds alternate the two (eval forward
under no_grad, then a training step: forward, loss, backward, SGD step), so drift in the machine's
speed hits both alike. Reported: the median time of each side, the ratio handwritten/archc (1.0 =
parity, above 1 = archc faster: the median of the per-round ratios) with its spread over rounds
(min-max of per-round ratios), and,
with --compile, the same for torch.compile'd modules. On CUDA also img/s and peak memory
(torch.cuda.max_memory_allocated over a training step) against archc's static estimate of the
step (parameters, gradients, optimizer state, saved activations).

    python bench/speed.py                                   # CPU, batch 8, 224x224, eager
    python bench/speed.py --device cuda --amp bf16 --channels-last --compile --batch 64
    python bench/speed.py --json out.json --nets resnet50,mobilenet_v2
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import archc
from archc.ir.memory import estimate

HERE = Path(__file__).parent
NETS = ["resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121"]


def handwritten():
    spec = importlib.util.spec_from_file_location("handwritten", HERE / "handwritten.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MODELS


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def autocast(dev, amp):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(dev.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[amp])


def eval_time(m, x, dev, amp):
    m.eval()
    with torch.no_grad(), autocast(dev, amp):
        sync(dev)
        t = time.perf_counter()
        m(x)
        sync(dev)
    return time.perf_counter() - t


def train_time(m, opt, x, y, dev, amp):
    m.train()
    sync(dev)
    t = time.perf_counter()
    with autocast(dev, amp):
        out = m(x)
        out = out if isinstance(out, torch.Tensor) else out[0]
        loss = torch.nn.functional.cross_entropy(out.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sync(dev)
    return time.perf_counter() - t


def peak_step_bytes(m, opt, x, y, dev, amp) -> int | None:
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    train_time(m, opt, x, y, dev, amp)
    return torch.cuda.max_memory_allocated() - base


def compare(name, ref_cls, args, dev) -> dict:
    torch.manual_seed(0)
    net = archc.load(name, input=(3, args.size, args.size))
    ours = net.to_module().to(dev)
    ref = ref_cls().to(dev)
    ref.load_state_dict(ours.state_dict())
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    ours, ref = ours.to(memory_format=fmt), ref.to(memory_format=fmt)
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    sides = {"archc": ours, "handwritten": ref}
    if args.compile:
        sides = {k: torch.compile(m) for k, m in sides.items()}
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9) for k, m in sides.items()}
    for _ in range(args.warmup):
        for k, m in sides.items():
            eval_time(m, x, dev, args.amp)
            train_time(m, opts[k], x, y, dev, args.amp)
    times = {k: {"eval": [], "train": []} for k in sides}
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for k in order:
            times[k]["eval"].append(eval_time(sides[k], x, dev, args.amp))
        for k in order:
            times[k]["train"].append(train_time(sides[k], opts[k], x, y, dev, args.amp))
    row = {"net": name, "batch": args.batch, "size": args.size}
    for mode in ("eval", "train"):
        a, h = times["archc"][mode], times["handwritten"][mode]
        ratios = [hh / aa for aa, hh in zip(a, h)]
        # the median of per-round ratios: a round's two runs are adjacent, so the machine's drift
        # (the other core's load, frequency) mostly cancels in their ratio
        row[mode] = {"archc_s": statistics.median(a), "handwritten_s": statistics.median(h),
                     "ratio": statistics.median(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios),
                     "archc_img_s": args.batch / statistics.median(a),
                     "handwritten_img_s": args.batch / statistics.median(h)}
    if dev.type == "cuda":
        row["peak_bytes"] = {k: peak_step_bytes(m, opts[k], x, y, dev, args.amp) for k, m in sides.items()}
        est = estimate(net, batch=args.batch, dtype="bfloat16" if args.amp == "bf16" else "float32",
                       optimizer="sgd-momentum", device="cuda")
        row["estimate_bytes"] = est.as_dict()
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--amp", choices=["bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int)
    p.add_argument("--json")
    p.add_argument("--write", action="store_true", help="write the run's table into docs/benchmarks.md (section 'speed')")
    p.add_argument("--from-json", nargs="+", metavar="FILE",
                   help="measure nothing: write the section from runs saved with --json, one table each")
    args = p.parse_args(argv)
    if args.from_json:
        write([json.loads(Path(f).read_text()) for f in args.from_json])
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    refs = handwritten()
    rows = []
    for name in args.nets.split(","):
        row = compare(name, refs[name], args, dev)
        rows.append(row)
        e, t = row["eval"], row["train"]
        print(f"{name:16s} eval {e['ratio']:.3f}x ({e['ratio_min']:.2f}-{e['ratio_max']:.2f}, "
              f"{e['archc_img_s']:.1f} vs {e['handwritten_img_s']:.1f} img/s)  "
              f"train {t['ratio']:.3f}x ({t['ratio_min']:.2f}-{t['ratio_max']:.2f}, "
              f"{t['archc_img_s']:.1f} vs {t['handwritten_img_s']:.1f} img/s)", flush=True)
        if "peak_bytes" in row:
            pk, est = row["peak_bytes"], row["estimate_bytes"]
            print(f"{'':16s} peak MiB archc {pk['archc'] / 2**20:.0f}  handwritten {pk['handwritten'] / 2**20:.0f}"
                  f"  estimate (saved activations) {est['saved_activations_bytes'] / 2**20:.0f}"
                  f"  estimate total {est['total_bytes'] / 2**20:.0f}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True).stdout.strip()
    meta = {"device": str(dev), "torch": torch.__version__, "amp": args.amp, "compile": args.compile,
            "channels_last": args.channels_last, "threads": torch.get_num_threads(), "rounds": args.rounds,
            "date": time.strftime("%Y-%m-%d"), "commit": commit, "argv": list(argv or sys.argv[1:])}
    if dev.type == "cuda":
        meta["gpu"] = torch.cuda.get_device_name()
    run = {"meta": meta, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(run, indent=1))
    if args.write:
        write([run])
    return 0


def write(runs: list[dict]) -> None:
    sys.path.insert(0, str(HERE))
    from doc import write_section
    write_section(HERE.parent / "docs" / "benchmarks.md", "speed", section(runs))


def section(runs: list[dict]) -> str:
    """Runs as docs/benchmarks.md's speed section: one table each, then the lowest median."""
    def cell(m):
        return f"{m['ratio']:.3f} ({m['ratio_min']:.2f}-{m['ratio_max']:.2f}) | {m['archc_img_s']:.1f} / {m['handwritten_img_s']:.1f}"
    lines = ["## Speed: generated modules against hand-written ones (`bench/speed.py`)", "",
             "Each round runs the archc module and the hand-written one (`bench/handwritten.py`, written as "
             "torchvision writes them: in-place activations, `+=`) one after the other, order alternating, on "
             "the same weights: eval forward under no_grad, then a training step (forward, cross-entropy, "
             "backward, SGD). Ratio = hand-written time / archc time (1.0 parity, above 1 archc faster): the "
             "median of the per-round ratios, their range in brackets; img/s from each side's median time."]
    for i, run in enumerate(runs, 1):
        m = run["meta"]
        lines += ["", f"Run {i}: `python bench/speed.py {' '.join(m.get('argv', []))}`: {m.get('date', '')}, "
                      f"commit {m.get('commit', '?')}, {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''}, torch "
                      f"{m['torch']}, {m['threads']} thread(s), amp {m['amp']}, channels_last {m['channels_last']}, "
                      f"compile {m['compile']}, {m['rounds']} rounds after the warm-up, batch "
                      f"{run['rows'][0]['batch']} at {run['rows'][0]['size']}x{run['rows'][0]['size']}.", "",
                  "| network | eval ratio (spread) | eval img/s archc / hand | train-step ratio (spread) | "
                  "train img/s archc / hand |", "|---|---|---|---|---|"]
        lines += [f"| {r['net']} | {cell(r['eval'])} | {cell(r['train'])} |" for r in run["rows"]]
        if run.get("note"):             # added to a saved run's JSON by hand: what the figures alone do not say
            lines += ["", run["note"]]
    medians = [(r[mode]["ratio"], r["net"], mode, i) for i, run in enumerate(runs, 1) for r in run["rows"]
               for mode in ("eval", "train")]
    low = min(medians)
    lines += ["", f"Lowest median: {low[0]:.3f} ({low[1]} {low[2]}, run {low[3]}); "
                  f"{sum(v >= 0.98 for v, *_ in medians)} of {len(medians)} medians at or above 0.98."]
    if not any(run["meta"]["device"].startswith("cuda") for run in runs):
        lines += ["", "GPU figures (AMP bf16, channels_last, torch.compile, peak memory against the estimate, "
                      "`archc train` against a hand-written loop, nccl with one process) are prepared as one job, "
                      "`bench/gpu.sh` (with `bench/train_gpu.py`); none of these runs had a GPU."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
