"""Every zoo entry held to its reference (one parametrised test per check, timm style):
static counts against the reference figures; the emitted module's own counts and FlopCounter
MACs against the static ones; and for torchvision/timm models (tests/reference/models) the
exact state_dict and the logits under the fixtures' deterministic weights. The static checks
cover every entry; the module's, of the 39 heaviest entries (tests/zoo_params.py), run with
--heavy: bench/zoo_heavy.py, results in docs/benchmarks.md."""
from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

import pytest
import torch

import archc
from archc.spec import zoo
from archc.spec.load import load_file
from reference_util import (SPECS, assert_logits_match, deterministic_, fixture, fixture_input,
                            init_fixture, init_mismatches, init_stats, macs_and_leaf_shapes,
                            state_dict_list)
from zoo_params import zoo_params

ENTRIES = {e.name: e for e in zoo.entries()}
MODEL_FIXTURES = {p.stem for p in (Path(__file__).parent / "reference" / "models").glob("*.json")}
WITH_FIXTURE = [n for n, e in ENTRIES.items() if e.reference in MODEL_FIXTURES]

# Leaf modules of a reference that a spec cannot reproduce by name, none holding weights:
# torchvision's Bottleneck and BasicBlock call one `relu` module several times (a spec gives each
# application its own module), and timm's BatchNormAct2d is a BatchNorm with `drop` and `act`
# children (a spec writes `bn` then the activation: the same arithmetic and state_dict).
REUSED_LEAVES = re.compile(r"(?:backbone\.)?layer\d\.\d+\.relu")
# torchvision's MaxViT MBConv sets `proj = nn.Identity()` where it does not project: a residual
# without a shortcut module in a spec (the same arithmetic, no weights)
IDENTITY_LEAVES = re.compile(r"blocks\.\d\.layers\.\d+\.layers\.MBconv\.proj")
BN_ACT_CHILD = re.compile(r"(.+)\.(drop|act)")


def unreproducible(key: str, state: dict) -> bool:
    if REUSED_LEAVES.fullmatch(key) or IDENTITY_LEAVES.fullmatch(key):
        return True
    m = BN_ACT_CHILD.fullmatch(key)
    return bool(m) and f"{m[1]}.running_mean" in state


pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py


class Compiled:
    """One zoo entry compiled, with the figures and fixture it is held to."""

    def __init__(self, name: str):
        self.name = name
        self.entry = ENTRIES[name]
        self.net = archc.load(self.entry.spec, variant=self.entry.variant)
        self.ref = zoo.expected(self.entry)
        self.fixture = fixture(self.entry.reference) if self.entry.reference in MODEL_FIXTURES else None


class Built(Compiled):
    """... and its emitted module under deterministic weights."""

    def __init__(self, name: str):
        super().__init__(name)
        torch.manual_seed(0)         # as the init fixtures were taken
        module = self.net.to_module()
        self.initial = init_stats(module)
        self.module = deterministic_(module).eval()

    # The checks that run the module share two forwards, on the fixtures' input at the spec's
    # shape (which is the reference's: test_static_counts_match_reference): most of the zoo
    # test's time is forwards of big networks.
    @cached_property
    def output(self) -> torch.Tensor:
        """Batch 2: the output shape and logits checks."""
        with torch.no_grad():
            return self.module(fixture_input(self.net.input, batch=2))

    @cached_property
    def probed(self) -> tuple[int, dict]:
        """Batch 1: FlopCounterMode's MACs and every leaf module's output shape."""
        return macs_and_leaf_shapes(self.module, fixture_input(self.net.input, batch=1))


@pytest.fixture(scope="module", params=sorted(ENTRIES))
def compiled(request):
    """Every entry: the static checks need no module."""
    return Compiled(request.param)


@pytest.fixture(scope="module", params=zoo_params())
def model(request):
    """Module-scoped: pytest runs every check of one entry, then frees it, before the next. The
    heaviest entries are deselected unless --heavy (bench/zoo_heavy.py)."""
    built = Built(request.param)
    yield built
    del built.module


def needs_fixture(model):
    if model.fixture is None:
        pytest.skip(f"{model.name}: no torchvision/timm fixture (reference: {model.entry.reference})")


# ------------------------------------------------------------------------- static analysis

def test_static_counts_match_reference(compiled):
    if compiled.ref is None:
        pytest.skip(f"{compiled.name} declares no reference")
    assert zoo.compare(compiled.net, compiled.ref) == {}


def test_starts_like_its_reference(model):
    """Each tensor's mean, std and range right after construction under manual_seed(0) equal
    the reference constructor's (tests/reference/init), within sampling noise; constants exactly."""
    ref = init_fixture(model.entry.reference or model.name)
    if ref is None:
        pytest.skip(f"{model.name}: no init fixture (reference: {model.entry.reference})")
    assert init_mismatches(model.initial, ref) == []


