"""The emitted PyTorch module against the static analysis: shapes, parameter counts, state_dict
keys and order, train/eval behaviour, tracing, export, compile, re-import from a file, and the
shape of the generated classes. Plus: the analysis path never imports torch."""
from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import archc
from archc.emit.pytorch import class_name

torch = pytest.importorskip("torch")

HERE = Path(__file__).parent
SPECS = HERE / "specs"
ROOT = HERE.parent
NAMES = ["lenet5", "resnet_small", "inception_small", "aux_head", "uses_blocks", "conditional"]


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    """(net, module, example input) for one spec; built once per module run."""
    net = archc.load(SPECS / f"{request.param}.yaml")
    torch.manual_seed(0)
    model = net.to_module().eval()
    x = torch.randn(2, *net.input, generator=torch.Generator().manual_seed(1))
    return net, model, x


def eval_outputs(net):
    return [shape for shape, (_, _, train) in zip(net.output_shapes, net.outputs) if not train]


def as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def assert_same(a, b):
    a, b = as_tuple(a), as_tuple(b)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-5)


# (a) shapes, (b) parameter counts, (c) state_dict ---------------------------------------------

def test_output_shape_is_static_shape(case):
    net, model, x = case
    with torch.no_grad():
        y = as_tuple(model(x))
    assert [tuple(t.shape[1:]) for t in y] == [tuple(s) for s in eval_outputs(net)]
    assert all(t.shape[0] == x.shape[0] for t in y)


def test_param_counts_match(case):
    net, model, _ = case
    assert sum(p.numel() for p in model.parameters()) == net.params
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == net.params
    assert sum(b.numel() for b in model.buffers()) == net.buffers


def test_state_dict_shapes_and_order(case):
    net, model, _ = case
    static = net.state_dict_shapes()
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(static) == list(actual)          # same keys, same order
    assert {k: tuple(v) for k, v in static.items()} == actual


# (d) train and eval modes ------------------------------------------------------------------------

def test_train_and_eval_modes(case):
    net, model, x = case
    train_outputs = [(name, shape) for (name, _, _), shape in zip(net.outputs, net.output_shapes)]
    model.train()
    try:
        y = model(x)
        if len(train_outputs) > 1:
            assert isinstance(y, tuple) and len(y) == len(train_outputs)
        y = as_tuple(y)
        assert [tuple(t.shape[1:]) for t in y] == [tuple(s) for _, s in train_outputs]
        sum(t.float().sum() for t in y).backward()
        assert all(p.grad is not None for p in model.parameters())   # every weight takes part in training
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    with torch.no_grad():
        y = model(x)
    assert len(as_tuple(y)) == len(eval_outputs(net))


def test_aux_output_only_in_training():
    net = archc.load(SPECS / "aux_head.yaml")
    model = net.to_module()
    x = torch.randn(3, *net.input)
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (3, 10)
    model.eval()
    with torch.no_grad():
        y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (3, 10)
    torch.testing.assert_close(y, model.fc(model.gap1(model.relu2(model.conv2(model.maxpool1(
        model.relu1(model.conv1(x))))))))
    # eval mode never runs the aux head
    calls = []
    handle = model.aux.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert calls == []


# (e) trace, (f) export, (g) compile --------------------------------------------------------------

def test_jit_trace(case):
    _, model, x = case
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_trace=False)   # compared below
        assert_same(traced(x), model(x))
        x2 = torch.randn_like(x)
        assert_same(traced(x2), model(x2))


def test_jit_script(case):
    net, model, x = case
    if any(train for _, _, train in net.outputs):
        pytest.skip("a train-only output returns a different type per mode: not scriptable")
    scripted = torch.jit.script(model)    # needs the in-memory module's source to be findable
    with torch.no_grad():
        assert_same(scripted(x), model(x))


def test_torch_export(case):
    _, model, x = case
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert_same(exported.module()(x), model(x))


def test_torch_compile(case):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")
    _, model, x = case
    try:
        compiled = torch.compile(model, backend="eager", fullgraph=True)
        with torch.no_grad():
            y = compiled(x)
    except RuntimeError as e:   # e.g. dynamo unsupported on this Python version
        if "not supported" in str(e):
            pytest.skip(f"torch.compile unavailable here: {e}")
        raise
    finally:
        torch._dynamo.reset()
    with torch.no_grad():
        assert_same(y, model(x))


# (h) the source, re-imported from a file ---------------------------------------------------------

def test_source_reimported_from_file(case, tmp_path):
    net, model, x = case
    path = tmp_path / f"gen_{net.name}.py"
    path.write_text(net.source())
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cls = getattr(mod, class_name(net))
    assert cls.__name__ == type(model).__name__
    fresh = cls().eval()
    assert list(fresh.state_dict()) == list(model.state_dict())
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert_same(fresh(x), model(x))


def test_module_carries_its_source(case):
    net, model, _ = case
    assert model._archc_source == net.source()
    assert net.source() == net.source()           # deterministic


