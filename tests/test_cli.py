"""The command line, in-process with click's CliRunner: golden files for `summary` (every format,
and `--depth 1`) and `build`, and the behaviour of every command and flag.

Golden files live in tests/golden/. After an intended change of output, rewrite them with
    ARCHC_UPDATE_GOLDEN=1 python -m pytest tests/test_cli.py
and review the diff like any other change: the output is part of the user contract.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import archc
from archc.cli import main

HERE = Path(__file__).parent
SPECS = HERE / "specs"
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("ARCHC_UPDATE_GOLDEN") == "1"

GOLDEN_SPECS = ["lenet5", "resnet_small", "inception_small", "aux_head"]
BUILD_SPECS = ["resnet_small", "inception_small"]
# (golden suffix, extra CLI args)
SUMMARY_FORMS = [
    ("summary.txt", []),
    ("summary.json", ["--format", "json"]),
    ("summary.md", ["--format", "md"]),
    ("summary.csv", ["--format", "csv"]),
    ("depth1.txt", ["--depth", "1"]),
]
# environment variables that would make rich colour or resize the table
COLOUR_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE", "COLUMNS", "LINES")


def cli_in(monkeypatch, directory, expect: int | None = 0):
    """The CLI in-process from `directory` (so paths in output are short), with the variables
    that change colours and widths cleared. invoke(*args, code=expect) asserts the exit status
    unless code is None. Shared by the command tests of every module."""
    for var in COLOUR_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(directory)
    runner = CliRunner()

    def invoke(*args, code=expect):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if code is not None:
            assert result.exit_code == code, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        return result
    return invoke


@pytest.fixture
def run(monkeypatch):
    """Invoke the CLI in-process from the tests/specs directory; ok=False: any exit status."""
    invoke = cli_in(monkeypatch, SPECS)
    return lambda *args, ok=True: invoke(*args, code=0 if ok else None)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}; create it with ARCHC_UPDATE_GOLDEN=1")
    expected = path.read_text()
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            f"golden/{name}", "actual"))
        pytest.fail(f"output differs from golden/{name} (rewrite with ARCHC_UPDATE_GOLDEN=1 if intended):\n{diff}",
                    pytrace=False)


# -- golden files --------------------------------------------------------------------------------

@pytest.mark.parametrize("form,args", SUMMARY_FORMS, ids=[f for f, _ in SUMMARY_FORMS])
@pytest.mark.parametrize("spec", GOLDEN_SPECS)
def test_summary_golden(run, spec, form, args):
    out = run("summary", f"{spec}.yaml", *args).stdout
    check_golden(f"{spec}.{form}", out)


@pytest.mark.parametrize("spec", BUILD_SPECS)
def test_build_golden(run, spec):
    out = run("build", f"{spec}.yaml").stdout
    check_golden(f"{spec}.build.py", out)


def test_table_is_plain_and_fixed_width(run):
    out = run("summary", "resnet_small.yaml").stdout
    assert "\x1b[" not in out                      # no colour or style codes when not a terminal
    assert all(line == line.rstrip() for line in out.splitlines())
    assert max(map(len, out.splitlines())) <= 110
    assert run("summary", "resnet_small.yaml").stdout == out


def test_json_summary_matches_api(run):
    data = json.loads(run("summary", "resnet_small.yaml", "--format", "json").stdout)
    net = archc.load(SPECS / "resnet_small.yaml")
    assert data == json.loads(json.dumps(net.summary()))
    for key in ("name", "input", "output", "params", "trainable_params", "buffers", "macs", "flops", "layers"):
        assert key in data
    assert set(data["layers"][0]) >= {"name", "op", "in", "out", "params", "macs"}
    assert sum(r["params"] for r in data["layers"]) == data["params"] == net.params


def test_depth_rows_sum_to_totals(run):
    full = json.loads(run("summary", "inception_small.yaml", "--format", "json").stdout)
    folded = json.loads(run("summary", "inception_small.yaml", "--format", "json", "--depth", "1").stdout)
    assert [r["name"] for r in folded["layers"]] == ["stem", "pool1", "inc3a", "inc3b", "gap1", "dropout", "fc"]
    assert [r["op"] for r in folded["layers"]][:4] == ["conv_bn", "maxpool", "inception", "inception"]
    for key in ("params", "buffers", "macs", "flops"):
        assert sum(r[key] for r in folded["layers"]) == sum(r[key] for r in full["layers"])


def test_aux_head_summary_marks_train_only(run):
    data = json.loads(run("summary", "aux_head.yaml", "--format", "json").stdout)
    assert data["outputs"] == {"logits": [10], "aux_logits": [10]}
    aux = [r for r in data["layers"] if r["name"].startswith("aux.")]
    assert aux and all(r["train_only"] for r in aux)
    assert data["macs"] == sum(r["macs"] for r in data["layers"] if not r["train_only"])
    assert data["params"] == sum(r["params"] for r in data["layers"])    # aux weights still exist


# -- summary flags -------------------------------------------------------------------------------

def summary_json(run, *args):
    return json.loads(run("summary", "resnet_small.yaml", "--format", "json", *args).stdout)


def test_summary_set_override(run):
    base = summary_json(run)
    data = summary_json(run, "--set", "num_classes=3")
    assert data["output"] == [3]
    assert base["params"] - data["params"] == (64 + 1) * (10 - 3)
    assert summary_json(run, "--set", "num_classes=10") == base
    wide = summary_json(run, "--set", "base=8", "--set", "num_classes=3")
    assert wide["output"] == [3] and wide["layers"][0]["out"] == [32, 32, 32]


def test_summary_variant(run):
    data = summary_json(run, "--variant", "tiny")
    assert data["variant"] == "tiny"
    assert data["input"] == [3, 16, 16] and data["output"] == [5]
    assert data["layers"][0]["out"] == [16, 16, 16]
    # --set applies on top of the variant
    assert summary_json(run, "--variant", "tiny", "--set", "num_classes=7")["output"] == [7]


def test_summary_input(run):
    data = summary_json(run, "--input", "3x64x64")
    assert data["input"] == [3, 64, 64] and data["output"] == [10]
    assert data["layers"][0]["out"] == [16, 64, 64]
    assert data["macs"] == 4 * summary_json(run)["macs"] - 3 * 640    # fc does not scale with the image
    assert run("summary", "resnet_small.yaml", "--input", "3x64x64").stdout.splitlines()[0] == "resnet_small"


@pytest.mark.parametrize("args,message", [
    (["--variant", "huge"], "unknown variant 'huge'"),
    (["--set", "num_clases=3"], "did you mean 'num_classes'"),
    (["--set", "num_classes"], "NAME=VALUE"),
    (["--input", "3xfoo"], "3x224x224"),
])
def test_summary_bad_flags_exit_2(run, args, message):
    result = run("summary", "resnet_small.yaml", *args, ok=False)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_summary_missing_file_exit_2(run):
    result = run("summary", "no_such_spec.yaml", ok=False)
    assert result.exit_code == 2
    assert "no_such_spec.yaml" in result.stderr


def test_summary_bad_spec_is_located(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("archc: 1\nname: bad\ninput: [1, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3}\n  - maxpol: 2\n")
    result = run("summary", str(bad), ok=False)
    assert result.exit_code == 2
    assert f"{bad}:6:5:" in result.stderr and "did you mean 'maxpool'" in result.stderr


# -- build ---------------------------------------------------------------------------------------

def test_build_to_file(run, tmp_path):
    out = tmp_path / "model.py"
    result = run("build", "resnet_small.yaml", "-o", out)
    assert result.stdout == ""
    params = archc.load(SPECS / "resnet_small.yaml").params
    assert result.stderr == f"wrote {out} ({params:,} params)\n"
    src = out.read_text()
    tree = ast.parse(src)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    assert "torch" in roots
    assert {r for r in roots if r not in sys.stdlib_module_names} == {"torch"}
    assert "import archc" not in src and "from archc" not in src
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes[-1] == "ResnetSmall"
    assert src == run("build", "resnet_small.yaml").stdout


def test_build_respects_flags(run):
    """The class is the spec's; the header says how to build what was asked for."""
    src = run("build", "resnet_small.yaml", "--variant", "tiny").stdout
    assert "Built for: resnet_small_tiny() on input [N, 3, 16, 16]" in src
    assert "def resnet_small_tiny(**kwargs):" in src and "nn.Linear(channels, num_classes)" in src
    src = run("build", "resnet_small.yaml", "--set", "num_classes=3", "--input", "3x8x8").stdout
    assert "Built for: ResnetSmall(num_classes=3) on input [N, 3, 8, 8]" in src


