"""The spec fuzzer of issue 10: hypothesis makes specs (strategies), a worker process runs
check, summary --rf --memory, build (compiling its output), render to DOT and diff on each
in-process under a time and memory limit (worker), and the oracle judges every answer.

    fz = Fuzzer(folder)
    verdicts = fz.run(case)        # one Verdict per command
    fz.counts, fz.failures

Used by tests/test_fuzz.py (a CI-sized run, and the replay of tests/fuzz_regressions/) and by
bench/fuzz.py (the long run)."""
from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

from specfuzz.oracle import COMMANDS, OUT, SPEC, Verdict, judge
from specfuzz.strategies import SUPPORT, Case
from specfuzz.worker import Worker

REGRESSIONS = Path(__file__).resolve().parents[1] / "fuzz_regressions"


class Fuzzer:
    def __init__(self, folder: Path, worker: Worker | None = None):
        self.folder = Path(folder)
        for rel, src in SUPPORT.items():
            (self.folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, self.folder / rel)
        self.worker = worker or Worker()
        self.cases = 0
        self.counts: Counter = Counter()          # outcome -> commands
        self.case_counts: Counter = Counter()     # outcome of `check` (or the failure) -> cases
        self.failures: list[tuple[Case, list[Verdict]]] = []

    def run(self, case: Case) -> list[Verdict]:
        spec = SPEC[case.fmt]
        for name in (*SPEC.values(), OUT):
            (self.folder / name).unlink(missing_ok=True)
        (self.folder / spec).write_bytes(case.text.encode("utf-8", "surrogatepass"))
        argvs = [[a.format(spec=spec) for a in argv] for _, argv in COMMANDS]
        results = self.worker.run(self.folder, argvs)
        verdicts = [judge(name, r, self.folder) for (name, _), r in zip(COMMANDS, results)]
        self.cases += 1
        self.counts.update(v.outcome for v in verdicts)
        failed = [v for v in verdicts if v.failed]
        self.case_counts[failed[0].outcome if failed else verdicts[0].outcome] += 1
        if failed:
            self.failures.append((case, verdicts))
        return verdicts

    def close(self) -> None:
        self.worker.stop()


def save(case: Case, verdicts: list[Verdict], into: Path = REGRESSIONS) -> Path:
    """A failing case as a regression file named by its first failure and its content; the
    verdicts go in a comment at the top (YAML and TOML both read '#' as a comment)."""
    into.mkdir(parents=True, exist_ok=True)
    bad = next(v for v in verdicts if v.failed)
    digest = hashlib.sha1(case.text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    path = into / f"{bad.outcome}-{bad.command}-{digest}.{case.fmt}"
    head = "".join(f"# {v.command}: {v.outcome} {v.detail[:150]!r}\n" for v in verdicts if v.failed)
    path.write_bytes((f"# found by the spec fuzzer ({case.origin})\n{head}" + case.text)
                     .encode("utf-8", "surrogatepass"))
    return path


def load_regression(path: Path) -> Case:
    return Case(f"regression {path.name}", path.suffix[1:], path.read_bytes().decode("utf-8", "surrogatepass"))
