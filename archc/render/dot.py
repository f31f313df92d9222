"""DOT text of a network, written directly (Graphviz is needed only to turn it into an image).

Ops are nodes labelled by their op's `describe()` and their parameter count; blocks are clusters;
edges carry the shape of the tensor they hold. Inside a folded run of repeats one instance is
drawn, so its labels show each value of that one instance, as a range where the repeats differ."""
from __future__ import annotations

from typing import Callable

from archc.ir.graph import Node
from archc.ops.base import REGISTRY, Shape
from archc.render.layout import Item, Layout

# pastel fills, given out to op families (the module an op is defined in) in sorted order
PALETTE = ["#e3f1de", "#dbe8f7", "#d5eef0", "#f7dede", "#e7def3", "#ffffff", "#fbf1cf", "#f3e2d3",
           "#ececec", "#eef3d2"]
FEW_OPS = 3      # a box of this many ops or fewer lists them
SEP = "·"
LEFT = "\\l"    # DOT: end a label line on the left
FAMILIES = sorted({type(op).__module__.rsplit(".", 1)[-1] for op in REGISTRY.values()})

GRAPH = ('  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=12, labelloc=t, newrank=true, '
         'nodesep=0.25, ranksep=0.3, label={title}];\n'
         '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
         'fillcolor="#ffffff", color="#555555", height=0.3, margin="0.12,0.04"];\n'
         '  edge [fontname="Helvetica", fontsize=8, color="#666666", fontcolor="#333333", arrowsize=0.6];')
CLUSTER = {   # (style, fill, border, pen width) of a block class, a sequence, a folded run
    "class": ("rounded,filled", "#f5f6fa", "#9aa0b4", 1),
    "seq": ("rounded,dashed", "", "#9a9a9a", 1),
    "run": ("rounded,filled", "#fff4e3", "#d08a2e", 2),
}


def to_dot(lay: Layout, rankdir: str = "TB") -> str:
    net = lay.net
    lines = [f"digraph {quote(net.name)} {{", GRAPH.format(rankdir=rankdir, title=quote(title(lay)))]
    lines.append(f'  input [label={quote("input" + chr(10) + shape_text(net.input))}, fillcolor="#e6e6e6"];')
    clusters = iter(range(1, 1 << 30))
    for item in lay.items:
        lines.extend(draw(item, "  ", lambda nodes: [nodes], clusters))
    for k, (name, producer, train_only) in enumerate(net.outputs):
        shape = net.input if producer is None else producer.out
        style = ', style="rounded,filled,dashed"' if train_only else ""
        lines.append(f'  out{k} [label={quote(name + chr(10) + shape_text(shape))}, fillcolor="#e6e6e6"{style}];')
    lines.extend(edges(lay))
    lines.append("}")
    return "\n".join(lines) + "\n"


def title(lay: Layout) -> str:
    net = lay.net
    name = net.name + (f" ({net.variant})" if net.variant else "")
    how = [f"depth {lay.depth}"] if lay.depth else []
    how += ["repeated blocks drawn once (xN)"] if lay.fold else []
    return f"{name}: {net.params:,} params, {count(net.macs)} MACs" + (f"\n{', '.join(how)}" if how else "")


# `copies(nodes)`: the same nodes in every repeat of the folded runs around an item (drawn once,
# its labels speak for all of them); just [nodes] outside any run.
Copies = Callable[[list[Node]], list[list[Node]]]


def draw(item: Item, pad: str, copies: Copies, clusters) -> list[str]:
    if item.kind == "op":
        return [pad + op_node([c[0] for c in copies(item.nodes)])]
    if item.kind == "box":
        return [pad + box_node(item, copies)]
    m = item.module
    kind = "run" if item.count > 1 else ("class" if m.kind == "class" and m.block else "seq")
    style, fill, border, pen = CLUSTER[kind]
    head = [f"{m.block} x{item.count}" if item.count > 1 else m.block] if m.block else []
    label = "\n".join(head + [paths_text(item.paths) + params_text(item, copies, "  ({} params)")]
                      + (["training only"] if all(n.train_only for n in item.nodes) else []))
    out = [f"{pad}subgraph cluster_{next(clusters)} {{",
           f'{pad}  label={quote(label, end=LEFT)}; labeljust=l; fontsize=10; style="{style}"; color="{border}"; '
           f'penwidth={pen};' + (f' fillcolor="{fill}";' if fill else "")]
    inner = copies if item.count == 1 else repeats_of(item, copies)
    for child in item.children:
        out.extend(draw(child, pad + "  ", inner, clusters))
    return out + [pad + "}"]


def repeats_of(run: Item, outer: Copies) -> Copies:
    """Copies inside a folded run: each node's counterpart in every repeat, in every outer copy."""
    position = {n.index: k for k, n in enumerate(run.nodes)}

    def copies(nodes: list[Node]) -> list[list[Node]]:
        return [c for inst in run.instances for c in outer([inst[position[n.index]] for n in nodes])]
    return copies


