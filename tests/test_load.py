"""Tests for archc.spec.load: trees, exact positions, and errors for YAML and TOML."""
import pytest

from archc.errors import Location, SpecError
from archc.spec.load import Source, from_mapping, load_file, load_text

LENET_TOML = """\
archc = 1
name = "lenet5"
input = [1, 32, 32]
layers = [
  {conv = {out = 6, k = 5}}, "tanh", {avgpool = 2},
  "flatten", {linear = 120},
]
"""

LENET_YAML = """\
archc: 1
name: lenet5
input: [1, 32, 32]
layers:
  - conv: {out: 6, k: 5}
  - tanh
  - avgpool: 2
  - flatten
  - linear: 120
"""

LENET_TREE = {
    "archc": 1,
    "name": "lenet5",
    "input": [1, 32, 32],
    "layers": [{"conv": {"out": 6, "k": 5}}, "tanh", {"avgpool": 2}, "flatten", {"linear": 120}],
}


def all_paths(tree, path=()):
    yield path
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from all_paths(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from all_paths(v, path + (i,))


def raises_at(text, file, fmt=None):
    with pytest.raises(SpecError) as info:
        load_text(text, file, fmt)
    return info.value


# ---------------------------------------------------------------- both formats

def test_yaml_and_toml_give_same_tree_and_same_paths():
    y = load_text(LENET_YAML, "lenet.yaml")
    t = load_text(LENET_TOML, "lenet.toml")
    assert y.tree == t.tree == LENET_TREE
    every = set(all_paths(LENET_TREE))
    assert set(y.values) == set(t.values) == every  # every node has a position
    assert set(y.keys) == set(t.keys)
    assert {p for p in every if p and isinstance(p[-1], str)} == set(t.keys)


def test_toml_exact_positions():
    s = load_text(LENET_TOML, "lenet.toml")
    assert s.values[("layers", 0, "conv", "k")] == (5, 25)
    assert s.keys[("layers", 0, "conv", "k")] == (5, 21)
    assert s.values[("layers", 1)] == (5, 30)
    assert s.values[("layers", 4, "linear")] == (6, 24)
    assert s.keys[("layers", 4, "linear")] == (6, 15)
    assert s.values[("layers", 0)] == (5, 3)  # the inline table's '{'
    assert s.values[("layers", 0, "conv")] == (5, 11)
    assert s.values[("layers",)] == (4, 10)  # the array's '['
    assert s.keys[("layers",)] == (4, 1)
    assert s.values[("input", 2)] == (3, 17)
    assert s.values[("name",)] == (2, 8)
    assert s.values[()] == (1, 1)
    assert str(s.loc(("layers", 0, "conv", "k"))) == "lenet.toml:5:25"


def test_yaml_exact_positions():
    s = load_text(LENET_YAML, "lenet.yaml")
    assert s.values[("layers", 0, "conv", "k")] == (5, 23)
    assert s.keys[("layers", 0, "conv", "k")] == (5, 20)
    assert s.values[("layers", 0)] == (5, 5)  # a block mapping starts at its first key
    assert s.values[("layers", 0, "conv")] == (5, 11)  # a flow mapping at its '{'
    assert s.values[("layers", 1)] == (6, 5)
    assert s.values[("layers", 4, "linear")] == (9, 13)
    assert s.keys[("layers", 4, "linear")] == (9, 5)
    assert s.values[("layers",)] == (5, 3)  # the first '-'
    assert s.values[("input", 2)] == (3, 16)
    assert str(s.loc(("layers", 1))) == "lenet.yaml:6:5"


def test_fmt_argument_overrides_suffix():
    assert load_text(LENET_TOML, "spec.txt", fmt="toml").tree == LENET_TREE
    assert load_text("a: 1", "spec.toml", fmt="yaml").tree == {"a": 1}
    with pytest.raises(SpecError):
        load_text("a: 1", "x", fmt="json")


# ---------------------------------------------------------------- TOML scanner

def test_toml_tables_and_arrays_of_tables():
    text = """\
# a comment
archc = 1

[input]
shape = [3, 32, 32]

[model.head]
act = "relu"

[[layers]]
conv = {out = 6, k = 5}

[[layers]]
linear.out = 10
"""
    s = load_text(text, "t.toml")
    assert s.tree == {
        "archc": 1,
        "input": {"shape": [3, 32, 32]},
        "model": {"head": {"act": "relu"}},
        "layers": [{"conv": {"out": 6, "k": 5}}, {"linear": {"out": 10}}],
    }
    assert s.values[()] == (2, 1)
    assert s.keys[("input",)] == (4, 2)
    assert s.values[("input",)] == (4, 1)
    assert s.values[("input", "shape", 1)] == (5, 13)
    assert s.keys[("model",)] == (7, 2)
    assert s.values[("model",)] == (7, 8)  # implicit table: starts where its child is named
    assert s.keys[("model", "head")] == (7, 8)
    assert s.values[("model", "head", "act")] == (8, 7)
    assert s.keys[("layers",)] == (10, 3)
    assert s.values[("layers",)] == (10, 1)
    assert s.values[("layers", 0)] == (10, 1)
    assert s.values[("layers", 1)] == (13, 1)
    assert s.values[("layers", 0, "conv", "k")] == (11, 22)
    assert s.keys[("layers", 1, "linear")] == (14, 1)
    assert s.values[("layers", 1, "linear")] == (14, 8)  # dotted key: starts at 'out'
    assert s.keys[("layers", 1, "linear", "out")] == (14, 8)
    assert s.values[("layers", 1, "linear", "out")] == (14, 14)
    assert set(s.values) == set(all_paths(s.tree))


def test_toml_nested_arrays_of_tables():
    text = """\
[[blocks]]
name = "a"
[[blocks.layers]]
op = "conv"
[[blocks.layers]]
op = "relu"
[[blocks]]
name = "b"
[[blocks.layers]]
op = "linear"
[blocks.extra]
x = 1
"""
    s = load_text(text, "t.toml")
    assert s.tree["blocks"][1] == {"name": "b", "layers": [{"op": "linear"}], "extra": {"x": 1}}
    assert s.values[("blocks", 0, "layers", 1, "op")] == (6, 6)
    assert s.values[("blocks", 1, "layers", 0)] == (9, 1)
    assert s.values[("blocks", 1, "layers", 0, "op")] == (10, 6)
    assert s.keys[("blocks", 1, "extra")] == (11, 9)
    assert s.values[("blocks", 1, "extra", "x")] == (12, 5)


def test_toml_multiline_array_strings_and_odd_values():
    text = '''\
layers = [  # the stack
  "conv",   # first
  'relu',
  """multi
line""",
  \'\'\'raw
text\'\'\',
  { pool = { k = 2, s = "a,b]}" } },   # trailing comma next
  [1.5e3, 0x1F, -inf, true],
]
when = 1979-05-27 07:32:00Z
"quoted \\u0041" = "x\\"y"
'lit.key'.sub = 'q'
tail = """ends with quotes"""""
after = 7
'''
    s = load_text(text, "t.toml")
    t = s.tree
    assert t["layers"][2] == "multi\nline"
    assert t["layers"][4] == {"pool": {"k": 2, "s": "a,b]}"}}
    assert t["when"] == "1979-05-27T07:32:00+00:00"  # dates become ISO strings
    assert t["quoted A"] == 'x"y' and t["lit.key"] == {"sub": "q"}
    assert t["tail"] == 'ends with quotes""'
    assert s.values[("layers", 0)] == (2, 3)
    assert s.values[("layers", 1)] == (3, 3)
    assert s.values[("layers", 2)] == (4, 3)
    assert s.values[("layers", 3)] == (6, 3)
    assert s.values[("layers", 4)] == (8, 3)
    assert s.values[("layers", 4, "pool", "s")] == (8, 25)
    assert s.values[("layers", 5, 2)] == (9, 17)
    assert s.values[("layers", 5, 3)] == (9, 23)
    assert s.values[("when",)] == (11, 8)
    assert s.keys[("quoted A",)] == (12, 1)
    assert s.values[("quoted A",)] == (12, 19)
    assert s.keys[("lit.key", "sub")] == (13, 11)
    assert s.values[("after",)] == (15, 9)
    assert set(s.values) == set(all_paths(t))


def test_toml_scanner_failure_falls_back_silently(monkeypatch):
    from archc.spec import load_toml as load

    def broken(self, *args):
        raise IndexError("scanner bug")

    monkeypatch.setattr(load._TomlScanner, "items", broken)
    s = load_text(LENET_TOML, "lenet.toml")
    assert s.tree == LENET_TREE  # values still come from tomllib
    assert s.values[("name",)] == (2, 8)  # positions found before the failure are kept
    assert ("input", 0) not in s.values and ("layers",) not in s.values
    assert str(s.loc(("layers", 0, "conv"))) == "lenet.toml:1:1"  # falls back to the root


def test_toml_syntax_error_location():
    e = raises_at("a = 1\nb = = 2\n", "bad.toml")
    assert e.loc == Location("bad.toml", 2, 5)
    assert e.message == "invalid TOML: Invalid value"
    assert str(e) == "bad.toml:2:5: invalid TOML: Invalid value"
    e = raises_at("a = 1\na = 2\n", "bad.toml")
    assert e.loc == Location("bad.toml", 2, 1) and "(at line" not in e.message


# ---------------------------------------------------------------- YAML

def test_yaml_syntax_error_location_and_message():
    e = raises_at("name: x\nlayers:\n  - conv: a: b\n", "mine.yaml")
    assert str(e) == "mine.yaml:3:12: invalid YAML: mapping values are not allowed here"
    e = raises_at("a: 'open\n", "mine.yaml")
    assert e.loc.line == 2 and "\n" not in e.message


def test_yaml_duplicate_key():
    e = raises_at("a: 1\nb:\n  k: 1\n  x: 2\n  k: 3\n", "dup.yaml")
    assert e.message == "duplicate key 'k' (first at line 3)"
    assert e.loc == Location("dup.yaml", 5, 3)


def test_yaml_python_tag_rejected_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    text = f"layers:\n  - !!python/object/apply:os.system ['touch {marker}']\n"
    e = raises_at(text, "evil.yaml")
    assert e.loc == Location("evil.yaml", 2, 5)
    assert "!!python/object/apply:os.system" in e.message
    assert not marker.exists()
    for bad in ("x: !!binary aGk=", "x: !!set {a}", "x: !mytag 3", "x: !!python/name:os.system ''"):
        with pytest.raises(SpecError):
            load_text(bad, "evil.yaml")


def test_yaml_scalars_keys_and_empty():
    s = load_text("a: yes\nb: ~\nc: 1.5\nd: '7'\n1: one\ne: 2020-01-02\n", "s.yaml")
    assert s.tree == {"a": True, "b": None, "c": 1.5, "d": "7", 1: "one", "e": "2020-01-02"}
    assert s.keys[(1,)] == (5, 1)
    assert load_text("# nothing here\n", "e.yaml").tree is None
    assert load_text("", "e.yaml").values == {}


def test_yaml_anchors_aliases_and_merge():
    text = """\
base: &b
  act: relu
  k: 3
layers:
  - conv: *b
  - <<: *b
    k: 5
"""
    s = load_text(text, "m.yaml")
    assert s.tree["layers"] == [{"conv": {"act": "relu", "k": 3}}, {"act": "relu", "k": 5}]
    assert s.tree["layers"][0]["conv"] is not s.tree["base"]  # copies, safe to mutate
    assert s.values[("layers", 0, "conv")] == s.values[("base",)] == (1, 7)  # the anchor
    assert s.values[("layers", 0, "conv", "k")] == (3, 6)
    assert s.values[("layers", 1, "act")] == (2, 8)  # merged: from the anchored mapping
    assert s.values[("layers", 1, "k")] == (7, 8)  # own entry wins
    assert s.keys[("layers", 1, "k")] == (7, 5)
    with pytest.raises(SpecError, match="recursive"):
        load_text("a: &x [1, *x]\n", "r.yaml")


def test_yaml_merge_precedence_matches_safe_load():
    import yaml

    text = """\
a: &a {k: {x: 1, y: 2}, p: 1}
b: &b {k: {x: 3}, q: 2}
c:
  <<: [*b, *a]
  q: 9
"""
    s = load_text(text, "m.yaml")
    assert s.tree == yaml.safe_load(text)
    assert s.tree["c"] == {"k": {"x": 3}, "q": 9, "p": 1}
    assert s.values[("c", "k", "x")] == (2, 15)  # from *b, the winner
    assert ("c", "k", "y") not in s.values  # *a's k lost: its positions are dropped
    assert s.values[("c", "p")] == (1, 28)
    assert s.values[("c", "q")] == (5, 6)
    assert s.values[("c",)] == (4, 3)
    with pytest.raises(SpecError, match="merge key"):
        load_text("a: {<<: 3}", "m.yaml")


def test_toml_crlf_line_endings():
    s = load_text(LENET_TOML.replace("\n", "\r\n"), "w.toml")
    assert s.tree == LENET_TREE
    assert s.values[("layers", 4, "linear")] == (6, 24)


# ---------------------------------------------------------------- Source.loc and friends

def test_loc_fallback_and_key():
    s = load_text(LENET_YAML, "lenet.yaml")
    assert s.loc(("layers", 0, "conv", "k"), key=True) == Location("lenet.yaml", 5, 20)
    assert s.loc(("layers", 1), key=True) == Location("lenet.yaml", 6, 5)  # list item: no key
    assert s.loc(("layers", 0, "conv", "nope")) == Location("lenet.yaml", 5, 11)
    assert s.loc(["layers", 9, "x"]) == Location("lenet.yaml", 5, 3)
    assert s.loc(("layers", 9), key=True) == Location("lenet.yaml", 4, 1)
    assert s.loc() == Location("lenet.yaml", 1, 1)
    empty = Source(None, "e.yaml", {}, {})
    assert empty.loc(("a",)) == Location("e.yaml", 0, 0)
    assert str(empty.loc(("a",))) == "e.yaml"


def test_from_mapping():
    tree = {"layers": [{"linear": 3}]}
    s = from_mapping(tree)
    assert s.tree is tree and s.values == {} and s.keys == {}
    assert s.loc(("layers", 0)) == Location("<mapping>", 0, 0)
    assert from_mapping(tree, "cli").file == "cli"


def test_load_file(tmp_path):
    p = tmp_path / "net.toml"
    p.write_text(LENET_TOML, encoding="utf-8")
    s = load_file(p)
    assert s.tree == LENET_TREE and s.file == str(p)
    assert str(s.loc(("layers", 1))) == f"{p}:5:30"
    (tmp_path / "net.yml").write_text(LENET_YAML, encoding="utf-8")
    assert load_file(str(tmp_path / "net.yml")).tree == LENET_TREE
    with pytest.raises(SpecError, match="no such file: .*missing.yaml"):
        load_file(tmp_path / "missing.yaml")
