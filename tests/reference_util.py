"""Helpers to hold archc's networks to the reference fixtures in tests/reference/.

The fixtures (copied from the project's shared reference set; see tests/reference/README.md)
were measured from torchvision/timm. `deterministic_` gives a module the weights the fixtures'
logits were computed under: every value depends only on its state_dict key and shape.
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import torch

REFERENCE = Path(__file__).parent / "reference"
SPECS = Path(__file__).parent.parent / "specs"
INPUT_SEED = 1234


def fixture(name: str) -> dict:
    """A model fixture: tests/reference/models/NAME.json."""
    return json.loads((REFERENCE / "models" / f"{name}.json").read_text())


def seed_fixture(name: str) -> dict:
    """A seed-textbook fixture: tests/reference/seeds/NAME.json."""
    return json.loads((REFERENCE / "seeds" / f"{name}.json").read_text())


def deterministic_value(key: str, tensor: torch.Tensor) -> torch.Tensor:
    """The README's recipe for one state_dict entry (non-floating tensors are kept)."""
    if not tensor.is_floating_point():
        return tensor
    shape = tensor.shape
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if key.endswith("running_var"):
        value = 0.5 + torch.rand(shape, generator=g)
    elif key.endswith("running_mean"):
        value = 0.1 * torch.randn(shape, generator=g)
    elif tensor.dim() >= 2:
        value = torch.randn(shape, generator=g) / math.sqrt(tensor.numel() // shape[0])
    elif key.endswith("weight"):
        value = 1.0 + 0.1 * torch.randn(shape, generator=g)
    else:
        value = 0.1 * torch.randn(shape, generator=g)
    return value.to(tensor.dtype)


@torch.no_grad()
def deterministic_(model: torch.nn.Module) -> torch.nn.Module:
    """Give `model` (in place) the deterministic weights of the fixtures; returns it."""
    state = {k: deterministic_value(k, t) for k, t in model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    return model


def fixture_input(shape, batch: int = 2) -> torch.Tensor:
    """The fixtures' input: randn((batch, *shape)) from a generator seeded 1234."""
    return torch.randn((batch, *shape), generator=torch.Generator().manual_seed(INPUT_SEED))


def relative_error(out: torch.Tensor, reference) -> float:
    """max |out - reference| relative to the largest |reference| value."""
    ref = torch.as_tensor(reference, dtype=torch.float64)
    got = out.detach().to(torch.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"output shape {list(got.shape)} != reference {list(ref.shape)}")
    return float((got - ref).abs().max() / ref.abs().max())


def assert_logits_match(out: torch.Tensor, reference, tol: float = 1e-4) -> None:
    """The fixtures' criterion: relative error below `tol` of the largest |logit|."""
    err = relative_error(out, reference)
    assert err < tol, f"logits differ from the reference: relative error {err:.3g} >= {tol}"


def state_dict_list(shapes: dict) -> list[list]:
    """{key: shape} -> the fixtures' [[key, [dims...]], ...] form."""
    return [[k, list(s)] for k, s in shapes.items()]


def leaf_output_shapes(model: torch.nn.Module, x: torch.Tensor) -> dict[str, list[int]]:
    """Per-sample output shape of every leaf module, by dotted path (the first call, as in the
    fixtures: a module called several times keeps the shape of its first output)."""
    shapes: dict[str, list[int]] = {}
    hooks = []
    def record(path):
        def hook(module, args, out):
            shapes.setdefault(path, list(out.shape[1:]))    # returns None: the output is kept
        return hook

    for path, m in model.named_modules():
        if path and not any(True for _ in m.children()):
            hooks.append(m.register_forward_hook(record(path)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def conv_linear_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """MACs of conv + linear + matmul as torch's FlopCounterMode counts them, halved."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2
