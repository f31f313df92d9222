"""Exporting an emitted module: ONNX, torch.export (.pt2), TorchScript (.ts), each with a dynamic
batch dimension, and each checked by running the exported file (onnxruntime, torch.export.load,
torch.jit.load) on random batches of 1 and 3 against the module itself. The file is written
only once its check holds."""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from archc.errors import SpecError

KINDS = {".onnx": "onnx", ".pt2": "torch.export", ".ts": "torchscript"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
CHECK_BATCHES = (1, 3)
TRACE_BATCH = 2          # an example batch of 1 would let tracing specialise the dimension
ATOL, RTOL = 1e-5, 1e-4  # max |exported - module| <= ATOL + RTOL * max |module output|


def kind_of(path: str) -> str:
    kind = KINDS.get(Path(path).suffix.lower())
    if kind is None:
        raise SpecError(f"cannot tell the export format of '{path}': name it model.onnx (ONNX), model.pt2 "
                        f"(torch.export) or model.ts (TorchScript)")
    return kind


def require(kind: str) -> None:
    """The packages an export needs, named with the extra that installs them when absent."""
    if kind != "onnx":
        return
    missing = []
    for name in ONNX_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SpecError(f"ONNX export needs {', '.join(missing)} (not installed): "
                        f"pip install 'archc[export]' installs {', '.join(ONNX_PACKAGES)}")


@dataclass
class Check:
    batch: int
    error: float        # max abs difference between the exported file's outputs and the module's
    scale: float        # max abs output of the module

    @property
    def tolerance(self) -> float:
        return ATOL + RTOL * self.scale

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance


@dataclass
class Exported:
    kind: str
    checks: list[Check] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def flat(y) -> list:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def example(shape, batch: int, seed: int):
    import torch
    return torch.randn((batch, *shape), generator=torch.Generator().manual_seed(seed))


@contextlib.contextmanager
def quiet():
    """The exporters' chatter (warnings about packages archc does not use) kept off the output."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export(model, net, path: str) -> Exported:
    """Export `model` (built from `net`) to `path`, run the file and compare: the file is
    written only when every check holds."""
    import torch
    kind = kind_of(path)
    require(kind)
    model = model.eval()
    names = [name for name, _, train in net.outputs if not train]
    x = example(net.input, TRACE_BATCH, seed=0)
    dest = Path(path)
    fd, tmp = tempfile.mkstemp(dir=dest.parent if str(dest.parent) else ".", prefix=f".{dest.name}.",
                               suffix=dest.suffix)
    os.close(fd)
    try:
        with quiet(), torch.no_grad():
            run, note = WRITERS[kind](model, x, tmp, names)
            result = Exported(kind, note=note)
            for batch in CHECK_BATCHES:
                xb = example(net.input, batch, seed=batch)
                want = [t.float() for t in flat(model(xb))]
                got = [torch.as_tensor(t).float() for t in flat(run(xb))]
                if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want)):
                    raise SpecError(f"the exported {kind} file gives outputs of shapes "
                                    f"{[list(g.shape) for g in got]}, the module {[list(w.shape) for w in want]}")
                error = max(float((g - w).abs().max()) for g, w in zip(got, want))
                scale = max(float(w.abs().max()) for w in want)
                result.checks.append(Check(batch, error, scale))
        if result.ok:
            os.replace(tmp, dest)
        return result
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def batch_dim():
    import torch
    return torch.export.Dim("batch", min=1)


def to_onnx(model, x, path, names):
    import onnxruntime
    import torch
    torch.onnx.export(model, (x,), path, dynamo=True, external_data=False, input_names=["input"],
                      output_names=names, dynamic_shapes=({0: batch_dim()},), verbose=False)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return (lambda xb: session.run(None, {"input": xb.numpy()})), ""


def to_pt2(model, x, path, names):
    import torch
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch_dim()},))
    torch.export.save(program, path)
    return torch.export.load(path).module(), ""


def to_torchscript(model, x, path, names):
    import torch
    try:
        scripted, note = torch.jit.script(model), ""
    except Exception as e:        # a construct TorchScript cannot compile: trace instead
        scripted = torch.jit.trace(model, (x,))
        note = f"traced (torch.jit.script failed: {str(e).splitlines()[0]})"
    scripted.save(path)
    return torch.jit.load(path), note


WRITERS = {"onnx": to_onnx, "torch.export": to_pt2, "torchscript": to_torchscript}
