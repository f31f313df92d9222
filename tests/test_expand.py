"""Expansion: vars and overrides, variants, expressions, repeat and `first:`, block imports,
residual shortcuts, parallel merges, DAG wiring, several outputs, seq flattening, and TOML = YAML.
Everything here is static: no torch."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import archc
from archc.errors import SpecError

HERE = Path(__file__).parent
SPECS = HERE / "specs"


def load(body: str, shape="[3, 16, 16]", **kw):
    """A spec from its `vars/blocks/layers/...` text (the header is added)."""
    text = f"archc: 1\nname: t\ninput: {shape}\n" + textwrap.dedent(body)
    return archc.load(text, **kw)


def table(net):
    """(name, op, out) of every node."""
    return [(n.name, n.op.name, tuple(n.out)) for n in net.nodes]


def node(net, name):
    return next(n for n in net.nodes if n.name == name)


def inputs(net, name):
    """Names of a node's producers ('input' for the network input)."""
    return ["input" if i < 0 else net.nodes[i].name for i in node(net, name).inputs]


def error(body: str, **kw) -> str:
    with pytest.raises(SpecError) as info:
        load(body, **kw)
    return str(info.value)


# -- vars and overrides --------------------------------------------------------------------------

VARS = """
vars: {base: 8, wide: "${base * 2}", num_classes: 10}
layers:
  - conv: {out: $base, k: 3, pad: 1}
  - conv: {out: $wide, k: 1}
  - gap
  - linear: $num_classes
"""


def test_vars_and_derived_vars():
    net = load(VARS)
    assert [n.out[0] for n in net.nodes] == [8, 16, 16, 10]
    assert net.vars["wide"] == 16


def test_overrides_reach_derived_vars():
    net = load(VARS, base=4, num_classes=3)
    assert [n.out[0] for n in net.nodes] == [4, 8, 8, 3]
    assert load(VARS, wide=5).nodes[1].out[0] == 5


def test_override_from_file_and_cli_parser():
    from archc.spec.compile import override_value, parse_override

    def parsed(text):       # a --set value is read as YAML once the spec is known (to locate errors)
        key, value = parse_override(text)
        return key, override_value(key, value, None)
    assert parsed("num_classes=3") == ("num_classes", 3)
    assert parsed("w=0.5") == ("w", 0.5)
    assert parsed("shape=[1, 2]") == ("shape", [1, 2])
    assert parsed("act=relu") == ("act", "relu")
    assert parsed("t=a: b: c") == ("t", "a: b: c")      # not YAML: the text itself
    net = archc.load(SPECS / "lenet5.yaml", num_classes=3)
    assert net.output_shapes == [(3,)]


def test_unknown_override_is_an_error():
    msg = error(VARS, num_clases=3)
    assert "num_clases" in msg and "did you mean 'num_classes'" in msg


# -- variants ------------------------------------------------------------------------------------

VARIANTS = VARS + """
variants:
  small: {input: [3, 8, 8], vars: {base: 2}}
  cls100: {vars: {num_classes: 100}}
  mono: {input: [1, 16, 16]}
"""


def test_variant_sets_input_and_vars():
    net = load(VARIANTS, variant="small")
    assert net.variant == "small" and net.input == (3, 8, 8)
    assert table(net)[:2] == [("conv1", "conv", (2, 8, 8)), ("conv2", "conv", (4, 8, 8))]
    assert load(VARIANTS, variant="cls100").output_shapes == [(100,)]
    mono = load(VARIANTS, variant="mono")
    assert mono.input == (1, 16, 16) and mono.nodes[0].params == 8 * 1 * 9 + 8


def test_overrides_and_input_beat_the_variant():
    net = load(VARIANTS, variant="small", base=3, input="3x32x32")
    assert net.input == (3, 32, 32)
    assert net.nodes[0].out == (3, 32, 32) and net.nodes[1].out == (6, 32, 32)


def test_unknown_variant_and_variant_var():
    assert "unknown variant 'smal'" in error(VARIANTS, variant="smal")
    msg = error(VARS + "variants:\n  bad: {vars: {bse: 2}}\n", variant="bad")
    assert "unknown var 'bse'" in msg and "base" in msg
    # also where another variant, or none, is built: the generated code has a builder for each
    msg = error(VARS + "variants:\n  bad: {vars: {from: 2}}\n")
    assert msg.startswith("<string>:") and "variant 'bad' sets unknown var 'from'" in msg


