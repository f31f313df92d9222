"""`archc diff`: what differs between two compiled networks, layer by layer, as one plain dict
(the JSON form), and its text and Markdown renderings.

Layers are paired by `align` (names first, then op and args). A pair is *changed* when its op,
args, name, parameter count or wiring differs. Wiring is compared only where every producer of
both layers is paired: next to an added or removed layer the wiring differs by construction
and the added/removed entry already says so. Layers whose only difference
is their output shape (a new input size flows through every layer) are not listed: the totals
say it."""
from __future__ import annotations

import json
from typing import Any

from archc.ir.graph import Network, Node
from archc.report.align import align, arg_dict, changed_args
from archc.report.formats import human, shape
from archc.report.summary import module_index

TOTALS = ("params", "buffers", "macs", "flops")


def side(net: Network, label: str) -> dict[str, Any]:
    outs = net.output_shapes
    return {"spec": label, "name": net.name, "variant": net.variant, "input": list(net.input),
            "output": list(outs[0]) if len(outs) == 1 else [list(s) for s in outs],
            "layers": len(net.nodes), "params": net.params, "buffers": net.buffers,
            "macs": net.macs, "flops": net.flops}


def diff_networks(a: Network, b: Network, a_label: str = "a", b_label: str = "b") -> dict[str, Any]:
    pairs = align(a.nodes, b.nodes)
    a_to_b = {i: j for i, j in pairs if i is not None and j is not None}
    paired_b = set(a_to_b.values())
    layers = []
    for i, j in pairs:
        if j is None:
            layers.append(one_side("removed", a.nodes[i]))
        elif i is None:
            layers.append(one_side("added", b.nodes[j]))
        else:
            na, nb = a.nodes[i], b.nodes[j]
            e = changed(na, nb)
            if all(k < 0 or k in a_to_b for k in na.inputs) and all(k < 0 or k in paired_b for k in nb.inputs) \
                    and [a_to_b.get(k, k) for k in na.inputs] != nb.inputs:
                e["from"] = [[input_name(a, k) for k in na.inputs], [input_name(b, k) for k in nb.inputs]]
            if len(e) > 3:
                layers.append(e)
    sa, sb = side(a, a_label), side(b, b_label)
    same_totals = all(sa[k] == sb[k] for k in (*TOTALS, "input", "output", "layers"))
    return {
        "a": sa, "b": sb,
        "identical": not layers and same_totals,
        "counts": {k: sum(e["change"] == k for e in layers) for k in ("added", "removed", "changed")},
        "layers": layers,
        "folds": {"added": folds(b, {e["name"] for e in layers if e["change"] == "added"}),
                  "removed": folds(a, {e["name"] for e in layers if e["change"] == "removed"})},
    }


def one_side(change: str, n: Node) -> dict[str, Any]:
    return {"change": change, "name": n.name, "op": n.op.name, "args": arg_dict(n),
            "written": sorted(n.args.model_fields_set), "out": list(n.out), "params": n.params}


def changed(na: Node, nb: Node) -> dict[str, Any]:
    """The differences of a pair; just the first three keys when there are none."""
    e: dict[str, Any] = {"change": "changed", "name": nb.name, "op": nb.op.name}
    if na.name != nb.name:
        e["old_name"] = na.name
    if na.op.name != nb.op.name:
        e["old_op"] = na.op.name
    args = changed_args(arg_dict(na), arg_dict(nb))
    if args:
        e["args"] = {k: list(v) for k, v in args.items()}
    if na.params != nb.params:
        e["params"] = [na.params, nb.params]
    return e


def input_name(net: Network, k: int) -> str:
    return "input" if k < 0 else net.nodes[k].name


def folds(net: Network, names: set[str]) -> dict[str, dict[str, Any]]:
    """Layer name -> the largest module all of whose layers are in `names`, for one-line
    reporting of a whole added block: {layer: {"module", "block", "layers", "params"}}."""
    if not names:
        return {}
    total: dict[str, int] = {}
    hit: dict[str, int] = {}
    for n in net.nodes:
        for p in prefixes(n.name):
            total[p] = total.get(p, 0) + 1
            hit[p] = hit.get(p, 0) + (n.name in names)
    mods = module_index(net.root)
    params: dict[str, int] = {}
    out = {}
    for n in net.nodes:
        if n.name in names:
            top = next(p for p in prefixes(n.name) if hit[p] == total[p])
            params[top] = params.get(top, 0) + n.params
            m = mods.get(top)
            out[n.name] = {"module": top, "block": m.block if m is not None else None, "layers": total[top]}
    for v in out.values():
        v["params"] = params[v["module"]]
    return out


