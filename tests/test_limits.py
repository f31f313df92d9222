"""Issue 10: any bad input gives a located message and exit 2, fast, never a traceback, a hang or a
memory blow-up. Every example of the issue is a case of tests/hostile.py with its exact message;
the tests here add what needs more than one command line (generated code, the picture limits,
include folders, the Python API)."""
from __future__ import annotations

import ast
import os
import signal
import stat
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

import archc
from archc import limits
from archc.cli import main
from archc.errors import SpecError
from hostile import CASES, HEAD, Case, raise_hint


@contextmanager
def deadline(seconds: int):
    """A hang fails the test instead of stalling the suite."""
    def expired(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def make(folder, files) -> None:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(str(path))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def invoke(args, env=None):
    with deadline(60):
        return CliRunner().invoke(main, args, env=env)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_issue_example(case: Case, tmp_path, monkeypatch):
    make(tmp_path, case.files)
    monkeypatch.chdir(tmp_path)
    r = invoke(case.args, case.env)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.stderr.splitlines()[0] == case.message
    assert "Traceback" not in r.output


def test_passwd_is_never_echoed(tmp_path, monkeypatch):
    """Even a folder given with --include: a file that is no spec is named, not printed."""
    (tmp_path / "s.yaml").write_text(HEAD + "use: [/etc/passwd]\nlayers: [relu]\n")
    monkeypatch.chdir(tmp_path)
    r = invoke(["check", "s.yaml", "--include", "/etc"])
    assert r.exit_code == 2 and "root:" not in r.output
    assert r.stderr.splitlines()[0] == ("/etc/passwd:1:1: block file: expected a mapping with keys archc, "
                                        "use, blocks, got a str")


def test_include_and_archc_path_let_use_read_elsewhere(tmp_path, monkeypatch):
    lib, work = tmp_path / "lib", tmp_path / "work"
    lib.mkdir(), work.mkdir()
    (lib / "b.yaml").write_text("blocks:\n  act: {layers: [relu]}\n")
    (work / "s.yaml").write_text(HEAD + "use: [../lib/b.yaml]\nlayers: [act]\n")
    monkeypatch.chdir(work)
    assert invoke(["check", "s.yaml"]).exit_code == 2
    assert invoke(["check", "s.yaml", "--include", "../lib"]).exit_code == 0
    assert invoke(["summary", "s.yaml", "--include", str(lib)]).exit_code == 0
    monkeypatch.setenv("ARCHC_PATH", str(lib))
    assert invoke(["check", "s.yaml"]).exit_code == 0
    assert archc.load("s.yaml").params == 0


def test_lone_surrogate_doc_builds_and_compiles(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(HEAD + 'doc: "\\uD800 a \\0 and \\r b"\nlayers: [{conv: {out: 4, k: 3}}]\n')
    monkeypatch.chdir(tmp_path)
    r = invoke(["build", "s.yaml", "-o", "m.py"])
    assert r.exit_code == 0, r.output
    tree = ast.parse((tmp_path / "m.py").read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(cls, clean=False).startswith("\ud800 a \x00 and \r b")


def test_receptive_jump_stays_positive_after_upsampling_one_pixel():
    net = archc.load(HEAD.replace("[3, 8, 8]", "[3, 1, 1]") + "layers:\n  - conv_transpose: {out: 4, k: 3}\n"
                     "  - upsample: 2\n  - conv: {out: 4, k: 3}\n")
    from archc.ir.receptive import receptive_fields
    fields = receptive_fields(net)
    assert all(j > 0 for f in fields for j in f.jump)
    assert [f.as_dict()["jump"] for f in fields] == [[1, 1], [0.5, 0.5], [0.5, 0.5]]


def fake_dot(folder, body: str) -> str:
    exe = folder / "dot"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def test_render_refuses_a_picture_too_large_for_graphviz(tmp_path, monkeypatch):
    branches = ", ".join(f'b{i} = ["relu"]' for i in range(2500))
    (tmp_path / "s.toml").write_text('archc = 1\nname = "n"\ninput = [3, 8, 8]\n'
                                     f'layers = [{{parallel = {{branches = {{{branches}}}}}}}]\n')
    monkeypatch.chdir(tmp_path)
    r = invoke(["render", "s.toml", "-o", "n.svg"], env={"PATH": fake_dot(tmp_path, "exit 3")})
    assert r.exit_code == 2
    assert r.stderr.splitlines()[-1] == (
        "s.toml: the picture is too large for Graphviz (fold it with --depth N or --repeats fold, or write "
        f"DOT text with -o net.dot): 2,501 boxes is over the limit of 2,000; {raise_hint('render_nodes')}")
    assert invoke(["render", "s.toml", "-o", "n.dot"]).exit_code == 0      # DOT text needs no Graphviz


def test_render_stops_graphviz_at_its_time_limit(tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(HEAD + "layers: [relu]\n")
    monkeypatch.chdir(tmp_path)
    r = invoke(["render", "s.yaml", "-o", "n.png", "--limit", "render_seconds=1"],
               env={"PATH": fake_dot(tmp_path, "exec sleep 30")})
    assert r.exit_code == 2
    assert r.stderr.splitlines()[-1] == (
        "s.yaml: Graphviz took too long (fold the picture with --depth N or --repeats fold): over the limit "
        f"of 1 s; {raise_hint('render_seconds')}")


@pytest.mark.parametrize("args,message", [
    (["--limit", "layers"], "error: --limit: expected NAME=N, got 'layers'"),
    (["--limit", "layer=5"], "error: --limit: no limit named 'layer' (did you mean 'layers'?); limits: "
                             "file_bytes, values, layers, written_layers, repeat, expr_chars, expr_items, render_nodes, "
                             "render_seconds, data_bytes"),
    (["--limit", "layers=-1"], "error: --limit: layers takes a positive whole number, got '-1'"),
    (["--limit", "depth=1000"], "error: --limit: the 'depth' limit is fixed (it protects Python's stack or "
                                "integer conversions); limits that can be raised: file_bytes, values, layers, "
                                "written_layers, repeat, expr_chars, expr_items, render_nodes, render_seconds, data_bytes"),
])
def test_bad_limit_flags(args, message, tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(HEAD + "layers: [relu]\n")
    monkeypatch.chdir(tmp_path)
    r = invoke(["summary", "s.yaml", *args])
    assert r.exit_code == 2 and r.stderr.splitlines()[0] == message


def test_limits_raised_and_restored(monkeypatch):
    text = HEAD + "layers:\n  - relu: null\n    repeat: 20000\n"
    with pytest.raises(SpecError, match="repeat count: 20,000 copies is over the limit of 10,000"):
        archc.load(text)
    with limits.raised(repeat=20000, layers=20000):
        assert len(archc.load(text).nodes) == 20000
    monkeypatch.setenv("ARCHC_LIMITS", "repeat=20000,layers=30000")
    assert len(archc.load(text).nodes) == 20000
    with limits.raised(layers=19999), pytest.raises(SpecError, match="about 20,000 layers"):
        archc.load(text)


def test_python_mapping_with_a_cycle_is_refused():
    tree = {"archc": 1, "name": "net", "input": [3, 8, 8], "layers": ["relu"], "vars": {}}
    tree["vars"]["self"] = tree
    with pytest.raises(SpecError, match="nested too deeply: over the limit of 100 levels"):
        archc.load(tree)
    with pytest.raises(SpecError, match=r"<string>:4:11: --set n: integer 36893488147419103232 is too large"):
        archc.load(HEAD + "vars: {n: 4}\nlayers: [relu]\n", n=2 ** 65)


def test_round_and_interpolation_bombs():
    for expr, msg in [("round(5, -10 ** 9)", "round: ndigits -1000000000 is out of range"),
                      ("int('9' * 4000)", "number too large")]:
        with pytest.raises(SpecError) as ei:
            archc.load(HEAD + f'layers:\n  - conv: {{out: "${{{expr}}}", k: 1}}\n')
        assert ei.value.message == msg
    with pytest.raises(SpecError, match="expression result too large: 150,001 items"):
        archc.load(HEAD + "vars: {s: \"${'x' * 50000}\"}\nlayers:\n  - conv: {out: 4, k: 1, name: \"a${s}${s}${s}\"}\n")


def test_writing_the_code_is_bounded_like_expansion():
    """Build writes a definition once per distinct instance, its `when:`-off layers too: that work
    counts against the written_layers limit, so long definitions in many instances cannot keep it busy."""
    off = '    - {conv: {out: 4, k: 1}, when: "${t > 0}"}\n' * 30
    text = HEAD + ("blocks:\n  unit:\n    params: {t: int, tag: int}\n    seq:\n" + off +
                   '    - conv: {out: "${4 + 0 * tag}", k: 1}\n'    # (a param no expression reads is shared)
                   'layers:\n  - {unit: {t: "${i % 2}", tag: $i}, repeat: 10}\n')
    with limits.raised(written_layers=250):
        net = archc.load(text)                    # 5 x 31 + 5 x 1 layers
        assert len(net.nodes) == 160
        with pytest.raises(SpecError) as info:
            net.source()                          # 10 distinct instances x 31 layers written
    assert "writing the code goes through too many layers" in info.value.message
    assert "raise it with --limit written_layers=N" in info.value.message
    assert info.value.loc is not None
    with limits.raised(written_layers=400):
        assert "class Unit(nn.Sequential)" in archc.load(text).source()
