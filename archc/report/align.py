"""Which layer of network A is which layer of network B: a monotone pairing of the two node lists
(both in topological order), for `archc diff`.

Three passes, each on what the one before left unpaired:
1. layers equal in scoped name, op and args pair up (a longest-common-subsequence alignment,
   so a run of inserted layers is one gap, not a shift of everything after it);
2. inside each gap, layers equal in op and args pair up whatever their names: an automatic
   name (`conv3`) moves when an unnamed layer is inserted before it, the layer is the same;
3. what is left is aligned by a small edit-distance table where pairing a layer costs by how
   much it differs (same name preferred, then same op; a different op only under the same
   name), and leaving one unpaired costs a fixed amount.
"""
from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

from archc.ir.graph import Node

Pair = tuple[int | None, int | None]

UNPAIRED = 2.0          # cost of an added or removed layer; pairing wins below 2 x this
RENAMED = 1.0
PER_ARG = 0.5           # per changed arg, counted up to MAX_ARGS
MAX_ARGS = 3
OTHER_OP = 2.5          # the same name holding another op (relu -> gelu)
OTHER_SIZE = 0.25       # params differ: prefer the pairing that keeps shapes
MAX_CELLS = 250_000     # larger gaps fall back to aligning op names (the table is quadratic)


def arg_dict(node: Node) -> dict[str, Any]:
    """A node's resolved args as plain JSON values (every field, defaults included)."""
    return node.args.model_dump(mode="json")


def changed_args(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{arg: (old, new)} for the args that differ; an arg one side lacks is None there."""
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


class Side:
    """One network's nodes with their args and hashable alignment keys, computed once."""

    def __init__(self, nodes: list[Node]):
        self.nodes = nodes
        self.args = [arg_dict(n) for n in nodes]
        self.shape_keys = [(n.op.name, json.dumps(a, sort_keys=True)) for n, a in zip(nodes, self.args)]
        self.full_keys = [(n.name, *k) for n, k in zip(nodes, self.shape_keys)]


def align(a_nodes: list[Node], b_nodes: list[Node]) -> list[Pair]:
    """Every node of A and of B once, in order: (i, j) paired, (i, None) removed, (None, j) added."""
    a, b = Side(a_nodes), Side(b_nodes)
    return _matched(a.full_keys, b.full_keys, 0, 0, lambda *gap: _by_args(a, b, *gap))


def _matched(ka: list, kb: list, oa: int, ob: int, gap) -> list[Pair]:
    """Pair the equal runs of two key lists (offset by oa, ob); hand each gap to `gap`."""
    out: list[Pair] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ka, kb, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(zip(range(oa + i1, oa + i2), range(ob + j1, ob + j2)))
        else:
            out.extend(gap(oa + i1, oa + i2, ob + j1, ob + j2))
    return out


def _by_args(a: Side, b: Side, i1: int, i2: int, j1: int, j2: int) -> list[Pair]:
    if i1 == i2 or j1 == j2:
        return _unpaired(i1, i2, j1, j2)
    return _matched(a.shape_keys[i1:i2], b.shape_keys[j1:j2], i1, j1,
                    lambda *gap: _by_cost(a, b, *gap))


def _unpaired(i1: int, i2: int, j1: int, j2: int) -> list[Pair]:
    return [(i, None) for i in range(i1, i2)] + [(None, j) for j in range(j1, j2)]


def pair_cost(a: Side, b: Side, i: int, j: int) -> float:
    na, nb = a.nodes[i], b.nodes[j]
    same_name = na.name == nb.name
    if na.op.name != nb.op.name:
        return OTHER_OP if same_name else float("inf")
    cost = 0.0 if same_name else RENAMED
    cost += PER_ARG * min(MAX_ARGS, len(changed_args(a.args[i], b.args[j])))
    return cost + (OTHER_SIZE if na.params != nb.params else 0.0)


def _by_cost(a: Side, b: Side, i1: int, i2: int, j1: int, j2: int) -> list[Pair]:
    n, m = i2 - i1, j2 - j1
    if n == 0 or m == 0:
        return _unpaired(i1, i2, j1, j2)
    if n * m > MAX_CELLS:      # two unrelated networks: pair equal op names, no table
        ops_a = [x.op.name for x in a.nodes[i1:i2]]
        ops_b = [x.op.name for x in b.nodes[j1:j2]]
        return _matched(ops_a, ops_b, i1, j1, _unpaired)
    inf = float("inf")
    # d[i][j]: cheapest alignment of the first i nodes of the gap in A with the first j in B
    d = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        d[i][0] = i * UNPAIRED
    for j in range(1, m + 1):
        d[0][j] = j * UNPAIRED
    for i in range(1, n + 1):
        row, prev = d[i], d[i - 1]
        for j in range(1, m + 1):
            c = pair_cost(a, b, i1 + i - 1, j1 + j - 1)
            row[j] = min(prev[j - 1] + c if c < inf else inf, prev[j] + UNPAIRED, row[j - 1] + UNPAIRED)
    out: list[Pair] = []
    i, j = n, m
    while i or j:           # walk back; on ties prefer pairing, then (listed last) an addition
        if i and j and d[i][j] == d[i - 1][j - 1] + pair_cost(a, b, i1 + i - 1, j1 + j - 1):
            out.append((i1 + i - 1, j1 + j - 1))
            i, j = i - 1, j - 1
        elif j and d[i][j] == d[i][j - 1] + UNPAIRED:
            out.append((None, j1 + j - 1))
            j -= 1
        else:
            out.append((i1 + i - 1, None))
            i -= 1
    out.reverse()
    return out