# Entries whose state_dict has the reference's keys and shapes in another order. A spec registers
# modules in the order it computes them; loading a checkpoint matches keys, not positions.
KNOWN_ORDER = {
    # timm registers each stage's `downsample` before `norm1`, and runs it on norm1's output
    "resnetv2_50": re.compile(r"stages\.\d\.blocks\.0\.(norm1|downsample)\..*"),
    # torchvision's SwinTransformerBlockV2 registers norm1/norm2 (as V1 does) and runs them after
    # the attention and the MLP (post-norm)
    **{name: re.compile(r"features\.\d\.\d+\.norm[12]\..*") for name in ("swin_v2_t", "swin_v2_s", "swin_v2_b")},
}


def test_static_state_dict(compiled):
    needs_fixture(compiled)
    ours = state_dict_list(compiled.net.state_dict_shapes())
    theirs = compiled.fixture["state_dict"]
    assert sorted(ours) == sorted(theirs)                     # the same keys with the same shapes
    moved = KNOWN_ORDER.get(compiled.name)
    if moved is None:
        assert ours == theirs                                 # ... in the same order
    else:                                                     # ... in the same order but for these
        assert [k for k in ours if not moved.fullmatch(k[0])] == [k for k in theirs if not moved.fullmatch(k[0])]


# -------------------------------------------------------------------------- emitted module

def test_module_counts_match_static(model):
    state = model.module.state_dict()
    assert [[k, list(t.shape)] for k, t in state.items()] == state_dict_list(model.net.state_dict_shapes())
    assert sum(p.numel() for p in model.module.parameters()) == model.net.params
    assert sum(b.numel() for b in model.module.buffers()) == model.net.buffers


def test_module_macs_match_static(model):
    assert model.probed[0] == model.net.macs


def test_module_output_shape(model):
    assert tuple(model.output.shape[1:]) == model.net.output_shapes[0]


def test_logits_match_reference(model):
    needs_fixture(model)
    assert list(model.net.input) == model.fixture["input"]
    if model.fixture.get("task") == "segmentation":
        # the dense output is too large to keep: the fixture holds every class's value at 64
        # seeded pixels, and each class's mean over all pixels
        pixels = as_value(model.fixture["probe_pixels"])
        probe = torch.stack([model.output[:, :, r, c] for r, c in pixels], dim=1)
        assert_logits_match(probe, as_value(model.fixture["probe"]))
        assert_logits_match(model.output.mean(dim=(2, 3)), as_value(model.fixture["class_means"]))
        return
    assert_logits_match(model.output, model.fixture["logits"])


def as_value(v):
    """A fixture field, stored as JSON text where it is large (the segmentation probes)."""
    return json.loads(v) if isinstance(v, str) else v


def test_leaf_output_shapes(model):
    needs_fixture(model)
    assert list(model.net.input) == model.fixture["input"]
    got = model.probed[1]
    state = model.net.state_dict_shapes()
    missing = [k for k in model.fixture["leaf_output_shapes"] if k not in got and not unreproducible(k, state)]
    assert missing == []
    wrong = {k: (got[k], v) for k, v in model.fixture["leaf_output_shapes"].items() if k in got and got[k] != v}
    assert wrong == {}


# ------------------------------------------------------------------ sizes that follow the input

# Entries whose weights depend on the input size (a flatten straight into a linear layer; ViT's
# position embedding, one per token): their module is built for the spec's own size, and is
# checked against the compiled network there.
FLATTEN_BOUND = {"lenet5", "seed_alexnet", "seed_food11", "seed_lenet5_tf", "seed_lenet5_tf_bn",
                 "seed_lenet_mnist", "seed_lenet_eye", "seed_simplenet", "seed_vgg13_cifar", "seed_vgg16",
                 "seed_cifar10_cnn"}
TOKEN_BOUND = {"vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"}
SIZE_BOUND = FLATTEN_BOUND | TOKEN_BOUND
SIZES = [(32, 40), (45, 37), (64, 72), (77, 69), (96, 104), (101, 93)]
SIZES_FOR = {"inception_v3_aux": [(299, 307), (311, 303)],     # the auxiliary head needs a 17x17 grid
             "s3d": [(211, 217), (217, 211)],                  # its average pool is a fixed 2x7x7
             "maxvit_t": [(448, 448)]}          # every stage a square cut into 7x7 windows: 224 k only


def compiled_at(entry, hw):
    """The entry compiled at another height and width (a video's channels and frames kept)."""
    try:
        return archc.load(entry.spec, variant=entry.variant, input=[*entry_leading(entry), *hw])
    except archc.SpecError:
        return None


def entry_leading(entry) -> list[int]:
    return list(archc.load(entry.spec, variant=entry.variant).input[:-2])