def test_build_weights_checked(run, tmp_path):
    torch = pytest.importorskip("torch")
    net = archc.load(SPECS / "lenet5.yaml")
    good = tmp_path / "good.pt"
    torch.save(net.to_module().state_dict(), good)
    run("build", "lenet5.yaml", "--weights", good, "-o", tmp_path / "m.py")
    bad = tmp_path / "bad.pt"
    torch.save(archc.load(SPECS / "lenet5.yaml", num_classes=3).to_module().state_dict(), bad)
    result = run("build", "lenet5.yaml", "--weights", bad, ok=False)
    assert result.exit_code == 2
    assert "linear3.weight" in result.stderr and "mis-shaped" in result.stderr


# -- check ---------------------------------------------------------------------------------------

GOOD = ["lenet5.yaml", "resnet_small.yaml", "resnet_small.toml", "inception_small.yaml", "aux_head.yaml",
        "uses_blocks.yaml"]


def test_check_good_files(run):
    result = run("check", *GOOD)
    lines = result.stdout.splitlines()
    assert len(lines) == len(GOOD)
    for spec, line in zip(GOOD, lines):
        assert line.startswith(f"{spec}: ok (")
    assert result.stderr == ""
    assert run("check", "-q", *GOOD).stdout == ""


def test_check_reports_every_bad_file(run, tmp_path):
    bad1 = tmp_path / "bad1.yaml"
    bad1.write_text("archc: 1\nname: b\ninput: [4]\nlayers:\n  - linear: {out: 2, bais: false}\n")
    bad2 = tmp_path / "bad2.yaml"
    bad2.write_text("archc: 2\nname: b\ninput: [4]\nlayers: [relu]\n")
    result = run("check", "lenet5.yaml", bad1, "aux_head.yaml", bad2, ok=False)
    assert result.exit_code == 2
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["lenet5.yaml", "aux_head.yaml"]
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"{bad1}:5:") and "bais" in errors[0]
    assert errors[1].startswith(f"{bad2}:1:") and "version" in errors[1]


