"""What a diagram draws: the module tree as nested items, cut at a depth, with runs of repeated
blocks folded into one item that carries its count.

Depth means what it means for `summary --depth`: a module whose path has `depth` parts is drawn
as one box holding all its ops. A run of repeats is consecutive sibling instances of one block
class with the same layers, arguments and wiring (input sizes may differ, as DenseNet's grow, and
so may real-valued arguments, as EfficientNet's drop-path rates), chained output to input; it is
drawn once, marked `xN`."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from archc.ir.graph import Module, Network, Node
from archc.ops.base import Shape
from archc.report.summary import module_index

OUTPUT = -2     # a consumer index standing for the network's outputs


@dataclass(eq=False)
class Item:
    """One thing drawn: an op node ('op'), a module folded into one node ('box'), or a cluster."""
    kind: str
    path: str                           # dotted module path; an op's scoped name
    module: Module | None
    instances: list[list[Node]]         # the nodes of each repeat, in order; one list unless folded
    children: list["Item"] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.instances)

    @property
    def nodes(self) -> list[Node]:
        return self.instances[0]

    @property
    def paths(self) -> list[str]:
        """The module path of every instance (the first one is `path`)."""
        depth = self.path.count(".") + 1
        return [".".join(inst[0].name.split(".")[:depth]) for inst in self.instances]


@dataclass
class Layout:
    net: Network
    items: list[Item]
    drawn: dict[int, str]               # IR node index -> id of the DOT node that draws it
    runs: dict[int, dict[int, int]]     # IR node index -> {run id: instance number}, per folded run
    depth: int | None = None
    fold: bool = False

    def nodes_drawn(self) -> int:
        def count(items):
            return sum(count(i.children) if i.kind == "cluster" else 1 for i in items)
        return count(self.items)

    @cached_property
    def edges(self) -> dict[tuple[str, str], tuple[list[Shape], bool]]:
        """(from, to) -> (the shapes it carries, training only), for every IR edge as drawn:
        duplicates (the repeats of a folded run) merged; edges inside a box and edges from one
        repeat to the next left out (the run's count says it). 'input' and 'out<k>' are the ends."""
        net, drawn, runs = self.net, self.drawn, self.runs
        found: dict[tuple[str, str], tuple[list[Shape], bool]] = {}
        for n in net.nodes:
            for i in n.inputs:
                src, dst = drawn[i] if i >= 0 else "input", drawn[n.index]
                if src == dst or (i >= 0 and _between_repeats(runs[i], runs[n.index])):
                    continue
                shapes, _ = found.setdefault((src, dst), ([], n.train_only))
                shapes.append(net.nodes[i].out if i >= 0 else net.input)
        for k, (_, producer, train_only) in enumerate(net.outputs):
            src = drawn[producer.index] if producer is not None else "input"
            found[(src, f"out{k}")] = ([producer.out if producer is not None else net.input], train_only)
        return found

    def height(self) -> int:
        """Nodes on the longest path from input to an output: how tall the drawing is."""
        rank = {"input": 1}
        for src, dst in self.edges:     # IR order is topological, and so is this
            rank[dst] = max(rank.get(dst, 0), rank.get(src, 1) + 1)
        return max(rank.values())


def _between_repeats(a: dict[int, int], b: dict[int, int]) -> bool:
    return any(run in b and b[run] != k for run, k in a.items())


class Index:
    """What every layout of a network reads: the nodes under each module path, and the consumers
    of each node. Made once per network (plan() tries several depths)."""

    def __init__(self, net: Network):
        modules = set(module_index(net.root))
        self.under: dict[str, list[Node]] = {"": net.nodes}     # module path -> its nodes, in order
        for n in net.nodes:
            prefix = ""
            for part in n.name.split("."):
                prefix = f"{prefix}.{part}" if prefix else part
                if prefix in modules:
                    self.under.setdefault(prefix, []).append(n)
        self.consumers: dict[int, list[int]] = {n.index: [] for n in net.nodes}
        for n in net.nodes:
            for i in n.inputs:
                if i >= 0:
                    self.consumers[i].append(n.index)
        for _, producer, _ in net.outputs:
            if producer is not None:
                self.consumers[producer.index].append(OUTPUT)


def layout(net: Network, depth: int | None = None, fold: bool = False, index: Index | None = None) -> Layout:
    return _Builder(net, depth, fold, index or Index(net)).build()


class _Builder:
    def __init__(self, net: Network, depth: int | None, fold: bool, index: Index):
        self.net, self.depth, self.fold = net, depth, fold
        self.under, self.consumers = index.under, index.consumers
        self.drawn: dict[int, str] = {}
        self.runs: dict[int, dict[int, int]] = {n.index: {} for n in net.nodes}
        self.run_ids = 0

    def build(self) -> Layout:
        items = self.items(self.net.root, "", 0)
        for item in items:
            self.assign(item)
        return Layout(self.net, items, self.drawn, self.runs, self.depth, self.fold)

    # -- the tree of items ------------------------------------------------------------------
    def items(self, m: Module, path: str, level: int) -> list[Item]:
        """The items drawn inside module `m`: its children and its module-less ops (merges)."""
        entries: list[tuple[int, Item]] = []
        for c in m.children:
            cpath = f"{path}.{c.attr}" if path else c.attr
            nodes = self.under.get(cpath, [])
            if not nodes:
                continue
            if c.kind == "op":
                item = Item("op", cpath, c, [nodes])
            elif self.depth is not None and level + 1 >= self.depth:
                item = Item("box", cpath, c, [nodes])
            else:
                item = Item("cluster", cpath, c, [nodes], self.items(c, cpath, level + 1))
            entries.append((nodes[0].index, item))
        owned = {n.index for _, item in entries for n in item.nodes}
        for n in self.under.get(path, []):
            if n.index not in owned and n.name.rpartition(".")[0] == path:
                entries.append((n.index, Item("op", n.name, None, [[n]])))
        items = [item for _, item in sorted(entries, key=lambda e: e[0])]
        return self.fold_runs(items) if self.fold else items

    def fold_runs(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for item in items:
            last = out[-1] if out else None
            if last is not None and self.repeats(last, item):
                last.instances.append(item.nodes)
            else:
                out.append(item)
        return out

    def repeats(self, run: Item, item: Item) -> bool:
        """Does `item` continue `run`: same block, same layers and wiring, fed only by the run's
        last instance, which feeds nothing else?"""
        if item.kind == "op" or run.kind != item.kind or run.module.kind != "class":
            return False
        if item.module.block != run.module.block or item.module.kind != "class":
            return False
        prev, cur = run.instances[-1], item.nodes
        if self.signature(run.path, run.nodes) != self.signature(item.path, cur):
            return False
        prev_ids, cur_ids = {n.index for n in prev}, {n.index for n in cur}
        fed = all(i in prev_ids for n in cur for i in n.inputs if i not in cur_ids)
        feeds = all(c in cur_ids for n in prev for c in self.consumers[n.index] if c not in prev_ids)
        return fed and feeds

    @staticmethod
    def signature(path: str, nodes: list[Node]) -> tuple:
        """Layers, args and wiring of one instance, by names relative to it (inputs from outside
        are '^'). Real-valued args (rates, scales) may differ: the labels show them as ranges."""
        start = len(path) + 1
        rel = {n.index: n.name[start:] for n in nodes}
        return tuple((rel[n.index], n.op.name, tuple(rel.get(i, "^") for i in n.inputs),
                      tuple((k, repr(v)) for k, v in n.args if not isinstance(v, float))) for n in nodes)

    # -- which DOT node draws each IR node ----------------------------------------------------
    def assign(self, item: Item):
        if item.kind == "op":
            self.drawn[item.nodes[0].index] = f"n{item.nodes[0].index}"
        elif item.kind == "box":
            for n in item.nodes:
                self.drawn[n.index] = f"b{item.nodes[0].index}"
        else:
            for child in item.children:
                self.assign(child)
        if item.count > 1:
            run = self.run_ids = self.run_ids + 1
            for k, inst in enumerate(item.instances):
                for first, n in zip(item.nodes, inst):
                    self.drawn[n.index] = self.drawn[first.index]
                    self.runs[n.index][run] = k
