"""How long each refusal of issue 10 takes: every case of tests/hostile.py (a bad input with its
exact message), timed in-process (the CLI through click's runner: load, check, message) and as a
whole `archc` process. Writes its section of docs/benchmarks.md.

    .venv/bin/python bench/limits.py            # 5 in-process repetitions, 1 process run each
    .venv/bin/python bench/limits.py --no-write
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))


def prepare(case) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="archc-limit-"))
    for rel, content in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(str(path))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def in_process(case, folder: Path, reps: int) -> tuple[float, bool]:
    from click.testing import CliRunner
    from archc.cli import main
    runner, times, ok = CliRunner(), [], True
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for _ in range(reps):
            t = time.perf_counter()
            r = runner.invoke(main, case.args, env=case.env)
            times.append(time.perf_counter() - t)
            ok = ok and r.exit_code == 2 and r.stderr.splitlines()[:1] == [case.message]
    finally:
        os.chdir(cwd)
    return statistics.median(times), ok


def whole_process(case, folder: Path) -> float:
    exe = Path(sys.executable).parent / "archc"
    t = time.perf_counter()
    subprocess.run([str(exe), *case.args], cwd=folder, capture_output=True, timeout=120,
                   env={**os.environ, **case.env})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    from hostile import CASES
    rows = []
    load = os.getloadavg()[0]
    for case in CASES:
        folder = prepare(case)
        try:
            inner, ok = in_process(case, folder, a.reps)
            outer = whole_process(case, folder)
        finally:
            shutil.rmtree(folder)
        rows.append((case, inner, outer, ok))
        print(f"{case.name:24} {inner * 1000:8.1f} ms  {outer:6.2f} s  {'ok' if ok else 'WRONG MESSAGE'}",
              file=sys.stderr)
    worst = max(rows, key=lambda r: r[1])
    lines = ["## Limits: time to refuse (`bench/limits.py`)", "",
             f"Every bad input of issue 10 (`tests/hostile.py`, each with its exact message), timed in-process "
             f"(median of {a.reps}: reading, checking and the message, through the CLI) and as a whole `archc` "
             f"process (interpreter start and imports included). Slowest in-process: {worst[0].name}, "
             f"{worst[1] * 1000:.0f} ms (a 1 MB expression parsed after `--limit expr_chars=2000000`; at the "
             f"default limits every refusal is a parse of at most 2,000 characters). Load average during the "
             f"run: {load:.1f} on {os.cpu_count()} cores (other work shared the machine; whole-process times "
             f"are mostly interpreter start under that load).", "",
             "| case | command | in-process | whole process | message |", "|---|---|---|---|---|"]
    for case, inner, outer, ok in rows:
        cmd = " ".join(case.args[:1])
        lines.append(f"| {case.name} | {cmd} | {inner * 1000:.1f} ms | {outer:.2f} s | "
                     f"{'as expected' if ok else 'DIFFERS'} |")
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        from doc import write_section
        write_section(ROOT / "docs" / "benchmarks.md", "limits", text)


if __name__ == "__main__":
    main()
