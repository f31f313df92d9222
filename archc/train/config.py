"""The training configuration: the spec's `train:` section, overridden by command-line flags.

    train:
      optimizer: {name: sgd, momentum: 0.9, nesterov: true}   # or just `optimizer: adamw`
      lr: 0.1
      schedule: {name: cosine, warmup: 1}
      epochs: 30
      augment: {crop: 4, flip: true, rotate: 10}                # random crop (padding 4), ...
      normalize: {mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.243, 0.261]}   # or true/false
      data: cifar10                  # what `archc train` uses without --data
      metrics: [top1, top5]

Flat keys are accepted too (`momentum: 0.9` next to `optimizer: sgd`). Unknown keys are a
SpecError with the nearest known name, as everywhere else in a spec.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from archc.errors import Location, SpecError, did_you_mean


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # optimizer
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)        # Adam's epsilon (Keras's default is 1e-7)
    # weight decay skips biases and norm scales unless this is set (Paddle's and Keras's
    # regularisers decay every parameter)
    decay_all: bool = False
    # schedule: per step; `warmup` epochs ramp linearly from 0 first
    schedule: Literal["constant", "step", "cosine", "onecycle"] = "constant"
    warmup: float = Field(0.0, ge=0)
    step_size: int = Field(30, ge=1)      # epochs between decays (schedule: step)
    gamma: float = Field(0.1, gt=0)       # decay factor (schedule: step)
    min_lr: float = Field(0.0, ge=0)      # floor of cosine / onecycle, absolute
    # run
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    val_batch_size: int | None = Field(None, ge=1)   # evaluation batches (default: batch_size)
    loss: Literal["cross_entropy", "bce"] = "cross_entropy"
    from_logits: bool = True              # false: the network ends in softmax (Keras's twin)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    metrics: list[Literal["top1", "top5"]] = ["top1"]   # top5: also the top-5 accuracy
    aux_weight: float = Field(0.3, ge=0)  # weight of training-only heads (GoogLeNet's 0.3)
    grad_clip: float | None = Field(None, gt=0)
    seed: int = 0
    deterministic: bool = False
    # data: the --data argument used when none is given; val_fraction of the training set is
    # held out for validation (selecting best.pt), where the data has no val split of its own
    data: str | None = None
    val_fraction: float = Field(0.1, ge=0, lt=1)
    resize: bool = False                  # image files: resized to the input's H x W
    labels: dict[str, int] | None = None  # files:DIR: file-name prefix -> label (default P/H/N)
    workers: int = Field(0, ge=0)         # DataLoader workers for file data sets
    normalize: bool = True                # by channel: with mean/std if given, else computed
    mean: list[float] | None = None       # on the [0, 1] pixel scale, one value or one a channel
    std: list[float] | None = None
    # augmentation of training batches (archc.train.augment)
    crop: int = Field(0, ge=0)            # random crop after padding by this many pixels
    flip: bool = False                    # random horizontal flip
    vflip: bool = False                   # random vertical flip
    rotate: float = Field(0.0, ge=0, le=180)   # random rotation within +-degrees
    # hardware
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["none", "bf16", "fp16"] = "none"
    compile: bool = False
    channels_last: bool = False
    sync_bn: bool = False                 # SyncBatchNorm across processes (GPU runs)

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _numbers(cls, v):
        # '0.5,0.5,0.5' from a flag, a bare number, or a list
        if isinstance(v, str):
            return [float(t) for t in v.split(",") if t.strip()]
        return [v] if isinstance(v, (int, float)) else v

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_list(cls, v):
        names = [v] if isinstance(v, str) else list(v)
        return [str(m).lower().replace("-", "").replace("_", "") for m in names]

    @field_validator("optimizer", "schedule", "loss", "device", "amp", mode="before")
    @classmethod
    def _lower(cls, v):
        return v.strip().lower().replace("-", "_") if isinstance(v, str) else v


FIELDS = list(TrainConfig.model_fields)
# nested forms: `optimizer: {name: sgd, ...}`, `schedule: {name: cosine, ...}`, `loss: {...}`
NESTED = {"optimizer", "schedule", "loss", "augment", "normalize"}
NOT_NESTED = {"labels"}     # mappings that are values
ALIASES = {"weight-decay": "weight_decay", "batch-size": "batch_size", "wd": "weight_decay",
           "warmup_epochs": "warmup", "label-smoothing": "label_smoothing",
           "grad-clip": "grad_clip", "clip_grad": "grad_clip", "scheduler": "schedule",
           "lr_schedule": "schedule", "cross-entropy": "cross_entropy", "hflip": "flip",
           "random_crop": "crop", "rotation": "rotate", "vertical_flip": "vflip",
           "horizontal_flip": "flip", "val-batch-size": "val_batch_size", "epsilon": "eps",
           "decay-all": "decay_all", "channels-last": "channels_last",
           "sync-bn": "sync_bn", "val-fraction": "val_fraction"}


def _flatten(section: Mapping[str, Any], where: str, path: tuple = (), found: dict[str, tuple] | None = None,
             locs: Mapping[tuple, Location] | None = None) -> dict[str, Any]:
    """The nested forms made flat; `found` gets each flat key's path in the section, `locs` says
    where each path was written."""
    flat: dict[str, Any] = {}
    for raw_key, value in section.items():
        key = ALIASES.get(str(raw_key), str(raw_key))
        at = path + (raw_key,)
        if key in NESTED and isinstance(value, Mapping) and key not in NOT_NESTED:
            inner = dict(value)
            if "name" in inner:
                flat[key] = inner.pop("name")
                if found is not None:
                    found[key] = at + ("name",)
            if key == "normalize":          # normalize: {mean, std} means normalise with these
                flat["normalize"] = True
            flat.update(_flatten(inner, f"{where}.{key}", at, found, locs))
        elif key not in FIELDS:
            shown = key if len(key) <= 80 else key[:80] + "..."
            raise SpecError(f"{where}: unknown key '{shown}'{did_you_mean(key, FIELDS)}; "
                            f"known: {', '.join(FIELDS)}", _loc(locs, at))
        else:
            flat[key] = value
            if found is not None:
                found[key] = at
    return flat


def _loc(locs: Mapping[tuple, Location] | None, path: tuple) -> Location | None:
    """Where the setting at `path` of the section was written (or the nearest enclosing one)."""
    locs = locs or {}
    for n in range(len(path), -1, -1):
        if path[:n] in locs:
            return locs[path[:n]]
    return None


def make_config(section: Mapping[str, Any] | None = None, locs: Mapping[tuple, Location] | None = None,
                **flags: Any) -> TrainConfig:
    """The spec's train section with flags on top; flags that are None were not given. `locs`
    (Network.train_locs) places an error in the section at its line and column."""
    paths: dict[str, tuple] = {}
    values = _flatten(section or {}, "train", (), paths, locs)
    given = {k: v for k, v in flags.items() if v is not None}
    values.update(_flatten(given, "flag"))
    try:
        return TrainConfig(**values)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(map(str, err["loc"])) or "train"
        first = str(err["loc"][0]) if err["loc"] else ""
        shown = repr(err.get("input"))
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        if first in given or first not in paths:
            raise SpecError(f"train.{field}: {err['msg']} (got {shown})") from None
        raise SpecError(f"train.{field}: {err['msg']} (got {shown})",
                        _loc(locs, paths[first] + tuple(err["loc"][1:]))) from None
