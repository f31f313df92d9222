"""`archc predict`: class probabilities of image files under trained weights.

Images are decoded with Pillow, converted to the input's channels (L or RGB), resized to its
H x W when their size differs, scaled to [0, 1] and normalised with the given statistics: what
training did to them. Every image a command names must decode; in a folder, files whose
extension is not an image's are skipped and counted."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from archc.errors import SpecError
from archc.train.data.images import IMAGE_EXTS, pil

CHUNK = 64                  # images decoded and run at a time: memory stays flat on a big folder


@dataclass
class Found:
    images: list[Path]
    skipped: list[Path]     # files in a named folder that are not images by extension


def find_images(args) -> Found:
    """The images named: files as given, folders' image files (not recursive) in sorted order."""
    images, skipped = [], []
    for arg in args:
        p = Path(arg).expanduser()
        if not p.exists():
            raise SpecError(f"{arg}: no such file or directory")
        if not p.is_dir():
            images.append(p)
            continue
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        inside = [f for f in files if f.suffix.lower() in IMAGE_EXTS]
        skipped += [f for f in files if f.suffix.lower() not in IMAGE_EXTS]
        if not inside:
            raise SpecError(f"{arg}: no images in this folder (looked for {', '.join(sorted(IMAGE_EXTS))}; "
                            f"subfolders are not searched)")
        images += inside
    if not images:
        raise SpecError("predict needs IMAGE... (image files or folders of them)")
    return Found(images, skipped)


def read_image(path: Path, channels: int, hw: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """(uint8 [C, H, W], resized?) of one image file; a file that does not decode is a SpecError
    naming it."""
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise SpecError(f"predict takes images of 1 or 3 channels; the network's input has {channels}")
    try:
        with pil().open(path) as im:
            im = im.convert(mode)
    except Exception as e:  # noqa: BLE001 - UnidentifiedImageError, truncated files, bombs...
        raise SpecError(f"{path}: cannot read it as an image ({e})") from None
    h, w = hw
    resized = im.size != (w, h)
    if resized:
        im = im.resize((w, h), pil().Resampling.BILINEAR)
    a = torch.from_numpy(np.array(im, dtype=np.uint8))
    return (a.unsqueeze(0) if a.ndim == 2 else a.permute(2, 0, 1).contiguous()), resized


@torch.no_grad()
def probabilities(model, paths: list[Path], input_shape, mean, std, dev,
                  say: Callable[[str], None] = print) -> Iterator[tuple[Path, torch.Tensor]]:
    """(path, probabilities) per image: softmax over the logits, or on a 1-logit head the
    sigmoid (the probability of class 1). mean/std None: no normalisation."""
    if len(input_shape) != 3:
        raise SpecError(f"predict takes images; the network's input is {list(input_shape)}, not [C, H, W]")
    c, h, w = (int(d) for d in input_shape)
    for name, v in (("mean", mean), ("std", std)):
        if v is not None and len(v) not in (1, c):
            raise SpecError(f"{len(v)} {name} values for an input of {c} channel{'s' * (c != 1)} (give 1 or {c})")
    model.eval()
    resized = 0
    for i in range(0, len(paths), CHUNK):
        chunk = paths[i:i + CHUNK]
        read = [read_image(p, c, (h, w)) for p in chunk]
        resized += sum(r for _, r in read)
        x = torch.stack([t for t, _ in read]).to(dev).float() / 255
        if mean is not None:
            view = (1, -1, 1, 1)
            x = (x - torch.as_tensor(mean, dtype=torch.float32, device=dev).view(view)) / \
                torch.as_tensor(std, dtype=torch.float32, device=dev).clamp_min(1e-8).view(view)
        out = model(x)
        out = (out[0] if isinstance(out, (tuple, list)) else out).float().flatten(1)
        probs = torch.sigmoid(out[:, 0]).unsqueeze(1) if out.shape[1] == 1 else torch.softmax(out, 1)
        yield from zip(chunk, probs.cpu())
    if resized:
        say(f"note: {resized} of {len(paths)} images resized to {h}x{w} (the network's input)")


def top(probs: torch.Tensor, classes: list[str], k: int) -> list[dict]:
    """The k most probable classes: [{class, index, prob}], most probable first."""
    values, idx = probs.topk(min(k, probs.numel()))
    return [{"class": classes[i], "index": int(i), "prob": float(v)} for v, i in zip(values, idx.tolist())]
