"""Benchmark of `archc sweep`: 100 points of EfficientNet-B0's width, depth and resolution.

    .venv/bin/python bench/sweep.py              # 3 runs of each process, medians
    .venv/bin/python bench/sweep.py --repeat 5

Target (issue 5): the whole 100-point CLI process under 10 s. Prints the wall time of the whole
process (time.perf_counter around subprocess.run, medians), the cost of one point from the
difference with a 1-point sweep of the same spec (which pays the same start-up: interpreter,
imports, reading and validating the spec), and an in-process breakdown of a point (expand +
infer, then the summary that gives the activation memory). Exit status 1 if the target is missed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LIMIT_S = 10.0

SPEC = "efficientnet_b0"
GRID = ["--grid", "width_mult=0.5,0.75,1.0,1.25,1.5",        # 5
        "--grid", "depth_mult=0.5,1.0,1.5,2.0",              # x 4
        "--grid", "input=128,160,192,224,256"]               # x 5 = 100 points
ONE = ["--grid", "input=224"]


def archc_cmd() -> list[str]:
    exe = Path(PY).parent / ("archc.exe" if os.name == "nt" else "archc")
    return [str(exe)] if exe.exists() else [PY, "-m", "archc.cli"]


def timed(args: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(archc_cmd() + args, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"archc {' '.join(args)} exited {p.returncode}:\n{p.stderr[-2000:]}")
    return wall, p.stdout


def in_process(n: int = 20) -> tuple[float, float]:
    """Median seconds of one point's compile (expand + infer) and of its summary dict."""
    sys.path.insert(0, str(ROOT))
    from archc.report.summary import summary_dict
    from archc.report.sweep import Sweep
    sw = Sweep(SPEC)
    compile_s, summary_s = [], []
    for k in range(n):
        t = time.perf_counter()
        net = sw.compile("b0", {"width_mult": 1.0 + 0.05 * (k % 3), "depth_mult": 1.0}, [3, 224, 224])
        compile_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        summary_dict(net)
        summary_s.append(time.perf_counter() - t)
    return statistics.median(compile_s), statistics.median(summary_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    opts = ap.parse_args()
    cmd = ["sweep", SPEC, *GRID, "--format", "csv"]
    full, one = [], []
    for _ in range(opts.repeat):          # alternate, so a busy moment hits both alike
        wall, out = timed(cmd)
        full.append(wall)
        one.append(timed(["sweep", SPEC, *ONE, "--format", "csv"])[0])
    points = len(out.strip().splitlines()) - 1
    errors = sum(1 for line in out.strip().splitlines()[1:] if not line.rstrip().endswith(","))
    full_s, one_s = statistics.median(full), statistics.median(one)
    per_point = (full_s - one_s) / (points - 1)
    compile_s, summary_s = in_process()
    ok = full_s < LIMIT_S
    lines = [f"archc {' '.join(cmd)}",
             f"points: {points} ({errors} failed)   runs: {opts.repeat}   cores: {os.cpu_count()}",
             f"whole process, 100 points (median): {full_s:.2f} s   [{', '.join(f'{x:.2f}' for x in full)}]",
             f"whole process, 1 point (median):    {one_s:.2f} s   (start-up, imports, reading the spec)",
             f"per point (difference / {points - 1}):    {per_point * 1e3:.1f} ms",
             f"in process, one point of B0 at 224: compile {compile_s * 1e3:.1f} ms + summary {summary_s * 1e3:.1f} ms",
             f"target: 100 points < {LIMIT_S:.0f} s: {'PASS' if ok else 'FAIL'}"]
    print("\n".join(lines))
    if not opts.no_write:
        sys.path.insert(0, str(ROOT / "bench"))
        from doc import write_section
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        write_section(ROOT / "docs" / "benchmarks.md", "sweep",
                      "## Sweep (`bench/sweep.py`)\n\n"
                      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average after {load}. "
                      f"Target: `archc sweep` over 100 points of EfficientNet-B0 in under {LIMIT_S:.0f} s.\n\n"
                      "```\n" + "\n".join(lines) + "\n```\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
