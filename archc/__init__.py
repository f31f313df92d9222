"""archc: a declarative neural-architecture compiler.

    net = archc.load("specs/resnet50.yaml", num_classes=10)     # an archc.Net
    net.params, net.macs, net.output_shapes, net.graph
    net.summary(format="table"); net.source(); net.to_module(weights="torchvision")
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from archc.errors import Location, ShapeError, SpecError, did_you_mean  # noqa: F401
from archc.ir.graph import Network  # noqa: F401
from archc.net import Net, WeightsWarning  # noqa: F401

__version__ = "0.1.0"


def load(spec: str | Path | Mapping[str, Any], variant: str | None = None, input=None,
         **overrides: Any) -> Net:
    """Compile a spec into an analysed network (an archc.Net). `spec` is a path, the name of a zoo entry
    (`"resnet50"`, `"efficientnet_b3"`), YAML/TOML text, or a mapping. Keyword overrides set
    vars, as `--set` does on the command line."""
    from archc.spec.compile import compile_source
    from archc.spec.load import from_mapping, load_file, load_text
    if isinstance(spec, Mapping):
        src = from_mapping(dict(spec))
    elif isinstance(spec, Path) or ("\n" not in str(spec) and not str(spec).lstrip().startswith("{")):
        path, zoo_variant = locate(str(spec))
        src = load_file(path)
        variant = variant if variant is not None else zoo_variant
    else:
        src = load_text(str(spec))
    return Net.of(compile_source(src, variant=variant, overrides=overrides, input=input))


def locate(name: str) -> tuple[str, str | None]:
    """(spec path, variant) for a path, or for the name of a zoo entry."""
    p = Path(name)
    if exists(p) or p.suffix in (".yaml", ".yml", ".toml") or "/" in name:
        return name, None
    from archc.spec import zoo
    entry = zoo.find(name)
    if entry is None:
        names = [e.name for e in zoo.entries()]
        from archc.spec.files import shown
        raise SpecError(f"no spec file or zoo entry named '{shown(name)}'{did_you_mean(name, names)}; "
                        f"'archc zoo' lists the entries")
    return str(entry.spec), entry.variant


def exists(path) -> bool:
    """Path.exists that answers False for names no file can have (too long, a NUL in them)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False
