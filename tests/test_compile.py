"""Generated modules under torch.compile: traced whole by TorchDynamo (no graph break) in train
and eval mode, and the compiled module (AOTAutograd, no C++ toolchain needed) gives the eager
module's outputs and gradients. A sample of the zoo covering every op family the zoo uses runs
here (compiled against eager in training mode, where batch statistics, dropout and the
training-only outputs run); bench/codegen.py runs every entry in both modes."""
from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")

SAMPLE = {   # entry: a small input it accepts (the heavier Inception/DenseNet families: bench/codegen.py)
    "resnet18": (3, 64, 64), "mobilenet_v3_small": (3, 64, 64), "efficientnet_b0": (3, 64, 64),
    "googlenet": (3, 64, 64), "shufflenet_v2_x0_5": (3, 64, 64), "squeezenet1_1": (3, 64, 64),
    "legacy_xception": (3, 71, 71), "r2plus1d_18": (3, 4, 32, 32), "lenet5": None,
    "vit_b_32": (3, 64, 64), "swin_v2_t": (3, 64, 64),
}


def first(out):
    return out if isinstance(out, torch.Tensor) else out[0]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


EVAL = ["resnet18", "googlenet", "r2plus1d_18"]     # eval mode: dropout and aux heads off, BN running stats


@pytest.mark.parametrize("name, mode", [(n, "train") for n in SAMPLE] + [(n, "eval") for n in EVAL])
def test_compiles_without_graph_breaks_and_equals_eager(name, mode):
    torch.manual_seed(0)
    net = archc.load(name, input=SAMPLE[name])
    m = net.to_module()
    m.train(mode == "train")
    x = torch.randn(2, *net.input)
    if mode == "eval":
        explained = torch._dynamo.explain(m)(x)
        assert explained.graph_break_count == 0, [str(b.reason) for b in explained.break_reasons]
        assert explained.graph_count == 1
        return      # outputs under compile: training mode, the harder one (bench/codegen.py: both)
    # a twin with the same weights and statistics, compiled whole (fullgraph: a graph break is an
    # error); the eager module is the reference
    twin = archc.load(name, input=SAMPLE[name]).to_module()
    twin.load_state_dict(m.state_dict())
    twin.train()
    compiled = torch.compile(twin, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)
    eager_out = first(m(x))
    torch.manual_seed(1)
    comp_out = first(compiled(x))
    torch.testing.assert_close(comp_out, eager_out, rtol=1e-4, atol=1e-5)
    eager_out.sum().backward()
    comp_out.sum().backward()
    got = dict(twin.named_parameters())
    for k, p in m.named_parameters():
        torch.testing.assert_close(got[k].grad, p.grad, rtol=1e-3, atol=1e-5, msg=k)