# -- expressions ---------------------------------------------------------------------------------

def test_expressions():
    net = load("""
    vars: {width_mult: 1.4, depth_mult: 1.2, big: true}
    layers:
      - conv: {out: "${make_divisible(32 * width_mult, 8)}", k: 3, pad: 1}   # 44.8 -> 48
      - conv: {out: "${make_divisible(10, 8)}", k: 1}                          # never < 90%: 16
      - conv: {out: "${64 if big else 16}", k: 1}
      - conv: {out: "${c_in // 2}", k: 1}              # the shape facts of the input
      - conv: {out: "${max(1, h_in // 4)}", k: 1}
      - seq:
          - conv: {out: "${8 * (i + 1)}", k: 1}
            repeat: "${ceil(2 * depth_mult)}"           # ceil(2.4) = 3
    """)
    assert [n.out[0] for n in net.nodes] == [48, 16, 64, 1, 4, 8, 16, 24]
    from archc.spec.expr import make_divisible
    assert [make_divisible(v) for v in (3, 8, 12, 44.8, 100)] == [8, 8, 16, 48, 104]


def test_expression_errors_are_located():
    msg = error("""
    layers:
      - conv: {out: "${__import__('os')}", k: 1}
    """)
    assert msg.startswith("<string>:6:") and "__import__" in msg
    msg = error("""
    vars: {w: 8}
    layers:
      - conv: {out: "${wdith * 2}", k: 1}
    """)
    assert msg.startswith("<string>:7:") and "unknown name 'wdith'" in msg


def test_repeat_index_and_first():
    net = load("""
    layers:
      - {conv: {out: "${4 * (i + 1)}", k: 3, pad: 1}, repeat: 3, first: {stride: 2, k: 1, pad: 0}, name: stage}
    """)
    assert table(net) == [("stage.0", "conv", (4, 8, 8)), ("stage.1", "conv", (8, 8, 8)),
                          ("stage.2", "conv", (12, 8, 8))]
    assert [(n.args.stride, n.args.k) for n in net.nodes] == [(2, 1), (1, 3), (1, 3)]


def test_first_with_short_form_args():
    net = load("""
    layers:
      - {maxpool: 2, repeat: 2, first: {stride: 1}, name: pools}
    """)
    assert table(net) == [("pools.0", "maxpool", (3, 15, 15)), ("pools.1", "maxpool", (3, 7, 7))]


def test_repeat_zero_and_expression_count():
    net = load("""
    vars: {n: 0}
    layers:
      - conv: {out: 4, k: 1}
      - seq: [relu, {conv: {out: 4, k: 1}, repeat: $n}]
    """)
    assert [n.name for n in net.nodes] == ["conv1", "seq1.0"]
    assert "non-negative" in error("layers:\n  - seq: [{relu: null, repeat: -1}]\n")


def test_first_block_params_and_i_in_blocks():
    net = load("""
    blocks:
      unit:
        params: {out: int, stride: 1}
        layers:
          - conv: {out: "${out + i}", k: 3, stride: $stride, pad: 1, name: conv}
    layers:
      - {unit: {out: 4}, repeat: 3, first: {stride: 2}, name: stage}
    """)
    assert table(net) == [("stage.0.conv", "conv", (4, 8, 8)), ("stage.1.conv", "conv", (5, 8, 8)),
                          ("stage.2.conv", "conv", (6, 8, 8))]


# -- use: imports --------------------------------------------------------------------------------

def test_use_imports_a_block_file():
    net = archc.load(SPECS / "uses_blocks.yaml")
    assert net.output_shapes == [(4,)]
    names = [n.name for n in net.nodes]
    assert names[:3] == ["stem.0", "stem.1", "stem.2"]
    assert "stage2.0.downsample.0" in names                 # `shortcut: auto` of the imported block
    assert "stage1.0.downsample.0" not in names
    assert node(net, "stage2.0.downsample.0").args.stride == 2