# -- schema --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema():
    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def validator(schema):
    """One validator for the module's checks (jsonschema.validate checks the schema itself first,
    seconds each time)."""
    jsonschema = pytest.importorskip("jsonschema")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_is_valid_json_schema(schema, validator):
    assert schema["$schema"].startswith("https://json-schema.org/")


@pytest.mark.parametrize("spec", ["lenet5.yaml", "resnet_small.yaml", "inception_small.yaml", "aux_head.yaml",
                                  "uses_blocks.yaml"])
def test_schema_accepts_good_specs(validator, spec):
    validator.validate(yaml.safe_load((SPECS / spec).read_text()))


@pytest.mark.parametrize("path", sorted(p for p in (HERE.parent / "specs").rglob("*.*") if p.suffix in (".yaml", ".toml") and "blocks" not in p.parts),
                         ids=lambda p: p.name)
def test_schema_accepts_shipped_specs(validator, path):
    from archc.spec.load import load_file
    validator.validate(load_file(path).tree)


@pytest.mark.parametrize("patch", [
    lambda t: t["layers"].__setitem__(0, {"conv": {"out": 6, "kernal": 5}}),     # misspelt op arg
    lambda t: t["layers"].__setitem__(0, {"conv": {"out": 6, "k": 5}, "nmae": "c1"}),  # misspelt wiring key
    lambda t: t.__setitem__("layer", t.pop("layers")),                          # misspelt top-level key
    lambda t: t["layers"].__setitem__(0, {"conv": {"out": "six", "k": 5}}),     # wrong type
], ids=["op-arg", "wiring-key", "top-level", "type"])
def test_schema_rejects_mistakes(validator, patch):
    jsonschema = pytest.importorskip("jsonschema")
    tree = yaml.safe_load((SPECS / "lenet5.yaml").read_text())
    patch(tree)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(tree)


