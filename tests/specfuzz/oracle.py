"""What archc may answer to a fuzzed spec, command by command: exit 0 with plausible output, or
exit 2 with a located message (`file:line:col: ...` naming a file of the case). Anything else is
a failure: a traceback (any other exit or exception), a hang, a memory failure, an unlocated
error, or wrong output (a report that does not parse, generated code that does not compile, a
receptive field with a non-positive jump).

The commands run in-process, in a worker (specfuzz.worker); this module only judges."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

SPEC = {"yaml": "spec.yaml", "toml": "spec.toml"}
REF = "ref.yaml"           # the other side of `diff`: a small network every case has
OUT = "out.py"

# (name, argv) - `{spec}` is the case's spec file
COMMANDS = [
    ("check", ["check", "{spec}"]),
    ("summary", ["summary", "{spec}", "--rf", "--memory", "--format", "json"]),
    ("build", ["build", "{spec}", "-o", OUT]),
    ("render", ["render", "{spec}", "-o", "-"]),
    ("diff", ["diff", "{spec}", REF, "--format", "json"]),
]
OUTCOMES = ("ok", "located", "traceback", "hang", "memory", "crash", "unlocated", "wrong")
FAILURES = OUTCOMES[2:]
LOCATED = re.compile(r"(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): \S")
FILE_LEVEL = re.compile(r"(?P<file>[^\n]+?): (not UTF-8 text|spec file too large)")


@dataclass
class Verdict:
    command: str
    outcome: str          # one of OUTCOMES
    detail: str = ""      # the message, or what was wrong

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES


def located(stderr: str, folder: Path) -> str | None:
    """None when the first line of stderr is `file:line:col: message` at a real place in one of
    the case's files; else what is wrong with it."""
    first = stderr.splitlines()[0] if stderr.strip() else ""
    m = LOCATED.match(first)
    if m is None:
        if FILE_LEVEL.match(first) and (folder / FILE_LEVEL.match(first)["file"]).is_file():
            return None
        return f"unlocated: {first[:300]!r}"
    path = folder / m["file"]
    if not path.is_file():
        return f"names no file of the case: {first[:300]!r}"
    lines = path.read_bytes().count(b"\n") + 1
    if not 1 <= int(m["line"]) <= lines or int(m["col"]) < 1:
        return f"no such place ({lines} lines): {first[:300]!r}"
    return None


def plausible(command: str, stdout: str, folder: Path) -> str | None:
    """None when the output of a successful command makes sense; else what is wrong."""
    if command == "check":
        return None if ": ok (" in stdout else f"no 'ok' line: {stdout[:200]!r}"
    if command == "summary":
        try:
            data = json.loads(stdout)
        except ValueError as e:
            return f"summary JSON does not parse: {e}"
        if not isinstance(data.get("params"), int) or data["params"] < 0 or data.get("macs", 0) < 0:
            return f"implausible totals: params {data.get('params')!r}, macs {data.get('macs')!r}"
        if any(v < 0 for v in data.get("memory", {}).values() if isinstance(v, (int, float))):
            return f"negative memory figure: {data['memory']}"
        for row in data.get("layers", []):
            rf = row.get("rf")
            if isinstance(rf, dict) and rf.get("jump") is not None and any(j <= 0 for j in rf["jump"]):
                return f"receptive field of {row.get('name')!r} with a non-positive jump {rf['jump']}"
        return None
    if command == "build":
        try:
            src = (folder / OUT).read_text(encoding="utf-8")
            compile(src, OUT, "exec")
        except (OSError, SyntaxError, ValueError, UnicodeError) as e:
            return f"generated code does not compile: {type(e).__name__}: {e}"
        return None
    if command == "render":
        ok = stdout.startswith("digraph ") and stdout.rstrip().endswith("}")
        return None if ok else f"not DOT: {stdout[:120]!r}"
    if command == "diff":
        try:
            json.loads(stdout)
        except ValueError as e:
            return f"diff JSON does not parse: {e}"
        return None
    return None


def judge(command: str, result: dict, folder: Path) -> Verdict:
    """A command's result from the worker ({"exit", "stdout", "stderr", "error"}) judged."""
    if result.get("error"):
        kind = result["error"]
        outcome = {"Hang": "hang", "MemoryError": "memory", "Crash": "crash"}.get(kind, "traceback")
        return Verdict(command, outcome, f"{kind}: {result.get('message', '')}"[:2000])
    code = result["exit"]
    ok_codes = (0, 1) if command == "diff" else (0,)      # diff: 1 means "the networks differ"
    if code in ok_codes:
        wrong = plausible(command, result["stdout"], folder)
        return Verdict(command, "wrong" if wrong else "ok", wrong or "")
    if code == 2:
        bad = located(result["stderr"], folder)
        return Verdict(command, "unlocated" if bad else "located", bad or result["stderr"].splitlines()[0][:300])
    return Verdict(command, "traceback", f"exit {code}: {result['stderr'][-1000:]}")