def test_use_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("archc: 1\nuse: [b.yaml]\nblocks: {}\n")
    (tmp_path / "b.yaml").write_text("archc: 1\nuse: [a.yaml]\nblocks: {}\n")
    main = tmp_path / "main.yaml"
    main.write_text("archc: 1\nname: m\ninput: [4]\nuse: [a.yaml]\nlayers: [relu]\n")
    with pytest.raises(SpecError, match="'use' cycle"):
        archc.load(main)
    main.write_text("archc: 1\nname: m\ninput: [4]\nuse: [nope.yaml]\nlayers: [relu]\n")
    with pytest.raises(SpecError, match="no such block file 'nope.yaml'") as info:
        archc.load(main)
    assert str(info.value).startswith(f"{main}:4:")


def test_local_block_overrides_imported(tmp_path):
    (tmp_path / "lib.yaml").write_text("archc: 1\nblocks:\n  head: {layers: [gap, {linear: 3}]}\n")
    main = tmp_path / "main.yaml"
    main.write_text("archc: 1\nname: m\ninput: [4, 8, 8]\nuse: [lib.yaml]\n"
                    "blocks:\n  head: {layers: [gap, {linear: 5}]}\nlayers: [head]\n")
    assert archc.load(main).output_shapes == [(5,)]


# -- residual shortcuts --------------------------------------------------------------------------

RES = """
blocks:
  res:
    params: {out: int, stride: 1}
    residual:
      body: [{conv: {out: $out, k: 3, pad: 1, stride: $stride, name: conv}}, {bn: {name: bn}}]
      %s
      post: relu
layers:
  - res: {out: 3}
  - res: {out: 8, stride: 2}
"""


def test_residual_identity_and_layers_shortcut():
    net = load(RES % "shortcut: {name: proj, layers: [{conv: {out: $out, k: 1, stride: $stride}}, bn]}")
    assert inputs(net, "res1.add1") == ["res1.bn", "input"]              # identity
    assert inputs(net, "res2.add1") == ["res2.bn", "res2.proj.1"]        # projection, named
    assert inputs(net, "res2.proj.0") == ["res1.relu1"]
    assert node(net, "res2.proj.0").args.bias is True
    assert [n.name for n in net.nodes][-1] == "res2.relu1"


def test_residual_default_shortcut_name_is_downsample():
    net = load(RES % "shortcut: [{conv: {out: $out, k: 1, stride: $stride}}]")
    assert inputs(net, "res2.add1") == ["res2.bn", "res2.downsample.0"]


def test_residual_auto_shortcut():
    net = load(RES % "shortcut: auto")
    assert "res1.downsample.0" not in [n.name for n in net.nodes]         # same shape: identity
    conv, bn = node(net, "res2.downsample.0"), node(net, "res2.downsample.1")
    assert (conv.op.name, conv.args.k, conv.args.stride, conv.args.bias, conv.out) == ("conv", 1, 2, False, (8, 8, 8))
    assert bn.op.name == "bn"
    assert inputs(net, "res2.add1") == ["res2.bn", "res2.downsample.1"]


def test_residual_shortcut_none():
    net = load(RES % "shortcut: none")
    assert inputs(net, "res1.add1") == ["res1.bn", "input"]              # shapes equal: still a skip
    names = [n.name for n in net.nodes]
    assert not any(n.startswith("res2.add") or "downsample" in n for n in names)
    assert names[-1] == "res2.relu1"                                     # `post` still applies
    assert inputs(net, "res2.relu1") == ["res2.bn"]


def test_residual_without_shortcut_must_say_so():
    msg = error(RES % "")
    assert "changes shape [3, 16, 16] -> [8, 8, 8]" in msg and "shortcut" in msg


def test_residual_shortcut_of_wrong_shape():
    msg = error(RES % "shortcut: [{conv: {out: 4, k: 1}}]")
    assert "shortcut gives [4, 16, 16]" in msg


def test_residual_mul_and_concat_merges():
    net = load("""
    layers:
      - residual: {body: [sigmoid], merge: mul}
      - residual: {body: [{conv: {out: 5, k: 1}}], merge: concat}
      - residual: {body: [{conv: {out: 5, k: 1}}], merge: concat}
    """)
    # concat keeps the input's channels, first, and adds the body's (DenseNet): 3 -> 8 -> 13
    assert table(net) == [("sigmoid1", "sigmoid", (3, 16, 16)), ("mul1", "mul", (3, 16, 16)),
                          ("conv1", "conv", (5, 16, 16)), ("concat1", "concat", (8, 16, 16)),
                          ("conv2", "conv", (5, 16, 16)), ("concat2", "concat", (13, 16, 16))]
    assert inputs(net, "concat1") == ["mul1", "conv1"]
    assert inputs(net, "concat2") == ["concat1", "conv2"]
    assert inputs(net, "mul1") == ["sigmoid1", "input"]


