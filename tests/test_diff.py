"""`archc diff`: golden output for the textbook's PyTorch and Keras CIFAR-10 CNN, how layers are
paired (an insertion is one added layer wherever it lands), what a change reports, the totals
against the two summaries, bad input, and every zoo spec against itself.

Rewrite the golden files with ARCHC_UPDATE_GOLDEN=1 python -m pytest tests/test_diff.py"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import archc
from archc.report.diff import diff_networks
from archc.spec import zoo
from test_cli import check_golden, cli_in

ROOT = Path(__file__).resolve().parent.parent
KERAS = "examples/cifar10_cnn_keras.yaml"


@pytest.fixture
def run(monkeypatch):
    """The CLI in-process from the repository root (so spec paths in the output are short)."""
    return cli_in(monkeypatch, ROOT, expect=None)


def write_spec(tmp_path: Path, name: str, layers: list, **extra) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"archc": 1, "name": name, "input": [3, 32, 32], **extra,
                                    "layers": layers}, sort_keys=False))
    return path


def as_json(run, a, b, *args) -> dict:
    return json.loads(run("diff", a, b, "--format", "json", *args).stdout)


# -- the shipped example ---------------------------------------------------------------------

@pytest.mark.parametrize("fmt,suffix", [("text", "txt"), ("md", "md")])
def test_cifar_pytorch_vs_keras_golden(run, fmt, suffix):
    out = run("diff", "seed_cifar10_cnn", KERAS, "--format", fmt, code=1).stdout
    check_golden(f"cifar10_cnn_keras.diff.{suffix}", out)


def test_cifar_pytorch_vs_keras_findings(run):
    d = as_json(run, "seed_cifar10_cnn", KERAS)
    by_name = {e["name"]: e for e in d["layers"]}
    assert d["counts"] == {"added": 1, "removed": 0, "changed": 9}
    for unit in ("unit1", "unit2", "unit3"):
        assert by_name[f"{unit}.drop"]["args"] == {"channel": [True, False]}
        assert by_name[f"{unit}.conv1.1"]["args"] == {"eps": [1e-5, 1e-3], "momentum": [0.1, 0.01]}
    added = [e for e in d["layers"] if e["change"] == "added"]
    assert [(e["op"], e["out"]) for e in added] == [("softmax", [10])]
    assert d["a"]["params"] == d["b"]["params"] == 293_034       # the same weights, other behaviour


# -- identical -------------------------------------------------------------------------------

def test_identical_specs_exit_0(run):
    r = run("diff", "seed_cifar10_cnn", "archc/zoo/textbook/cifar10_cnn.yaml", code=0)
    assert "no differences" in r.stdout
    assert as_json(run, "resnet50", "specs/resnet.yaml@resnet50")["identical"] is True


def test_options_apply_to_both_sides(run):
    d = as_json(run, "seed_cifar10_cnn", KERAS, "--set", "num_classes=100", "--input", "3x64x64")
    assert d["a"]["output"] == d["b"]["output"] == [100]
    assert d["a"]["input"] == d["b"]["input"] == [3, 64, 64]


@pytest.mark.parametrize("path", zoo.spec_files(), ids=lambda p: str(p.relative_to(zoo.ZOO_DIR)))
def test_every_zoo_spec_against_itself(run, path):
    r = run("diff", path, path, code=0)
    assert "no differences" in r.stdout


# -- pairing ---------------------------------------------------------------------------------

LENET = [{"conv": {"out": 6, "k": 5}}, "tanh", {"avgpool": 2}, {"conv": {"out": 16, "k": 5}}, "tanh",
         {"avgpool": 2}, "flatten", {"linear": 120}, "tanh", {"linear": 84}, "tanh", {"linear": 10}]
SEQ = [{"name": "features", "seq": LENET[:6]}, "flatten", {"linear": 10, "name": "fc"}]
INSERTS = [                                    # (layers, where, inserted layer)
    (LENET, 0, "relu"),
    (LENET, 1, {"conv": {"out": 6, "k": 3, "pad": 1}}),   # shifts the automatic conv names
    (LENET, 4, "bn"),
    (LENET, 7, {"linear": 64}),                          # the next linear is renamed and resized
    (LENET, 7, {"linear": 120}),                         # a copy of its neighbour: either is "new"
    (LENET, 12, "softmax"),
    (SEQ[:1], 0, None),                                   # filled below: inside a numbered seq
]


@pytest.mark.parametrize("case", range(len(INSERTS)))
def test_inserted_layer_is_one_addition(tmp_path, case):
    layers, where, new = INSERTS[case]
    if new is None:                            # a conv inserted at features.2 shifts features.2..5
        a_layers = SEQ
        b_layers = [{"name": "features", "seq": LENET[:2] + [{"conv": {"out": 6, "k": 1}}] + LENET[2:6]},
                    *SEQ[1:]]
    else:
        a_layers, b_layers = layers, layers[:where] + [new] + layers[where:]
    a = archc.load(write_spec(tmp_path, "a", a_layers))
    b = archc.load(write_spec(tmp_path, "b", b_layers))
    d = diff_networks(a, b)
    assert d["counts"]["added"] == 1 and d["counts"]["removed"] == 0, d["layers"]
    added = next(e for e in d["layers"] if e["change"] == "added")
    inserted = b.nodes[where if new is not None else 2]
    assert added["op"] == inserted.op.name
    if layers[where:where + 1] != [new]:     # a copy of its neighbour: either name is right
        assert added["name"] == inserted.name
    # nothing else changed but automatic names; the reverse diff is one removal
    assert all(set(e) <= {"change", "name", "op", "old_name", "params"}
               for e in d["layers"] if e["change"] == "changed")
    back = diff_networks(b, a)["counts"]
    assert (back["added"], back["removed"]) == (0, 1)


def test_changed_args_old_to_new(tmp_path, run):
    a = write_spec(tmp_path, "a", LENET)
    b = write_spec(tmp_path, "b", [{"conv": {"out": 8, "k": 3}}] + LENET[1:])
    r = run("diff", a, b, code=1)
    assert "out 6 -> 8; k 5 -> 3; params 456 -> 224" in r.stdout
    e = next(e for e in as_json(run, a, b)["layers"] if e["name"] == "conv1")
    assert e["args"] == {"out": [6, 8], "k": [5, 3]} and e["params"] == [456, 224]
    # the next conv sees 8 channels instead of 6: its params change, its args do not
    e = next(e for e in as_json(run, a, b)["layers"] if e["name"] == "conv2")
    assert "args" not in e and e["params"] == [2416, 3216]


def test_op_change_and_rewiring(tmp_path):
    def dag(act, order):
        return [{"conv": {"out": 4, "k": 3, "pad": 1}}, {act: None, "name": "act", "id": "a"},
                {"conv": {"out": 4, "k": 1}, "from": "input", "id": "b"},
                {"concat": None, "from": order}, "gap", {"linear": 2}]
    a = archc.load(write_spec(tmp_path, "a", dag("relu", ["a", "b"])))
    b = archc.load(write_spec(tmp_path, "b", dag("gelu", ["b", "a"])))
    d = diff_networks(a, b)
    by_name = {e["name"]: e for e in d["layers"]}
    assert by_name["act"]["old_op"] == "relu" and by_name["act"]["op"] == "gelu"
    assert by_name["concat1"]["from"] == [["act", "conv2"], ["conv2", "act"]]
    assert d["counts"] == {"added": 0, "removed": 0, "changed": 2}


def test_totals_are_the_difference_of_the_summaries(run):
    d = as_json(run, "resnet50", "resnet101")
    a, b = archc.load("resnet50").summary(), archc.load("resnet101").summary()
    for key in ("params", "buffers", "macs", "flops"):
        assert (d["a"][key], d["b"][key]) == (a[key], b[key])
    added = [e for e in d["layers"] if e["change"] == "added"]
    assert d["counts"] == {"added": 170, "removed": 0, "changed": 0}
    assert sum(e["params"] for e in added) == b["params"] - a["params"]
    assert {e["name"].split(".")[1] for e in added} == {str(k) for k in range(6, 23)}
    text = run("diff", "resnet50", "resnet101", code=1).stdout
    assert f"{b['params'] - a['params']:+,}" in text and f"{b['macs'] - a['macs']:+,}" in text
    assert "+ layer3.6   bottleneck  10 layers, 1,117,184 params" in text     # a whole block: one line


def test_variant_syntax(run):
    d = as_json(run, "specs/resnet.yaml@resnet50", "specs/resnet.yaml@resnet101")
    assert (d["a"]["variant"], d["b"]["variant"]) == ("resnet50", "resnet101")
    assert d["counts"]["added"] == 170


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["nope.yaml", KERAS], "no such file: nope.yaml"),
    (["resnet5O", "resnet50"], "no spec file or zoo entry named 'resnet5O'"),
    (["specs/resnet.yaml@resnet99", "resnet50"], "unknown variant 'resnet99'"),
    (["specs/resnet.yaml@", "resnet50"], "write SPEC@VARIANT"),
    (["resnet50", "resnet50", "--set", "num_clases=10"], "no var named 'num_clases'"),
])
def test_bad_input_exits_2(run, args, message):
    r = run("diff", *args, code=2)
    assert message in r.stderr and "Traceback" not in r.stderr


def test_shape_error_in_one_side_exits_2(tmp_path, run):
    bad = write_spec(tmp_path, "bad", [{"conv": {"out": 6, "k": 5}}, {"linear": 10}])
    r = run("diff", KERAS, bad, code=2)
    assert "bad.yaml" in r.stderr and "flatten" in r.stderr


def test_diff_never_imports_torch():
    code = ("import sys; from archc.cli import main\n"
            "try: main(['diff', 'seed_cifar10_cnn', 'examples/cifar10_cnn_keras.yaml'])\n"
            "except SystemExit as e: assert e.code == 1, e.code\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
