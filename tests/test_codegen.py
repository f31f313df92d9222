"""The generated code is written from the spec's definitions, not from one compiled instance:
one class per block definition with the block's own params; the network class takes the spec's
vars (changing one in the generated file builds what the spec builds with it); sizes the spec
takes from the input follow the input at run time. The reference throughout is the compiled
network itself, run node by node (ir_exec.run_ir)."""
from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

import archc
from archc.emit.network import passed_vars
from archc.emit.pytorch import Emission, class_name, load_source
from archc.spec import zoo
from ir_exec import run_ir
from reference_util import deterministic_

ENTRIES = {e.name: e for e in zoo.entries()}


pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py


def body(src: str) -> str:
    """The source without its header docstring (which names what it was built for)."""
    return src.split('"""\n', 2)[2]


def without_in_place(src: str) -> str:
    src = src.replace("(inplace=True)", "()").replace(", inplace=True)", ")")
    return re.sub(r"^( *)(\w+) \+= (\w+)$", r"\1\2 = \2 + \3", src, flags=re.M)


def build(net, **vars_):
    """The network class of `net`'s source, called with `vars_`, deterministic weights."""
    mod = load_source(net.source(), net.name)
    with torch.device("meta"):
        model = getattr(mod, class_name(net))(**vars_)
    return deterministic_(model.to_empty(device="cpu")).eval()


def same_outputs(a, b):
    a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-5)


def load(name: str, **kw):
    e = ENTRIES[name]
    return archc.load(e.spec, variant=e.variant, **kw)


# -- vars: the network class takes them; the code does not depend on their values ----------------

SMALL = {"inception_v3": [3, 96, 96]}      # else 64x64 for the ImageNet networks (the code is the same)
VAR_CHANGES = [
    ("resnet50", {"num_classes": 10}),
    ("resnet18", {"depth": [1, 2, 1, 1]}),
    ("resnet152", {"block": "basic", "depth": [1, 1, 2, 1], "num_classes": 3}),
    ("resnext50_32x4d", {"groups": 4, "width_per_group": 16, "depth": [1, 1, 1, 2]}),
    ("efficientnet_b0", {"width_mult": 0.5, "depth_mult": 0.6}),
    ("efficientnet_b3", {"stochastic_depth_prob": 0.5, "bn_eps": 1e-3, "num_classes": 7}),
    ("mobilenet_v2", {"width_mult": 0.35}),
    ("mobilenet_v3_large", {"last_channel": 512, "width_mult": 0.75}),
    ("densenet121", {"growth": 12, "block_config": [2, 3, 2, 2], "bn_size": 2}),
    ("vgg11", {"batch_norm": True, "n": [1, 2, 1, 1, 1]}),
    ("shufflenet_v2_x1_0", {"channels": [24, 48, 96, 192, 512]}),
    ("googlenet", {"num_classes": 5}),
    ("inception_v3", {"num_classes": 4}),
    ("seed_lenet5_tf", {"bn": True}),
    ("seed_resnet18_cifar", {"depth": [1, 2, 1, 1]}),
]


@pytest.mark.parametrize("name,change", VAR_CHANGES, ids=[f"{n}-{'-'.join(c)}" for n, c in VAR_CHANGES])
def test_var_changed_in_the_generated_class(name, change):
    e = ENTRIES[name]
    size = SMALL.get(name) or ([3, 64, 64] if archc.load(e.spec, variant=e.variant).input[-1] >= 128 else None)
    kw = {"input": size} if size else {}
    base, changed = load(name, **kw), load(name, **kw, **change)
    # the code does not hold the values; only where it runs in place may differ: layers of
    # blocks the built network does not use are written without it (archc/ir/inplace.py)
    assert without_in_place(body(changed.source())) == without_in_place(body(base.source()))
    model = build(base, **{**passed_vars(base), **change})
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(s)) for k, s in changed.state_dict_shapes().items()]
    x = torch.randn(1, *changed.input, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        same_outputs(model(x), run_ir(changed, model.state_dict(), x))


def test_variants_are_builder_functions():
    net = load("efficientnet_b3")
    mod = load_source(net.source(), net.name)
    for v in "01234567":
        assert callable(getattr(mod, f"efficientnet_b{v}"))
    assert net.source().splitlines()[3] == "Built for: efficientnet_b3() on input [N, 3, 300, 300]"
    with torch.device("meta"):
        model = mod.efficientnet_b3()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(s)) for k, s in net.state_dict_shapes().items()]
    assert "def __init__(\n            self, num_classes=1000, width_mult=1.0, depth_mult=1.0" in net.source()