def prefixes(name: str) -> list[str]:
    """'layer3.6.conv1' -> ['layer3', 'layer3.6', 'layer3.6.conv1'], outermost first."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


# -- renderings ------------------------------------------------------------------------------

def value(v: Any) -> str:
    """An arg value as a spec would write it (true, null, [3, 3])."""
    return json.dumps(v) if isinstance(v, (bool, type(None), list, dict)) else str(v)


def detail(e: dict[str, Any]) -> str:
    """What one entry says after its name and op."""
    if e["change"] != "changed":
        args = ", ".join(f"{k}={value(e['args'][k])}" for k in e["args"] if k in e["written"])
        return "  ".join(x for x in (args, shape(e["out"]), f"{e['params']:,} params" if e["params"] else "") if x)
    parts = []
    if "old_op" in e:
        parts.append(f"op {e['old_op']} -> {e['op']}")
    parts += [f"{k} {value(o)} -> {value(n)}" for k, (o, n) in e.get("args", {}).items()]
    if "params" in e:
        parts.append(f"params {e['params'][0]:,} -> {e['params'][1]:,}")
    if "from" in e:
        parts.append(f"from {', '.join(e['from'][0])} -> {', '.join(e['from'][1])}")
    if "old_name" in e and len(parts) == 0:
        parts.append("renamed")
    return "; ".join(parts)


def rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(mark, layer, op, detail) per entry; a wholly added or removed module is one row."""
    out, seen = [], set()
    for e in d["layers"]:
        fold = d["folds"].get(e["change"], {}).get(e["name"])
        if fold and fold["layers"] > 1:
            if (e["change"], fold["module"]) in seen:
                continue
            seen.add((e["change"], fold["module"]))
            what = f"{fold['layers']} layers" + (f", {fold['params']:,} params" if fold["params"] else "")
            out.append(("+" if e["change"] == "added" else "-", fold["module"], fold["block"] or "module", what))
            continue
        mark = {"added": "+", "removed": "-", "changed": "~"}[e["change"]]
        name = f"{e['old_name']} -> {e['name']}" if "old_name" in e else e["name"]
        out.append((mark, name, e["op"], detail(e)))
    return out


def total_rows(d: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    a, b = d["a"], d["b"]
    out = [("Layers", str(a["layers"]), str(b["layers"]), delta(a["layers"], b["layers"]))]
    for key, label in (("params", "Params"), ("buffers", "Buffers"), ("macs", "MACs"), ("flops", "FLOPs")):
        out.append((label, f"{a[key]:,}", f"{b[key]:,}", delta(a[key], b[key])))
    for key, label in (("input", "Input"), ("output", "Output")):
        out.append((label, shape(a[key]), shape(b[key]), "" if a[key] == b[key] else "differs"))
    return out


def delta(x: int, y: int) -> str:
    if x == y:
        return "="
    pct = ""
    if x:
        r = (y - x) / x
        pct = f" ({r:+.1%})" if abs(r) >= 0.0005 else f" ({'+' if r > 0 else '-'}<0.1%)"
    return f"{y - x:+,}{pct}"


def title(s: dict[str, Any]) -> str:
    return f"{s['spec']} ({s['name']}" + (f", variant {s['variant']})" if s["variant"] else ")")


def counts_line(d: dict[str, Any]) -> str:
    c = d["counts"]
    return f"{c['added']} added, {c['removed']} removed, {c['changed']} changed"


def to_text(d: dict[str, Any]) -> str:
    lines = [f"--- a: {title(d['a'])}", f"+++ b: {title(d['b'])}", ""]
    if d["identical"]:
        a = d["a"]
        lines.append(f"no differences ({a['layers']} layers, {a['params']:,} params, "
                     f"{human(a['macs'])} MACs)")
        return "\n".join(lines) + "\n"
    body = rows(d)
    if body:
        w = [min(48, max(len(r[k]) for r in body)) for k in (1, 2)]
        lines += [f"{m} {n.ljust(w[0])}  {op.ljust(w[1])}  {what}".rstrip() for m, n, op, what in body]
    else:
        lines.append("no layer differences")
    lines += ["", f"layers: {counts_line(d)}", ""]
    table = [("", "a", "b", "b - a"), *total_rows(d)]
    widths = [max(len(r[k]) for r in table) for k in range(4)]
    for r in table:
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]).rstrip())
    return "\n".join(lines) + "\n"


def to_markdown(d: dict[str, Any]) -> str:
    lines = [f"# diff: {d['a']['name']} vs {d['b']['name']}", "",
             f"- a: `{d['a']['spec']}`" + (f" (variant `{d['a']['variant']}`)" if d["a"]["variant"] else ""),
             f"- b: `{d['b']['spec']}`" + (f" (variant `{d['b']['variant']}`)" if d["b"]["variant"] else ""), ""]
    if d["identical"]:
        return "\n".join(lines + ["No differences."]) + "\n"
    body = rows(d)
    if body:
        lines += ["| | Layer | Op | Change |", "|---|---|---|---|"]
        lines += [f"| {m} | `{n}` | {op} | {what.replace('|', '/')} |" for m, n, op, what in body]
    else:
        lines.append("No layer differences.")
    lines += ["", f"Layers: {counts_line(d)}.", "", "| | a | b | b - a |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {x} | {y} | {z} |" for k, x, y, z in total_rows(d)]
    return "\n".join(lines) + "\n"


def to_json(d: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in d.items() if k != "folds"}, indent=1)


RENDER = {"text": to_text, "json": to_json, "md": to_markdown}
