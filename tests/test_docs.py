"""Generated documentation stays generated: each page equals what its generator writes now."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_counting_comparison_is_current():
    spec = importlib.util.spec_from_file_location("gen_counting", ROOT / "scripts" / "gen_counting.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    doc = (ROOT / "docs" / "counting.md").read_text()
    assert gen.page(doc) == doc, "docs/counting.md is stale: run `python scripts/gen_counting.py`"


def test_reference_table_is_current():
    """archc/zoo/references.json is scripts/gen_references.py over tests/reference."""
    import json
    import subprocess
    import sys
    before = json.loads((ROOT / "archc" / "zoo" / "references.json").read_text())
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_references.py")], capture_output=True,
                         text=True, check=True)
    assert "references" in out.stdout
    assert json.loads((ROOT / "archc" / "zoo" / "references.json").read_text()) == before
