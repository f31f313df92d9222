"""Regenerate the comparison table of docs/counting.md from tests/reference/counters.csv (what
torchinfo, fvcore, ptflops, thop and torchprofile report for the reference models) next to
archc's static figures for the zoo entry of the same name. Run: python scripts/gen_counting.py"""
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import archc  # noqa: E402
from archc.spec import zoo  # noqa: E402

BEGIN, END = "<!-- counters:begin -->", "<!-- counters:end -->"
COLUMNS = [("torchinfo", "macs_torchinfo"), ("fvcore", "macs_fvcore"), ("ptflops", "macs_ptflops_pytorch"),
           ("thop", "macs_thop"), ("torchprofile", "macs_torchprofile")]


def table() -> str:
    names = {e.name: e for e in zoo.entries()}
    lines = ["| model | archc params | archc MACs | torchvision \"GFLOPS\" | "
             + " | ".join(c for c, _ in COLUMNS) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(COLUMNS)]
    for row in csv.DictReader(open(ROOT / "tests/reference/counters.csv")):
        e = names.get(row["key"])
        if e is None:
            continue
        net = archc.load(e.spec, variant=e.variant)
        cells = [f"{int(row[col]):,}" + ("" if int(row[col]) != net.macs else " (=)") for _, col in COLUMNS]
        lines.append(f"| {row['key']} | {net.params:,} | {net.macs:,} | {row['tv_published_gflops'] or '-'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def page(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    doc = ROOT / "docs/counting.md"
    doc.write_text(page(doc.read_text()))
    print("wrote", doc)
