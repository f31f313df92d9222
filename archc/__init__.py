"""archc: a declarative neural-architecture compiler.

    net = archc.load("specs/resnet50.yaml", num_classes=10)
    net.summary(); net.source(); net.to_module(); net.graph
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from archc.errors import Location, ShapeError, SpecError  # noqa: F401
from archc.ir.graph import Network

__version__ = "0.1.0"


def load(spec: str | Path | Mapping[str, Any], variant: str | None = None, input=None,
         **overrides: Any) -> Network:
    """Compile a spec (a path, YAML/TOML text, or a mapping) into an analysed Network.
    Keyword overrides set vars, as `--set` does on the command line."""
    from archc.spec.compile import compile_source
    from archc.spec.load import from_mapping, load_file, load_text
    if isinstance(spec, Mapping):
        src = from_mapping(dict(spec))
    elif isinstance(spec, Path) or ("\n" not in str(spec) and not str(spec).lstrip().startswith("{")):
        src = load_file(resolve_path(str(spec)))
    else:
        src = load_text(str(spec))
    return compile_source(src, variant=variant, overrides=overrides, input=input)


def resolve_path(name: str) -> str:
    """A spec path, or the name of a spec shipped with archc (`resnet50`)."""
    p = Path(name)
    if p.exists() or p.suffix in (".yaml", ".yml", ".toml"):
        return name
    shipped = Path(__file__).parent / "zoo"
    for suffix in (".yaml", ".toml"):
        cand = shipped / f"{name}{suffix}"
        if cand.exists():
            return str(cand)
    return name
