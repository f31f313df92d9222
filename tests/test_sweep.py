"""`archc sweep`: the grid (cardinality, order, every row equal to `archc.load` of its point),
the formats, failing points as rows, the Pareto front, the plot, bad grids, and a 2-point sweep
of every zoo spec.

Rewrite the golden files with ARCHC_UPDATE_GOLDEN=1 python -m pytest tests/test_sweep.py"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

import archc
from archc.report.sweep import parse_grid, pareto, split_values, spatial
from archc.spec import zoo
from test_cli import SPECS, check_golden, cli_in

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(monkeypatch):
    """The CLI in-process from tests/specs (so paths in messages are short)."""
    return cli_in(monkeypatch, SPECS)


def sweep_json(run, *args) -> dict:
    return json.loads(run("sweep", *args, "--format", "json").stdout)


# -- golden ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,suffix", [("table", "txt"), ("csv", "csv"), ("md", "md")])
def test_lenet_input_sweep_golden(run, fmt, suffix):
    out = run("sweep", "lenet5.yaml", "--grid", "input=8,16,32,1x48x48", "--format", fmt).stdout
    check_golden(f"lenet5.sweep.{suffix}", out)


# -- the grid --------------------------------------------------------------------------------

def test_grid_is_the_cartesian_product_in_order(run):
    d = sweep_json(run, "mobilenet_v2", "--grid", "width_mult=0.5,1.0,1.4", "--grid", "input=96,128")
    assert len(d["points"]) == 6
    assert [(p["point"]["width_mult"], p["point"]["input"]) for p in d["points"]] == \
        list(product([0.5, 1.0, 1.4], ["96", "128"]))
    assert d["axes"] == {"width_mult": [0.5, 1.0, 1.4], "input": [[96], [128]]}


def test_each_row_equals_load_of_its_point(run):
    d = sweep_json(run, "mobilenet_v2", "--grid", "width_mult=0.5,1.0", "--grid", "input=96,3x128x160",
                   "--set", "num_classes=10")
    for p in d["points"]:
        size = [3, 96, 96] if p["point"]["input"] == "96" else [3, 128, 160]
        net = archc.load("mobilenet_v2", input=size, width_mult=p["point"]["width_mult"], num_classes=10)
        s = net.summary()
        assert p["error"] is None
        assert (p["input"], p["output"]) == (size, [10])
        assert (p["params"], p["buffers"], p["macs"], p["flops"]) == (s["params"], s["buffers"], s["macs"], s["flops"])
        assert p["activations_bytes"] == s["memory"]["activations_bytes_per_sample"]


def test_variant_axis(run):
    variants = ["resnet18", "resnet50", "resnext50_32x4d"]
    d = sweep_json(run, str(ROOT / "specs/resnet.yaml"), "--grid", "variant=" + ",".join(variants),
                   "--grid", "input=160")
    for v, p in zip(variants, d["points"]):
        net = archc.load(ROOT / "specs/resnet.yaml", variant=v, input=[3, 160, 160])
        assert p["point"] == {"variant": v, "input": "160"}
        assert (p["params"], p["macs"]) == (net.params, net.macs)


def test_list_valued_var_axis(run):
    d = sweep_json(run, str(ROOT / "specs/resnet.yaml"), "--variant", "resnet18",
                   "--grid", "depth=[1, 1, 1, 1],[2, 2, 2, 2]")
    assert [p["point"]["depth"] for p in d["points"]] == [[1, 1, 1, 1], [2, 2, 2, 2]]
    assert d["points"][1]["params"] == archc.load("resnet18").params


def test_csv_parses(run):
    out = run("sweep", "lenet5.yaml", "--grid", "input=8,32", "--set", "num_classes=5", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["input"] for r in rows] == ["8", "32"]
    assert rows[0]["error"] and rows[0]["params"] == ""
    ok = rows[1]
    net = archc.load(SPECS / "lenet5.yaml", num_classes=5)
    assert (int(ok["params"]), int(ok["macs"]), ok["input_shape"], ok["pareto"]) == (net.params, net.macs, "1x32x32", "True")


def test_failing_points_are_rows(run):
    r = run("sweep", "lenet5.yaml", "--grid", "input=4,8,32")
    lines = r.stdout.splitlines()
    assert sum("error:" in line for line in lines) == 2
    assert "kernel 5 is larger than the padded input" in r.stdout
    assert "3 points, 2 failed" in r.stdout
    d = sweep_json(run, "lenet5.yaml", "--grid", "input=4,8,32")
    assert [p["error"] is None for p in d["points"]] == [False, False, True]
    assert d["points"][0]["params"] is None and d["points"][0]["pareto"] is False


def test_spatial_sizes():
    assert spatial([3, 224, 224], [160]) == [3, 160, 160]
    assert spatial([3, 224, 224], [160, 128]) == [3, 160, 128]
    assert spatial([3, 224, 224], [1, 64, 64]) == [1, 64, 64]
    assert spatial([2, 100], [50]) == [2, 50]
    assert spatial([784], [100]) == [100]
    with pytest.raises(archc.SpecError, match="2 spatial dim"):
        spatial([3, 224, 224], [1, 2, 3, 4])


def test_split_values():
    assert split_values("0.5, 1.0,2") == ["0.5", "1.0", "2"]
    assert split_values("[1, 2],[3, 4]") == ["[1, 2]", "[3, 4]"]
    assert [a.values for a in parse_grid(["x=1,0.5,true,abc"])] == [[1, 0.5, True, "abc"]]


# -- the Pareto front ------------------------------------------------------------------------

def test_pareto_hand_made():
    pts = [(1, 10), (2, 5), (3, 5), (4, 1), (2, 5), (5, 20), (4, 3), (1, 12), (6, 1)]
    # (3,5) by (2,5); (5,20) by all; (4,3) by (4,1); (1,12) by (1,10); (6,1) by (4,1)
    assert pareto(pts) == [True, True, False, True, True, False, False, False, False]
    assert pareto([]) == []
    assert pareto([(7, 7)]) == [True]


def test_front_matches_brute_force(run):
    d = sweep_json(run, str(ROOT / "specs/resnet.yaml"), "--grid",
                   "variant=resnet50,resnext50_32x4d,wide_resnet50_2,resnet101", "--grid", "input=160,224")
    pts = [(p["params"], p["macs"]) for p in d["points"]]

    def dominated(q):
        return any(p[0] <= q[0] and p[1] <= q[1] and p != q for p in pts)
    assert [p["pareto"] for p in d["points"]] == [not dominated(q) for q in pts]
    front = [(p["point"]["variant"], p["point"]["input"]) for p in d["points"] if p["pareto"]]
    assert front == [("resnet50", "160"), ("resnext50_32x4d", "160")]     # a real trade-off


# -- the plot --------------------------------------------------------------------------------

def test_plot_png_and_svg(run, tmp_path):
    png, svg = tmp_path / "front.png", tmp_path / "front.svg"
    args = ["sweep", str(ROOT / "specs/resnet.yaml"), "--grid", "variant=resnet50,resnext50_32x4d",
            "--grid", "input=128,160"]
    r = run(*args, "--plot", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in r.stderr
    run(*args, "--plot", svg)
    assert "<svg" in svg.read_text()[:2000]
    assert "resnext50_32x4d, 128" in svg.read_text()             # a front point is labelled


def test_plot_bad_suffix_and_missing_matplotlib(run, tmp_path, monkeypatch):
    r = run("sweep", "lenet5.yaml", "--grid", "input=32", "--plot", tmp_path / "x.jpeg", code=2)
    assert "give a file ending in .png, .svg, .pdf" in r.stderr
    monkeypatch.setitem(sys.modules, "matplotlib", None)       # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    r = run("sweep", "lenet5.yaml", "--grid", "input=32", "--plot", tmp_path / "x.png", code=2)
    assert "--plot needs matplotlib" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_plot_with_every_point_failed(run, tmp_path):
    r = run("sweep", "lenet5.yaml", "--grid", "input=4", "--plot", tmp_path / "x.png", code=2)
    assert "every point failed" in r.stderr


# -- bad grids -------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--grid", "widht_mult=0.5,1.0"], "no var named 'widht_mult' (did you mean 'width_mult'?)"),
    (["--grid", "variant=cifar,nope"], "no variant 'nope'"),
    (["--grid", "input=224,abc"], "--grid input=abc: expected a size"),
    (["--grid", "input=0"], "--grid input=0: expected a size"),
    (["--grid", "width_mult"], "--grid expects NAME=V1,V2,..."),
    (["--grid", "width_mult=0.5,"], "empty name or value"),
    (["--grid", "width_mult=0.5", "--grid", "width_mult=1.0"], "given twice"),
    (["--set", "num_clases=10"], "--set num_clases: no var named"),
    (["--variant", "nope"], "--variant: no variant 'nope'"),
    (["--input", "3xabc"], "--input 3xabc: expected a size"),
])
def test_bad_grid_exits_2(run, args, message):
    r = run("sweep", "mobilenet_v2", *args, code=2)
    assert message in r.stderr and "Traceback" not in r.stderr


def test_unknown_var_names_the_valid_ones(run):
    r = run("sweep", "mobilenet_v2", "--grid", "depth=1,2", code=2)
    assert "vars: num_classes, width_mult" in r.stderr and "'variant' and 'input'" in r.stderr


def test_bad_spec_exits_2(run):
    assert "no such file" in run("sweep", "missing.yaml", "--grid", "input=32", code=2).stderr


def test_sweep_never_imports_torch():
    code = ("import sys; from archc.cli import main\n"
            "try: main(['sweep', 'lenet5', '--grid', 'input=16,32', '--grid', 'num_classes=2,10'])\n"
            "except SystemExit as e: assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


# -- every zoo spec --------------------------------------------------------------------------

@pytest.mark.parametrize("path", zoo.spec_files(), ids=lambda p: str(p.relative_to(zoo.ZOO_DIR)))
def test_every_zoo_spec_two_sizes(run, path):
    """Each spec at its own shape and with its frame 32 larger, both as full shapes: one size
    would also set the time dim of a video input ([C, T, H, W])."""
    net = archc.load(path)
    shape = list(net.input)
    larger = shape[:max(1, len(shape) - 2)] + [d + 32 for d in shape[max(1, len(shape) - 2):]]
    d = sweep_json(run, path, "--grid", f"input={'x'.join(map(str, shape))},{'x'.join(map(str, larger))}")
    assert len(d["points"]) == 2
    first = d["points"][0]
    assert first["error"] is None and (first["params"], first["macs"]) == (net.params, net.macs)
    assert first["input"] == shape
