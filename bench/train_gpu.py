"""`archc train` against a hand-written training loop on the same network and data: img/s of a
whole warm epoch (the second), measured side by side in one job.

The hand-written loop is what a person writes for the same recipe: the archc module (same
architecture, same init), the data as one tensor on the device, a random permutation an epoch,
normalisation by channel, SGD with momentum 0.9 at a constant rate, cross-entropy, and the same
AMP and memory-format options. `archc train` runs as a user types it (one process), and its
samples/s of epoch 2 is read from metrics.jsonl (training only; validation is timed apart).

    python bench/train_gpu.py --net resnet50 --samples 6400 --batch 128 --amp bf16 --channels-last
    python bench/train_gpu.py --net resnet18 --samples 512 --size 64 --batch 32 --device cpu   # a smoke run
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import archc


def hand_loop(args, dev) -> float:
    """img/s of epoch 2 of a hand-written loop."""
    torch.manual_seed(0)
    net = archc.load(args.net, input=(3, args.size, args.size))
    model = net.to_module().to(dev)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    n_train = int(args.samples * 0.9)           # archc holds 10% out for validation
    x = torch.rand(n_train, 3, args.size, args.size, device=dev)
    y = torch.randint(0, 10, (n_train,), device=dev)
    mean = x.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    std = x.std(dim=(0, 2, 3)).view(1, 3, 1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(dev.type, enabled=args.amp == "fp16")
    model.train()
    rate = 0.0
    for epoch in range(2):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(n_train, device=dev)
        seen = 0
        for i in range(0, n_train - args.batch + 1, args.batch):
            idx = order[i:i + args.batch]
            xb = ((x[idx] - mean) / std).contiguous(memory_format=fmt)
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                out = model(xb)
                out = out if isinstance(out, torch.Tensor) else out[0]
                loss = torch.nn.functional.cross_entropy(out.float(), y[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen += len(idx)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        rate = seen / (time.perf_counter() - t0)
    return rate


def archc_train(args, dev) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "archc.cli", "train", args.net, "--data", f"synthetic:{args.samples}",
               "--input", f"3x{args.size}x{args.size}", "--batch-size", str(args.batch), "--epochs", "2",
               "--device", dev.type, "--amp", args.amp or "none", "--lr", "0.05", "--out", str(out), "-q"]
        if args.channels_last:
            cmd.append("--channels-last")
        subprocess.run(cmd, check=True)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return rows[-1]["samples_per_s"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--net", default="resnet50")
    p.add_argument("--samples", type=int, default=6400)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cuda")
    p.add_argument("--amp", choices=["bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--json")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    # alternate, twice each: the machine's drift hits both alike
    archc_rates, hand_rates = [], []
    for _ in range(2):
        archc_rates.append(archc_train(args, dev))
        hand_rates.append(hand_loop(args, dev))
    row = {"net": args.net, "batch": args.batch, "size": args.size, "amp": args.amp,
           "channels_last": args.channels_last, "archc_img_s": archc_rates, "hand_img_s": hand_rates,
           "ratio": max(archc_rates) / max(hand_rates)}
    print(f"{args.net} batch {args.batch} {args.size}px amp={args.amp} channels_last={args.channels_last}: "
          f"archc train {max(archc_rates):.0f} img/s, hand-written loop {max(hand_rates):.0f} img/s, "
          f"ratio {row['ratio']:.3f} (runs: {archc_rates} vs {[round(r, 1) for r in hand_rates]})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
