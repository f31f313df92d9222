"""`archc render`: DOT written from the IR (checked by a small parser, and by Graphviz when it is
installed), blocks as clusters, repeats folded with their count, shapes on the edges, the
automatic default for big networks, and the command line's errors."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.ops.base import REGISTRY
from archc.render import MAX_HEIGHT, image, layout, plan, render_dot, to_dot
from archc.report.summary import layer_rows
from archc.spec.zoo import entries

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "tests" / "specs"
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's `dot` program is not installed "
                               "(apt-get install graphviz): DOT text is still checked by the parser")


# -- a small DOT reader: enough of the grammar to check what archc writes ---------------------------

STRING = r'"(?:[^"\\]|\\.)*"'
ATTR = re.compile(rf'(\w+)=({STRING}|[^,\]\s]+)')
NODE = re.compile(r'^(\w+) \[(.*)\];$')
EDGE = re.compile(r'^(\w+) -> (\w+) \[(.*)\];$')


def unescape(s: str) -> str:
    """DOT's escapes: \\n and \\l end a line (centred, left); \\" and \\\\ are themselves."""
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] in "nl" else m[1], s)


def attrs(text: str) -> dict[str, str]:
    out = {k: unescape(v[1:-1]) if v.startswith('"') else v for k, v in ATTR.findall(text)}
    assert ATTR.sub("", text).strip(", ") == "", f"unparsed attributes in {text!r}"
    return out


def parse(dot: str):
    """(nodes {id: attrs + 'cluster': innermost cluster label}, edges [(src, dst, attrs)], cluster labels)."""
    lines = [line.strip() for line in dot.strip().splitlines()]
    assert re.fullmatch(rf'digraph {STRING} \{{', lines[0]) and lines[-1] == "}", "not one digraph"
    nodes, edges, stack, clusters = {}, [], [], []
    for line in lines[1:-1]:
        if m := re.fullmatch(r"subgraph (cluster_\d+) \{", line):
            stack.append(None)
        elif line == "}":
            assert stack, "unbalanced braces"
            stack.pop()
        elif line.startswith("label=") and stack and stack[-1] is None:
            stack[-1] = attrs(line.rstrip(";").replace("; ", ", "))["label"]
            clusters.append(stack[-1])
        elif line.startswith(("graph [", "node [", "edge [")):
            attrs(line[line.index("[") + 1:-2])
        elif m := EDGE.fullmatch(line):
            edges.append((m[1], m[2], attrs(m[3])))
        elif m := NODE.fullmatch(line):
            assert m[1] not in nodes, f"node {m[1]} declared twice"
            nodes[m[1]] = {**attrs(m[2]), "cluster": stack[-1] if stack else None}
        else:
            raise AssertionError(f"not DOT that archc writes: {line!r}")
    assert not stack, "unbalanced braces"
    for src, dst, _ in edges:
        assert src in nodes and dst in nodes, f"edge {src} -> {dst} to an undeclared node"
    return nodes, edges, clusters


def shape(s) -> str:
    return "x".join(map(str, s))


@pytest.fixture(scope="module")
def resnet50():
    return archc.load("resnet50")


