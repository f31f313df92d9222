"""Limits on what any input may make archc do: the sizes nobody means, refused with a clear
message (exit 2) before they cost memory or time.

Some limits can be raised where a real network could need more: `--limit NAME=N` on a command,
or `ARCHC_LIMITS="NAME=N,NAME=N"` in the environment (the flag wins), or
`with archc.limits.raised(layers=500_000): ...` in Python. The others protect Python's own
stack or its integer conversions and are fixed. docs/spec.md lists them all."""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from typing import Iterator, Mapping

from archc.errors import SpecError, did_you_mean

ENV = "ARCHC_LIMITS"


@dataclass(frozen=True)
class Limits:
    # -- can be raised ------------------------------------------------------------------------
    file_bytes: int = 1 << 20          # a spec or `use:` file
    values: int = 200_000              # values (scalars, lists, mappings) in one spec file, aliases expanded
    layers: int = 5_000                # ops after expansion (and repeat copies considered; the zoo's most: 823)
    written_layers: int = 2_500        # layers build goes through (the zoo's most: 719)
    repeat: int = 10_000               # one `repeat:` count
    expr_chars: int = 2_000            # characters of one expression
    expr_items: int = 100_000          # characters / list items an expression may build
    render_nodes: int = 2_000          # boxes in a picture drawn by Graphviz
    render_seconds: int = 60           # Graphviz's run time
    data_bytes: int = 4 << 30          # an in-memory data set, as its files or flags claim it
    # -- fixed -------------------------------------------------------------------------------
    depth: int = 100                   # mappings and lists inside each other in a spec file
    nesting: int = 50                  # modules inside modules after expansion
    expr_depth: int = 50               # nesting of one expression's syntax tree
    int_bits: int = 63                 # integers: |v| < 2**63


FIXED = frozenset({"depth", "nesting", "expr_depth", "int_bits"})
NAMES = [f.name for f in fields(Limits)]
RAISABLE = [n for n in NAMES if n not in FIXED]
UNITS = {"file_bytes": "bytes", "values": "values", "layers": "layers", "written_layers": "layers", "repeat": "copies",
         "expr_chars": "characters", "expr_items": "items", "render_nodes": "boxes",
         "render_seconds": "s", "data_bytes": "bytes", "depth": "levels", "nesting": "levels",
         "expr_depth": "levels", "int_bits": "bits (+-9,223,372,036,854,775,807)"}


def parse(items, origin: str) -> dict[str, int]:
    """`["layers=500000", ...]` (or one comma-separated string) -> {name: value}."""
    if isinstance(items, str):
        items = [s for s in items.split(",") if s.strip()]
    out: dict[str, int] = {}
    for item in items:
        name, eq, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq:
            raise SpecError(f"{origin}: expected NAME=N, got '{item[:80]}'")
        if name in FIXED:
            raise SpecError(f"{origin}: the '{name}' limit is fixed (it protects Python's stack or "
                            f"integer conversions); limits that can be raised: {', '.join(RAISABLE)}")
        if name not in RAISABLE:
            raise SpecError(f"{origin}: no limit named '{name[:80]}'{did_you_mean(name, RAISABLE)}; "
                            f"limits: {', '.join(RAISABLE)}")
        raw = raw.strip().replace("_", "")
        if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
            raise SpecError(f"{origin}: {name} takes a positive whole number, got '{raw[:80]}'")
        out[name] = int(raw)
    return out


_env_seen: tuple[str, Limits] = ("", Limits())


def from_env(environ: Mapping[str, str] = os.environ) -> Limits:
    global _env_seen
    text = environ.get(ENV, "")
    if text != _env_seen[0]:       # parsed once per value: current() is asked often
        _env_seen = (text, replace(Limits(), **parse(text, ENV)) if text.strip() else Limits())
    return _env_seen[1]


class LimitError(SpecError):
    """A limit passed (a SpecError: exit 2)."""


_current: ContextVar[Limits | None] = ContextVar("archc_limits", default=None)


def current() -> Limits:
    """The limits in force: raised() ones, else the environment's, else the defaults."""
    lim = _current.get()
    return lim if lim is not None else from_env()


@contextmanager
def raised(**values: int) -> Iterator[Limits]:
    """Limits changed for the duration of a with-block (a command's --limit flags)."""
    bad = [k for k in values if k not in RAISABLE]
    if bad:
        raise SpecError(f"no limit that can be raised named '{bad[0]}'; limits: {', '.join(RAISABLE)}")
    token = _current.set(replace(current(), **values))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def too_large(name: str, what: str, found=None, loc=None) -> LimitError:
    """The error for a limit passed: what, how much, the limit and, where it can, how to raise it."""
    limit, unit = getattr(current(), name), UNITS[name]
    how = (f"; raise it with --limit {name}=N or {ENV}={name}=N" if name in RAISABLE
           else "; this limit is fixed")
    if isinstance(found, int):
        amount = f"{found:,}" if found.bit_length() <= 96 else f"a {found.bit_length()}-bit number of"
        return LimitError(f"{what}: {amount} {unit} is over the limit of {limit:,}{how}", loc)
    return LimitError(f"{what}: over the limit of {limit:,} {unit}{how}", loc)
