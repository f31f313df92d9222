"""Every zoo entry's generated module through torch.jit.script, torch.jit.trace, torch.export
and torch.compile (fullgraph, eager backend: any graph break is an error) in eval mode and in
training mode (forward against eager's under one seed, then backward), each output against the
module's own; the time to write each source. The tests run a sample (tests/test_codegen.py); this runs them all.

    .venv/bin/python bench/codegen.py --jobs 2    # every entry, writes its section of docs/benchmarks.md
    .venv/bin/python bench/codegen.py resnet50    # some entries, print only
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import archc  # noqa: E402
from archc.emit.network import passed_vars  # noqa: E402
from archc.emit.pytorch import class_name, load_source  # noqa: E402
from archc.spec import zoo  # noqa: E402

SMALL = 96      # input side for the ImageNet-size and video entries (what they compile at); 32-pixel ones keep theirs


def close(a, b) -> bool:
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    return len(a) == len(b) and all(torch.allclose(u, v, rtol=1e-4, atol=1e-5) for u, v in zip(a, b))


def check(entry) -> dict:
    net = archc.load(entry.spec, variant=entry.variant)
    if net.input[-1] > 128 or len(net.input) > 3:          # a video's channels and frames kept
        for side in (SMALL, 160, 224, 299):
            try:
                net = archc.load(entry.spec, variant=entry.variant, input=[*net.input[:-2], side, side])
                break
            except archc.SpecError:
                continue
    t = time.perf_counter()
    src = net.source()
    row = {"entry": entry.name, "input": "x".join(map(str, net.input)), "source_s": time.perf_counter() - t}
    model = getattr(load_source(src, net.name), class_name(net))(**passed_vars(net)).eval()
    x = torch.randn(1, *net.input)
    with torch.no_grad():
        y = model(x)
        checks = {
            "script": lambda: torch.jit.script(model)(x),
            "trace": lambda: torch.jit.trace(model, x, check_trace=False)(x),
            "export": lambda: torch.export.export(model, (x,)).module()(x),
            "compile": lambda: torch.compile(model, backend="eager", fullgraph=True)(x),
        }
        for name, fn in checks.items():
            if name == "script" and any(train for _, _, train in net.outputs):
                row[name] = "n/a"     # a training-only output: a tuple in training, a tensor in eval
                continue
            try:
                row[name] = "ok" if close(fn(), y) else "differs"
            except Exception as e:     # reported in the table, not raised: every entry is run
                row[name] = f"error: {type(e).__name__}"
            finally:
                torch._dynamo.reset()
    row["compile train"] = compile_train(model, net)
    return row


def compile_train(model, net) -> str:
    """fullgraph torch.compile in training mode (batch statistics, dropout, training-only
    outputs): the forward equals eager's under the same seed, and the backward runs."""
    x = torch.randn(2, *net.input)
    first = lambda out: out if isinstance(out, torch.Tensor) else out[0]  # noqa: E731
    model.train()
    try:
        torch.manual_seed(0)
        want = first(model(x)).detach()
        torch.manual_seed(0)
        got = first(torch.compile(model, backend="eager", fullgraph=True)(x))
        got.sum().backward()
        return "ok" if close(got.detach(), want) else "differs"
    except Exception as e:
        return f"error: {type(e).__name__}"
    finally:
        model.eval()
        torch._dynamo.reset()


def check_named(name: str) -> dict:
    """One entry in a worker process (one torch thread: the workers share the cores)."""
    import warnings
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    return check(zoo.find(name))


def main(argv: list[str]) -> None:
    import argparse
    import multiprocessing
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="entries to run (print only); none: every entry, and write the section")
    ap.add_argument("--jobs", type=int, default=1, help="entries run in parallel, each in its own process")
    args = ap.parse_args(argv)
    names = [e.name for e in zoo.entries() if not args.names or e.name in args.names]
    rows = []
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for row in pool.imap(check_named, names):       # in zoo order, as each is done
            rows.append(row)
            print(f"{row['entry']:22s} {row['input']:10s} source {row['source_s']:.2f}s  "
                  + "  ".join(f"{k} {row[k]}" for k in ("script", "trace", "export", "compile", "compile train")),
                  flush=True)
    failed = [r["entry"] for r in rows if any(r[k] not in ("ok", "n/a") for k in ("script", "trace", "export", "compile", "compile train"))]
    import subprocess
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = ["## Generated code: TorchScript, tracing, export, compile (`bench/codegen.py`)", "",
             f"{time.strftime('%Y-%m-%d')}, commit {commit}, torch {torch.__version__}, CPU. "
             "Every zoo entry's generated module (ImageNet-size entries at a small input), each output "
             "against the module's own; `n/a`: a training-only output (a tuple in training, a tensor in "
             "eval) is not scriptable. `source`: seconds to write the source.", "",
             "| entry | input | source | script | trace | export | compile | compile train |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['entry']} | {r['input']} | {r['source_s']:.2f} s | {r['script']} | {r['trace']} | "
              f"{r['export']} | {r['compile']} | {r['compile train']} |" for r in rows]
    lines += ["", f"{len(rows) - len(failed)} of {len(rows)} entries pass every check"
              + (f"; failing: {', '.join(failed)}" if failed else "") + "."]
    print("\n".join(lines[-1:]))
    if not args.names:
        from doc import write_section
        write_section(ROOT / "docs" / "benchmarks.md", "codegen", "\n".join(lines))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
