"""archc benchmarks: measure the speed targets, print a Markdown report, write docs/benchmarks.md.

    .venv/bin/python bench/run.py            # full run (about 1-2 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # fewer repetitions, for a smoke test
    .venv/bin/python bench/run.py --no-write # print only

Targets (from the issue):
  1. `archc summary specs/resnet50.yaml` as a whole process: <= 0.5 s, and >= 5x faster than
     a process that imports torch and the archc-emitted ResNet-50, instantiates it and runs
     torchinfo.summary(model, input_size=(1, 3, 224, 224)); measured alternately, medians.
  2. In-process archc.load (load, validate, expand, infer) of ResNet-152: median <= 20 ms.
  3. Analysis cost linear in size: 10,000 layers (archc.load + summary dict) in <= 2 s.

Whole-process times are wall-clock times of subprocesses (time.perf_counter around
subprocess.run); in-process times come from bench/workers.py run in a fresh interpreter.
Torch and torchinfo are optional: without them the comparison is skipped, not failed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable

LIMIT_SUMMARY_S = 0.5
MIN_RATIO = 5.0
LIMIT_R152_MS = 20.0
LIMIT_10K_S = 2.0
MAX_LINEARITY = 2.0       # per-layer cost at 10,000 layers / per-layer cost at 1,000 (bench's criterion)
SIZES = (100, 1000, 10000)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def archc_cmd() -> list[str]:
    """The `archc` console script next to this interpreter, else `python -m archc.cli`."""
    exe = Path(PY).parent / ("archc.exe" if os.name == "nt" else "archc")
    return [str(exe)] if exe.exists() else [PY, "-m", "archc.cli"]


def run_timed(cmd: list[str], timeout: float = 300) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    dt_ = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return dt_, p


def worker(*args: str, timeout: float = 600) -> dict:
    _, p = run_timed([PY, str(BENCH / "workers.py"), *args], timeout=timeout)
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- machine

def machine() -> dict:
    def version(dist):
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except OSError:
        commit = "unknown"
    try:
        import yaml
        libyaml = "yes" if yaml.__with_libyaml__ else "no"
    except ImportError:
        libyaml = "?"
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": nproc, "cpu": cpu, "mem": mem, "os": platform.platform(),
        "python": platform.python_version(), "torch": version("torch"), "torchinfo": version("torchinfo"),
        "archc": version("archc"), "pydantic": version("pydantic"), "pyyaml": version("PyYAML"),
        "libyaml": libyaml, "commit": commit,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# ------------------------------------------------------------------------------- target 1

def whole_process(reps: int) -> dict:
    have_torch = all(importlib.util.find_spec(m) for m in ("torch", "torchinfo"))
    archc = archc_cmd()
    rows = {"archc summary specs/resnet50.yaml": archc + ["summary", "specs/resnet50.yaml"],
            "archc summary bench/specs/resnet152.yaml": archc + ["summary", "bench/specs/resnet152.yaml"],
            "python -c pass (interpreter start-up)": [PY, "-c", "pass"]}
    out: dict = {"reps": reps, "have_torch": have_torch, "times": {}, "notes": []}
    tmp = Path(tempfile.mkdtemp(prefix="archc-bench-"))
    try:
        if have_torch:
            model = tmp / "resnet50_archc.py"
            run_timed(archc + ["build", "specs/resnet50.yaml", "-o", str(model)])
            classes = re.findall(r"^class (\w+)\(nn\.Module\)", model.read_text(), re.M)
            torch_label = "torch + emitted ResNet-50 + torchinfo.summary"
            rows[torch_label] = [PY, str(BENCH / "torch_summary.py"), str(model), classes[-1], "1,3,224,224"]
            rows["python -c 'import torch'"] = [PY, "-c", "import torch"]
        else:
            out["notes"].append("torch or torchinfo is not installed in this interpreter: the PyTorch "
                                "comparison was skipped (`pip install torchinfo`, or `pip install -e .[bench]`).")
        outputs = {}
        for label, cmd in rows.items():                  # warm-up: file cache, .pyc files
            outputs[label] = run_timed(cmd)[1].stdout
        times = {label: [] for label in rows}
        order = list(rows)
        for r in range(reps):                            # interleaved; order reversed every other rep
            for label in (order if r % 2 == 0 else order[::-1]):
                times[label].append(run_timed(rows[label])[0])
                log(f"  {label}: {times[label][-1]:.3f} s")
        out["times"] = times
        # sanity: both sides describe the same network
        m = re.search(r"Params\s+([\d,]+)", outputs["archc summary specs/resnet50.yaml"])
        out["archc_params"] = m.group(1) if m else "?"
        if have_torch:
            m = re.search(r"Total params:\s+([\d,]+)", outputs[torch_label])
            out["torch_params"] = m.group(1) if m else "?"
            out["torch_label"] = torch_label
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ------------------------------------------------------------------------------- report

def ms(s: float) -> str:
    return f"{s * 1e3:,.1f} ms"


def sec(s: float) -> str:
    return f"{s:.3f} s"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


def report(m: dict, wp: dict, stages: dict, r152: dict, r50: dict, scale: list[dict], argv: str) -> tuple[str, bool]:
    L: list[str] = []
    targets: list[tuple[str, str, str, bool | None]] = []
    a50 = median(wp["times"]["archc summary specs/resnet50.yaml"])
    targets.append(("`archc summary specs/resnet50.yaml`, whole process (median)", sec(a50),
                    f"<= {LIMIT_SUMMARY_S} s", a50 <= LIMIT_SUMMARY_S))
    if wp["have_torch"]:
        t50 = median(wp["times"][wp["torch_label"]])
        ratio = t50 / a50
        targets.append(("PyTorch-side summary / archc summary (ratio of medians)", f"{ratio:.1f}x",
                        f">= {MIN_RATIO:.0f}x", ratio >= MIN_RATIO))
    else:
        targets.append(("PyTorch-side summary / archc summary", "skipped", f">= {MIN_RATIO:.0f}x", None))
    r152_med = median(r152["load"])
    targets.append(("in-process `archc.load` of ResNet-152 (median, warm)", ms(r152_med),
                    f"<= {LIMIT_R152_MS:.0f} ms", r152_med * 1e3 <= LIMIT_R152_MS))
    for fam in scale:
        by_n = {s["n"]: s for s in fam["sizes"]}
        if 10000 in by_n:
            t = median(by_n[10000]["load"]) + median(by_n[10000]["summary"])
            targets.append((f"10,000 layers, `{fam['family']}` spec: load + summary dict", sec(t),
                            f"<= {LIMIT_10K_S:.0f} s", t <= LIMIT_10K_S))
        if 10000 in by_n and 1000 in by_n:
            per = [(median(by_n[n]["load"]) + median(by_n[n]["summary"])) / n for n in (1000, 10000)]
            lin = per[1] / per[0]
            targets.append((f"linearity, `{fam['family']}`: per-layer cost at 10,000 / at 1,000", f"{lin:.2f}x",
                            f"<= {MAX_LINEARITY:.0f}x (bench's criterion)", lin <= MAX_LINEARITY))
    all_ok = all(ok is not False for *_, ok in targets)

    L += ["## Analysis: summary, load and scaling (`bench/run.py`)", "",
          "Speed of the analysis path.", "",
          "### Machine", "",
          "| | |", "|---|---|",
          f"| date | {m['date']} |",
          f"| CPU | {m['cpu']} |",
          f"| cores (`nproc`) | {m['nproc']} |",
          f"| memory | {m['mem']} |",
          f"| OS | {m['os']} |",
          f"| Python | {m['python']} |",
          f"| torch / torchinfo | {m['torch']} / {m['torchinfo']} |",
          f"| archc / pydantic / PyYAML (libyaml available) | {m['archc']} / {m['pydantic']} / "
          f"{m['pyyaml']} ({m['libyaml']}) |",
          f"| commit | {m['commit']} |",
          f"| load average before / after | {m['load_before']} / {m['load_after']} |",
          "",
          "The machine is small and may be shared; figures are medians over repetitions, and a load "
          "average near the core count means other work competed for the CPU.", "",
          "### Reproduce", "",
          "```sh",
          "bash scripts/setup.sh && .venv/bin/pip install torchinfo   # torchinfo: for the comparison only",
          ".venv/bin/python bench/run.py          # prints this report and rewrites docs/benchmarks.md",
          "```", "",
          f"This run: `{argv}`. `--quick` does fewer repetitions; `--no-write` only prints. "
          "`bench/gen.py` writes the synthetic specs; `bench/workers.py` holds the in-process "
          "measurements (each run in a fresh interpreter); `bench/torch_summary.py` is the PyTorch side.",
          "",
          "### Targets", "",
          "| target | measured | limit | result |", "|---|---|---|---|"]
    L += [f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in targets]
    L += ["", f"Overall: {'all targets met' if all_ok else 'some targets missed'}.", ""]

    # -- whole process
    L += ["### 1. Whole process: `archc summary` against a PyTorch-side summary", "",
          f"Each command run {wp['reps']} times, interleaved (the order reversed every other round), after "
          "one untimed warm-up run of each; wall-clock time of the subprocess.", "",
          "| command | median | min | max |", "|---|---|---|---|"]
    for label, ts in wp["times"].items():
        L.append(f"| {label} | {sec(median(ts))} | {sec(min(ts))} | {sec(max(ts))} |")
    L.append("")
    if wp["have_torch"]:
        t50 = median(wp["times"][wp["torch_label"]])
        L += [f"Ratio (PyTorch side / archc, medians): **{t50 / a50:.1f}x**. "
              f"The PyTorch side is `bench/torch_summary.py`: `import torch`, the file written by "
              f"`archc build specs/resnet50.yaml -o …`, instantiate its class, "
              f"`torchinfo.summary(model, input_size=(1, 3, 224, 224))`. Parameter counts agree: "
              f"archc {wp['archc_params']}, torchinfo {wp['torch_params']}.", ""]
    L += [f"- {n}" for n in wp["notes"]] + ([""] if wp["notes"] else [])
    L += ["Where the time of `archc summary specs/resnet50.yaml` goes (one fresh process, "
          "`bench/workers.py stages`; interpreter start-up is the `python -c pass` row above):", "",
          "| stage | time |", "|---|---|",
          f"| import `archc.cli` (click, archc, ops registry, pydantic) | {ms(stages['import_cli'])} |",
          f"| import the summary path (spec.compile, report, yaml) | {ms(stages['import_summary_path'])} |",
          f"| compile: read, parse, validate, expand, infer | {ms(stages['compile'])} |",
          f"| summary dict | {ms(stages['summary_dict'])} |",
          f"| render the table | {ms(stages['render_table'])} |",
          f"| total inside the process | {ms(stages['total_in_process'])} |", "",
          f"Heavy modules imported on this path: {', '.join(stages['heavy_modules_loaded']) or 'none'} "
          f"({stages['modules_loaded']} modules in all); torch is not among them"
          f"{'' if 'torch' not in stages['heavy_modules_loaded'] else ' — IT IS: a regression'}.", ""]

    # -- in-process
    L += ["### 2. In process: `archc.load` of ResNet-50 and ResNet-152", "",
          "A fresh interpreter: `import archc`, the first `archc.load(path)` (read, parse, validate, expand, "
          "infer; it pays the lazy imports and pydantic's deferred schema builds), then 3 warm-up calls "
          f"and {len(r152['load'])} timed ones. The summary dict (`net.summary()`) is timed apart.", "",
          "| spec | layers | params | `import archc` | first load | median load | min | p90 | median summary dict |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in (r50, r152):
        ts = sorted(r["load"])
        p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
        L.append(f"| `{r['spec']}` | {r['layers']} | {r['params']:,} | {ms(r['import'])} | {ms(r['first_load'])} | "
                 f"{ms(median(ts))} | {ms(ts[0])} | {ms(p90)} | {ms(median(r['summary']))} |")
    L.append("")

    # -- scaling
    L += ["### 3. Scaling with network size", "",
          "Synthetic chains of conv → bn → relu on a [16, 8, 8] input (`bench/gen.py`), with exactly N ops:",
          "`block` repeats a 3-layer block (`repeat: N/3`; the YAML stays a dozen lines), `flat` writes every "
          "layer out in `layers:` (the YAML has about N lines). Analysis = `archc.load(path)` + `net.summary()`; "
          "YAML parse = `archc.spec.load.load_file` alone (part of load); source = `net.source()`. "
          "Medians of 15 / 7 / 3 repetitions for 100 / 1,000 / 10,000 layers.", "",
          "| spec | layers | YAML lines | YAML parse | load | summary dict | analysis | analysis / layer | source | source / layer |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for fam in scale:
        for s in fam["sizes"]:
            load, summ, src = median(s["load"]), median(s["summary"]), median(s["source"])
            parse = ms(median(s["parse"])) if s["parse"] else "n/a"
            L.append(f"| `{fam['family']}` | {s['layers']:,} | {s['yaml_lines']:,} | {parse} | {ms(load)} | {ms(summ)} | "
                     f"**{ms(load + summ)}** | {(load + summ) / s['layers'] * 1e6:,.0f} µs | {ms(src)} | "
                     f"{src / s['layers'] * 1e6:,.0f} µs |")
    L.append("")
    return "\n".join(L), all_ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    ap.add_argument("--reps", type=int, help="whole-process repetitions (default 7, 3 with --quick)")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="report path")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    reps = args.reps or (3 if args.quick else 7)
    inproc_reps = "15" if args.quick else "60"

    t0 = time.perf_counter()
    m = machine()
    log(f"machine: {m['cpu']}, {m['nproc']} cores, load {m['load_before']}")
    log("1. whole process (archc summary vs PyTorch + torchinfo) ...")
    wp = whole_process(reps)
    stages = worker("stages", "specs/resnet50.yaml")
    log("2. in-process ResNet-50 / ResNet-152 ...")
    r50 = worker("inproc", "specs/resnet50.yaml", inproc_reps)
    r152 = worker("inproc", "bench/specs/resnet152.yaml", inproc_reps)
    log("3. scaling ...")
    scale = []
    for fam in ("block", "flat"):
        log(f"   {fam} {', '.join(map(str, SIZES))}")
        scale.append(worker("scale", fam, *map(str, SIZES)))
    m["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    argv = "python bench/run.py" + ("".join(" " + a for a in sys.argv[1:]))
    text, ok = report(m, wp, stages, r152, r50, scale, argv)
    text += f"\nTotal benchmark time: {time.perf_counter() - t0:.0f} s.\n"
    print(text)
    if not args.no_write:
        sys.path.insert(0, str(BENCH))
        from doc import write_section
        write_section(args.out, "analysis", text)
        log(f"wrote the analysis section of {args.out}")
    return 1 if (args.check and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
