"""Strict loading of a PyTorch state_dict into an emitted module, with a mismatch listed by name."""
from __future__ import annotations

from archc.errors import SpecError


def load_weights(model, path) -> None:
    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SpecError(f"no such weights file: {path}") from None
    except Exception as e:   # not a checkpoint, or one that needs unsafe unpickling
        raise SpecError(f"{path}: cannot read a state_dict with weights_only=True: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {list(state[k].shape)} vs model {list(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        lines = [f"{path}: the checkpoint does not match the network"]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
            if keys:
                shown = ", ".join(keys[:20]) + (f", ... ({len(keys) - 20} more)" if len(keys) > 20 else "")
                lines.append(f"  {title} ({len(keys)}): {shown}")
        raise SpecError("\n".join(lines))
    model.load_state_dict(state, strict=True)
