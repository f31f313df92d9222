"""Strict loading of a PyTorch state_dict into an emitted module, with a mismatch listed by name."""
from __future__ import annotations

import os
import stat
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


def load_state(model, obj, origin) -> None:
    """Load a checkpoint object (already read from `origin`) strictly into `model`."""
    state = unwrap(obj)
    check_state(state, origin)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        lines = [f"{origin}: the checkpoint does not match the network"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if keys:
                shown = ", ".join(keys[:20]) + (f", ... ({len(keys) - 20} more)" if len(keys) > 20 else "")
                lines.append(f"  {title} ({len(keys)}): {shown}")
        raise SpecError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def load_weights(model, path) -> None:
    load_state(model, read_weights(path), path)
