"""A run's record of itself, DIR/run.json, and the rules that keep runs apart.

run.json says what was trained, on what: the spec (its path and a digest of its text), variant,
vars and input; the data (the --data argument that reopens it) and its split; the normalisation
statistics actually used; the data set's class names; the settings. `--resume DIR` and
`archc eval --run DIR` rebuild the run from it, and refuse a flag that says otherwise unless
told to change it (`--override`). Nothing writes into a directory that holds another run's
files (check_out_dir).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from archc.errors import SpecError

FORMAT = 1
# what train() writes into its directory; a directory holding any of them is not a fresh one
RUN_FILES = ("run.json", "last.pt", "best.pt", "metrics.jsonl", "model.py", "curves.png",
             "spec.yaml", "spec.yml", "spec.toml")
REQUIRED = ("spec", "variant", "vars", "input", "data", "split", "normalize", "config")


def digest(path: str | Path) -> str | None:
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def spec_path(file: str) -> str:
    """A spec's path as a run records it: absolute, links resolved (specs/ is a link to the zoo)."""
    p = Path(file)
    return str(p.resolve()) if p.exists() else file


def make_record(net, data, cfg, mean, std, *, resumed_from=None, changes=None) -> dict[str, Any]:
    """The run.json of a run of `net` on `data` with settings `cfg`, normalised with mean/std."""
    sizes = {k: (len(getattr(data, k)) if getattr(data, k) is not None else 0)
             for k in ("train", "val", "test")}
    rec = {"archc_run": FORMAT, "spec": spec_path(net.file), "spec_digest": digest(net.file),
           "name": net.name, "variant": net.variant, "vars": net.vars, "input": list(net.input),
           "data": data.source or data.name, "num_classes": data.num_classes,
           "classes": data.classes,
           "split": {"val_fraction": cfg.val_fraction, "seed": cfg.seed, **sizes},
           "normalize": {"mean": [float(v) for v in mean.flatten()],
                         "std": [float(v) for v in std.flatten()]} if cfg.normalize else None,
           "config": cfg.model_dump()}
    if resumed_from is not None:
        rec["resumed_from"] = str(resumed_from)
    if changes:
        rec["changes"] = changes
    return rec


def read_run(directory: str | Path) -> dict[str, Any]:
    """DIR/run.json, checked; a missing, corrupt or foreign one is a SpecError naming its path."""
    d = Path(directory)
    path = d / "run.json"
    if not path.is_file():
        inside = sorted(p.parent.name for p in d.glob("*/run.json"))[:3] if d.is_dir() else []
        hint = f" (runs inside it: {', '.join(str(d / n) for n in inside)})" if inside else ""
        raise SpecError(f"{path}: no such file: {d} is not the directory of an archc run{hint}")
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SpecError(f"{path}: cannot read the run's record ({e}); the run's checkpoints are "
                        f"intact, but its spec, data and settings are unknown") from None
    if not isinstance(run, dict):
        raise SpecError(f"{path}: not a run record (a JSON {type(run).__name__}, not an object)")
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        raise SpecError(f"{path}: not a run record of this archc: no {', '.join(missing)}")
    if not isinstance(run["config"], dict) or not isinstance(run["vars"], dict):
        raise SpecError(f"{path}: 'config' and 'vars' must be objects")
    return run


def check_out_dir(out: str | Path, resume: str | Path | None = None) -> None:
    """Refuse to write a run into a directory that holds another run's files (or any file a run
    writes): only resuming the run in that very directory may write there."""
    out = Path(out)
    if resume is not None and out.resolve() == Path(resume).resolve():
        return
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: a file, not a directory")
    there = [n for n in RUN_FILES if (out / n).exists()]
    if not there:
        return
    if {"run.json", "last.pt"} & set(there):
        raise SpecError(f"--out {out} holds a run already ({out / there[0]}); continue it with "
                        f"`archc train --resume {out}`, or give a new --out directory")
    raise SpecError(f"--out {out} holds {', '.join(there)}, which a run would overwrite; "
                    f"give a new or empty --out directory")