# -- parallel ------------------------------------------------------------------------------------

def test_parallel_concat_add_mul():
    net = load("""
    blocks:
      cat:
        parallel:
          branches: {a: [{conv: {out: 4, k: 1}}], b: [{conv: {out: 2, k: 3, pad: 1}}, relu]}
      sum:
        parallel:
          merge: add
          branches: [[{conv: {out: 6, k: 1}}], [identity]]
      gate:
        parallel:
          merge: mul
          branches: [[identity], [gap, {linear: $c_in}, sigmoid, {reshape: ["$c_in", 1, 1]}]]
    layers:
      - cat
      - sum
      - gate
    """)
    assert inputs(net, "cat1.concat1") == ["cat1.a", "cat1.b.1"]
    assert node(net, "cat1.concat1").out == (6, 16, 16)
    assert inputs(net, "sum1.add1") == ["sum1.branch1", "sum1.branch2"]
    assert node(net, "sum1.add1").out == (6, 16, 16)
    assert node(net, "gate1.branch2.3").out == (6, 1, 1)
    assert inputs(net, "gate1.mul1") == ["gate1.branch1", "gate1.branch2.3"]
    assert net.output_shapes == [(6, 16, 16)]


def test_parallel_shape_mismatch_is_an_error():
    msg = error("""
    layers:
      - parallel: {merge: add, branches: [[{conv: {out: 4, k: 1}}], [{conv: {out: 5, k: 1}}]]}
    """)
    assert "shapes differ" in msg


# -- DAG wiring and outputs ----------------------------------------------------------------------

DAG = """
layers:
  - conv: {out: 4, k: 3, pad: 1}
    id: a
  - conv: {out: 4, k: 1}
    from: input
    id: b
  - {add: null, from: [a, b], id: s}
  - {concat: null, from: [s, input, a], id: cat}
  - {gap: null, from: cat, id: pooled}
  - linear: {out: 3, name: head}
    id: logits
"""


def test_dag_wiring():
    net = load(DAG)
    assert inputs(net, "conv1") == ["input"]
    assert inputs(net, "conv2") == ["input"]
    assert inputs(net, "add1") == ["conv1", "conv2"]
    assert inputs(net, "concat1") == ["add1", "input", "conv1"]
    assert node(net, "concat1").out == (11, 16, 16)
    assert inputs(net, "head") == ["gap1"]
    assert net.output_shapes == [(3,)]


def test_dag_errors():
    assert "unknown id 'c'" in error("layers:\n  - {relu: null, id: a}\n  - {add: null, from: [a, c]}\n")
    assert "duplicate id 'a'" in error("layers:\n  - {relu: null, id: a}\n  - {relu: null, id: a}\n")
    assert "'from' is not available inside a seq" in error("layers:\n  - seq: [{relu: null, from: input}]\n")
    assert "an 'id' inside a seq goes on" in error("layers:\n  - seq: [{seq: [{relu: null, id: a}]}]\n")


def test_several_outputs():
    net = load(DAG + "outputs: [logits, pooled, {id: a, name: features}]\n")
    assert [name for name, _, _ in net.outputs] == ["logits", "pooled", "features"]
    assert net.output_shapes == [(3,), (11,), (4, 16, 16)]
    assert not any(n.train_only for n in net.nodes)
    assert net.summary()["outputs"] == {"logits": [3], "pooled": [11], "features": [4, 16, 16]}


def test_train_only_output():
    net = load(DAG + "outputs: [pooled, {id: logits, train_only: true}]\n")
    assert [n.name for n in net.nodes if n.train_only] == ["head"]
    assert net.macs == sum(n.macs for n in net.nodes if n.name != "head")
    assert net.params == sum(n.params for n in net.nodes)
    assert "every output is train_only" in error(DAG + "outputs: [{id: logits, train_only: true}]\n")
    assert "unknown output id 'logit'" in error(DAG + "outputs: [logit]\n")


