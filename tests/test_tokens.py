"""What the language gained for ViT: tokens [N, D] (`flatten: {start: 1}` + `permute`), a class
token and a position embedding (parameters of their class), `self_attention` (one
nn.MultiheadAttention, called with three arguments), `select` (forward's own `x[:, 0]`), and
blocks that name their input's dims (`input: [seq_length, dim]`), which their generated
constructors take. Each is checked statically (shapes, keys, receptive field, errors) and in the
generated module; the zoo's exactness tests hold ViT B/L/H to torchvision."""
from __future__ import annotations

import ast
import textwrap

import pytest
import torch
from click.testing import CliRunner

import archc
from archc.cli import main
from archc.emit.nodes import simplify, text
from archc.errors import SpecError
from archc.ir.receptive import receptive_fields
from ir_exec import run_ir

VIT = """
vars: {dim: 16, heads: 2}
blocks:
  encoder_block:
    input: [tokens, dim]
    layers:
      - residual:
          body:
            - layernorm: {dims: 1, name: ln_1}
            - self_attention: {heads: $heads, name: self_attention}
      - residual:
          body:
            - layernorm: {dims: 1, name: ln_2}
            - name: mlp
              seq:
                - linear: {out: "${2 * dim}", over: last}
                - gelu
                - linear: {out: $dim, over: last}
  encoder:
    input: [seq_length, dim]
    params: {n: int}
    layers:
      - pos_embedding: {name: pos_embedding}
      - name: layers
        seq:
          - encoder_block: null
            repeat: $n
            name: "encoder_layer_${i}"
      - layernorm: {dims: 1, name: ln}
layers:
  - conv: {out: $dim, k: 4, stride: 4, name: conv_proj}
  - flatten: {start: 1}
  - permute: [1, 0]
  - class_token: {name: class_token}
  - encoder: {n: 2}
    name: encoder
  - select: 0
  - name: heads
    seq:
      - linear: {out: 10, name: head}
"""


def load(body: str, shape="[3, 16, 16]", **kw):
    return archc.load(f"archc: 1\nname: t\ninput: {shape}\n" + textwrap.dedent(body), **kw)


def error(body: str, build: bool = False, shape="[3, 16, 16]") -> str:
    with pytest.raises(SpecError) as info:
        net = load(body, shape)
        if build:
            net.source()
    return str(info.value)


def test_shapes_keys_and_counts():
    net = load(VIT)
    shapes = {n.name: n.out for n in net.nodes}
    assert shapes["flatten1"] == (16, 16) and shapes["permute1"] == (16, 16)
    assert shapes["class_token"] == (17, 16) and shapes["select1"] == (16,)
    keys = list(net.state_dict_shapes())
    # a class's own parameters before its children, as torch orders a state_dict (ViT's order)
    assert keys[:4] == ["class_token", "conv_proj.weight", "conv_proj.bias", "encoder.pos_embedding"]
    assert keys[4:10] == [f"encoder.layers.encoder_layer_0.{k}" for k in (
        "ln_1.weight", "ln_1.bias", "self_attention.in_proj_weight", "self_attention.in_proj_bias",
        "self_attention.out_proj.weight", "self_attention.out_proj.bias")]
    sd = net.state_dict_shapes()
    assert sd["class_token"] == (1, 1, 16) and sd["encoder.pos_embedding"] == (1, 17, 16)
    assert sd["encoder.layers.encoder_layer_1.self_attention.in_proj_weight"] == (48, 16)
    attn = next(n for n in net.nodes if n.name == "encoder.layers.encoder_layer_0.self_attention")
    # q, k, v and out projections over 17 tokens, q.kT and attn.v over every head
    assert attn.macs == 3 * 17 * 16 * 16 + 2 * 17 * 17 * 16 + 17 * 16 * 16


def test_attention_reads_every_token():
    net = load(VIT)
    rf = dict(zip([n.name for n in net.nodes], receptive_fields(net)))
    assert rf["conv_proj"].size == (4, 4)
    assert rf["encoder.layers.encoder_layer_0.self_attention"].whole


def test_generated_code_is_written_from_the_definitions():
    net = load(VIT)
    src = net.source()
    tree = ast.parse(src)
    inits = {c.name: [a.arg for a in next(f for f in c.body if isinstance(f, ast.FunctionDef)
                                           and f.name == "__init__").args.args[1:]]
             for c in tree.body if isinstance(c, ast.ClassDef)}
    # the dims a block names are its constructor's arguments, where its layers use them
    assert inits["EncoderBlock"] == ["dim"] and inits["Encoder"] == ["seq_length", "dim", "n"]
    assert "self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)" in src
    assert "self.self_attention(out, out, out, need_weights=False)[0]" in src
    assert "self.pos_embedding = nn.Parameter(torch.normal(0.0, 0.02, (1, seq_length, dim)))" in src
    assert "torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)" in src
    assert "x = x[:, 0]" in src and "nn.Flatten(start_dim=2)" in src
    assert "Encoder(17, dim, n=2, heads=heads)" in src      # the tokens at this input, the features a var


def test_module_runs_trains_and_equals_the_ir():
    net = load(VIT)
    torch.manual_seed(0)
    m = net.to_module()
    x = torch.randn(2, 3, 16, 16)
    y = m(x)
    assert tuple(y.shape) == (2, 10)
    y.square().mean().backward()
    assert m.encoder.pos_embedding.grad is not None and m.class_token.grad is not None
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), run_ir(net, m.state_dict(), x))


