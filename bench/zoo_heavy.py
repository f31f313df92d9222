"""The zoo checks that build and run the heaviest networks (tests/zoo_params.py: 39 entries above
12 GMACs or 100M parameters), which the suite deselects to stay near ten minutes: their module
against the static counts, FlopCounter MACs, output and leaf shapes, logits under the fixtures'
deterministic weights, initial statistics, the module at other input sizes (tests/test_zoo.py),
and the training-memory estimate against what PyTorch saves (tests/test_memory.py).

It runs pytest with --heavy on those checks only, then writes each entry's outcome and time into
docs/benchmarks.md (section 'zoo-heavy'). Exit status: pytest's.

    .venv/bin/python bench/zoo_heavy.py              # all of them (about 10 min on 2 cores)
    .venv/bin/python bench/zoo_heavy.py -k vit_h_14  # extra pytest arguments: print only
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAM = re.compile(r"(\w+)\[(\w+)\]")


def run(extra: list[str]) -> tuple[int, list[tuple[str, str, str, float]], float]:
    """pytest's exit status; (entry, check, outcome, seconds) per test; the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", "pytest", "tests/test_zoo.py", "tests/test_memory.py", "--heavy", "-m", "heavy",
                              "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *extra], cwd=ROOT)
        wall = time.perf_counter() - t
        rows = []
        for case in ET.parse(report).getroot().iter("testcase"):
            m = PARAM.fullmatch(case.get("name", ""))
            if not m:
                continue
            outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
            rows.append((m[2], m[1], outcome, float(case.get("time", 0))))
    return rc, rows, wall


def section(rows, wall: float) -> str:
    import torch
    from archc.spec import zoo
    by_entry = defaultdict(list)
    for entry, check, outcome, seconds in rows:
        by_entry[entry].append((check, outcome, seconds))
    counts = defaultdict(int)
    for _, _, outcome, _ in rows:
        counts[outcome] += 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = ["## The zoo's heaviest entries (`bench/zoo_heavy.py`)", "",
             f"{time.strftime('%Y-%m-%d')}, commit {commit}, torch {torch.__version__}, CPU. The suite runs the "
             "zoo test's static checks on every entry and its module checks on the 77 lighter ones; these "
             f"{len(by_entry)} entries (above 12 GMACs or 100M parameters at their own input) get the module "
             "checks here, and the memory estimate against what PyTorch saves: "
             "`pytest tests/test_zoo.py tests/test_memory.py --heavy -m heavy`. "
             f"{len(rows)} checks: {counts['passed']} passed, {counts['skipped']} skipped (no fixture of that "
             f"kind), {counts['failure'] + counts['error']} failed, in {wall / 60:.1f} min.", "",
             "| entry | checks passed | skipped | failed | seconds |", "|---|---:|---:|---:|---:|"]
    order = {e.name: i for i, e in enumerate(zoo.entries())}
    for entry in sorted(by_entry, key=lambda n: order.get(n, 1 << 30)):
        checks = by_entry[entry]
        failed = [c for c, o, _ in checks if o in ("failure", "error")]
        lines.append(f"| {entry} | {sum(o == 'passed' for _, o, _ in checks)} | "
                     f"{sum(o == 'skipped' for _, o, _ in checks)} | "
                     f"{', '.join(failed) if failed else 0} | {sum(s for _, _, s in checks):.1f} |")
    return "\n".join(lines) + "\n"


def main(extra: list[str]) -> int:
    rc, rows, wall = run(extra)
    text = section(rows, wall)
    print(text)
    if not extra:
        sys.path.insert(0, str(ROOT / "bench"))
        from doc import write_section
        write_section(ROOT / "docs" / "benchmarks.md", "zoo-heavy", text)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
