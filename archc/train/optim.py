"""Optimizer and learning-rate schedule from a TrainConfig. The schedule is one LambdaLR stepped
every batch, so warmup and cosine are smooth, and its state is just a step counter."""
from __future__ import annotations

import math

import torch

from archc.train.config import TrainConfig


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on biases and norm scales (1-d tensors): the usual, and what timm does
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if not cfg.weight_decay or cfg.decay_all:   # one group: foreach kernels run once, not twice
        groups = [{"params": decay + other, "weight_decay": cfg.weight_decay if cfg.decay_all else 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


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