def test_parameters_start_as_their_args_say():
    net = load(VIT.replace("class_token: {name: class_token}", "class_token: {std: 0.5, name: class_token}"))
    torch.manual_seed(0)
    m = net.to_module()
    assert 0.3 < m.class_token.std() < 0.7
    assert 0.01 < m.encoder.pos_embedding.std() < 0.03
    mha = m.encoder.layers.encoder_layer_0.self_attention
    assert mha.in_proj_bias.abs().max() == 0 and mha.out_proj.bias.abs().max() == 0     # PyTorch's own start


@pytest.mark.parametrize("layers,message", [
    ("- self_attention: 2", "needs tokens [N, D], got [3, 16, 16]"),
    ("- {flatten: 1}\n  - {permute: [1, 0]}\n  - self_attention: 5", "splits 3 features into 5 heads"),
    ("- class_token", "needs tokens [N, D]"),
    ("- {flatten: 1}\n  - seq: [{self_attention: 1}]", "a module forward calls with more than its input"),
    ("- {flatten: 1}\n  - {pos_embedding: {}, repeat: 2}", "is a parameter of the class it sits in"),
    ("- {flatten: 1}\n  - {pos_embedding: {}, init: {weight: zeros}}", "starts from its 'std:', not from 'init:'"),
    ("- {flatten: 1}\n  - select: 3", "select of position 3 along dim 0 is outside an input [3, 256]"),
    ("- flatten: {start: 3}", "flatten from dim 3 needs an input with more dims"),
])
def test_mistakes_are_located(layers, message):
    msg = error(f"layers:\n  {layers}\n")
    assert msg.startswith("<string>:") and message in msg, msg


@pytest.mark.parametrize("block,message", [
    ("input: [a, b]", "block 'b' names 2 input dims (a, b); its input here is [3, 16, 16]"),
    ("input: [a, a, c]", "must be a Python identifier, not a keyword, 'self', a param or another dim's name"),
    ("input: [a, class, c]", "got 'class'"),
    ("input: [a, k, c]\n    params: {k: 1}", "got 'k'"),
    ("input: []", "names each dim of the block's input, got none"),
    ("input: [a, b, c]\n    let: {a: 1}", "'let' name 'a' shadows a param or shape fact"),
])
def test_input_dims_mistakes_are_located(block, message):
    msg = error(f"blocks:\n  b:\n    {block}\n    layers: [relu]\nlayers: [b]\n")
    assert msg.startswith("<string>:") and message in msg, msg


def test_a_block_naming_its_dims_has_no_c_in():
    msg = error("blocks:\n  b:\n    input: [a, h, w]\n    layers: [{conv: {out: $c_in, k: 1}}]\nlayers: [b]\n")
    assert "'c_in'" in msg and msg.startswith("<string>:")
    net = load("blocks:\n  b:\n    input: [a, h, w]\n    layers: [{conv: {out: \"${a * 2}\", k: 1}}]\nlayers: [b]\n")
    assert net.output_shapes[0] == (6, 16, 16)
    assert "def __init__(self, a):" in net.source()


def test_select_ends_a_seq_block_but_not_a_seq():
    body = """
    blocks:
      pick:
        input: [n, d]
        seq: [{layernorm: 1}, {select: 0}]
    layers: [{flatten: 1}, {permute: [1, 0]}, pick, {linear: 4}]
    """
    net = load(body)
    src = net.source()
    assert "for module in self:" in src and "return x[:, 0]" in src
    m = net.to_module().eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 16, 16)
        torch.testing.assert_close(m(x), run_ir(net, m.state_dict(), x))
    msg = error("layers: [{flatten: 1}, {seq: [{select: 0}, {linear: 4}]}]\n", build=True)
    assert msg.startswith("<string>:") and "an nn.Sequential cannot hold it" in msg


def test_attention_under_a_condition_is_a_located_build_error():
    body = """
    vars: {attend: true}
    blocks:
      b:
        input: [n, d]
        layers:
          - {self_attention: 1, when: $attend}
    layers: [{flatten: 1}, {permute: [1, 0]}, b]
    """
    msg = error(body, build=True)
    assert msg.startswith("<string>:") and "under 'when:'" in msg


@pytest.mark.parametrize("expr,simpler", [
    ("a - (b - 1) - 1", "a - b"),                       # a conv's output size, pad 0
    ("(a - (b - 1) - 1) // b + 1", "a // b"),           # ... at a stride equal to its kernel
    ("a - (b + 2)", "a - b - 2"),
    ("(a - b) // c + 1", "(a - b) // c + 1"),           # not the same divisor: kept
])
def test_size_arithmetic_simplifies(expr, simpler):
    def walk(node):       # bottom-up, as the emitter builds its expressions
        if isinstance(node, ast.BinOp):
            return simplify(ast.BinOp(walk(node.left), node.op, walk(node.right)))
        return node
    assert text(walk(ast.parse(expr, mode="eval").body)) == simpler


def test_from_the_command_line(tmp_path):
    spec = tmp_path / "vit.yaml"
    spec.write_text("archc: 1\nname: vit\ninput: [3, 16, 16]\n" + textwrap.dedent(VIT))
    r = CliRunner().invoke(main, ["summary", str(spec), "--rf", "--memory"])
    assert r.exit_code == 0, r.output
    assert "self_attention" in r.output and "whole" in r.output
    r = CliRunner().invoke(main, ["build", str(spec), "-o", str(tmp_path / "vit.py")])
    assert r.exit_code == 0, r.output
    compile((tmp_path / "vit.py").read_text(), "vit.py", "exec")
    bad = tmp_path / "bad.yaml"
    bad.write_text("archc: 1\nname: bad\ninput: [3, 16, 16]\nlayers:\n  - seq: [{self_attention: 1}]\n")
    r = CliRunner().invoke(main, ["check", str(bad)])
    assert r.exit_code == 2 and f"{bad}:5:" in r.output
