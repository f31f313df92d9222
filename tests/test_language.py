"""What the language gained for torchvision's RegNet: list comprehensions, `range`, `sum`,
`log`/`log2`/`exp` in expressions (bounded like everything else); seq children named by any string
`add_module` takes (`block1-0`); a residual whose shortcut is written before its body registers
the shortcut first. Each is checked statically and in the generated module."""
from __future__ import annotations

import math
import textwrap
import time
from pathlib import Path

import pytest
import torch

import archc
from archc.errors import SpecError
from archc.spec.expr import evaluate, ExprError


def load(body: str, shape="[3, 16, 16]", **kw):
    return archc.load(f"archc: 1\nname: t\ninput: {shape}\n" + textwrap.dedent(body), **kw)


def error(body: str, **kw) -> str:
    with pytest.raises(SpecError) as info:
        load(body, **kw)
    return str(info.value)


# -- expressions ---------------------------------------------------------------------------------

def test_comprehensions_and_new_functions():
    assert evaluate("[j * 2 for j in range(4) if j != 1]", {}) == [0, 4, 6]
    assert evaluate("[a + b for a in [1, 2] for b in [10, 20]]", {}) == [11, 21, 12, 22]
    assert evaluate("[[j for j in range(k)] for k in range(3)]", {}) == [[], [0], [0, 1]]
    assert evaluate("sum([w for w in ws if w > 1])", {"ws": [1, 2, 3]}) == 5
    assert evaluate("range(2, 8, 3)", {}) == [2, 5]
    assert evaluate("log(8) / log(2)", {}) == pytest.approx(3)
    assert evaluate("log2(8)", {}) == 3 and evaluate("log(100, 10)", {}) == pytest.approx(2)
    assert evaluate("exp(0)", {}) == 1


@pytest.mark.parametrize("text, message", [
    ("range(10 ** 9)", "expression result too large"),
    ("[j for j in range(100000) for k in range(100000)]", "expression result too large"),
    ("[[k for k in range(1000)] for j in range(1000)]", "expression result too large"),
    ("['a' * 99999 for j in range(100000)]", "expression result too large"),   # refused at item 2
    ("sum([[j] for j in range(50000)])", "sum takes a list of numbers"),       # no quadratic concat
    ("[j for j in 5]", "'5' is not a list to go through"),
    ("[a for a, b in [[1, 2]]]", "one name ('for j in ...'), got 'for (a, b) in'"),
    ("[i for i in range(3)]", "the comprehension's name 'i' hides the name 'i'"),
    ("sum(j for j in range(3))", "a generator (write a list: [...]) is not allowed"),
    ("{j for j in range(3)}", "a set comprehension"),
    ("log(0)", "math domain error"),
    ("exp(1000)", "cannot evaluate"),
])
def test_expression_limits_and_errors(text, message):
    t0 = time.process_time()         # CPU time: the machine may be busy with other work
    with pytest.raises(ExprError) as info:
        evaluate(text, {"i": 0})
    assert message in str(info.value)
    assert time.process_time() - t0 < 2          # refused before the work, not after it


def test_comprehension_in_a_spec_and_its_generated_code():
    spec = """
    vars:
      depth: 6
      widths: "${[8 * 2 ** round(log2(1 + j)) for j in range(depth)]}"
      starts: "${[widths[j] for j in range(depth) if j == 0 or widths[j] != widths[j - 1]]}"
    layers:
      - seq:
          - conv: {out: "${starts[i]}", k: 1}
            repeat: "${len(starts)}"
      - gap
      - linear: 10
    """
    net = load(spec)
    assert net.vars["widths"] == [8, 16, 32, 32, 32, 64] and net.vars["starts"] == [8, 16, 32, 64]
    assert [n.out[0] for n in net.nodes if n.op.name == "conv"] == [8, 16, 32, 64]
    src = net.source()
    assert "for j in range(depth)" in src and "from math import log2" in src
    module = net.to_module()
    assert list(module.state_dict()) == list(net.state_dict_shapes())
    # the generated class computes the list from its own arguments
    other = load(spec, depth=2)
    ns: dict = {}
    exec(compile(src, "model.py", "exec"), ns)
    assert [k for k in ns["T"](depth=2).state_dict()] == list(other.state_dict_shapes())