# -- help and version ----------------------------------------------------------------------------

def test_help_of_every_command(run):
    top = run("--help").stdout
    assert "Usage:" in top
    assert set(main.commands) >= {"summary", "build", "check", "schema"}
    for name in main.commands:
        assert name in top
        out = run(name, "--help").stdout
        assert out.startswith(f"Usage: archc {name}"), out
        assert run(name, "-h").stdout == out
    summary = run("summary", "--help").stdout
    for flag in ("--input", "--set", "--variant", "--format", "--depth"):
        assert flag in summary


def test_version(run):
    assert run("--version").stdout == f"archc, version {archc.__version__}\n"


def test_build_to_unwritable_path_exits_2(run, tmp_path):
    result = run("build", "lenet5.yaml", "-o", tmp_path / "no" / "such" / "dir.py", ok=False)
    assert result.exit_code == 2
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_ops_lists_every_registered_op():
    from archc import ops
    r = CliRunner().invoke(main, ["ops", "--format", "json"])
    assert r.exit_code == 0
    listed = {row["name"] for row in json.loads(r.output)} | {a for row in json.loads(r.output) for a in row["aliases"]}
    assert listed == set(ops.REGISTRY)
    text = CliRunner().invoke(main, ["ops"]).output
    assert "conv: " in text and "  * out: int = required" in text


def test_ops_page_is_generated_and_current():
    """docs/ops.md is `archc ops --format md`; regenerate it when an op changes."""
    page = Path(__file__).parent.parent / "docs" / "ops.md"
    r = CliRunner().invoke(main, ["ops", "--format", "md"])
    assert r.exit_code == 0
    assert page.read_text() == r.output, "docs/ops.md is stale: run `archc ops --format md > docs/ops.md`"


def test_zoo_json_fields_and_name_resolution():
    r = CliRunner().invoke(main, ["zoo", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {"resnet50", "googlenet", "mobilenet_v2", "lenet5"} <= {row["name"] for row in rows}
    for row in rows:
        assert {"name", "spec", "variant", "reference", "params", "macs"} <= set(row)
        assert row["matches"] in (True, None), row      # a declared reference must match
    by_name = {row["name"]: row for row in rows}
    assert by_name["resnet50"]["spec"] == "specs/resnet50.yaml"
    # a zoo name works wherever a spec path does
    r = CliRunner().invoke(main, ["summary", "resnet50", "--format", "json"])
    assert json.loads(r.output)["params"] == by_name["resnet50"]["params"]
    r = CliRunner().invoke(main, ["summary", "resnt50"])
    assert r.exit_code == 2 and "did you mean 'resnet50'" in r.stderr
    r = CliRunner().invoke(main, ["summary", "lraspp"])        # the short name of a long one
    assert r.exit_code == 2 and "did you mean 'lraspp_mobilenet_v3_large'" in r.stderr


def test_zoo_page_is_generated_and_current():
    """docs/zoo.md is `archc zoo --format md`; regenerate it when a zoo spec changes."""
    page = Path(__file__).parent.parent / "docs" / "zoo.md"
    r = CliRunner().invoke(main, ["zoo", "--format", "md"])
    assert r.exit_code == 0
    assert page.read_text() == r.output, "docs/zoo.md is stale: run `archc zoo --format md > docs/zoo.md`"