def conflicts(run: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Each flag given now that says otherwise than the run, as 'FLAG X, but the run's is Y'.
    `given` maps a name of run.json (spec, variant, input, data, val_fraction, seed, mean,
    std, or var:NAME) to the value given now, None when not given."""
    out = []
    for key, value in given.items():
        if value is None:
            continue
        was = recorded(run, key)
        if not same(value, was):
            flag = {"spec": "SPEC", "variant": "--variant", "input": "--input", "data": "--data",
                    "val_fraction": "--val-fraction", "seed": "--seed", "mean": "--mean",
                    "std": "--std"}.get(key) or f"--set {key[4:]}="
            out.append(f"{flag}{'' if flag.endswith('=') else ' '}{show(value)} says otherwise "
                       f"than the run's {key.replace('var:', 'var ')} {show(was)}")
    return out


def recorded(run: dict[str, Any], key: str):
    if key.startswith("var:"):
        return run["vars"].get(key[4:])
    if key in ("val_fraction", "seed"):
        return run["split"].get(key)
    if key in ("mean", "std"):
        return None if run["normalize"] is None else run["normalize"][key]
    if key == "input":
        return "x".join(map(str, run["input"]))
    return run[key]


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b) and 1 in (len(a), len(b)):     # one value stands for every channel
            a, b = (list(a) * len(b), b) if len(a) == 1 else (a, list(b) * len(a))
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))
    return a == b


def show(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return "none" if v is None else str(v)


def given(spec, variant, sets, input_, data, flags: dict[str, Any]) -> dict[str, Any]:
    """What the command line says about a run's identity, in run.json's terms (None: not said):
    for conflicts() against a recorded run."""
    import archc
    from archc.spec.compile import override_value, parse_override
    from archc.spec.schema import parse_shape
    from archc.train.data import source_of
    out: dict[str, Any] = {"spec": None, "variant": variant, "input": None, "data": None,
                           "val_fraction": flags.get("val_fraction"), "seed": flags.get("seed")}
    if spec is not None:
        path, zoo_variant = archc.locate(spec)
        out["spec"] = spec_path(path)
        if variant is None and zoo_variant is not None:
            out["variant"] = zoo_variant
    if input_ is not None:
        try:
            out["input"] = "x".join(str(int(d)) for d in parse_shape(input_))
        except (ValueError, TypeError):
            out["input"] = input_
    if data is not None:
        out["data"] = source_of(data)
    for name in ("mean", "std"):
        if flags.get(name) is not None:
            out[name] = [float(t) for t in str(flags[name]).split(",") if t.strip()]
    for s in sets:
        key, value = parse_override(s)
        out[f"var:{key}"] = override_value(key, value, None)    # read as the spec would read it
    return out


def network_of(run: dict[str, Any], where: Path, now: dict[str, Any], override: bool):
    """The network of a recorded run, compiled again from its spec; with override, the values
    given now (`now`, from given()) replace the run's. A spec changed since the run started is
    refused unless override."""
    import archc
    spec = (now["spec"] if override and now["spec"] else None) or run["spec"]
    if not Path(spec).is_file():
        raise SpecError(f"{where / 'run.json'}: the run's spec {spec} is gone; resume from the run's "
                        f"own copy with `archc train {where}/spec.yaml --resume {where} --override`")
    if spec == run["spec"] and run.get("spec_digest") and digest(spec) != run["spec_digest"] and not override:
        raise SpecError(f"the spec {spec} has changed since the run in {where} started (its copy as "
                        f"trained is {where}/spec{Path(spec).suffix}); to go on with the changed spec, "
                        f"add --override")
    variant, shape, vars_ = run["variant"], run["input"], dict(run["vars"])
    if override:
        variant = now["variant"] or variant
        shape = now["input"] or shape
        vars_.update({k[4:]: v for k, v in now.items() if k.startswith("var:") and v is not None})
        if spec != run["spec"]:          # another spec: its own vars, with those given now
            vars_ = {k[4:]: v for k, v in now.items() if k.startswith("var:") and v is not None}
    shape = shape if isinstance(shape, str) else "x".join(map(str, shape))
    return archc.load(spec, variant=variant, input=shape, **vars_)


def refuse_conflicts(run: dict[str, Any], where: Path, now: dict[str, Any], override: bool) -> dict:
    """{key: [the run's, now's]} for each value given now that differs from the run's, when
    override; otherwise those differences are refused, each named with both values."""
    problems = conflicts(run, now)
    if problems and not override:
        raise SpecError(f"{'; '.join(problems)} ({where / 'run.json'}). A resumed or evaluated run keeps "
                        f"its spec, data, split and normalisation: leave the flag out, or add --override "
                        f"to change it deliberately")
    return {k: [recorded(run, k), v] for k, v in now.items()
            if v is not None and not same(v, recorded(run, k))}