def test_aux_head_spec():
    net = archc.load(SPECS / "aux_head.yaml")
    assert [(name, t) for name, _, t in net.outputs] == [("logits", False), ("aux_logits", True)]
    assert inputs(net, "aux.pool") == ["maxpool1"]
    assert {n.name for n in net.nodes if n.train_only} == {"aux.pool", "aux.flatten1", "aux.fc1", "aux.relu1",
                                                           "aux.fc2"}


# -- seq, repeat, names --------------------------------------------------------------------------

def test_repeat_in_seq_flattens_named_repeat_nests():
    net = load("""
    layers:
      - seq:
          - relu
          - {conv: {out: 4, k: 1}, repeat: 2}
          - {conv: {out: 4, k: 1}, repeat: 2, name: inner}
          - sigmoid
        name: features
      - {conv: {out: 4, k: 1}, repeat: 2, name: stage}
    """)
    assert [n.name for n in net.nodes] == ["features.0", "features.1", "features.2", "features.inner.0",
                                           "features.inner.1", "features.4", "stage.0", "stage.1"]
    features = net.root.children[0]
    assert (features.attr, features.kind) == ("features", "seq")
    assert [c.attr for c in features.children] == ["0", "1", "2", "inner", "4"]
    assert features.children[3].kind == "seq" and [c.attr for c in features.children[3].children] == ["0", "1"]
    assert [(c.attr, c.kind) for c in net.root.children] == [("features", "seq"), ("stage", "seq")]


def test_automatic_names_avoid_written_names():
    net = load("""
    layers:
      - conv: {out: 4, k: 1}
      - relu
      - conv: {out: 4, k: 1, name: conv1}
    """)
    assert [n.name for n in net.nodes] == ["conv2", "relu1", "conv1"]
    assert "duplicate name 'a'" in error("layers:\n  - {relu: null, name: a}\n  - {relu: null, name: a}\n")


def test_block_instances_are_scoped():
    net = archc.load(SPECS / "resnet_small.yaml")
    names = [n.name for n in net.nodes]
    assert "layer1.0.conv1" in names and "layer3.1.bn3" in names
    assert "layer2.0.downsample.0" in names and "layer3.0.downsample.1" in names
    assert "layer1.0.downsample.0" not in names and "layer2.1.downsample.0" not in names
    assert node(net, "layer2.0.conv2").args.stride == 2 and node(net, "layer2.1.conv2").args.stride == 1
    assert node(net, "layer3.1.conv3").out == (64, 8, 8)


# -- TOML ----------------------------------------------------------------------------------------

def signature(net):
    return [(n.name, n.op.name, n.args.model_dump(), tuple(map(tuple, n.in_shapes)), n.out, n.inputs)
            for n in net.nodes]


@pytest.mark.parametrize("kw", [{}, {"variant": "tiny"}, {"variant": "wide", "num_classes": 3}])
def test_toml_equals_yaml(kw):
    y = archc.load(SPECS / "resnet_small.yaml", **kw)
    t = archc.load(SPECS / "resnet_small.toml", **kw)
    assert signature(t) == signature(y)
    assert (t.params, t.buffers, t.macs, t.flops) == (y.params, y.buffers, y.macs, y.flops)
    assert t.state_dict_shapes() == y.state_dict_shapes()
    assert t.summary() == y.summary()
    assert t.source().split("\n", 1)[1] == y.source().split("\n", 1)[1]    # all but the file name


