"""Training-time augmentation, applied to a whole batch on its device (no per-sample Python):
random crop with zero padding, horizontal and vertical flips, rotation. Images are on the [0, 1] scale,
before normalisation, so padding and the corners uncovered by a rotation are black, as with
torchvision's RandomCrop(padding=p) and RandomRotation(degrees) on a PIL image."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Each image padded by `padding` zeros on every side, then cut back to its size at a random
    offset of its own."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, :, None]            # [B, H, 1]
    cols = (dx + torch.arange(w, device=x.device))[:, None, :]            # [B, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)   # gather, [B,C,H,W]


def random_flip(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Each image mirrored with probability 1/2: left-right (dim -1) or upside down (dim -2)."""
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(dim), x)


def rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Each image rotated about its centre by its angle in radians, counter-clockwise as seen
    (bilinear; uncovered corners are 0)."""
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    # the grid maps output to input positions: the inverse rotation, in (x, y) with y down
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_rotation(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Each image rotated by an angle drawn uniformly from [-degrees, degrees]."""
    return rotate(x, (torch.rand(x.shape[0], device=x.device) * 2 - 1) * math.radians(degrees))


class Augment:
    """The augmentations a TrainConfig asks for, in torchvision's usual order."""

    def __init__(self, crop: int = 0, flip: bool = False, rotate: float = 0.0, vflip: bool = False):
        self.crop, self.flip, self.rotate, self.vflip = crop, flip, rotate, vflip

    def __bool__(self) -> bool:
        return bool(self.crop or self.flip or self.vflip or self.rotate)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:      # checked when the run starts; images only
            raise ValueError(f"augmentation needs image batches [B, C, H, W], got {list(x.shape)}")
        if self.crop:
            x = random_crop(x, self.crop)
        if self.flip:
            x = random_flip(x)
        if self.vflip:     # torchvision's RandomVerticalFlip comes after the horizontal one
            x = random_flip(x, dim=-2)
        if self.rotate:
            x = random_rotation(x, self.rotate)
        return x
