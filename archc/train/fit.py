"""Fitting a network to its data: re-inferred at the data's sample shape and class count where
they differ from the spec's, or a clear error naming the fix."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from archc.errors import SpecError
from archc.train.config import TrainConfig
from archc.train.data import Data


def fit_network(net, data: Data, cfg: TrainConfig, say: Callable[[str], None] = print):
    """net, re-inferred where the data's sample shape or class count differs from the spec's."""
    import archc
    shape = tuple(int(s) for s in data.sample_shape)
    classes = 1 if cfg.loss == "bce" else data.num_classes
    if cfg.loss == "bce" and data.num_classes != 2:
        raise SpecError(f"loss bce is for two classes; {data.name} has {data.num_classes}")
    change: dict[str, Any] = {}
    if tuple(net.input) != shape:
        change["input"] = "x".join(map(str, shape))
    out = tuple(net.output_shapes[0])
    if out != (classes,) and "num_classes" in net.vars:
        change["num_classes"] = classes
    if change:
        was = f"{_fmt(net.input)} -> {_fmt(out)}"
        if net.file in ("<mapping>", "<string>") or not Path(net.file).exists():
            raise SpecError(f"{data.name} gives {_fmt(shape)} samples in {classes} classes but the "
                            f"spec takes {_fmt(net.input)} -> {_fmt(out)}; pass --input / --set num_classes")
        vars_ = {**net.vars, **{k: v for k, v in change.items() if k != "input"}}
        try:
            net = archc.load(net.file, variant=net.variant, input=change.get("input"), **vars_)
        except SpecError as e:
            raise SpecError(f"{data.name} gives {_fmt(shape)} samples but the spec takes "
                            f"{_fmt(net.input)}, and does not work at {_fmt(shape)}: {e}. Use data "
                            f"of the spec's shape, or a spec that fits the data") from None
        say(f"note: {', '.join(f'{k}={v}' for k, v in change.items())} to fit {data.name} "
            f"(the spec says {was})")
    out = tuple(net.output_shapes[0])
    if out != (classes,):
        raise SpecError(f"the network outputs {_fmt(out)} per sample but {data.name} needs "
                        f"{classes} logits; give the spec a num_classes var or --set it")
    return net


def _fmt(shape) -> str:
    return "x".join(map(str, shape))
