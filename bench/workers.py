"""In-process measurements, each run by bench/run.py in a fresh interpreter so that "first call"
really is the first one. Each task prints one JSON object on stdout; times are in seconds.

    python bench/workers.py inproc SPEC REPS          # archc.load (+ summary) of one spec
    python bench/workers.py scale FAMILY N [N...]     # synthetic specs of N layers (bench/gen.py)
    python bench/workers.py stages SPEC               # the `archc summary` path, stage by stage
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent))

clock = time.perf_counter


def timed(fn):
    t = clock()
    out = fn()
    return clock() - t, out


def inproc(spec: str, reps: str) -> dict:
    """archc.load (read, parse, validate, expand, infer) of `spec`: the first call in a fresh
    process, then `reps` calls after a warm-up; the summary dict is timed separately."""
    reps = int(reps)
    t_import, archc = timed(lambda: __import__("archc"))
    t_first, net = timed(lambda: archc.load(spec))
    t_first_summary, _ = timed(net.summary)
    for _ in range(3):                                   # warm-up
        archc.load(spec).summary()
    load, summ = [], []
    for _ in range(reps):
        t, net = timed(lambda: archc.load(spec))
        load.append(t)
        t, _ = timed(net.summary)
        summ.append(t)
    return {"spec": spec, "import": t_import, "first_load": t_first, "first_summary": t_first_summary,
            "load": load, "summary": summ, "layers": len(net.nodes), "params": net.params,
            "macs": net.macs}


def _reps_for(n: int) -> int:
    return 15 if n <= 100 else 7 if n <= 1000 else 3


def scale(family: str, *sizes: str) -> dict:
    """For each size: archc.load + summary dict, and source generation, repeated (median later).
    Repetitions stop early once a size has used 30 s (at least one always runs)."""
    import archc
    from gen import spec_text
    try:                                                  # optional breakdown: YAML parse alone
        from archc.spec.load import load_file as parse_only
    except ImportError:
        parse_only = None
    out = {"family": family, "sizes": []}
    with tempfile.TemporaryDirectory(prefix="archc-bench-") as tmp:
        warm = Path(tmp) / "warm.yaml"
        warm.write_text(spec_text(family, 30))
        archc.load(warm).summary()
        archc.load(warm).source()                         # imports and first-call costs out of the way
        for n in map(int, sizes):
            path = Path(tmp) / f"{family}{n}.yaml"
            path.write_text(spec_text(family, n))
            rec = {"n": n, "load": [], "summary": [], "source": [], "parse": []}
            spent = 0.0
            for _ in range(_reps_for(n)):
                t0 = clock()
                if parse_only is not None:
                    rec["parse"].append(timed(lambda: parse_only(path))[0])
                t, net = timed(lambda: archc.load(path))
                rec["load"].append(t)
                t, _ = timed(net.summary)
                rec["summary"].append(t)
                t, src = timed(net.source)
                rec["source"].append(t)
                spent += clock() - t0
                if spent > 30:
                    break
            rec.update(layers=len(net.nodes), params=net.params, yaml_lines=path.read_text().count("\n"),
                       source_lines=src.count("\n"))
            out["sizes"].append(rec)
    return out


def stages(spec: str) -> dict:
    """What `archc summary SPEC` does, split into stages (interpreter start-up excluded: the driver
    times `python -c pass` for that)."""
    import io
    t_cli, _ = timed(lambda: __import__("archc.cli"))
    import archc

    def imports():
        from archc.report.formats import RENDER          # noqa: F401
        from archc.report.summary import summary_dict    # noqa: F401
        import archc.spec.compile                        # noqa: F401
    t_imp, _ = timed(imports)
    from archc.report.formats import RENDER
    from archc.report.summary import summary_dict
    t_compile, net = timed(lambda: archc.load(Path(spec)))      # what the CLI's compile_spec does
    t_dict, d = timed(lambda: summary_dict(net))
    t_render, text = timed(lambda: RENDER["table"](d))
    t_echo, _ = timed(lambda: io.StringIO().write(text))
    heavy = sorted(m for m in ("torch", "networkx", "numpy", "rich", "pydantic", "yaml", "click", "jinja2")
                   if m in sys.modules)
    return {"import_cli": t_cli, "import_summary_path": t_imp, "compile": t_compile,
            "summary_dict": t_dict, "render_table": t_render, "total_in_process": clock() - T_START,
            "modules_loaded": len(sys.modules), "heavy_modules_loaded": heavy}


TASKS = {"inproc": inproc, "scale": scale, "stages": stages}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    print(json.dumps(TASKS[sys.argv[1]](*sys.argv[2:])))
