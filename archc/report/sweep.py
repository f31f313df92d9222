"""`archc sweep`: one spec analysed statically at every point of a grid of vars, variants and
input sizes, with the Pareto front of (params, MACs) marked.

The spec file is read and validated once; each point is then only expanded and inferred
(`compile_source` on the same parsed source), which is where the time goes. A point that is bad
input (a shape error at a small resolution, a var value an expression cannot use) becomes a
row with its error; a bad grid (an unknown var or variant, an unreadable size) is an error of
the whole command."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from archc.errors import SpecError, did_you_mean
from archc.report.summary import summary_dict
from archc.spec.compile import compile_source, parse_override, read_flag
from archc.spec.load import load_file
from archc.spec.schema import SpecModel, validate

SPECIAL = ("variant", "input")
METRICS = ("params", "buffers", "macs", "flops", "output", "activations_bytes")


@dataclass
class Axis:
    name: str
    labels: list[str]        # the values as written
    values: list[Any]        # parsed: YAML scalars for vars, strings for variants, int lists for input


def split_values(raw: str) -> list[str]:
    """'0.5,1.0' -> ['0.5', '1.0']; commas inside brackets stay ('[1, 2],[3, 4]')."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    out.append(cur.strip())
    return out


def parse_size(text: str, flag: str = "--grid input=") -> list[int]:
    """'224' -> [224]; '224x192', '3x224x224', '[3, 224, 224]' -> their sizes."""
    try:
        v = read_flag(text, flag) if text.startswith("[") else [int(p) for p in text.lower().split("x")]
        if not isinstance(v, list) or not v or not all(isinstance(d, int) and d > 0 for d in v):
            raise ValueError
    except (ValueError, SpecError):
        raise SpecError(f"{flag}{text}: expected a size (224), sizes (224x192) or a shape "
                        f"(3x224x224) of positive integers") from None
    return v


def parse_axis(text: str) -> Axis:
    if "=" not in text:
        raise SpecError(f"--grid expects NAME=V1,V2,..., got {text!r}")
    name, _, raw = (p.strip() for p in text.partition("="))
    labels = split_values(raw)
    if not name or any(not x for x in labels):
        raise SpecError(f"--grid {text}: empty name or value")
    if name == "input":
        return Axis(name, labels, [parse_size(x) for x in labels])
    if name == "variant":
        return Axis(name, labels, labels)
    try:
        values = [read_flag(x, f"--grid {name}") for x in labels]
    except SpecError as e:
        raise SpecError(f"--grid {name}: {e.message}") from None
    return Axis(name, labels, values)


def parse_grid(texts) -> list[Axis]:
    axes = [parse_axis(t) for t in texts]
    seen = set()
    for a in axes:
        if a.name in seen:
            raise SpecError(f"--grid {a.name} given twice: list every value in one --grid {a.name}=...")
        seen.add(a.name)
    return axes


def spatial(base: list[int], size: list[int]) -> list[int]:
    """An input-axis value against the point's default shape: a full shape (as many sizes as the
    input has dims) is taken as is; fewer sizes replace the spatial dims, channels kept."""
    if len(size) == len(base):
        return list(size)
    spatial_dims = len(base) - 1
    if spatial_dims >= 1 and len(size) == 1:
        return [base[0]] + size * spatial_dims
    if spatial_dims >= 1 and len(size) == spatial_dims:
        return [base[0]] + size
    raise SpecError(f"input {'x'.join(map(str, size))}: the input is {base} "
                    f"({spatial_dims} spatial dim(s)); give one size, {spatial_dims} sizes, or a full shape")