def params_text(item: Item, copies: Copies, fmt: str) -> str:
    """The parameters of an item (all its own repeats), per copy: a range where copies differ."""
    per_copy = [0] * len(copies(item.nodes))
    for inst in item.instances:
        for k, copy in enumerate(copies(inst)):
            per_copy[k] += sum(n.params for n in copy)
    return fmt.format(spread(per_copy, count)) if max(per_copy) else ""


def box_node(item: Item, copies: Copies) -> str:
    """A module folded into one node; a run of them, as a stack marked xN."""
    every = [c for inst in item.instances for c in copies(inst)]
    head = (item.module.block or item.module.kind) + (f" x{item.count}" if item.count > 1 else "")
    ops = [f" {SEP} ".join(merged([op_text(c[k]) for c in every]) for k in range(len(item.nodes)))
           ] if len(item.nodes) <= FEW_OPS else []     # a small box says what it holds
    label = "\n".join([head, paths_text(item.paths)] + ops + [params_text(item, copies, "{} params")])
    shape, style = ("box3d", "filled") if item.count > 1 else ("box", "rounded,filled")
    fill = CLUSTER["run" if item.count > 1 else "class"][1]
    return (f'b{item.nodes[0].index} [label={quote(label.rstrip())}, shape={shape}, style="{style}", '
            f'fillcolor="{fill}"{tooltip(item.paths)}{faded(item.nodes)}];')


def op_node(nodes: list[Node]) -> str:
    """One op; in a folded run, the same op of every repeat."""
    first = nodes[0]
    text = merged([op_text(n) for n in nodes])
    params = spread([n.params for n in nodes], count)
    if first.op.arity is None:      # merges: a small node that reads as the operation itself
        shape = "circle" if len(text) <= 2 else "box"
        return (f'n{first.index} [label={quote(text)}, shape={shape}, fillcolor="#ffffff", width=0.3, height=0.3, '
                f'margin="0.04,0.02", fontsize={14 if shape == "circle" else 9}{tooltip([first.name])}{faded(nodes)}];')
    label = text + (f"\n{params} params" if params != "0" else "")
    return f'n{first.index} [label={quote(label)}, fillcolor="{family_color(first)}"{tooltip([first.name])}{faded(nodes)}];'


def edges(lay: Layout) -> list[str]:
    return [f'  {src} -> {dst} [label={quote(shape_range(shapes))}{", style=dashed" if dashed else ""}];'
            for (src, dst), (shapes, dashed) in lay.edges.items()]


# -- text ------------------------------------------------------------------------------------

def op_text(n: Node) -> str:
    return n.op.describe(n.args, n.in_shapes)


def quote(s: str, end: str = "\\n") -> str:
    """A DOT string; `end` ends each line: \\n centres it, \\l puts it on the left."""
    lines = s.replace("\\", "\\\\").replace('"', '\\"').split("\n")
    return '"' + end.join(lines) + (end if end != "\\n" else "") + '"'


def tooltip(names: list[str]) -> str:
    return f", tooltip={quote(names[0] if len(names) == 1 else paths_text(names))}"


def faded(nodes: list[Node]) -> str:
    """Training-only layers (auxiliary heads) are drawn dashed and grey."""
    return ', style="rounded,filled,dashed", fontcolor="#777777"' if all(n.train_only for n in nodes) else ""


def family_color(node: Node) -> str:
    family = type(node.op).__module__.rsplit(".", 1)[-1]
    return PALETTE[FAMILIES.index(family) % len(PALETTE)] if family in FAMILIES else "#ffffff"


def count(v: int) -> str:
    """9408 -> 9.4K, 2359296 -> 2.4M."""
    for unit, div in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if v >= div:
            x = v / div
            return f"{x:.1f}{unit}" if x < 9.95 else f"{x:.0f}{unit}"
    return str(v)


def shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def shape_range(shapes: list[Shape]) -> str:
    """One shape, or where repeats differ, each dim as lo..hi: 64..224x56x56."""
    distinct = list(dict.fromkeys(shapes))
    if len(distinct) == 1:
        return shape_text(distinct[0])
    if len({len(s) for s in distinct}) > 1:
        return " | ".join(map(shape_text, distinct))
    return "x".join(spread(list(dims), str) for dims in zip(*distinct))


def spread(values: list[int], fmt) -> str:
    lo, hi = min(values), max(values)
    return fmt(lo) if lo == hi else f"{fmt(lo)}..{fmt(hi)}"


def merged(texts: list[str]) -> str:
    """One label for the same op of several repeats: 'conv 1x1, 128 … 192' where they differ."""
    if len(set(texts)) == 1:
        return texts[0]
    a, b = texts[0].split(" "), texts[-1].split(" ")
    same = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{texts[0]} … {' '.join(b[same:])}"


def paths_text(paths: list[str]) -> str:
    """'layer3.1' or, for a run, 'layer3.1..5'."""
    if len(paths) == 1:
        return paths[0]
    a, b = paths[0].split("."), paths[-1].split(".")
    same = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return ".".join(a) + ".." + ".".join(b[same:])
