"""Checkpoints: written atomically (a temp file in the same directory, then os.replace), so a
crash or Ctrl-C while saving never leaves a truncated last.pt behind."""
from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from archc.errors import Location, SpecError


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and ints only, so that checkpoints load with weights_only=True
    (and `archc build --weights best.pt` reads them)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
             "python": list(random.getstate())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)    # mkstemp makes it 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# what a run's checkpoint holds, checked before any of it is used (Python types; "tensor": a Tensor)
RUN = {"model": dict, "optimizer": dict, "scheduler": dict, "scaler": dict, "epoch": int,
       "history": list, "rng": dict, "config": dict, "normalize": dict}
INSIDE = {("normalize", "mean"): "tensor", ("normalize", "std"): "tensor", ("rng", "torch"): "tensor",
          ("rng", "numpy"): list, ("rng", "python"): list}


def check_run(obj: Any, path, keys=tuple(RUN)) -> None:
    """Refuse a checkpoint that lacks what resuming (or evaluating) a run reads from it."""
    where = Location(str(path))
    if not isinstance(obj, dict):
        raise SpecError(f"holds a {type(obj).__name__}, not an archc run checkpoint", where)
    for key in keys:
        if key not in obj:
            raise SpecError(f"not an archc run checkpoint: no '{key}' entry", where)
        if not isinstance(obj[key], RUN[key]) or isinstance(obj[key], bool):
            raise SpecError(f"'{key}' holds a {type(obj[key]).__name__}, not a {RUN[key].__name__}: "
                            f"not an archc run checkpoint", where)
    for (outer, inner), kind in INSIDE.items():
        if outer in keys:
            v = obj[outer].get(inner)
            if not (isinstance(v, torch.Tensor) if kind == "tensor" else isinstance(v, kind)):
                raise SpecError(f"'{outer}.{inner}' holds a {type(v).__name__}, not a "
                                f"{kind if isinstance(kind, str) else kind.__name__}: not an archc run "
                                f"checkpoint", where)


def load_checkpoint(path: str | Path, run: bool = True) -> dict[str, Any]:
    """A checkpoint written by train(); a directory means its last.pt. run=False: any
    weights_only file (a bare state_dict too), for `eval`."""
    from archc.emit.weights import regular_file
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise SpecError(f"no checkpoint at {path}")
    regular_file(path, "checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:     # a truncated or foreign file is bad input, not a crash
        raise SpecError(f"cannot read checkpoint {path}: {e}") from None
    if run:
        check_run(obj, path)
    return obj


@contextmanager
def watch_sigint(hold: bool) -> Iterator[Callable[[], bool]]:
    """Ctrl-C noted while the block runs; the block gets a function that says whether one came.
    hold=True: held back, not raised (files being written stay whole); hold=False: raised as
    usual, but remembered (in a multi-process run a peer's exit on Ctrl-C can surface as a
    communication error, which is then known for the interrupt it is). Outside the main
    thread, where signals cannot be handled, it notes nothing and holds nothing back."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def note(signum, frame):
        got.append(signum)
        if not hold:
            signal.default_int_handler(signum, frame)      # raises KeyboardInterrupt
    previous = signal.signal(signal.SIGINT, note)
    try:
        yield lambda: bool(got)
    finally:
        signal.signal(signal.SIGINT, previous)