def test_toml_errors_are_located(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('archc = 1\nname = "b"\ninput = [4]\nlayers = [\n  {linear = {out = 2, bais = false}},\n]\n')
    with pytest.raises(SpecError) as info:
        archc.load(bad)
    assert str(info.value).startswith(f"{bad}:5:") and "bais" in str(info.value)


def test_block_named_like_an_op_shadows_it():
    net = load("""
    blocks:
      add: {layers: [{conv: {out: 2, k: 1}}]}
    layers:
      - add
      - seq: [add]
    """)
    assert table(net) == [("add1.conv1", "conv", (2, 16, 16)), ("seq1.0.conv1", "conv", (2, 16, 16))]


# -- block param declarations --------------------------------------------------------------------

UNION = """
blocks:
  cb:
    params: {out: int, k: {type: "int | list", default: 1}, pad: {type: "int | list", default: 0}}
    layers: [{conv: {out: $out, k: $k, pad: $pad}}]
layers:
  - cb: %s
"""


def test_param_with_union_type_and_default():
    assert load(UNION % "{out: 4}").nodes[0].args.k == 1                          # the default
    assert load(UNION % "{out: 4, k: 3, pad: 1}").nodes[0].out == (4, 16, 16)
    net = load(UNION % "{out: 4, k: [1, 7], pad: [0, 3]}")                        # a list fits too
    assert net.nodes[0].out == (4, 16, 16) and net.nodes[0].args.k == [1, 7]
    assert load(UNION % "8").nodes[0].out == (8, 16, 16)                          # one required: short form
    assert "param 'k' expects int | list, got 'x'" in error(UNION % "{out: 4, k: x}")
    assert "param 'out' expects int, got True" in error(UNION % "{out: true}")


def test_repeat_with_per_copy_names():
    """`name: "layer${i + 1}"` names each copy: they join the class or seq one by one."""
    net = load("""
    blocks:
      two:
        params: {n: int}
        layers:
          - {conv: {out: 4, k: 1}, repeat: $n, name: "unit${i + 1}"}
    layers:
      - {two: {n: 3}, name: blk}
      - seq:
          - {relu: null, repeat: 2, name: "act${i}"}
        name: tail
    """)
    assert [n.name for n in net.nodes] == ["blk.unit1", "blk.unit2", "blk.unit3", "tail.act0", "tail.act1"]
    assert list(net.to_module().state_dict()) == [f"blk.unit{k}.{w}" for k in (1, 2, 3) for w in ("weight", "bias")]
    msg = error("""
    layers:
      - {conv: {out: 4, k: 1}, repeat: 2, name: "c${i}", id: a}
    """)
    assert "'id' cannot go with a repeat whose copies are named one by one" in msg


def test_first_overrides_a_block_short_form():
    net = load("""
    blocks:
      unit:
        params: {out: int, stride: 1}
        layers: [{conv: {out: $out, k: 3, stride: $stride, pad: 1}}]
    layers:
      - {unit: 8, repeat: 2, first: {stride: 2}, name: stage}
    """)
    assert [n.out for n in net.nodes] == [(8, 8, 8), (8, 8, 8)]


def test_unnamed_inline_seq_splices_into_its_seq():
    """VGG's features: conv-relu pairs repeated per stage, all children of one flat nn.Sequential."""
    net = load("""
    vars: {n: [2, 1], w: [4, 8]}
    layers:
      - name: features
        seq:
          - {seq: [{conv: {out: "${w[0]}", k: 3, pad: 1}}, relu], repeat: "${n[0]}"}
          - maxpool: 2
          - {seq: [{conv: {out: "${w[1]}", k: 3, pad: 1}}, {bn: null, when: false}, relu], repeat: "${n[1]}"}
          - maxpool: 2
    """)
    assert [(n.name, n.op.name) for n in net.nodes] == [
        ("features.0", "conv"), ("features.1", "relu"), ("features.2", "conv"), ("features.3", "relu"),
        ("features.4", "maxpool"), ("features.5", "conv"), ("features.6", "relu"), ("features.7", "maxpool")]


def test_outputs_with_when_follow_the_variant():
    body = """
    vars: {aux: false}
    variants: {aux: {vars: {aux: true}}}
    layers:
      - {conv: {out: 4, k: 3, pad: 1}, id: trunk}
      - {gap: null, from: trunk, id: side, when: $aux}
      - {gap: null, from: trunk, id: main}
    outputs: [main, {id: side, train_only: true, when: $aux}]
    """
    plain, aux = load(body), load(body, variant="aux")
    assert [name for name, _, _ in plain.outputs] == ["main"]
    assert [(name, t) for name, _, t in aux.outputs] == [("main", False), ("side", True)]
    assert "'when' must be true or false" in error(body.replace("when: $aux}]", "when: 3}]"))


def test_unrepeated_inline_seq_nests():
    """Without a repeat, an inline seq inside a seq is one numbered child (timm's blocks.0.0)."""
    net = load("""
    layers:
      - name: blocks
        seq:
          - seq: [{conv: {out: 4, k: 1}}, relu]
          - seq: [{conv: {out: 4, k: 1}, repeat: 2}]
    """)
    assert [n.name for n in net.nodes] == ["blocks.0.0", "blocks.0.1", "blocks.1.0", "blocks.1.1"]