# -- one class per block definition --------------------------------------------------------------

def used_blocks(spec_path: Path) -> set[str]:
    """Block names a spec's layers reach, through its blocks and the files it uses."""
    tree = yaml.safe_load(spec_path.read_text())
    blocks = dict(tree.get("blocks") or {})
    for rel in tree.get("use") or []:
        blocks.update(yaml.safe_load((spec_path.parent / rel).read_text()).get("blocks") or {})
    found: set[str] = set()

    def walk(raw):
        if isinstance(raw, str) and raw in blocks and raw not in found:
            found.add(raw)
            walk(blocks[raw])
        elif isinstance(raw, list):
            for r in raw:
                walk(r)
        elif isinstance(raw, dict):
            for k, v in raw.items():
                if k in blocks and k not in found:
                    found.add(k)
                    walk(blocks[k])
                walk(v)
    walk(tree["layers"])
    return found


SPEC_FILES = sorted({e.spec for e in ENTRIES.values()})


@pytest.mark.parametrize("path", SPEC_FILES, ids=[p.stem for p in SPEC_FILES])
def test_one_class_per_block_definition(path):
    entry = next(e for e in ENTRIES.values() if e.spec == path)
    net = archc.load(path, variant=entry.variant)
    em = Emission(net)
    tree = ast.parse(em.source())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    helpers = {n.name for s in em.support for n in ast.parse(s).body if isinstance(n, ast.ClassDef)}
    from archc.emit.classes import camel
    want = {camel(b) for b in used_blocks(path)}
    blocks = set(classes) - helpers - {class_name(net)}
    assert {b if b in want else b.removesuffix("Block") for b in blocks} == want
    for info in em.classes.values():     # params: the block's own (plus c_in and the vars it reads)
        init = next(f for f in classes[info.name].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
        args = [a.arg for a in init.args.args[1:] + init.args.kwonlyargs]
        declared = list(net.definition.blocks.defs[info.block][0].params)
        assert args == [*info.takes, *declared, *info.vars], (info.name, args)
        assert set(info.vars) <= set(net.vars)


def test_a_param_equal_to_another_stays_itself():
    """The issue's example: `pool` equal to `c5` in every instance is still written `pool`."""
    net = archc.load("archc: 1\nname: t\ninput: [3, 16, 16]\n" + textwrap.dedent("""
        blocks:
          inc:
            params: {c1: int, c5: int, pool: int}
            parallel:
              branches:
                a: [conv: {out: $c1, k: 1}]
                b: [conv: {out: $c5, k: 5, pad: 2}]
                p: [maxpool: {k: 3, stride: 1, pad: 1}, conv: {out: $pool, k: 1}]
        layers:
          - inc: {c1: 4, c5: 8, pool: 8}
          - inc: {c1: 6, c5: 10, pool: 10}
    """))
    src = net.source()
    assert "nn.Conv2d(c_in, pool, 1)" in src and "def __init__(self, c_in, c1, c5, pool):" in src
    assert "Inc(20, c1=6, c5=10, pool=10)" in src


# -- sizes that follow the input -----------------------------------------------------------------

UPSAMPLING = """
archc: 1
name: seg
input: [3, 64, 48]
vars: {num_classes: 5}
blocks:
  lraspp_head:                  # LR-ASPP style: gated features, pooled, back to the block's input size
    params: {inter: int}
    layers:
      - {conv: {out: $inter, k: 1, bias: false}, id: cbr}
      - {adaptive_avgpool: 1, from: input}
      - conv: {out: $inter, k: 1}
      - {sigmoid: null, id: gate}
      - {mul: null, from: [cbr, gate]}
      - avgpool: 2
      - {upsample: {size: ["$h_in", "$w_in"], mode: bilinear, align_corners: false}, id: up}
      - {conv: {out: $inter, k: 1}, from: input, id: low}
      - {add: null, from: [up, low]}
layers:                          # FCN style: downsampled features, scores upsampled to the input's size
  - conv: {out: 8, k: 3, stride: 2, pad: 1}
  - relu
  - conv: {out: 16, k: 3, stride: 2, pad: 1}
  - lraspp_head: {inter: 8}
  - conv: {out: $num_classes, k: 1}
  - upsample: {size: ["$h_in", "$w_in"], mode: bilinear}
"""


def test_upsampling_back_to_the_input_size():
    net = archc.load(UPSAMPLING)
    src = net.source()
    assert "F.interpolate(x, size=(h_in, w_in), mode='bilinear')" in src
    assert "h_in = x.shape[-2]" in src and "64" not in src.split("class Seg")[1].split("def forward")[1]
    model = build(net)
    for size in ([3, 64, 48], [3, 50, 70], [3, 33, 41]):
        other = archc.load(UPSAMPLING, input=size)
        x = torch.randn(2, *size)
        with torch.no_grad():
            y = model(x)
            same_outputs(y, run_ir(other, model.state_dict(), x))
        assert tuple(y.shape) == (2, 5, size[1], size[2])
    torch.jit.script(model)


def test_same_padding_follows_the_input():
    """TensorFlow 'same' with a stride pads by the parity of the size: worked out in forward."""
    spec = "archc: 1\nname: s\ninput: [3, 16, 16]\nlayers:\n" \
           "  - conv: {out: 4, k: 3, stride: 2, pad: same}\n  - maxpool: {k: 3, stride: 2, pad: same}\n" \
           "  - avgpool: {k: 2, stride: 2, pad: same}\n  - sepconv: {out: 5, k: 3, stride: 2, pad: same}\n"
    model = build(archc.load(spec))
    for size in (16, 17, 23):
        other = archc.load(spec, input=[3, size, size + 1])
        x = torch.randn(1, 3, size, size + 1)
        with torch.no_grad():
            same_outputs(model(x), run_ir(other, model.state_dict(), x))


# -- TorchScript, tracing, export, compile on a sample (bench/codegen.py runs every entry) ---------

SAMPLE = ["mobilenet_v3_small", "seed_resnet18_cifar"]     # an activation chosen by a let; 'same' padding


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize("name", SAMPLE)
def test_script_trace_export_compile(name):
    net = load(name, input=[3, 64, 64] if name != "seed_resnet18_cifar" else None)
    model = build(net, **passed_vars(net))
    x = torch.randn(1, *net.input)
    with torch.no_grad():
        y = model(x)
        if not any(train for _, _, train in net.outputs):
            same_outputs(torch.jit.script(model)(x), y)
        same_outputs(torch.jit.trace(model, x, check_trace=False)(x), y)
        same_outputs(torch.export.export(model, (x,)).module()(x), y)
        try:
            same_outputs(torch.compile(model, backend="eager", fullgraph=True)(x), y)
        finally:
            torch._dynamo.reset()


# -- the source as a user reads it -----------------------------------------------------------------

GOLDEN = ["resnet50", "efficientnet_b0", "mobilenet_v2", "inception_v3", "densenet121", "seed_cifar10_cnn"]


@pytest.mark.parametrize("name", GOLDEN)
def test_generated_source_golden(name):
    """tests/golden/NAME.build.py (rewrite with ARCHC_UPDATE_GOLDEN=1 after an intended change)."""
    from test_cli import check_golden
    check_golden(f"{name}.build.py", load(name).source())
