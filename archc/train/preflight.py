"""What a training run checks and settles before its first step: settings that cannot work with
the data or device (refused before any work, and before processes are launched), settings that
run but are probably a mistake (said), the normalisation, and torch's process-wide switches."""
from __future__ import annotations

import functools
import os

import torch

from archc.errors import SpecError
from archc.train.config import TrainConfig
from archc.train.data import Data, channel_stats
from archc.train.dist import Place, device_for
from archc.train.fit import fit_network
from archc.train.finetune import Freezer, lr_scales
from archc.train.report import require_tensorboard
from archc.train.runner import per_process_batch


def keeps_torch_settings(fn):
    """The caller's process-wide switches (deterministic mode, cuDNN autotuning) back after a run:
    left on, deterministic mode makes every later torch.empty fill its memory."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        saved = (torch.are_deterministic_algorithms_enabled(),
                 torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.benchmark)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
            torch.backends.cudnn.benchmark = saved[2]
    return wrapper


def set_torch_switches(cfg: TrainConfig, dev: torch.device) -> None:
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif dev.type == "cuda":
        torch.backends.cudnn.benchmark = True


def refuse_unworkable(cfg: TrainConfig, data: Data, dev: torch.device, place: Place) -> None:
    """Settings that cannot work with this data or device, refused before any work."""
    per_process_batch(cfg, place)
    if (cfg.crop or cfg.flip or cfg.vflip or cfg.rotate) and len(data.sample_shape) != 3:
        raise SpecError(f"augmentation (crop, flip, rotate) is for images; {data.name} samples "
                        f"are {'x'.join(map(str, data.sample_shape))}")
    channels = data.sample_shape[0]
    for name in ("mean", "std"):
        given = getattr(cfg, name)
        if given is not None and len(given) not in (1, channels):
            raise SpecError(f"train.{name} has {len(given)} values; {data.name} has {channels} "
                            f"channel{'s' * (channels != 1)} (give 1 or {channels})")
    if cfg.early_stop and data.val is None:
        raise SpecError(f"--early-stop watches the validation score, and {data.name} has no validation split "
                        f"here (val_fraction {cfg.val_fraction:g}): give --val-fraction above 0, or leave "
                        f"--early-stop out")
    if cfg.tensorboard:
        require_tensorboard()
    if cfg.sync_bn and place.distributed and dev.type != "cuda":
        raise SpecError("sync_bn needs GPUs (torch's SyncBatchNorm runs on CUDA only); "
                        "on CPU each process normalises with its own batch statistics")


def preflight(net, data: Data, cfg: TrainConfig, world_size: int) -> None:
    """Everything train() would refuse, checked once before processes are launched."""
    net = fit_network(net, data, cfg, lambda s: None)
    Freezer(net, cfg), lr_scales(net, cfg)          # patterns that select nothing
    wants_gpu = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    dev = device_for(Place(), cfg.device)
    if wants_gpu and world_size > torch.cuda.device_count():
        raise SpecError(f"--nproc {world_size}: only {torch.cuda.device_count()} GPUs are visible")
    refuse_unworkable(cfg, data, dev, Place(0, world_size))


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def notes(cfg: TrainConfig, data: Data) -> list[str]:
    """Settings that run as asked but are probably not what the user means."""
    said = []
    given = [*(cfg.mean or []), *(cfg.std or [])]
    if cfg.normalize and len(given) == 6 and all(abs(a - b) < 5e-4 for a, b in zip(given, sum(IMAGENET, ()))):
        said.append(f"warning: the mean/std given ({', '.join(map(str, IMAGENET[0]))} / "
                    f"{', '.join(map(str, IMAGENET[1]))}) are ImageNet's constants, not {data.name}'s "
                    f"own statistics (leave mean/std out to compute those)")
    return said


def normalisation(cfg: TrainConfig, data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) by channel: the given ones, else the train split's."""
    if cfg.mean is not None and cfg.std is not None:
        return torch.tensor(cfg.mean), torch.tensor(cfg.std)
    mean, std = channel_stats(data.train)
    return (torch.tensor(cfg.mean) if cfg.mean is not None else mean,
            torch.tensor(cfg.std) if cfg.std is not None else std)