def test_module_follows_the_input_size(model):
    """The module built for the spec's input gives, at other sizes, what the spec compiled at
    those sizes gives (run node by node), under the same weights."""
    from ir_exec import run_ir
    state = model.module.state_dict()
    if model.name in SIZE_BOUND:
        nets = [model.net]
    else:
        sizes = SIZES_FOR.get(model.name, SIZES)
        nets = [n for n in (compiled_at(model.entry, hw) for hw in sizes) if n is not None][:2]
        assert len(nets) == min(2, len(sizes))
        for net in nets:
            assert net.state_dict_shapes() == model.net.state_dict_shapes(), "weights follow the size"
    for net in nets:
        x = fixture_input(net.input, batch=1)
        with torch.no_grad():
            torch.testing.assert_close(model.module(x), run_ir(net, state, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SIZE_BOUND))
def test_size_bound_entries_are_bound_by_their_weights(name):
    """(the others are held to the same weights at every size by the test above)"""
    e = ENTRIES[name]
    base = archc.load(e.spec, variant=e.variant)
    others = [n for n in (compiled_at(e, hw) for hw in SIZES) if n is not None][:2]
    assert any(n.state_dict_shapes() != base.state_dict_shapes() for n in others)
    ops = [n.op.name for n in base.nodes]
    if name in TOKEN_BOUND:
        assert "pos_embedding" in ops
    else:
        assert "flatten" in ops and ops.index("linear") > ops.index("flatten")


def test_every_fixture_has_a_zoo_entry():
    covered = {e.reference for e in ENTRIES.values()}
    seeds = {p.stem for p in (Path(__file__).parent / "reference" / "seeds").glob("*.json")}
    assert sorted((MODEL_FIXTURES | seeds) - covered) == []


@pytest.mark.parametrize("name", ["resnet50", "googlenet", "mobilenet_v2"])
def test_cifar_variant(name):
    net = archc.load(SPECS / f"{name}.yaml", variant="cifar")
    assert list(net.input) == [3, 32, 32] and net.output_shapes == [(10,)]
    module = net.to_module().eval()
    assert sum(p.numel() for p in module.parameters()) == net.params
    with torch.no_grad():
        assert module(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_mobilenet_v2_width_mult():
    """Half width: channels through make_divisible(c * 0.5, 8), the head stays at 1280."""
    net = archc.load(SPECS / "mobilenet_v2.yaml", width_mult=0.5)
    shapes = net.state_dict_shapes()
    assert shapes["features.0.0.weight"] == (16, 3, 3, 3)
    assert shapes["features.17.conv.2.weight"] == (160, 480, 1, 1)     # 320 -> 160 from 80 * 6
    assert shapes["features.18.0.weight"] == (1280, 160, 1, 1)
    module = net.to_module()
    assert sum(p.numel() for p in module.parameters()) == net.params


# ------------------------------------------------------------------------------ the others

def test_lenet5_counts():
    net = archc.load(SPECS / "lenet5.yaml")
    assert net.params == 61_706
    assert net.macs == 416_520
    assert net.output_shapes == [(10,)]


def graph_facts(net):
    return [(n.name, n.op.name, n.args, [net.nodes[i].name if i >= 0 else "input" for i in n.inputs],
             n.in_shapes, n.out) for n in net.nodes]


def test_resnet50_toml_twin():
    yaml_src, toml_src = load_file(SPECS / "resnet50.yaml"), load_file(SPECS / "resnet50.toml")
    assert toml_src.tree == yaml_src.tree
    a, b = archc.load(SPECS / "resnet50.yaml"), archc.load(SPECS / "resnet50.toml")
    assert graph_facts(b) == graph_facts(a)
    assert b.state_dict_shapes() == a.state_dict_shapes()
    assert (b.params, b.buffers, b.macs) == (a.params, a.buffers, a.macs)
    # the generated code is the same, but for the source file named in its docstring
    assert b.source() == a.source().replace("from resnet50.yaml", "from resnet50.toml", 1)
    for variant in ("cifar",):
        assert graph_facts(archc.load(SPECS / "resnet50.toml", variant=variant)) == \
            graph_facts(archc.load(SPECS / "resnet50.yaml", variant=variant))


def test_bench_handwritten_references_equal_the_zoo():
    """bench/handwritten.py's modules (the speed benchmark's references) have the zoo's keys in
    order and, under the same weights, its outputs."""
    import importlib.util
    path = Path(__file__).parent.parent / "bench" / "handwritten.py"
    spec = importlib.util.spec_from_file_location("handwritten", path)
    hw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hw)
    x = fixture_input((3, 64, 64))
    for name, cls in hw.MODELS.items():
        zoo = deterministic_(archc.load(name, input=[3, 64, 64]).to_module()).eval()
        ref = cls().eval()
        assert list(ref.state_dict()) == list(zoo.state_dict()), name
        ref.load_state_dict(zoo.state_dict())
        with torch.no_grad():
            assert torch.equal(ref(x), zoo(x)), name