class Sweep:
    """A spec read once, and the fixed settings every point starts from."""

    def __init__(self, spec: str, variant: str | None = None, sets=(), input_=None):
        from archc import locate
        path, zoo_variant = locate(spec)
        self.src = load_file(path)
        self.model = validate(SpecModel, self.src.tree, self.src, ())
        self.variant = variant if variant is not None else zoo_variant
        self.sets = dict(parse_override(s) for s in sets)
        self.input = None if input_ is None else parse_size(input_, "--input ")
        self._bases: dict[str | None, list[int] | SpecError] = {}
        for k in self.sets:
            self._check_var(k, "--set")
        if self.variant is not None:
            self._check_variant(self.variant, "--variant")

    def _check_var(self, name: str, flag: str) -> None:
        if name not in self.model.vars:
            names = ", ".join(self.model.vars) or "none"
            raise SpecError(f"{flag} {name}: no var named '{name}'{did_you_mean(name, self.model.vars)} "
                            f"in {self.src.file}; vars: {names} (and the axes 'variant' and 'input')")

    def _check_variant(self, name: str, flag: str) -> None:
        if name not in self.model.variants:
            names = ", ".join(self.model.variants) or "none"
            raise SpecError(f"{flag}: no variant '{name}'{did_you_mean(name, self.model.variants)} "
                            f"in {self.src.file}; variants: {names}")

    def check(self, axes: list[Axis]) -> None:
        for a in axes:
            if a.name == "variant":
                for v in a.values:
                    self._check_variant(v, "--grid variant")
            elif a.name != "input":
                self._check_var(a.name, "--grid")

    def base_shape(self, variant: str | None) -> list[int]:
        """The input shape a point has before its input-axis value applies."""
        if variant not in self._bases:
            try:
                self._bases[variant] = self._default_shape(variant)
            except SpecError as e:
                self._bases[variant] = e
        base = self._bases[variant]
        if isinstance(base, SpecError):
            raise base
        return base

    def _default_shape(self, variant: str | None) -> list[int]:
        shape = self.input
        if shape is None and variant is not None:
            shape = self.model.variants[variant].input
        if shape is None:
            shape = self.model.input
        if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
            return shape
        return list(self.compile(variant, {}, None).input)   # written as an expression over vars

    def compile(self, variant, overrides: dict[str, Any], shape):
        return compile_source(self.src, variant=variant, overrides={**self.sets, **overrides},
                              input=shape if shape is not None else self.input)

    def point(self, axes: list[Axis], combo: tuple[int, ...]) -> dict[str, Any]:
        """One grid point (`combo` indexes each axis's values) analysed: a row."""
        row: dict[str, Any] = {"point": {}, "input": None, **{k: None for k in METRICS},
                               "pareto": False, "error": None}
        variant, overrides, size = self.variant, {}, None
        for a, k in zip(axes, combo):
            row["point"][a.name] = a.labels[k] if a.name in SPECIAL else a.values[k]
            if a.name == "variant":
                variant = a.values[k]
            elif a.name == "input":
                size = a.values[k]
            else:
                overrides[a.name] = a.values[k]
        try:
            shape = spatial(self.base_shape(variant), size) if size is not None else None
            net = self.compile(variant, overrides, shape)
        except SpecError as e:
            row["error"] = str(e)
            return row
        s = summary_dict(net)
        row.update(input=s["input"], params=s["params"], buffers=s["buffers"], macs=s["macs"],
                   flops=s["flops"], output=s["output"],
                   activations_bytes=s["memory"]["activations_bytes_per_sample"])
        return row

    def run(self, axes: list[Axis]) -> list[dict[str, Any]]:
        self.check(axes)
        rows = [self.point(axes, combo) for combo in itertools.product(*(range(len(a.values)) for a in axes))]
        ok = [r for r in rows if r["error"] is None]
        for r, front in zip(ok, pareto([(r["params"], r["macs"]) for r in ok])):
            r["pareto"] = front
        return rows


