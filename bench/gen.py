"""Synthetic specs of a given size, for the scaling benchmark.

Two families, both built from the same conv -> bn -> relu unit on a [16, 8, 8] input (so every
layer has the same cost and only the count varies):

- ``block``: the unit is a block, instantiated with ``repeat`` (what a real spec looks like;
  the YAML stays a few lines long whatever the size);
- ``flat``:  every layer written out one after another in ``layers:`` (the YAML grows with the
  network, so parsing and automatic naming are exercised too).

Both have exactly ``n`` ops (``len(net.nodes) == n``): ``n // 3`` units, then ``n % 3`` relus.

    python bench/gen.py block 1000 > /tmp/block1000.yaml
"""
from __future__ import annotations

import sys

FAMILIES = ("block", "flat")
UNIT = ("  - conv: {out: 16, k: 3, pad: 1, bias: false}\n"
        "  - bn\n"
        "  - relu\n")


def spec_text(family: str, n: int) -> str:
    units, extra = divmod(n, 3)
    head = (f"archc: 1\n"
            f"name: {family}{n}\n"
            f"doc: synthetic {family} chain of {n} layers (bench/gen.py)\n"
            f"input: [16, 8, 8]\n")
    if family == "block":
        out = head + ("blocks:\n"
                      "  unit:\n"
                      "    params: {out: int}\n"
                      "    layers:\n"
                      "      - conv: {out: $out, k: 3, pad: 1, bias: false}\n"
                      "      - bn\n"
                      "      - relu\n"
                      "layers:\n")
        if units:
            out += f"  - {{unit: {{out: 16}}, repeat: {units}, name: body}}\n"
    elif family == "flat":
        out = head + "layers:\n" + UNIT * units
    else:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return out + "  - relu\n" * extra


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in FAMILIES:
        sys.exit(f"usage: python {sys.argv[0]} {{{'|'.join(FAMILIES)}}} N")
    sys.stdout.write(spec_text(sys.argv[1], int(sys.argv[2])))