# (i) one class per block definition, with the block's params; the network class takes the vars -----

def classes_of(src: str) -> dict[str, list[str]]:
    """Class name -> __init__ parameter names (without self)."""
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            out[node.name] = [a.arg for a in init.args.args[1:]] if init else []
    return out


def test_one_class_per_block_definition():
    net = archc.load(SPECS / "resnet_small.yaml")
    src = net.source()
    classes = classes_of(src)
    # identity and projection shortcuts are one class: `downsample` is built where the shape
    # changes, as torchvision's Bottleneck does
    assert list(classes) == ["Bottleneck", "ResnetSmall"]
    assert classes["Bottleneck"] == ["c_in", "width", "stride"]       # the block's params
    assert classes["ResnetSmall"] == ["num_classes", "base"]          # the spec's vars
    assert "def __init__(self, c_in, width, stride=1):" in src        # with the spec's defaults
    assert "nn.Conv2d(width, width * 4, 1, bias=False)" in src        # the spec's own expression
    assert "if stride != 1 or c_in != width * 4:" in src
    assert "identity = x if self.downsample is None else self.downsample(x)" in src
    assert "self.layer2.append(Bottleneck(channels, width=base * 2, stride=2 if i == 0 else 1))" in src
    assert "def resnet_small_tiny(**kwargs):" in src and "return ResnetSmall(num_classes=5, **kwargs)" in src


def test_parallel_block_classes():
    src = archc.load(SPECS / "inception_small.yaml").source()
    classes = classes_of(src)
    assert list(classes) == ["GlobalAvgPool", "ConvBn", "Inception", "InceptionSmall"]
    assert classes["Inception"] == ["c_in", "c1", "c3r", "c3", "c5r", "c5", "pool"]
    assert classes["ConvBn"] == ["c_in", "out", "k", "stride", "pad"]     # stride too, though always 1
    assert "ConvBn(c_in, out=c5r)" in src and "ConvBn(c5r, out=c5, k=5, pad=2)" in src
    assert "self.inc3b = Inception(40, c1=16, c3r=12, c3=24, c5r=6, c5=10, pool=14)" in src


def test_block_from_a_block_file():
    src = archc.load(SPECS / "uses_blocks.yaml").source()
    classes = classes_of(src)
    assert classes["Basic"] == ["c_in", "out", "stride"]
    assert "self.bn2 = nn.BatchNorm2d(out)" in src
    assert "nn.Conv2d(c_in, out, 1, stride=stride, bias=False)" in src   # shortcut: auto


def test_conditions_become_optional_children():
    src = archc.load(SPECS / "conditional.yaml").source()
    assert "self.skip = nn.Conv2d(c_in, out, 1, stride=stride, bias=False) if project else None" in src
    assert "h = body + (shortcut if self.project else x)" in src
    assert "__constants__ = ['project']" in src
    assert "nn.ReLU(inplace=True) if act == 'relu' else nn.Hardswish(inplace=True)," in src
    assert "self.norm = nn.BatchNorm2d(12) if bn else None" in src
    assert "def conditional_plain(**kwargs):" in src


def test_seq_block_is_a_sequential_subclass():
    src = archc.load(SPECS / "uses_blocks.yaml").source()
    assert "class ConvBnRelu(nn.Sequential):" in src
    model = archc.load(SPECS / "uses_blocks.yaml").to_module()
    assert isinstance(model.stem, torch.nn.Sequential)
    assert [type(m).__name__ for m in model.stem] == ["Conv2d", "BatchNorm2d", "ReLU"]


# the analysis path never imports torch -------------------------------------------------------------