def pareto(points: list[tuple[int, int]]) -> list[bool]:
    """Which points are on the Pareto front of (params, MACs), fewer of both being better: a
    point is on it when no other point has at most its params and at most its MACs with one of
    the two strictly fewer. Points with equal figures are both on it or both off."""
    order = sorted(range(len(points)), key=lambda k: points[k])
    front = [False] * len(points)
    best, last = None, None       # least MACs so far (over fewer or equal params); last front point
    for k in order:
        p = points[k]
        if best is None or p[1] < best or p == last:
            front[k] = True
            best, last = p[1], p
    return front


# -- renderings ------------------------------------------------------------------------------

def cell(v: Any) -> str:
    """An axis value in a table cell: as a spec would write it."""
    if isinstance(v, (bool, type(None))):
        return "true" if v is True else "false" if v is False else "null"
    return str(v)


def table_rows(axes: list[Axis], rows: list[dict[str, Any]], exact: bool = False) -> list[list[str]]:
    """Header and one list of cells a point; an error fills the figure columns."""
    from archc.report.formats import human, shape
    num = (lambda n: f"{n:,}") if exact else human
    head = [a.name for a in axes] + ["params", "MACs", "FLOPs", "output", "act/sample", "front"]
    out = [head]
    for r in rows:
        cells = [cell(r["point"][a.name]) for a in axes]
        if r["error"] is not None:
            out.append(cells + [f"error: {r['error']}"])
            continue
        out.append(cells + [num(r["params"]), num(r["macs"]), num(r["flops"]), shape(r["output"]),
                            human(r["activations_bytes"], "B"), "*" if r["pareto"] else ""])
    return out


def to_table(axes: list[Axis], rows: list[dict[str, Any]], title: str) -> str:
    body = table_rows(axes, rows)
    n_axes, width = len(axes), len(body[0])
    full = [r for r in body if len(r) == width]
    widths = [max(len(r[k]) for r in (body if k < n_axes else full)) for k in range(width)]
    lines = [title]
    for r in body:
        if len(r) < width:      # an error row: axis cells, then the message unpadded
            lines.append("  ".join([c.ljust(w) for c, w in zip(r[:n_axes], widths)] + r[n_axes:]).rstrip())
            continue
        lines.append("  ".join(c.ljust(w) if k < n_axes or k == width - 3 else c.rjust(w)
                               for k, (c, w) in enumerate(zip(r, widths))).rstrip())
    ok = [r for r in rows if r["error"] is None]
    lines += ["", f"{len(rows)} points, {len(rows) - len(ok)} failed; "
                  f"front (*): {sum(r['pareto'] for r in ok)} not dominated in (params, MACs)"]
    return "\n".join(lines) + "\n"


def to_markdown(axes: list[Axis], rows: list[dict[str, Any]], title: str) -> str:
    body = table_rows(axes, rows)
    width = len(body[0])
    lines = [f"# {title}", "", "| " + " | ".join(body[0]) + " |",
             "|" + "|".join(["---"] * len(axes) + ["---:"] * 3 + ["---", "---:", "---"]) + "|"]
    for r in body[1:]:
        r = r + [""] * (width - len(r))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in r) + " |")
    return "\n".join(lines) + "\n"


def to_csv(axes: list[Axis], rows: list[dict[str, Any]], title: str) -> str:
    import csv
    import io
    from archc.report.formats import shape
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([a.name for a in axes] + ["input_shape", *METRICS, "pareto", "error"])
    for r in rows:
        ok = r["error"] is None
        w.writerow([cell(r["point"][a.name]) for a in axes]
                   + ["x".join(map(str, r["input"])) if ok else "", r["params"], r["buffers"], r["macs"],
                      r["flops"], shape(r["output"]) if ok else "", r["activations_bytes"],
                      r["pareto"], r["error"] or ""])
    return buf.getvalue()


def to_json(axes: list[Axis], rows: list[dict[str, Any]], title: str) -> str:
    import json
    return json.dumps({"spec": title, "axes": {a.name: a.values for a in axes}, "points": rows}, indent=1)


RENDER = {"table": to_table, "csv": to_csv, "json": to_json, "md": to_markdown}
