"""Renderings of a summary dict: a rich table, JSON, Markdown and CSV."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

COLUMNS = ("name", "op", "out", "params", "macs")


def human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def shape(s) -> str:
    if s and isinstance(s[0], list):
        return " + ".join(shape(x) for x in s)
    return "[" + ", ".join(map(str, s)) + "]"


def totals(s: dict[str, Any]) -> list[tuple[str, str]]:
    mem = s["memory"]
    out = [
        ("Input", shape(s["input"])),
        ("Output", shape(s["output"]) if not (s["output"] and isinstance(s["output"][0], list))
         else ", ".join(f"{k} {shape(v)}" for k, v in s["outputs"].items())),
        ("Params", f"{s['params']:,} ({human(s['params'])})"),
        ("Buffers", f"{s['buffers']:,}"),
        ("MACs", f"{s['macs']:,} ({human(s['macs'])})"),
        ("FLOPs", f"{s['flops']:,} ({human(s['flops'])})"),
        (f"Params size ({mem['dtype']})", human(mem["params_bytes"] + mem["buffers_bytes"], "B")),
        ("Activations / sample", human(mem["activations_bytes_per_sample"], "B")),
    ]
    return out


def to_json(s: dict[str, Any]) -> str:
    return json.dumps(s, indent=1)


def to_csv(s: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    rf = has_rf(s)
    w.writerow(["name", "op", "in", "out", "params", "buffers", "macs", "flops", "train_only"]
               + (["rf_size", "rf_jump", "rf_start"] if rf else []))
    for r in s["layers"]:
        w.writerow([r["name"], r["op"], shape(r["in"]), shape(r["out"]), r["params"], r["buffers"],
                    r["macs"], r["flops"], r["train_only"]] + (list(rf_cells(r)) if rf else []))
    return buf.getvalue()


TRAIN_NOTE = "(train): runs in training mode only (an auxiliary head); not counted in MACs or FLOPs."


def op_label(r: dict[str, Any]) -> str:
    """The op column; training-only rows say so in words (colour alone is lost in a pipe)."""
    return f"{r['op']} (train)" if r["train_only"] else r["op"]


def to_markdown(s: dict[str, Any]) -> str:
    rf = has_rf(s)
    lines = [f"# {s['name']}" + (f" ({s['variant']})" if s.get("variant") else ""), "",
             "| Layer | Op | Output | Params | MACs |" + (" RF | Jump | Start |" if rf else ""),
             "|---|---|---|---:|---:|" + ("---:|---:|---:|" if rf else "")]
    for r in s["layers"]:
        lines.append(f"| {r['name']} | {op_label(r)} | {shape(r['out'])} | {r['params']:,} | {r['macs']:,} |"
                     + ("".join(f" {c} |" for c in rf_cells(r)) if rf else ""))
    if any(r["train_only"] for r in s["layers"]):
        lines += ["", TRAIN_NOTE]
    lines += ["", "| Total | |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in totals(s)]
    if "batch" in s["memory"]:
        lines += ["", f"| Training memory ({memory_title(s['memory'])}) | |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in memory_lines(s["memory"])]
    return "\n".join(lines) + "\n"


def table_lines(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary table as (line, style) pairs, laid out by hand: rich's Table measures every
    cell and costs about a millisecond a row, which a 300-layer network would feel."""
    head = ("Layer", "Op", "Output shape", "Params", "MACs")
    right = (False, False, False, True, True)
    rows = [(r["name"], op_label(r), shape(r["out"]), f"{r['params']:,}" if r["params"] else "-",
             f"{r['macs']:,}" if r["macs"] else "-") for r in s["layers"]]
    if has_rf(s):
        head, right = head + ("RF", "Jump", "Start"), right + (True, True, True)
        rows = [row + rf_cells(r) for row, r in zip(rows, s["layers"])]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]

    def fmt(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    title = s["name"] + (f" ({s['variant']})" if s.get("variant") else "")
    out = [(title, "bold"), (fmt(head), "bold")]
    out += [(fmt(row), "dim" if r["train_only"] else "") for row, r in zip(rows, s["layers"])]
    if any(r["train_only"] for r in s["layers"]):
        out.append((TRAIN_NOTE, "dim"))
    out.append(("", ""))
    foot = totals(s)
    kw, vw = max(len(k) for k, _ in foot), max(len(v) for _, v in foot)
    out += [(f"{k.ljust(kw)}  {v.rjust(vw)}", "") for k, v in foot]
    if "batch" in s["memory"]:
        mem = memory_lines(s["memory"])
        kw, vw = max(len(k) for k, _ in mem), max(len(v) for _, v in mem)
        out += [("", ""), (f"Training memory ({memory_title(s['memory'])})", "bold")]
        out += [(f"{k.ljust(kw)}  {v.rjust(vw)}", "") for k, v in mem]
    return out


def to_table(s: dict[str, Any]) -> str:
    return "\n".join(line for line, _ in table_lines(s)) + "\n"


def print_table(s: dict[str, Any]) -> None:
    """The table on a terminal: the same text, with rich styles (bold header, dim train rows)."""
    from rich.console import Console
    from rich.text import Text
    text = Text()
    for line, style in table_lines(s):
        text.append(line + "\n", style=style or None)
    Console(highlight=False, soft_wrap=True).print(text, end="")


RENDER = {"table": to_table, "json": to_json, "md": to_markdown, "csv": to_csv}


def to_html(s: dict[str, Any], note: str = "", limit: int = 80) -> str:
    """The summary table as one HTML table (a notebook's view): layers, then totals; past
    `limit` layers, the first and last ones with a count of those left out between them."""
    from html import escape

    def cell(tag: str, text: str, align: str = "left", span: int = 1) -> str:
        wide = f' colspan="{span}"' if span > 1 else ""
        return f'<{tag}{wide} style="text-align:{align};padding:0 .6em">{escape(text)}</{tag}>'
    aligns = ("left", "left", "left", "right", "right")
    head = ("Layer", "Op", "Output shape", "Params", "MACs")
    rows = ["<tr>" + "".join(cell("td", c, a) for c, a in zip(
        (r["name"], op_label(r), shape(r["out"]), f"{r['params']:,}", f"{r['macs']:,}"), aligns)) + "</tr>"
        for r in s["layers"]]
    if len(rows) > limit:
        tail = limit // 4
        gap = "<tr>" + cell("td", f"... {len(rows) - limit:,} more rows ...", "center", 5) + "</tr>"
        rows = rows[:limit - tail] + [gap] + rows[-tail:]
    foot = ["<tr>" + cell("th", k) + cell("td", v, span=4) + "</tr>" for k, v in totals(s)]
    title = s["name"] + (f" ({s['variant']})" if s.get("variant") else "")
    caption = f"<b>{escape(title)}</b>" + (f"<br><small>{escape(note)}</small>" if note else "")
    return ('<table style="font-family:monospace;font-size:90%">'
            f'<caption style="text-align:left">{caption}</caption>'
            f"<thead><tr>{''.join(cell('th', h, a) for h, a in zip(head, aligns))}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody>"
            f'<tbody style="border-top:1px solid">{"".join(foot)}</tbody></table>')


# -- receptive fields and training memory (summary --rf / --memory) ----------------------------

def has_rf(s: dict[str, Any]) -> bool:
    return bool(s["layers"]) and "rf" in s["layers"][0]


def rf_cells(r: dict[str, Any]) -> tuple[str, str, str]:
    """(size, jump, start), one value per spatial dim: '11x11', '4x4', '-2x-2'; 'whole' once the
    field is the whole input; '-' without spatial dims."""
    from archc.ir.receptive import text
    f = r.get("rf")
    if f is None:
        return "-", "-", "-"
    if f["whole"]:
        return "whole", "-", "-"
    return text(f["size"]), text(f["jump"]), text(f["start"])


def binary(n: float) -> str:
    for scale, suffix in ((2 ** 40, "TiB"), (2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n:g} B"


OPTIMIZER_NOTE = {"sgd": "no state", "sgd-momentum": "1 copy of the params",
                  "adam": "2 copies of the params", "adamw": "2 copies of the params"}


def memory_title(m: dict[str, Any]) -> str:
    return f"batch {m['batch']}, {m['dtype']}, {m['optimizer']}"


def memory_lines(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [("Parameters", binary(m["params_bytes"])), ("Buffers", binary(m["buffers_bytes"])),
            ("Gradients", binary(m["grads_bytes"])),
            (f"Optimizer state ({OPTIMIZER_NOTE[m['optimizer']]})", binary(m["optimizer_bytes"])),
            ("Activations saved for backward", binary(m["saved_activations_bytes"])),
            ("Total", binary(m["total_bytes"]))]
