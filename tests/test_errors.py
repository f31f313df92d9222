"""Error quality (SPEC.md section 5): every broken spec in tests/broken/ gives ONE located message
`file:line:col: what was expected, what was found`, exit status 2, and never a traceback.

Each case names a file (as the CLI gets it, relative to the repo root), optional extra CLI args,
and the exact first line of the message."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.errors import Location, SpecError

ROOT = Path(__file__).resolve().parent.parent
B = "tests/broken/"

CASES = [
    # -- syntax of the file itself --------------------------------------------------------------
    ("yaml_syntax.yaml", [],
     "tests/broken/yaml_syntax.yaml:7:1: invalid YAML: expected ',' or '}', but got '<stream end>' "
     "(while parsing a flow mapping started at line 5, column 11)"),
    ("yaml_indent.yaml", [],
     "tests/broken/yaml_indent.yaml:6:4: invalid YAML: expected <block end>, but found "
     "'<block sequence start>' (while parsing a block collection started at line 5, column 3)"),
    ("yaml_tab.yaml", [],
     "tests/broken/yaml_tab.yaml:5:1: invalid YAML: found character '\\t' that cannot start any token"),
    ("toml_syntax.toml", [],
     "tests/broken/toml_syntax.toml:7:3: invalid TOML: expected ',' or ']' after an array item"),
    ("dead_layer.yaml", [],
     "tests/broken/dead_layer.yaml:7:5: layer 'conv2' (conv) feeds no output: remove it, wire it "
     "with 'from:', or list its 'id' in 'outputs'"),
    ("first_without_repeat.yaml", [],
     "tests/broken/first_without_repeat.yaml:6:5: 'first' overrides the first of a 'repeat': "
     "add 'repeat: N' or move these args into the layer"),
    ("duplicate_key.yaml", [],
     "tests/broken/duplicate_key.yaml:4:1: duplicate key 'name' (first at line 2)"),
    ("toml_duplicate_key.toml", [],
     "tests/broken/toml_duplicate_key.toml:4:1: invalid TOML: duplicate key 'name' (a key can be set only once)"),
    ("python_tag.yaml", [],
     "tests/broken/python_tag.yaml:5:5: YAML tag '!!python/object/apply:os.system' is not allowed "
     "(specs hold plain data only)"),
    ("empty.yaml", [],
     "tests/broken/empty.yaml:1:1: the spec is empty: expected a mapping with keys archc, name, doc, "
     "input, vars, variants, use, blocks, layers, outputs, train, init, zoo"),
    # -- top level ------------------------------------------------------------------------------
    ("missing_version.yaml", [],
     "tests/broken/missing_version.yaml:1:1: missing required 'archc' (the format version: write 'archc: 1' first)"),
    ("version2.yaml", [],
     "tests/broken/version2.yaml:1:8: 'archc': unsupported format version 2; this archc reads version 1"),
    ("toml_version.toml", [],
     "tests/broken/toml_version.toml:1:9: 'archc' should be a valid integer, unable to parse string as an "
     "integer, got 'one'"),
    ("unknown_toplevel.yaml", [],
     "tests/broken/unknown_toplevel.yaml:4:1: unknown key 'layer' (did you mean 'layers'?); expected one of: "
     "archc, name, doc, input, vars, variants, use, blocks, layers, outputs, train, init, zoo"),
    ("toml_unknown_toplevel.toml", [],
     "tests/broken/toml_unknown_toplevel.toml:3:1: unknown key 'inputs' (did you mean 'input'?); expected one "
     "of: archc, name, doc, input, vars, variants, use, blocks, layers, outputs, train, init, zoo"),
    ("bad_input.yaml", [],
     "tests/broken/bad_input.yaml:3:8: 'input': expected a shape like [3, 224, 224] or '3x224x224', got '3xtwox2'"),
    # -- layers: ops and args -------------------------------------------------------------------
    ("unknown_op.yaml", [],
     "tests/broken/unknown_op.yaml:6:5: unknown op 'maxpol' (did you mean 'maxpool'?)"),
    ("unknown_op_flow.yaml", [],
     "tests/broken/unknown_op_flow.yaml:6:19: unknown op 'maxpol' (did you mean 'maxpool'?)"),
    ("toml_unknown_op.toml", [],
     "tests/broken/toml_unknown_op.toml:9:1: unknown op 'maxpol' (did you mean 'maxpool'?)"),
    ("two_ops.yaml", [],
     "tests/broken/two_ops.yaml:6:5: a layer mapping needs exactly one op, block or seq/residual/parallel key, "
     "found several: conv, relu"),
    ("misspelt_arg.yaml", [],
     "tests/broken/misspelt_arg.yaml:5:21: layer 'conv1' (conv): unknown arg 'kk' (did you mean 'k'?); "
     "expected one of: out, k, stride, pad, dilation, groups, bias, padding_mode"),
    ("wrong_type.yaml", [],
     "tests/broken/wrong_type.yaml:5:24: layer 'conv1' (conv): 'k' must be int | list[int], got 'five'"),
    ("out_zero.toml", [],
     "tests/broken/out_zero.toml:6:15: layer 'conv1' (conv): 'out' should be greater than 0, got 0"),
    ("negative_stride.yaml", [],
     "tests/broken/negative_stride.yaml:5:35: layer 'conv1' (conv): stride must be a positive integer, got -1"),
    ("repeat_negative.yaml", [],
     "tests/broken/repeat_negative.yaml:6:13: repeat must be a non-negative integer, got -2"),
    # -- expressions ----------------------------------------------------------------------------
    ("expr_syntax.yaml", [],
     "tests/broken/expr_syntax.yaml:6:17: invalid expression 'width * ': invalid syntax"),
    ("expr_attribute.yaml", [],
     "tests/broken/expr_attribute.yaml:6:17: attribute access is not allowed in an expression: 'width.__class__'"),
    ("expr_import.toml", [],
     "tests/broken/expr_import.toml:6:15: attribute access is not allowed in an expression: "
     "'__import__('os').getpid' in '__import__('os').getpid()'"),
    ("expr_import_call.yaml", [],
     "tests/broken/expr_import_call.yaml:5:17: unknown function '__import__'; allowed: abs, ceil, exp, float, floor, "
     "int, len, log, log2, make_divisible, max, min, range, round, sqrt, sum"),
    ("expr_lambda.yaml", [],
     "tests/broken/expr_lambda.yaml:5:24: a lambda is not allowed in an expression: 'lambda: 3' in '(lambda: 3)()'"),
    ("expr_comprehension.yaml", [],
     "tests/broken/expr_comprehension.yaml:6:11: a generator (write a list: [...]) is not allowed in an "
     "expression: '(w * 2 for w in [1, 2])' in 'sum((w * 2 for w in [1, 2]))'"),
    ("unknown_var.yaml", [],
     "tests/broken/unknown_var.yaml:6:17: unknown name 'widht' (did you mean 'width'?)"),
    # -- shapes, found statically ---------------------------------------------------------------
    ("add_mismatch.yaml", [],
     "tests/broken/add_mismatch.yaml:7:5: 'add' merges [64, 56, 56] from 'stem' with [256, 56, 56] from 'body': "
     "shapes differ"),
    ("concat_spatial.yaml", [],
     "tests/broken/concat_spatial.yaml:7:5: 'concat' merges [16, 32, 32] from 'a' with [16, 16, 16] from 'b': "
     "shapes differ outside dim 0"),
    ("merge_one_input.yaml", [],
     "tests/broken/merge_one_input.yaml:6:5: layer 'add1' (add): merges two or more inputs, got 1: "
     "use 'from: [a, b]'"),
    ("linear_no_flatten.yaml", [],
     "tests/broken/linear_no_flatten.yaml:8:5: layer 'fc1' (linear) cannot take input of shape [16, 7, 7]: "
     "add 'flatten' before it, or 'over: last' to apply it to the last dim"),
    ("toml_linear_no_flatten.toml", [],
     "tests/broken/toml_linear_no_flatten.toml:8:1: layer 'fc1' (linear) cannot take input of shape [8, 26, 26]: "
     "add 'flatten' before it, or 'over: last' to apply it to the last dim"),
    ("kernel_too_large.yaml", [],
     "tests/broken/kernel_too_large.yaml:7:24: layer 'conv3' (conv): kernel 5 is larger than the padded input 4x4"),
    ("pool_too_large.toml", [],
     "tests/broken/pool_too_large.toml:6:19: layer 'maxpool1' (maxpool): pool kernel 5 is larger than the "
     "padded input 4x4"),
    ("groups.yaml", [],
     "tests/broken/groups.yaml:5:35: layer 'conv1' (conv): groups=4 must divide both input channels 6 and out 16"),
    ("residual_no_shortcut.yaml", [],
     "tests/broken/residual_no_shortcut.yaml:6:7: residual body changes shape [16, 32, 32] -> [32, 32, 32]: "
     "give a 'shortcut' (layers, or 'auto'), or 'shortcut: none' to drop it"),
    ("shortcut_wrong.yaml", [],
     "tests/broken/shortcut_wrong.yaml:9:9: shortcut gives [32, 32, 32] but the body gives [32, 16, 16]: "
     "shapes differ"),
    # -- blocks and `use:` ----------------------------------------------------------------------
    ("unknown_block.yaml", [],
     "tests/broken/unknown_block.yaml:10:5: unknown block 'basci' (did you mean 'basic'?)"),
    ("block_cycle.yaml", [],
     "tests/broken/block_cycle.yaml:11:9: block cycle: a -> b -> a"),
    ("block_missing_param.yaml", [],
     "tests/broken/block_missing_param.yaml:10:12: block 'basic' needs param 'width' (int)"),
    ("block_unknown_param.yaml", [],
     "tests/broken/block_unknown_param.yaml:10:24: block 'basic' has no param 'strid' (did you mean 'stride'?); "
     "params: width, stride"),
    ("toml_block_param.toml", [],
     "tests/broken/toml_block_param.toml:4:33: block 'basic' has no param 'strid' (did you mean 'stride'?); "
     "params: width, stride"),
    ("block_param_type.yaml", [],
     "tests/broken/block_param_type.yaml:10:20: block 'basic' param 'width' expects int, got 'wide'"),
    ("block_two_bodies.yaml", [],
     "tests/broken/block_two_bodies.yaml:6:5: 'blocks.stem': a block needs exactly one body "
     "(layers, seq, residual or parallel), found layers, seq"),
    ("use_missing.yaml", [],
     "tests/broken/use_missing.yaml:4:7: no such block file 'no_such_blocks.yaml' (looked in tests/broken)"),
    ("use_cycle.yaml", [],   # located in the file that closes the cycle
     "tests/broken/lib/use_cycle_b.yaml:2:7: 'use' cycle: use_cycle.yaml -> use_cycle_a.yaml -> "
     "use_cycle_b.yaml -> use_cycle_a.yaml"),
    # -- names, ids and wiring ------------------------------------------------------------------
    ("duplicate_name.yaml", [],
     "tests/broken/duplicate_name.yaml:7:33: duplicate name 'conv1' in 'the network'"),
    ("duplicate_id.yaml", [],
     "tests/broken/duplicate_id.yaml:6:39: duplicate id 'a'"),
    ("unknown_from.yaml", [],
     "tests/broken/unknown_from.yaml:7:17: unknown id 'stme' (did you mean 'stem'?); known here: input, stem, body"),
    ("seq_id.toml", [],
     "tests/broken/seq_id.toml:7:36: an 'id' inside a seq goes on a child of a seq that is a layer of the "
     "network or of a block's 'layers:' (not a seq block's own, a nested, repeated or 'when:' seq)"),
    ("unknown_output.yaml", [],
     "tests/broken/unknown_output.yaml:8:11: unknown output id 'logit' (did you mean 'logits'?)"),
    ("keyword_name.yaml", [],
     "tests/broken/keyword_name.yaml:5:33: name 'class' is a Python keyword; choose another name"),
    ("reserved_name.yaml", [],
     "tests/broken/reserved_name.yaml:6:18: name 'forward' is reserved (an nn.Module attribute or a name the "
     "generated code uses)"),
    # -- command-line flags on a good spec ------------------------------------------------------
    ("flags.yaml", ["--variant", "cifra"],
     "tests/broken/flags.yaml:6:3: unknown variant 'cifra' (did you mean 'cifar'?); variants: cifar, tiny"),
    ("flags.yaml", ["--set", "num_clases=5"],
     "tests/broken/flags.yaml:4:1: --set num_clases: no var named 'num_clases' (did you mean 'num_classes'?); "
     "vars: num_classes"),
    ("flags.yaml", ["--set", "num_classes=-3"],
     "tests/broken/flags.yaml:10:13: layer 'linear1' (linear): 'out' should be greater than 0, got -3"),
    ("flags.yaml", ["--input", "3xfoo"],
     "tests/broken/flags.yaml:3:8: --input: expected a shape like [3, 224, 224] or '3x224x224', got '3xfoo'"),
]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)     # paths in messages are as the CLI gets them, from the repo root


def _err(r) -> str:
    return r.stderr if hasattr(r, "stderr") else r.output


@pytest.mark.parametrize("name,args,first_line", CASES,
                         ids=[f"{n}{' ' + ' '.join(a) if a else ''}" for n, a, _ in CASES])
def test_broken_spec(name, args, first_line):
    r = CliRunner().invoke(main, ["summary", B + name, *args])
    err = _err(r)
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output and "Traceback" not in err
    assert err.splitlines()[0] == first_line
    assert len(err.strip().splitlines()) <= 2       # one message, one or two lines


def test_every_broken_file_is_a_case():
    files = {p.name for p in (ROOT / "tests" / "broken").iterdir() if p.suffix in (".yaml", ".toml")}
    named = {n for n, _, _ in CASES}
    assert files == named
    assert len(CASES) >= 30
    assert sum(n.endswith(".toml") for n in named) >= 6


def test_check_mixed_files():
    good = ["specs/lenet5.yaml", "specs/resnet50.toml"]
    bad = {"tests/broken/unknown_op.yaml": "tests/broken/unknown_op.yaml:6:5: unknown op 'maxpol'",
           "tests/broken/toml_syntax.toml": "tests/broken/toml_syntax.toml:7:3: invalid TOML",
           "tests/broken/add_mismatch.yaml": "tests/broken/add_mismatch.yaml:7:5: 'add' merges"}
    files = [good[0], *list(bad)[:2], good[1], list(bad)[2]]
    r = CliRunner().invoke(main, ["check", *files])
    assert r.exit_code == 2
    err_lines = _err(r).strip().splitlines()
    assert len(err_lines) == len(bad)              # one line per bad file, in order
    for line, path in zip(err_lines, [f for f in files if f in bad]):
        assert line.startswith(bad[path])
    out = r.stdout if hasattr(r, "stderr") else r.output
    assert [line.split(":")[0] for line in out.splitlines() if ": ok (" in line] == good
    assert "Traceback" not in r.output
    q = CliRunner().invoke(main, ["check", "-q", *files])
    assert q.exit_code == 2 and ": ok (" not in q.output
    ok = CliRunner().invoke(main, ["check", *good])
    assert ok.exit_code == 0


def test_load_raises_located_spec_error():
    with pytest.raises(SpecError) as ei:
        archc.load("tests/broken/unknown_op.yaml")
    e = ei.value
    assert e.loc == Location("tests/broken/unknown_op.yaml", 6, 5)
    assert e.message == "unknown op 'maxpol' (did you mean 'maxpool'?)"
    assert isinstance(e, archc.SpecError)
    with pytest.raises(archc.SpecError) as ei:   # a Path, a TOML file, a shape error
        archc.load(Path("tests/broken/pool_too_large.toml"))
    assert ei.value.loc == Location("tests/broken/pool_too_large.toml", 6, 19)
    with pytest.raises(archc.SpecError) as ei:   # overrides go through the same checks as --set
        archc.load("tests/broken/flags.yaml", num_clases=5)
    assert ei.value.loc is not None and ei.value.loc.line == 4


def test_load_text_errors_are_located():
    text = "archc: 1\nname: net\ninput: [3, 8, 8]\nlayers:\n  - conv: {out: 4, k: 3, stride: 0}\n"
    with pytest.raises(SpecError) as ei:
        archc.load(text)
    assert ei.value.loc == Location("<string>", 5, 34)
    assert str(ei.value) == "<string>:5:34: layer 'conv1' (conv): stride must be a positive integer, got 0"


@pytest.mark.parametrize("expr,msg", [
    ("[1] * 10 ** 9", "expression result too large: 1,000,000,000 items is over the limit of 100,000; "
                      "raise it with --limit expr_items=N or ARCHC_LIMITS=expr_items=N"),
    ("'a' * 10 ** 9", "expression result too large: 1,000,000,000 items is over the limit of 100,000; "
                      "raise it with --limit expr_items=N or ARCHC_LIMITS=expr_items=N"),
    ("(9 ** 64) ** 64 ** 2", "exponent too large"),
    ("((9 ** 64) ** 60) ** 60", "number too large"),
])
def test_expression_bombs_are_refused(expr, msg):
    text = f'archc: 1\nname: net\ninput: [3, 8, 8]\nlayers:\n  - conv: {{out: "${{{expr}}}", k: 1}}\n'
    with pytest.raises(SpecError) as ei:
        archc.load(text)
    assert ei.value.message == msg and ei.value.loc == Location("<string>", 5, 17)
