"""The zoo: specs shipped with archc, each declaring its named entries under `zoo:`.

    zoo:
      resnet50: {reference: resnet50}
      resnet101: {variant: resnet101, reference: resnet101}

`archc.load("resnet101")` and `archc summary resnet101` find an entry by name. Reference figures
(params, buffers, MACs, shapes of the torchvision/timm models and of the textbooks' networks)
ship in references.json beside the specs, so `archc zoo` can say whether each entry matches."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
REFERENCES = ZOO_DIR / "references.json"


@dataclass(frozen=True)
class Entry:
    name: str
    spec: Path
    variant: str | None
    reference: str | None
    doc: str = ""
    params: int | None = None      # a published parameter count, where there is no fixture


def spec_files() -> list[Path]:
    """Every YAML spec of the zoo (block files and TOML twins declare no entries)."""
    return sorted(p for p in ZOO_DIR.rglob("*.yaml") if "blocks" not in p.relative_to(ZOO_DIR).parts)


def _declared(path: Path) -> dict:
    """The `zoo:` mapping of a spec, read without compiling it (fast; errors come at compile)."""
    try:
        tree = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return {}
    zoo = tree.get("zoo") if isinstance(tree, dict) else None
    return zoo if isinstance(zoo, dict) else {}


def entry(name: str, path: Path, e: dict | None) -> Entry:
    e = e or {}
    return Entry(name, path, e.get("variant"), e.get("reference"), e.get("doc", ""), e.get("params"))


def expected(e: Entry) -> dict | None:
    """The figures an entry is held to: its reference's, or its published parameter count."""
    if e.reference:
        return references().get(e.reference)
    return {"params": e.params, "source": "published parameter count"} if e.params else None


@lru_cache(maxsize=1)
def entries() -> tuple[Entry, ...]:
    out = []
    for path in spec_files():
        for name, e in _declared(path).items():
            out.append(entry(str(name), path, e))
    return tuple(out)


def find(name: str) -> Entry | None:
    """The entry called `name`: first in `<name>.yaml` itself (no scan), then in every spec."""
    direct = ZOO_DIR / f"{name}.yaml"
    try:
        there = direct.is_file()
    except (OSError, ValueError):       # no entry has such a name (too long, a NUL in it)
        return None
    if there:
        e = _declared(direct).get(name)
        if e is not None or name in _declared(direct):
            return entry(name, direct, e)
    return next((e for e in entries() if e.name == name), None)


def entry_for(file, variant: str | None) -> Entry | None:
    """The entry a compiled spec is: its file at its variant."""
    try:
        path = Path(file).resolve()
    except (OSError, RuntimeError):
        return None
    return next((e for e in entries() if e.variant == variant and e.spec.resolve() == path), None)


@lru_cache(maxsize=1)
def references() -> dict[str, dict]:
    return json.loads(REFERENCES.read_text()) if REFERENCES.exists() else {}


def compare(net, ref: dict) -> dict[str, tuple]:
    """What differs between a compiled network and its reference figures: {what: (ours, theirs)}.
    Textbook references count BN running statistics without `num_batches_tracked`."""
    ours = {"input": list(net.input), "output": list(net.output_shapes[0]), "params": net.params,
            "macs": net.macs}
    if "buffers" in ref:
        ours["buffers"] = net.buffers
    else:
        counters = sum(1 for n in net.nodes for k in n.tensors if k.endswith("num_batches_tracked"))
        ours["bn_running_stats"] = net.buffers - counters
    return {k: (v, ref[k]) for k, v in ours.items() if k in ref and v != ref[k]}
