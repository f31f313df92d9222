"""The long run of the spec fuzzer (issue 10): at least 100,000 hypothesis-made specs, each run
through check, summary --rf --memory, build (output compiled), render to DOT and diff, in-process
in a worker under 5 s and 2 GiB a command; every answer must be exit 0 with plausible output or
exit 2 with a located message. Writes its section of docs/benchmarks.md.

    .venv/bin/python bench/fuzz.py                      # 100,000 cases, 2 processes
    .venv/bin/python bench/fuzz.py --cases 5000 --jobs 1 --no-write
    .venv/bin/python bench/fuzz.py --against DIR --save  # fuzz another archc tree (an old
                                                         # commit) and keep what fails

Failing cases are saved to tests/fuzz_regressions/ (--save), where tests/test_fuzz.py replays
them. Cases come in chunks of 1,000 with seeds seed, seed + 1, ... so hypothesis's memory stays
small and progress is printed as it goes."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from queue import Empty

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

CHUNK = 1000


def job(index: int, cases: int, seed: int, against: str | None, save_to: str, queue) -> None:
    if against:
        sys.path.insert(0, against)
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    from specfuzz import Fuzzer, save
    from specfuzz.strategies import SEEDS_LARGE, SEEDS_SMALL, cases as strategy
    seeds = SEEDS_SMALL * 8 + SEEDS_LARGE       # the large networks cost 10x more: one mutant in ten
    parent = os.getppid()
    with tempfile.TemporaryDirectory() as folder:
        fz = Fuzzer(Path(folder))
        chunk_no = 0
        while fz.cases < cases:     # a chunk hypothesis stopped early is made up by the next ones
            n = min(CHUNK, cases - fz.cases)

            @hseed(seed + chunk_no)
            @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(strategy(seeds))
            def one(case):
                if os.getppid() != parent:      # the run was stopped: stop too (its worker sees EOF)
                    os._exit(1)
                fz.run(case)
            before = len(fz.failures)
            try:
                one()
            except Exception as e:      # hypothesis's own complaints (a strategy it calls flaky)
                # end this chunk, not the run: its remaining cases come from the next seed, and said
                print(f"job {index}, chunk {chunk_no}: hypothesis stopped the chunk: {type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200]}", file=sys.stderr, flush=True)
            for case, verdicts in fz.failures[before:]:
                save(case, verdicts, Path(save_to))
            chunk_no += 1
            queue.put(("progress", index, fz.cases, dict(fz.case_counts), dict(fz.counts)))
        fz.close()
        queue.put(("done", index, fz.cases, dict(fz.case_counts), dict(fz.counts),
                   [(c.origin, next(v.command for v in vs if v.failed), next(v.outcome for v in vs if v.failed),
                     next(v.detail for v in vs if v.failed)[:300]) for c, vs in fz.failures]))


def run(cases: int, jobs: int, seed: int, against: str | None, save_to: str, partial: str | None = None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    per = [cases // jobs + (1 if j < cases % jobs else 0) for j in range(jobs)]
    start = time.perf_counter()
    procs = [ctx.Process(target=job, args=(j, per[j], seed + 1000 * j, against, save_to, queue)) for j in range(jobs)]
    for p in procs:
        p.start()
    # stopped (Ctrl-C, kill): the jobs stop with the run, not go on fuzzing in the background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return collect(procs, queue, jobs, seed, start, partial)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()


def collect(procs, queue, jobs: int, seed: int, start: float, partial: str | None) -> dict:
    finished, progress, failures = {}, {}, []
    while len(finished) < jobs:
        try:
            msg = queue.get(timeout=30)
        except Empty:        # a job that died without its last message is not waited for forever
            dead = [j for j, p in enumerate(procs) if not p.is_alive() and j not in finished]
            if dead and queue.empty():
                raise SystemExit(f"fuzz job(s) {dead} died; see the messages above")
            continue
        if msg[0] == "progress":
            progress[msg[1]] = msg[2:]
            total = sum(v[0] for v in progress.values())
            counts = sum((Counter(v[1]) for v in progress.values()), Counter())
            print(f"{time.perf_counter() - start:7.0f} s  {total:,} cases  {dict(counts)}", file=sys.stderr, flush=True)
            if partial:     # what is known so far survives a run stopped before its end
                Path(partial).write_text(json.dumps({
                    "cases": total, "case_outcomes": dict(counts), "wall_s": time.perf_counter() - start,
                    "command_outcomes": dict(sum((Counter(v[2]) for v in progress.values()), Counter())),
                    "jobs": jobs, "seed": seed, "failures": [], "partial": True}))
        else:
            finished[msg[1]] = msg[2:5]
            failures += msg[5]
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    return {"cases": sum(v[0] for v in finished.values()),
            "case_outcomes": dict(sum((Counter(v[1]) for v in finished.values()), Counter())),
            "command_outcomes": dict(sum((Counter(v[2]) for v in finished.values()), Counter())),
            "wall_s": wall, "jobs": jobs, "seed": seed, "failures": failures}


def markdown(r: dict) -> str:
    from specfuzz.oracle import COMMANDS, OUTCOMES
    from specfuzz.worker import COMMAND_SECONDS, MEMORY_BYTES
    fails = sum(r["case_outcomes"].get(o, 0) for o in OUTCOMES[2:])
    rows = "\n".join(f"| {o} | {r['case_outcomes'].get(o, 0):,} | {r['command_outcomes'].get(o, 0):,} |"
                     for o in OUTCOMES)
    lines = [
        "## Fuzzing (`bench/fuzz.py`)", "",
        f"{dt.date.today()}, {platform.python_version()}, {os.cpu_count()} cores (shared), "
        f"{r['jobs']} process(es), seeds {r['seed']}...",
        "",
        ("(A run stopped before its end: the figures of the cases it finished.)\n\n" if r.get("partial") else "") +
        f"**{r['cases']:,} fuzzed specs, {fails} failures** in {r['wall_s'] / 60:.0f} min "
        f"({r['cases'] / r['wall_s']:.1f} cases/s). Each case runs {len(COMMANDS)} commands "
        f"({', '.join(n for n, _ in COMMANDS)}) in-process, each within {COMMAND_SECONDS:.0f} s of CPU and "
        f"{MEMORY_BYTES >> 30} GiB; a case counts as `ok` or `located` by its `check`, or as its first failure."
        + (f" {r['note']}" if r.get("note") else ""),
        "",
        "| outcome | cases | commands |", "|---|---|---|", rows, "",
        "Outcomes: `ok` exit 0 with plausible output (JSON parses, jumps positive, generated code compiles, "
        "DOT well formed); `located` exit 2 with `file:line:col: message` at a real place of a file of the case; "
        "the rest are failures (`traceback`: any other exit or exception; `hang`; `memory`; `crash`: the worker "
        "died; `unlocated`: exit 2 without a place; `wrong`: exit 0 with implausible output).",
        "",
        "Reproduce: `.venv/bin/python bench/fuzz.py --cases 100000 --jobs 2`. The CI-sized run (2,000 cases, "
        "derandomized) is `tests/test_fuzz.py`, with the replay of `tests/fuzz_regressions/`.",
    ]
    if r["failures"]:
        lines += ["", "Failures (saved to tests/fuzz_regressions/):", ""]
        lines += [f"- {origin}: {cmd} {outcome}: `{detail[:150]}`" for origin, cmd, outcome, detail in r["failures"][:30]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--against", help="an archc source tree to fuzz instead of this one (its parent folder)")
    ap.add_argument("--save", action="store_true", help="save failing cases to tests/fuzz_regressions/")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--json", help="also write the result here")
    ap.add_argument("--from-json", help="write the section from a result saved with --json (a run made "
                                        "with --against a snapshot of this tree)")
    a = ap.parse_args()
    save_to = str(ROOT / "tests" / "fuzz_regressions") if a.save else tempfile.mkdtemp(prefix="archc-fuzz-")
    if a.from_json:
        r = json.loads(Path(a.from_json).read_text())
    else:
        r = run(a.cases, a.jobs, a.seed, a.against, save_to, a.json and a.json + ".partial")
    text = markdown(r)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1))
    if not a.no_write and (not a.against or a.from_json):
        from doc import write_section
        write_section(ROOT / "docs" / "benchmarks.md", "fuzz", text)


if __name__ == "__main__":
    main()
