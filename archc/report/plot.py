"""The sweep's scatter plot: params against MACs, the Pareto front marked and labelled.

matplotlib is optional (`pip install 'archc[plot]'`) and imported only here. The figure is built
with the object API (`matplotlib.figure.Figure`), never pyplot: no GUI backend, no global state;
saving picks the file backend from the suffix (Agg for PNG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from archc.errors import SpecError

FORMATS = (".png", ".svg", ".pdf")
WIDE = 10.0          # log axes when the largest value is more than this times the smallest


def point_label(axes, row: dict[str, Any]) -> str:
    return ", ".join(str(row["point"][a.name]) for a in axes)


def plot_front(axes, rows: list[dict[str, Any]], path: str, title: str) -> None:
    """Write the scatter of the successful rows (with `pareto` already computed) to `path`."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SpecError(f"--plot {path}: give a file ending in {', '.join(FORMATS)}")
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter
    except ImportError:
        raise SpecError("--plot needs matplotlib, which is not installed: "
                        "pip install 'archc[plot]' (or pip install matplotlib)") from None
    ok = [r for r in rows if r["error"] is None]
    if not ok:
        raise SpecError("--plot: every point failed, nothing to plot")
    front = sorted((r for r in ok if r["pareto"]), key=lambda r: (r["params"], r["macs"]))
    rest = [r for r in ok if not r["pareto"]]

    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.add_subplot()
    if rest:
        ax.scatter([r["params"] for r in rest], [r["macs"] for r in rest], s=18, color="0.65",
                   label="dominated", zorder=2)
    xs, ys = [r["params"] for r in front], [r["macs"] for r in front]
    ax.step(xs, ys, where="post", color="tab:red", linewidth=1, alpha=0.6, zorder=3)
    ax.scatter(xs, ys, s=30, color="tab:red", label="Pareto front", zorder=4)
    for k, r in enumerate(front):     # alternately above and below: front points sit close
        ax.annotate(point_label(axes, r), (r["params"], r["macs"]), xytext=(5, 5 if k % 2 == 0 else -11),
                    textcoords="offset points", fontsize=7, color="tab:red")
    for axis, values in ((ax.xaxis, [r["params"] for r in ok]), (ax.yaxis, [r["macs"] for r in ok])):
        lo, hi = min(values), max(values)
        if lo > 0 and hi / lo > WIDE:
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(EngFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("MACs")
    ax.set_title(f"{title}: params vs MACs", fontsize=11)
    if axes:
        ax.text(0.99, 0.01, "labels: " + ", ".join(a.name for a in axes), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="0.3")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    try:
        fig.savefig(path, dpi=150)
    except OSError as e:
        raise SpecError(f"cannot write {path}: {e.strerror}") from None