# -- names of seq children -----------------------------------------------------------------------

def test_seq_children_take_any_add_module_name():
    net = load("""
    blocks:
      stage:
        params: {index: int, n: int}
        seq:
          - {conv: {out: 4, k: 1}, repeat: $n, name: "block${index}-${i}"}
    layers:
      - name: trunk
        seq:
          - {conv: {out: 4, k: 1}, name: "stem-0"}
          - {stage: {index: "${i + 1}", n: 2}, repeat: 2, name: "block${i + 1}"}
    """)
    keys = [k for k in net.state_dict_shapes() if k.endswith("weight")]
    assert keys == ["trunk.stem-0.weight", "trunk.block1.block1-0.weight", "trunk.block1.block1-1.weight",
                    "trunk.block2.block2-0.weight", "trunk.block2.block2-1.weight"]
    assert [k for k in net.to_module().state_dict() if k.endswith("weight")] == keys


@pytest.mark.parametrize("name, message", [
    ("a.b", "without '.'"), ("", "non-empty"), ("forward", "reserved"), ("append", "reserved"),
])
def test_seq_child_names_add_module_refuses_are_located(name, message):
    msg = error(f"""
    layers:
      - seq:
          - {{conv: {{out: 4, k: 1}}, name: "{name}"}}
    """)
    assert msg.startswith("<string>:") and message in msg


def test_a_class_attribute_name_must_still_be_an_identifier():
    assert "Python identifier" in error("""
    layers:
      - {conv: {out: 4, k: 1}, name: "stem-0"}
    """)


# -- residual: the shortcut's modules first where the spec writes it first ------------------------

@pytest.mark.parametrize("first", [True, False])
def test_residual_registers_its_parts_in_the_written_order(first):
    body = "body: [{conv: {out: 8, k: 3, stride: 2, pad: 1, name: f}}]"
    short = "shortcut: {name: proj, layers: {conv: {out: 8, k: 1, stride: 2}}}"
    parts = [short, body] if first else [body, short]
    net = load(f"""
    blocks:
      unit:
        residual:
          {parts[0]}
          {parts[1]}
    layers:
      - {{unit: null, name: u}}
    """)
    order = [k for k in net.state_dict_shapes() if k.endswith("weight")]
    assert order == (["u.proj.weight", "u.f.weight"] if first else ["u.f.weight", "u.proj.weight"])
    module = net.to_module()
    assert [k for k in module.state_dict() if k.endswith("weight")] == order
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = module.u.f(x) + module.u.proj(x)
        assert torch.allclose(module(x), want)


def test_regnet_widths_follow_the_paper_formula():
    """The spec's block widths are torchvision's BlockParams.from_init_params', for a RegNet
    other than the zoo's (a var change in the generated code gives the same network)."""
    net = archc.load(Path(archc.__file__).parent / "zoo" / "regnet.yaml", depth=13, w_0=24, w_a=36.44, w_m=2.49, group_width=8, se_ratio=0)
    w = [int(round(24 * 2.49 ** round(math.log((j * 36.44 + 24) / 24) / math.log(2.49)) / 8) * 8) for j in range(13)]
    assert net.vars["block_widths"] == w
    stages = [k.split(".")[1] for k in net.state_dict_shapes() if k.endswith("f.a.0.weight")]
    assert len(set(stages)) == len(set(w))


def test_range_is_a_list_in_the_generated_code_too():
    net = load("""
    vars: {n: 3, ws: "${range(n) + [5]}", vs: "${[4 * (j + 1) for j in range(n)]}"}
    layers:
      - conv: {out: "${vs[-1] + ws[-1]}", k: 1}
    """)
    src = net.source()
    assert "ws = list(range(n)) + [5]" in src and "for j in range(n)]" in src
    assert net.to_module().conv1.out_channels == 17 == net.nodes[0].out[0]
