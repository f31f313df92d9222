"""The zoo's entries as pytest params, the heaviest marked `heavy` (timm's way: every entry's
static checks run in the suite; building and running the biggest networks is a benchmark,
bench/zoo_heavy.py, whose result is in docs/benchmarks.md)."""
from __future__ import annotations

import pytest

from archc.spec import zoo

# At the entry's own input: a forward above 12 GMACs or more than 100M parameters to build and
# fill: 39 of 116 entries (every VGG and video ResNet among them), two thirds of the time
# building and running the zoo took.
HEAVY_MACS = 12_000_000_000
HEAVY_PARAMS = 100_000_000


def is_heavy(entry: zoo.Entry) -> bool:
    ref = zoo.expected(entry) or {}
    return (ref.get("macs") or 0) > HEAVY_MACS or (ref.get("params") or entry.params or 0) > HEAVY_PARAMS


def zoo_params(entries=None) -> list:
    """One param per entry name, sorted; heavy ones carry the `heavy` mark."""
    entries = zoo.entries() if entries is None else entries
    return [pytest.param(e.name, marks=pytest.mark.heavy) if is_heavy(e) else e.name
            for e in sorted(entries, key=lambda e: e.name)]