@pytest.fixture
def run(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def invoke(*args, code=0):
        result = CliRunner().invoke(main, ["render", *map(str, args)], catch_exceptions=False)
        assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result
    return invoke


# -- what is drawn --------------------------------------------------------------------------------

def test_every_op_and_edge_with_its_ir_shape(resnet50):
    nodes, edges, _ = parse(to_dot(layout(resnet50)))
    assert {f"n{n.index}" for n in resnet50.nodes} | {"input", "out0"} == set(nodes)
    drawn = {(src, dst): a["label"] for src, dst, a in edges}
    ir_edges = [(f"n{i}" if i >= 0 else "input", f"n{n.index}", shape(resnet50.nodes[i].out if i >= 0 else resnet50.input))
                for n in resnet50.nodes for i in n.inputs]
    assert len(ir_edges) + 1 == len(edges)                       # + the edge to the output
    for src, dst, label in ir_edges:
        assert drawn[(src, dst)] == label
    assert drawn[("n174", "out0")] == "1000"


def test_blocks_are_clusters_and_merges_small_nodes(resnet50):
    nodes, edges, clusters = parse(to_dot(layout(resnet50)))
    assert sum(c.startswith("bottleneck\n") for c in clusters) == 16
    assert "bottleneck\nlayer3.0  (1.5M params)\n" in clusters   # label lines end on the left
    conv = nodes["n4"]
    assert conv["label"] == "conv 1x1, 64\n4.1K params" and conv["cluster"].startswith("bottleneck\nlayer1.0")
    assert nodes["n0"]["label"] == "conv 7x7 /2, 64\n9.4K params" and nodes["n0"]["cluster"] is None
    adds = [n for n in resnet50.nodes if n.op.name == "add"]
    for n in adds:       # the residual: a "+" with the shortcut as its second incoming edge
        assert nodes[f"n{n.index}"]["label"] == "+" and nodes[f"n{n.index}"]["shape"] == "circle"
        assert sum(dst == f"n{n.index}" for _, dst, _ in edges) == 2


@pytest.mark.parametrize("spec,depth", [("resnet50", 1), ("resnet50", 2), ("resnet50", 3), ("densenet121", 2),
                                        ("googlenet_aux", 2), ("inception_resnet_v2", 3)])
def test_depth_groups_as_summary_does(spec, depth):
    net = archc.load(spec)
    lay = layout(net, depth)
    groups: dict[str, list[str]] = {}
    for n in net.nodes:
        groups.setdefault(lay.drawn[n.index], []).append(n.name)
    by_summary: dict[str, list[str]] = {}
    for n in net.nodes:
        by_summary.setdefault(".".join(n.name.split(".")[:depth]), []).append(n.name)
    assert list(by_summary) == [r["name"] for r in layer_rows(net, depth)]
    assert sorted(groups.values()) == sorted(by_summary.values())


def test_resnet50_repeats_fold_with_their_count(resnet50):
    """At depth 2 each stage is its first bottleneck (a downsampling one: another structure)
    then the identical rest, folded: 3, 4, 6, 3 blocks are 1 + 2, 1 + 3, 1 + 5, 1 + 2."""
    nodes, edges, _ = parse(to_dot(layout(resnet50, 2, fold=True)))
    boxes = [a["label"].split("\n") for k, a in nodes.items() if k.startswith("b")]
    assert [b[:2] for b in boxes] == [
        ["bottleneck", "layer1.0"], ["bottleneck x2", "layer1.1..2"],
        ["bottleneck", "layer2.0"], ["bottleneck x3", "layer2.1..3"],
        ["bottleneck", "layer3.0"], ["bottleneck x5", "layer3.1..5"],
        ["bottleneck", "layer4.0"], ["bottleneck x2", "layer4.1..2"]]
    rows = {r["name"]: r["params"] for r in layer_rows(resnet50, 2)}
    from archc.render.dot import count
    assert boxes[5][2] == f"{count(sum(rows[f'layer3.{i}'] for i in range(1, 6)))} params"
    assert [a["shape"] for k, a in nodes.items() if k.startswith("b")] == ["box", "box3d"] * 4
    chain = [(s, d, a["label"]) for s, d, a in edges if s.startswith("b") and d.startswith("b")]
    assert chain[:3] == [("b4", "b16", "256x56x56"), ("b16", "b36", "256x56x56"), ("b36", "b48", "512x28x28")]


def test_folded_run_draws_one_repeat_with_ranges():
    """DenseNet's dense layers: one drawn, x6, shapes and params that grow shown as ranges,
    and no edge from one repeat back to the next."""
    net = archc.load("densenet121")
    nodes, edges, clusters = parse(to_dot(layout(net, fold=True)))
    assert any(c.startswith("dense_layer x6\nfeatures.denseblock1.denselayer1..denselayer6") for c in clusters)
    assert any(c.startswith("dense_layer x24\n") for c in clusters)
    labels = {a["label"] for _, _, a in edges}
    assert "64..224x56x56" in labels and "128..480x28x28" in labels
    bn = next(a for a in nodes.values() if a.get("tooltip") == "features.denseblock1.denselayer1.norm1")
    assert bn["label"] == "bn\n128..448 params"      # 2C for C = 64, 96, ..., 224
    drawn = {n.index for n in net.nodes if f"n{n.index}" in nodes}
    assert len(drawn) < len(net.nodes) // 5
    for src, dst, _ in edges:      # a DAG: the folded repeats add no back edge
        assert src == "input" or dst.startswith("out") or int(src[1:]) < int(dst[1:])


def test_args_that_differ_keep_repeats_apart():
    """Consecutive blocks of one class fold only when their args match (rates aside): the
    Inception stem's three basic_convs (3x3/2 32, 3x3 32, 3x3 64) stay three."""
    nodes, _, clusters = parse(render_dot(archc.load("inception_v3"), repeats="fold"))
    assert not any(c.startswith("basic_conv x") and "Conv2d_1a" in c for c in clusters)
    stem = [a["label"].split("\n")[0] for a in nodes.values() if str(a.get("tooltip", "")).startswith("Conv2d_")]
    assert stem[:3] == ["conv 3x3 /2, 32", "bn eps=0.001", "relu"]


def test_training_only_heads_are_dashed():
    nodes, edges, clusters = parse(render_dot(archc.load("googlenet_aux"), repeats="expand"))
    assert any(c.startswith("inception_aux\naux1") and c.endswith("training only\n") for c in clusters)
    aux = [a for a in nodes.values() if str(a.get("tooltip", "")).startswith("aux1.")]
    assert aux and all("dashed" in a["style"] for a in aux)
    assert "dashed" in nodes["out2"]["style"] and "dashed" not in nodes["out0"].get("style", "")


def test_op_descriptions():
    def text(spec_layer, shape_in):
        net = archc.load({"archc": 1, "name": "t", "input": list(shape_in), "layers": [spec_layer]})
        n = net.nodes[0]
        return n.op.describe(n.args, n.in_shapes)
    assert text({"conv": {"out": 64, "k": 3, "stride": 2, "pad": 1}}, (3, 32, 32)) == "conv 3x3 /2, 64"
    assert text({"conv": {"out": 6, "k": 3, "groups": 3}}, (3, 8, 8)) == "conv 3x3, 6, depthwise"
    assert text({"conv": {"out": 8, "k": 3, "groups": 2, "dilation": 2}}, (4, 16, 16)) == "conv 3x3, 8, g2, d2"
    assert text({"conv": {"out": 8, "k": 5}}, (4, 16)) == "conv 5, 8"                   # 1d
    assert text({"maxpool": 2}, (4, 8, 8)) == "maxpool 2x2 /2"
    assert text({"linear": 10}, (16,)) == "linear 10"
    assert text({"dropout": 0.25}, (16,)) == "dropout p=0.25"                 # the generic default
    assert text({"bn": {"eps": 1e-3}}, (4, 8, 8)) == "bn eps=0.001"
    assert text({"relu": {"inplace": True}}, (4,)) == "relu"                  # quiet args left out
    assert {op.describe(op.Args(), [(4,), (4,)]) for op in (REGISTRY["add"], REGISTRY["mul"])} == {"+", "×"}


# -- the default for big networks -------------------------------------------------------------------

def test_auto_draws_small_networks_whole():
    lay, note = plan(archc.load(str(SPECS / "resnet_small.yaml")))
    assert note is None and not lay.fold and lay.depth is None


def test_auto_folds_resnet152_and_keeps_it_short():
    net = archc.load("resnet152")
    lay, note = plan(net)
    assert lay.fold and lay.depth is None and "509 nodes tall" in note
    assert lay.height() <= MAX_HEIGHT < layout(net).height()
    _, _, clusters = parse(to_dot(lay))
    assert any(c.startswith("bottleneck x35\nlayer3.1..35") for c in clusters)


def test_auto_cuts_at_a_depth_when_folding_is_not_enough():
    net = archc.load("efficientnet_b7")
    lay, note = plan(net)
    assert lay.depth is not None and f"--depth {lay.depth}" in note and lay.height() <= MAX_HEIGHT
    assert layout(net, lay.depth + 1, True).height() > MAX_HEIGHT      # the deepest that fits


def test_explicit_choices_are_kept():
    net = archc.load("resnet152")
    assert plan(net, repeats="expand")[0].height() == layout(net).height()
    lay, note = plan(net, depth=1)
    assert note is None and lay.depth == 1 and lay.fold


# -- every network of the zoo -----------------------------------------------------------------------

ENTRIES = [e.name for e in entries()]


@pytest.mark.parametrize("name", ENTRIES)
def test_zoo_entry_renders(name):
    net = archc.load(name)
    text = render_dot(net)
    nodes, edges, _ = parse(text)
    lay = plan(net)[0]
    assert set(lay.drawn.values()) <= set(nodes)      # every op is drawn by some node
    if DOT is not None:          # all 57 take about 2 s on one core
        done = subprocess.run([DOT, "-Tsvg"], input=text.encode(), capture_output=True, timeout=60)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
        assert done.stdout.startswith(b"<?xml")


@needs_dot
def test_graphviz_accepts_every_form(resnet50):
    for lay in (layout(resnet50), layout(resnet50, 2), layout(resnet50, 2, True), layout(resnet50, None, True)):
        done = subprocess.run([DOT, "-Tsvg"], input=to_dot(lay, "LR").encode(), capture_output=True, timeout=60)
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()


# -- the command line -------------------------------------------------------------------------------

def test_cli_prints_dot_by_default(run):
    text = run(SPECS / "resnet_small.yaml").stdout
    assert text == run(SPECS / "resnet_small.yaml", "-o", "-").stdout
    assert text == render_dot(archc.load(str(SPECS / "resnet_small.yaml")))
    parse(text)
    assert "rankdir=LR" in run(SPECS / "resnet_small.yaml", "--rankdir", "lr").stdout


def test_cli_spec_options_and_depth(run):
    text = run("resnet50", "--depth", "2", "--input", "3x128x128").stdout
    assert '"bottleneck x5\\nlayer3.1..5' in text and "2048x4x4" in text
    text = run(ROOT / "specs" / "resnet.yaml", "--variant", "resnet101", "--set", "num_classes=10", "--depth", "2").stdout
    assert "resnet (resnet101)" in text and '"bottleneck x22\\nlayer3.1..22' in text and 'label="10"' in text
    assert "unknown variant" in run(ROOT / "specs" / "resnet.yaml", "--variant", "resnet5", code=2).stderr


def test_cli_writes_dot_file(run, tmp_path):
    result = run("lenet5", "-o", "net.gv")
    assert "wrote net.gv" in result.stderr
    parse((tmp_path / "net.gv").read_text())


def test_cli_auto_note(run):
    result = run("resnet152")
    assert "note: every op would be 509 nodes tall" in result.stderr and "x35" in result.stdout


@needs_dot
def test_cli_draws_svg_and_png(run, tmp_path):
    run("resnet18", "-o", "net.svg")
    assert b"<svg" in (tmp_path / "net.svg").read_bytes()
    run("resnet18", "-o", "net.png", "--depth", "2")
    assert (tmp_path / "net.png").read_bytes().startswith(b"\x89PNG")


def test_cli_without_graphviz_says_what_to_install(run, monkeypatch, tmp_path):
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    result = run("resnet18", "-o", "net.svg", code=2)
    assert "Graphviz" in result.stderr and "apt-get install graphviz" in result.stderr
    assert "brew install graphviz" in result.stderr and "-o net.dot" in result.stderr
    assert not (tmp_path / "net.svg").exists()
    run("resnet18", "-o", "net.dot")            # DOT needs no Graphviz
    assert (tmp_path / "net.dot").read_text().startswith('digraph "resnet"')


def test_cli_without_graphviz_on_path(run, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert "not on PATH" in run("lenet5", "-o", "x.png", code=2).stderr


def test_cli_bad_output_extension(run, tmp_path):
    result = run("lenet5", "-o", "net.jpeg", code=2)
    assert "cannot render to 'net.jpeg'" in result.stderr and ".svg" in result.stderr and ".dot" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "net.jpeg").exists()
    run("lenet5", "-o", "net", code=2)


def test_cli_graphviz_failure_exits_1(run, monkeypatch):
    monkeypatch.setattr(image, "find_dot", lambda: shutil.which("false") or "/bin/false")
    assert "Graphviz failed" in run("lenet5", "-o", "x.svg", code=1).stderr


def test_cli_bad_spec_and_unwritable_output(run):
    assert "error" in run("no_such_network", code=2).stderr
    assert "cannot write" in run("lenet5", "-o", "no/such/dir/net.dot", code=2).stderr


def test_render_never_imports_torch():
    code = ("import sys; from archc.cli import main\n"
            "for args in (['render', 'resnet50'], ['render', 'googlenet_aux', '--depth', '2', '-o', '-']):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
