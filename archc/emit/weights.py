"""Loading a PyTorch state_dict into an emitted module by key: strictly (every key and shape must
match), or not (a new head keeps its initialisation), with every mismatch listed by name."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Mapping

from archc.errors import Location, SpecError


def regular_file(path, what: str = "weights file") -> None:
    """Refuse what torch.load would block on or misread: a FIFO, a device, a directory."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SpecError(f"no such {what}: {path}") from None
    except (OSError, ValueError) as e:       # ValueError: a NUL in the name
        raise SpecError(f"cannot read {what}: {getattr(e, 'strerror', None) or e}", Location(str(path))) from None
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise SpecError(f"is {kind}, not a {what}", Location(str(path)))


COUNTER = "num_batches_tracked"    # BatchNorm's step counter: absent from pre-0.4.1 checkpoints


def read_weights(path):
    """A checkpoint file read with torch.load(weights_only=True): never arbitrary unpickling."""
    import torch
    regular_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError(f"no such weights file: {path}") from None
    except Exception as e:   # not a checkpoint, or one that needs unsafe unpickling
        raise SpecError(f"{path}: cannot read a state_dict with weights_only=True: {e}") from None


def unwrap(obj):
    """The state_dict inside a checkpoint: bare, or under 'state_dict' or 'model' (archc's own)."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return obj


def check_state(state, origin) -> None:
    """A state_dict is a mapping of names to tensors: anything else in a weights file (a list,
    numbers) is reported before it is used."""
    import torch
    if not isinstance(state, Mapping):
        raise SpecError(f"holds a {type(state).__name__}, not a state_dict (a mapping of names to "
                        f"tensors)", Location(str(origin)))
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            shown = repr(k) if len(repr(k)) <= 80 else repr(k)[:80] + "..."
            raise SpecError(f"entry {shown} holds a {type(v).__name__}, not a tensor: not a state_dict",
                            Location(str(origin)))


def listing(title: str, keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
    return f"  {title} ({len(keys)}): {shown}"


@dataclass
class WeightsReport:
    """What a load did: `loaded` keys took the file's values; `missing` and `mis_shaped` ones
    kept their initialisation (non-strict only); `ignored` keys of the file were left unused."""
    origin: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mis_shaped: list[str] = field(default_factory=list)     # "key: checkpoint [..] vs model [..]"
    ignored: list[str] = field(default_factory=list)
    counters: int = 0              # BatchNorm counters absent from the file (kept at their start)

    @property
    def kept(self) -> list[str]:
        """Keys that kept their initialisation."""
        return self.missing + [m.split(":")[0] for m in self.mis_shaped]

    def __str__(self) -> str:
        lines = [f"{self.origin}: loaded {len(self.loaded)} of {len(self.loaded) + len(self.kept)} tensors"]
        if self.kept:
            lines[0] += "; these keep their initialisation:"
        for title, keys in (("missing from the file", self.missing), ("shape differs", self.mis_shaped),
                            ("unexpected, ignored", self.ignored)):
            if keys:
                lines.append(listing(title, keys))
        if self.counters:
            lines.append(f"  {self.counters} BatchNorm {COUNTER} counters absent (a checkpoint saved before "
                         f"PyTorch 0.4.1): kept at their start")
        return "\n".join(lines)


def load_state(model, obj, origin, strict: bool = True, ignore_unexpected: bool = False) -> WeightsReport:
    """Load a checkpoint object (already read from `origin`) into `model` by key. Strict: every
    key and shape must match. Not strict: missing and mis-shaped tensors keep their
    initialisation. Keys the model lacks are an error unless `ignore_unexpected`."""
    state = unwrap(obj)
    check_state(state, origin)
    own = model.state_dict()
    absent = [k for k in own if k not in state]
    counters = [k for k in absent if k.rsplit(".", 1)[-1] == COUNTER and k.rsplit(".", 1)[0] + ".running_mean" in state]
    missing = [k for k in absent if k not in counters]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    errors = [("unexpected", [] if ignore_unexpected else unexpected)]
    if strict:
        errors = [("missing", missing), *errors, ("mis-shaped", shapes)]
    if any(keys for _, keys in errors):
        lines = [f"{origin}: the checkpoint does not match the network"]
        lines += [listing(title, keys) for title, keys in errors if keys]
        if unexpected and not ignore_unexpected:
            lines.append("  (to leave the unexpected keys unused: --ignore-unexpected, or ignore_unexpected=True)")
        raise SpecError("\n".join(lines))
    bad = {m.split(":")[0] for m in shapes}
    use = {k: v for k, v in state.items() if k in own and k not in bad}
    if not use:
        raise SpecError(f"{origin}: no tensor of the checkpoint fits the network (no key matches in name and shape)")
    for k in counters:          # as PyTorch's BatchNorm does for old checkpoints
        use[k] = own[k]
    model.load_state_dict(use, strict=False)
    return WeightsReport(str(origin), loaded=[k for k in own if k in use and k not in counters],
                         missing=missing, mis_shaped=shapes,
                         ignored=unexpected if ignore_unexpected else [], counters=len(counters))


def load_weights(model, path, strict: bool = True, ignore_unexpected: bool = False) -> WeightsReport:
    return load_state(model, read_weights(path), path, strict=strict, ignore_unexpected=ignore_unexpected)
