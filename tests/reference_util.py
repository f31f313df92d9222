"""Helpers to hold archc's networks to the reference fixtures in tests/reference/.

The fixtures (copied from the project's shared reference set; see tests/reference/README.md)
were measured from torchvision/timm. `deterministic_` gives a module the weights the fixtures'
logits were computed under: every value depends only on its state_dict key and shape.
"""
from __future__ import annotations

import contextlib
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


def math_attention(on: bool):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel(SDPBackend.MATH) if on else contextlib.nullcontext()


def leaf_output_shapes(model: torch.nn.Module, x: torch.Tensor, mode=None) -> dict[str, list[int]]:
    """Per-sample output shape of every leaf module, by dotted path (the first call, as in the
    fixtures: a module called several times keeps the shape of its first output). `mode`: a
    context (a FlopCounterMode) the forward runs under. A network with attention runs with
    gradients on and PyTorch's math attention kernel, as the fixtures were counted: without
    gradients nn.MultiheadAttention takes a fused path whose matmuls FlopCounterMode cannot see."""
    shapes: dict[str, list[int]] = {}
    hooks = []
    def record(path):
        def hook(module, args, out):
            shapes.setdefault(path, list(out.shape[1:]))    # returns None: the output is kept
        return hook

    for path, m in model.named_modules():
        if path and not any(True for _ in m.children()):
            hooks.append(m.register_forward_hook(record(path)))
    attention = any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
    try:
        with torch.set_grad_enabled(attention), math_attention(attention), \
                (mode if mode is not None else contextlib.nullcontext()):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def macs_and_leaf_shapes(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, dict[str, list[int]]]:
    """MACs of conv + linear + matmul as torch's FlopCounterMode counts them (halved), and
    leaf_output_shapes, from one forward (the zoo's checks share it)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    shapes = leaf_output_shapes(model, x, counter)
    return counter.get_total_flops() // 2, shapes


def init_fixture(name: str) -> dict | None:
    """tests/reference/init/NAME.json's per-tensor [mean, std, min, max], or None."""
    path = REFERENCE / "init" / f"{name}.json"
    return json.loads(path.read_text())["init"] if path.exists() else None


@torch.no_grad()
def init_stats(model: torch.nn.Module) -> dict[str, tuple[float, float, float, float, int]]:
    """(mean, std, min, max, numel) of every floating state_dict entry, as the init fixtures hold."""
    out = {}
    for key, t in model.state_dict().items():
        if t.is_floating_point():
            t = t.double()
            out[key] = (t.mean().item(), t.std().item() if t.numel() > 1 else 0.0,
                        t.min().item(), t.max().item(), t.numel())
    return out


def init_mismatches(stats: dict, ref: dict) -> list[str]:
    """Tensors whose start differs from the reference's beyond sampling noise. Constants (std 0)
    must match exactly; random tensors in mean (5 standard errors of the difference of two
    independent means: sqrt(2) times one mean's; ~300 tensors per network), std (4 standard errors
    of the difference of two stds, 4 * sqrt(2) / sqrt(2n), at least 5%), and, for 100 values or
    more, in their range measured in standard deviations, which tells a uniform (3.5) from a
    normal (5 at 100 values to 9 at 100,000) and a cut normal from either: within 4.5 standard
    errors of the difference of two normal ranges, whose relative spread falls from 10% at 100
    values to 4.4% at 100,000 (simulated: about 0.173 * n ** -0.119), so 64% at 100 values, 48%
    at 1,000, 28% at 100,000."""
    bad = []
    for key, (rmean, rstd, rlo, rhi) in ref.items():
        if key not in stats:
            bad.append(f"{key}: missing")
            continue
        mean, std, lo, hi, n = stats[key]
        scale = max(abs(rmean), abs(rlo), abs(rhi), 1e-12)
        if rstd == 0:
            if max(abs(lo - rmean), abs(hi - rmean)) > 5e-6 * scale:     # the fixtures keep 6 digits
                bad.append(f"{key}: constant {rmean:g} expected, got [{lo:g}, {hi:g}]")
            continue
        if n < 2:
            continue
        if std == 0:
            bad.append(f"{key}: constant {mean:g}, expected std {rstd:g}")
            continue
        if abs(mean - rmean) > 5 * math.sqrt(2) * rstd / math.sqrt(n) + 1e-7 * scale:
            bad.append(f"{key}: mean {mean:.4g} vs {rmean:.4g} (std {rstd:.3g}, n {n})")
        if abs(std / rstd - 1) > max(0.05, 4 / math.sqrt(n)):
            bad.append(f"{key}: std {std:.4g} vs {rstd:.4g} (n {n})")
        if n >= 100:
            mine, theirs = (hi - lo) / std, (rhi - rlo) / rstd
            if abs(mine / theirs - 1) > 4.5 * math.sqrt(2) * 0.173 * n ** -0.119:
                bad.append(f"{key}: range {mine:.2f} std vs {theirs:.2f} (n {n})")
    return bad
