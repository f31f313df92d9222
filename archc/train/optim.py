"""Optimizer and learning-rate schedule from a TrainConfig. The schedule is one LambdaLR stepped
every batch, so warmup and cosine are smooth, and its state is just a step counter."""
from __future__ import annotations

import math

import torch

from archc.train.config import TrainConfig


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig,
                   scales: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """Every parameter, frozen or not (a frozen one has no gradient, so no step): the groups stay
    the same when parts are unfrozen, and checkpoints load into them. `scales`: parameter name
    -> factor of the learning rate (--lr-scale), a group per factor, each marked `lr_scale`."""
    by_scale: dict[float, list[torch.nn.Parameter]] = {1.0: []}
    for name, p in model.named_parameters():
        by_scale.setdefault((scales or {}).get(name, 1.0), []).append(p)
    groups = [g for scale, params in by_scale.items() for g in _groups(params, cfg, scale)]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def _groups(params: list, cfg: TrainConfig, scale: float) -> list[dict]:
    # no weight decay on biases and norm scales (1-d tensors): the usual, and what timm does
    decay = [p for p in params if p.ndim > 1]
    other = [p for p in params if p.ndim <= 1]
    if not cfg.weight_decay or cfg.decay_all:   # one group: foreach kernels run once, not twice
        groups = [{"params": decay + other, "weight_decay": cfg.weight_decay if cfg.decay_all else 0.0}]
    else:
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return [{**g, "lr": cfg.lr * scale, "lr_scale": scale} for g in groups if g["params"]]


def base_lr(opt: torch.optim.Optimizer) -> float:
    """The rate now, before --lr-scale factors: that of an unscaled group."""
    for g in opt.param_groups:
        if g.get("lr_scale", 1.0) == 1.0:
            return g["lr"]
    g = next((g for g in opt.param_groups if g["lr_scale"] > 0), opt.param_groups[0])
    return g["lr"] / g["lr_scale"] if g["lr_scale"] else g["lr"]


def lr_factor(cfg: TrainConfig, steps_per_epoch: int):
    """step -> multiplier of cfg.lr."""
    total = max(cfg.epochs * steps_per_epoch, 1)
    warm = int(cfg.warmup * steps_per_epoch)
    if cfg.schedule == "onecycle" and not warm:
        warm = int(0.3 * total)             # OneCycleLR's default pct_start
    floor = cfg.min_lr / cfg.lr

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
        t = min((step - warm) / max(total - warm, 1), 1.0)      # cosine / onecycle decay
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return factor


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg, steps_per_epoch))