def test_analysis_never_imports_torch():
    code = ("import archc, sys; net = archc.load('specs/lenet5.yaml'); net.summary(); "
            "from archc.report.formats import to_table, RENDER; "
            "[RENDER[f](net.summary(depth=d)) for f in RENDER for d in (None, 1)]; "
            "archc.load('tests/specs/resnet_small.yaml').summary(); "
            "archc.load('tests/specs/aux_head.yaml').summary(); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_cli_summary_never_imports_torch():
    code = ("import sys; from archc.cli import main\n"
            "try:\n    main(['summary', 'tests/specs/inception_small.yaml', '--format', 'json'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# nothing from a spec becomes code ------------------------------------------------------------------

def test_doc_cannot_inject_code():
    doc = 'evil"""\n    __import__("sys").exit(3)\n    """ \\ "'
    net = archc.load({"archc": 1, "name": "t", "doc": doc, "input": [4], "layers": ["relu"]})
    src = net.source()
    mod = {}
    exec(compile(src, "<test>", "exec"), mod)
    assert mod["T"].__doc__.startswith(doc.rstrip() + ". Input: [N, 4]")
    net.to_module()


def test_block_names_must_be_identifiers():
    bad = 'X(nn.Module):\n    pass\nclass Y'
    with pytest.raises(archc.SpecError, match="block name must be an identifier"):
        archc.load({"archc": 1, "name": "t", "input": [4], "blocks": {bad: {"layers": ["relu"]}}, "layers": [bad]})


@pytest.mark.parametrize("block", ["global_avg_pool", "ordered_dict", "f"])
def test_block_class_never_shadows_helpers(block):
    net = archc.load({"archc": 1, "name": "t", "input": [3, 8, 8],
                      "blocks": {block: {"layers": [{"conv": {"out": 4, "k": 1}}]}},
                      "layers": [block, {"seq": [{"conv": {"out": 4, "k": 1}}], "name": "named"}, "gap"]})
    src = net.source()
    names = [n.name for n in ast.parse(src).body if isinstance(n, ast.ClassDef)]
    assert len(names) == len(set(names)), names
    model = net.to_module()
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 4)
    assert list(model.state_dict()) == list(net.state_dict_shapes())


# structures beyond the spec files: DAG wiring, shortcuts, merges, nesting --------------------------

INLINE = {
    "dag_outputs": """
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
        outputs: [logits, pooled, {id: a, name: features}, {id: b, train_only: true}]
    """,
    "shortcuts": """
        blocks:
          res:
            params: {out: int, stride: 1, sc: auto}
            residual:
              body: [{conv: {out: $out, k: 3, pad: 1, stride: $stride, bias: false}}, bn]
              shortcut: $sc
              post: relu
        layers:
          - res: {out: 3}
          - res: {out: 8, stride: 2}
          - res: {out: 16, stride: 2, sc: none}
          - residual: {body: [sigmoid], merge: mul}
    """,
    "merges": """
        blocks:
          sum:
            parallel:
              merge: add
              branches: [[{conv: {out: 6, k: 1}}], [{conv: {out: 6, k: 3, pad: 1}}, relu]]
          gate:
            parallel:
              merge: mul
              branches: [[identity], [gap, {linear: $c_in}, sigmoid, {reshape: ["$c_in", 1, 1]}]]
        layers:
          - sum
          - {gate: null, repeat: 2, name: gates}
          - seq:
              - {conv: {out: 6, k: 1}, repeat: 2}
              - {conv: {out: 6, k: 1}, repeat: 2, name: inner}
    """,
}


@pytest.fixture(scope="module", params=list(INLINE))
def inline(request):
    import textwrap
    net = archc.load("archc: 1\nname: t\ninput: [3, 16, 16]\n" + textwrap.dedent(INLINE[request.param]))
    torch.manual_seed(0)
    return net, net.to_module().eval(), torch.randn(2, 3, 16, 16)


def test_inline_structures(inline):
    net, model, x = inline
    assert sum(p.numel() for p in model.parameters()) == net.params
    static = net.state_dict_shapes()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v) for k, v in static.items()}
    assert list(model.state_dict()) == list(static)
    with torch.no_grad():
        y = as_tuple(model(x))
        assert [tuple(t.shape[1:]) for t in y] == [tuple(s) for s in eval_outputs(net)]
        traced = torch.jit.trace(model, x, check_trace=False)
        assert_same(traced(x), model(x))
    model.train()
    try:
        y = as_tuple(model(x))
        assert [tuple(t.shape[1:]) for t in y] == [tuple(s) for s in net.output_shapes]
    finally:
        model.eval()


def test_params_follow_the_spec():
    """The block's params with its defaults, in its order (keyword-only after a required one that
    follows a default); the layers use them as the spec writes them."""
    import textwrap
    net = archc.load("archc: 1\nname: t\ninput: [3, 16, 16]\n" + textwrap.dedent("""
        blocks:
          unit:
            params: {stride: 1, out: int}
            layers:
              - conv: {out: $out, k: 3, stride: $stride, pad: 1, bias: false, name: conv1}
              - conv: {out: $out, k: 3, pad: 1, groups: $out, bias: false, name: dw}
              - conv: {out: "${out * 4}", k: 1, bias: false, name: expand}
        layers:
          - unit: {out: 8}
          - unit: {out: 16, stride: 2}
    """))
    src = net.source()
    assert "def __init__(self, c_in, stride=1, *, out):" in src
    assert "self.conv1 = nn.Conv2d(c_in, out, 3, stride=stride, padding=1, bias=False)" in src
    assert "self.dw = nn.Conv2d(out, out, 3, padding=1, groups=out, bias=False)" in src
    assert "self.expand = nn.Conv2d(out, out * 4, 1, bias=False)" in src
    assert "Unit(3, out=8)" in src and "Unit(32, stride=2, out=16)" in src


def test_input_read_through_an_expression_is_kept():
    """`from:` computed by an expression may name `input`: the forward must keep `x` for it."""
    net = archc.load("""
archc: 1
name: t
input: [4, 8, 8]
vars: {skip: true}
layers:
  - {conv: {out: 4, k: 3, pad: 1}, id: a}
  - {add: null, from: "${['a', 'input'] if skip else ['a', 'a']}"}
""")
    model = net.to_module().eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), model.conv1(x) + x)
