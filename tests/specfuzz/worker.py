"""A process that runs archc commands in-process for the fuzzer, under a memory limit
(RLIMIT_AS) and a time limit per command, so that a blow-up or a hang is a finding, not the end
of the run. The time is the process's CPU time (SIGPROF), not the wall clock: on a machine
shared with other work a slow answer is not a hang. A fresh interpreter (spawn): no torch,
nothing inherited."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path

COMMAND_SECONDS = 5.0      # CPU seconds: a command still running then has hung (the issue counted 6 s)
MEMORY_BYTES = 2 << 30     # address space of the worker, all included


class Hang(BaseException):
    """The time limit of a command passed (a BaseException: no `except Exception` swallows it)."""


def _alarm(signum, frame):
    raise Hang()


def _serve(conn, memory: int) -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    from click.testing import CliRunner
    from archc.cli import main
    signal.signal(signal.SIGPROF, _alarm)
    runner = CliRunner()
    while True:
        job = conn.recv()
        if job is None:
            return
        folder, argvs, seconds = job
        os.chdir(folder)
        results = []
        for argv in argvs:
            signal.setitimer(signal.ITIMER_PROF, seconds)
            try:
                r = runner.invoke(main, argv)
                if r.exception is not None and not isinstance(r.exception, SystemExit):
                    results.append({"error": type(r.exception).__name__, "message": str(r.exception)[:2000]})
                else:
                    results.append({"exit": r.exit_code, "stdout": r.stdout[:20_000_000], "stderr": r.stderr})
            except Hang:
                results.append({"error": "Hang", "message": f"{' '.join(argv)}: over {seconds} s of CPU"})
            except MemoryError:
                results.append({"error": "MemoryError", "message": " ".join(argv)})
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        conn.send(results)


class Worker:
    """The parent's end: run(folder, argvs) -> one result dict per argv. A worker that hung past
    every alarm, or died (a segfault), is replaced, and the case reported as such."""

    def __init__(self, memory: int = MEMORY_BYTES, seconds: float = COMMAND_SECONDS):
        self.memory, self.seconds = memory, seconds
        self.ctx = mp.get_context("spawn")
        self.proc = self.conn = None

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_serve, args=(child, self.memory), daemon=True)
        self.proc.start()
        child.close()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
        self.proc = self.conn = None

    def run(self, folder: Path, argvs: list[list[str]]) -> list[dict]:
        if self.proc is None or not self.proc.is_alive():
            self.start()
        self.conn.send((str(folder), argvs, self.seconds))
        patience = self.seconds * len(argvs) * 6 + 60   # wall clock: the CPU alarms first; then this
        try:
            if self.conn.poll(patience):
                results = self.conn.recv()
                if any(r.get("error") in ("Hang", "MemoryError") for r in results):
                    self.stop()          # what is left of the process after either is not trusted
                return results
        except (EOFError, OSError):
            pass
        alive = self.proc.is_alive()
        code = self.proc.exitcode
        self.stop()
        what = {"error": "Hang", "message": f"no answer in {patience:.0f} s"} if alive else \
            {"error": "Crash", "message": f"the worker died (exit {code})"}
        return [what] * len(argvs)
