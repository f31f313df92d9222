"""Fine-tuning: a run that starts from other weights (`--init-from`), with parts frozen
(`--freeze`, until `--unfreeze-at`) and per-part learning rates (`--lr-scale`).

Patterns are scoped names or globs of them, or the parts `backbone` / `head` (archc.ir.parts).
Frozen parameters stay in the optimizer with requires_grad off: they get no gradient, so no
update, momentum or weight decay, and the optimizer's groups are the same frozen or not (so
unfreezing, resuming and checkpoints need nothing special). A BatchNorm whose tensors are all
frozen is kept in eval mode: its running statistics stay as loaded."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from archc.errors import SpecError
from archc.ir.parts import resolve
from archc.ops.base import tensor_key
from archc.train.config import TrainConfig


class Freezer:
    """Which parameters and BatchNorm layers are frozen in which epoch."""

    def __init__(self, net, cfg: TrainConfig):
        self.keys = {k for keys in resolve(net, cfg.freeze, "--freeze").values() for k in keys}
        self.patterns, self.unfreeze_at = list(cfg.freeze), cfg.unfreeze_at
        self.frozen: bool | None = None        # the state applied last (None: none yet)
        trainable = [k for n in net.nodes for k, t in ((tensor_key(n.name, k), t) for k, t in n.tensors.items())
                     if t.trainable]
        if self.keys and trainable and all(k in self.keys for k in trainable):
            raise SpecError(f"--freeze {','.join(self.patterns)} freezes every parameter of {net.name}: nothing "
                            f"would train (freeze a part, such as backbone, and train the rest)")

    def active(self, epoch: int) -> bool:
        """Frozen in this epoch (0-based; --unfreeze-at counts from 1, as the log does)?"""
        return bool(self.keys) and (self.unfreeze_at is None or epoch + 1 < self.unfreeze_at)

    def apply(self, model: torch.nn.Module, epoch: int) -> bool:
        """Set requires_grad for this epoch; True when that changed anything."""
        frozen = self.active(epoch)
        if frozen == self.frozen or (not self.keys):
            return False
        for name, p in model.named_parameters():
            p.requires_grad_(not (frozen and name in self.keys))
        changed = self.frozen is not None
        self.frozen = frozen
        return changed

    def hold_norms(self, model: torch.nn.Module) -> None:
        """After model.train(): BatchNorm layers wholly frozen go back to eval mode."""
        if not self.frozen:
            return
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and \
                    all(f"{name}.{k}" in self.keys for k in m.state_dict()):
                m.eval()

    def describe(self, model: torch.nn.Module) -> str:
        params = dict(model.named_parameters())
        n = sum(p.numel() for k, p in params.items() if k in self.keys)
        total = sum(p.numel() for p in params.values())
        until = f" until epoch {self.unfreeze_at}" if self.unfreeze_at else ""
        return f"frozen{until}: {n:,} of {total:,} parameters ({', '.join(self.patterns)})"


def lr_scales(net, cfg: TrainConfig) -> dict[str, float]:
    """Parameter name -> learning-rate factor; where patterns overlap, the one given last wins."""
    out: dict[str, float] = {}
    for pattern, keys in resolve(net, list(cfg.lr_scale), "--lr-scale").items():
        for k in keys:
            out[k] = cfg.lr_scale[pattern]
    return out


def init_weights(model, net, source: str, ignore_unexpected: bool, say: Callable[[str], None]) -> dict:
    """Load `source` (a file, a run's directory, or torchvision[:NAME] / timm[:TAG]) into model
    by key, not strictly; the record of what was done, for run.json."""
    from archc.emit.pretrained import is_named, load_named_or_file, resolve as resolve_named
    from archc.train.record import digest
    if not is_named(source):
        path = Path(source).expanduser()
        if path.is_dir():
            if not (path / "best.pt").is_file():
                raise SpecError(f"--init-from {source}: a directory without best.pt; give a weights file")
            path = path / "best.pt"
        if not path.exists():
            raise SpecError(f"--init-from {source}: no such file (give a state_dict or checkpoint file, "
                            f"or torchvision[:NAME] / timm[:TAG])")
        source = str(path.absolute())
    report = load_named_or_file(model, net, source, strict=False, ignore_unexpected=ignore_unexpected, say=say)
    say(str(report))
    file = resolve_named(net, source).path if is_named(source) else Path(source)
    return {"weights": source, "file": str(file), "sha256": digest(file), "loaded": len(report.loaded),
            "kept": report.kept, "ignored": report.ignored, "ignore_unexpected": ignore_unexpected}
