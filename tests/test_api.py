"""The Python API at the package top (archc.Net): one-line repr, the notebook's HTML table, and
net.summary(format=...) returning exactly what `archc summary` prints. Also: the IR keeps data
only (nothing in spec/ir/ops reaches down the pipeline), and `archc zoo PATTERN`."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import archc
from archc.ir.graph import Network
from test_cli import cli_in

HERE = Path(__file__).parent
SPECS = HERE / "specs"
PACKAGE = HERE.parent / "archc"


def test_load_returns_the_facade_over_the_ir():
    net = archc.load("lenet5")
    assert isinstance(net, archc.Net) and isinstance(net, Network)
    assert (net.params, net.macs, net.output_shapes) == (61706, 416520, [(10,)])
    assert set(net.graph.nodes) == {"input", *(n.name for n in net.nodes)}
    for name in ("summary", "source", "to_module", "_repr_html_"):
        assert not hasattr(Network, name), f"the IR Network must keep data only: {name}"


def test_nothing_upstream_imports_the_later_stages():
    """spec -> ir -> ops come before emit/report/render/train/cli and the facade: none of their
    modules may import those, at the top or inside a function."""
    later = ("archc.emit", "archc.report", "archc.render", "archc.train", "archc.cli", "archc.net")
    bad = []
    for stage in ("spec", "ir", "ops"):
        for f in sorted((PACKAGE / stage).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [f"{node.module}.{a.name}" for a in node.names] if isinstance(node, ast.ImportFrom) else []
                bad += [f"{f.relative_to(PACKAGE)}: {n}" for n in names
                        if n.startswith(later) or n in ("archc", "archc.load", "archc.Net")]
    assert bad == []


def test_repr_is_one_line_with_the_figures():
    r = repr(archc.load("resnet50"))
    assert r == "<archc.Net resnet50: input [3, 224, 224] -> [1000], 25,557,032 params, 4.09 G MACs>"
    aux = repr(archc.load("googlenet_aux"))            # the training-only heads are not outputs at eval
    assert "\n" not in aux and "-> [1000]," in aux and "(aux)" in aux
    two = archc.load({"archc": 1, "name": "two", "input": [8], "outputs": ["a", "b"],
                      "layers": [{"linear": 4, "id": "a"}, {"linear": 2, "id": "b"}]})
    assert repr(two) == "<archc.Net two: input [8] -> a [4], b [2], 46 params, 40 MACs>"


@pytest.mark.parametrize("args", [
    {}, {"depth": 1}, {"rf": True}, {"memory": True}, {"batch": 8, "dtype": "bf16", "optimizer": "sgd-momentum"},
])
@pytest.mark.parametrize("fmt", ["table", "md", "json", "csv"])
def test_summary_text_is_what_the_cli_prints(monkeypatch, fmt, args):
    if fmt == "csv" and ("memory" in args or "batch" in args):
        with pytest.raises(archc.SpecError, match="no place in CSV"):
            archc.load(SPECS / "resnet_small.yaml").summary(format=fmt, **args)
        return
    run = cli_in(monkeypatch, SPECS)
    flags = [x for k, v in args.items() for x in ([f"--{k}"] if v is True else [f"--{k}", v])]
    printed = run("summary", "resnet_small.yaml", "--format", fmt, *flags).stdout
    assert archc.load(SPECS / "resnet_small.yaml").summary(format=fmt, **args) == printed


def test_summary_dict_stays_the_default():
    net = archc.load(SPECS / "resnet_small.yaml")
    assert net.summary() == json.loads(net.summary(format="json"))
    assert net.summary(depth=1)["layers"] == json.loads(net.summary(format="json", depth=1))["layers"]
    assert net.summary(batch=16)["memory"]["batch"] == 16        # batch implies the memory estimate
    with pytest.raises(archc.SpecError, match="format 'html'"):
        net.summary(format="html")
    with pytest.raises(archc.SpecError, match="dtype 'int8'"):
        net.summary(dtype="int8")


def rows(html: str) -> int:
    return html.count("<tr>")


def test_html_of_a_small_network_shows_every_layer():
    net = archc.load("lenet5")
    html = net._repr_html_()
    assert html.startswith("<table") and html.endswith("</table>")
    for n in net.nodes:
        assert f">{n.name}<" in html
    assert ">61,706 (61.71 k)<" in html and "416,520" in html and "folded" not in html
    assert rows(html) == 1 + len(net.nodes) + 8         # header, layers, totals


def test_html_of_resnet152_stays_modest():
    net = archc.load("resnet152")
    html = net._repr_html_()
    assert len(net.nodes) > 500
    assert len(html) < 25_000, len(html)                 # the issue saw millions of characters
    assert rows(html) < 80
    assert "resnet (resnet152)" in html and "60,192,808" in html and "11,513," in html
    assert "blocks folded to depth 2" in html and ">layer3.35<" in html and ">bottleneck<" in html
    # a wide flat network past the row limit: the first and last rows, with the count between
    flat = archc.load({"archc": 1, "name": "flat", "input": [8],
                       "layers": [{"linear": 8, "repeat": 200, "name": "fc${i}"}]})
    html = flat._repr_html_()
    assert rows(html) < 80 and "more rows" in html and ">fc199<" in html


def test_html_escapes_what_it_shows():
    from archc.report.formats import to_html
    data = archc.load({"archc": 1, "name": "tiny", "input": [4], "layers": [{"linear": 2}]}).summary()
    data["name"], data["layers"][0]["name"] = "<script>x</script>", "a&b"
    html = to_html(data, note="<i>")
    assert "<script>" not in html and "&lt;script&gt;" in html and ">a&amp;b<" in html and "&lt;i&gt;" in html


def test_zoo_pattern(monkeypatch):
    run = cli_in(monkeypatch, SPECS)
    out = run("zoo", "resnet*").stdout
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnetv2_50"} <= set(names)
    assert all(n.startswith("resnet") for n in names)
    data = json.loads(run("zoo", "MOBILENET_V3*", "--format", "json").stdout)    # any case
    assert [r["name"] for r in data] == ["mobilenet_v3_large", "mobilenet_v3_small"]
    r = run("zoo", "mobilenet", code=2)
    # mobilenet_v2, mobilenetv1_100, mobilenet_v3_large/small, deeplabv3_mobilenet_v3_large
    assert "no zoo entry matches 'mobilenet' (did you mean '*mobilenet*'? it matches 6)" in r.stderr
    r = run("zoo", "resnt*", code=2)
    assert re.search(r"did you mean 'resnet\w*'", r.stderr) and "Traceback" not in r.output
