"""Generated documentation stays generated: each page equals what its generator writes now."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counting_comparison_is_current():
    doc = (ROOT / "docs" / "counting.md").read_text()
    assert script("gen_counting").page(doc) == doc, "docs/counting.md is stale: run `python scripts/gen_counting.py`"


def test_reference_table_is_current():
    """archc/zoo/references.json is scripts/gen_references.py over tests/reference."""
    import json
    shipped = json.loads((ROOT / "archc" / "zoo" / "references.json").read_text())
    assert shipped == script("gen_references").build(), "run `python scripts/gen_references.py`"


def test_readme_commands_table_has_a_row_for_every_command():
    import re
    from archc.cli import main
    table = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `archc ")]
    named = {re.match(r"\| `archc (\w+)", row).group(1) for row in rows}
    assert named == set(main.commands), f"README's commands table: missing {set(main.commands) - named}"
    assert all(row.count("|") - row.count("\\|") == 3 for row in rows)      # one line, two cells each
