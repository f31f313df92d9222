"""Write archc/zoo/references.json: the figures of every fixture in tests/reference (params,
buffers, MACs, shapes; no state_dicts or logits), so the installed package can tell whether a
zoo entry matches its reference. Run: python scripts/gen_references.py"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build() -> dict:
    out = {}
    for f in sorted((ROOT / "tests/reference/models").glob("*.json")):
        d = json.loads(f.read_text())
        out[d["name"]] = {"source": f"{d['library']} {d['library_version'].split('+')[0]}: {d['constructor']}"
                          + (f"({', '.join(f'{k}={v!r}' for k, v in d['kwargs'].items())})" if d["kwargs"] else ""),
                          "input": d["input"], "output": d["output"], "params": d["params"],
                          "buffers": d["buffers"], "macs": d["macs_conv_linear"]}
    for f in sorted((ROOT / "tests/reference/seeds").glob("*.json")):
        d = json.loads(f.read_text())
        out[d["name"]] = {"source": f"textbook: {d['where']}", "input": d["input"], "output": d["output"],
                          "params": d["params"], "bn_running_stats": d["bn_running_stats"],
                          "macs": d["macs_conv_linear"]}
    return out


if __name__ == "__main__":
    refs = build()
    (ROOT / "archc/zoo/references.json").write_text(json.dumps(refs, indent=1, sort_keys=True) + "\n")
    print(f"{len(refs)} references")
