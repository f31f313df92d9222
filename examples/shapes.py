"""A small image-folder data set to fine-tune on: five classes of coloured shapes (circle,
square, triangle, cross, ring), each drawn at a random place and size, in a colour near its
class's own, on a noisy background. Seeded: the same arguments give the same files.

    python examples/shapes.py data/shapes              # 60 images a class, 32x32, train/ + test/
    python examples/shapes.py data/shapes --per-class 200 --size 64

docs/training.md fine-tunes a zoo ResNet-18 on it; tests/test_finetune.py does the same in CI."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "cross", "ring")
COLOURS = ((220, 60, 60), (60, 170, 70), (60, 90, 220), (220, 180, 40), (170, 70, 200))


def draw(kind: str, colour, size: int, rng: np.random.Generator) -> Image.Image:
    noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    im = Image.fromarray(noise, "RGB")
    d = ImageDraw.Draw(im)
    r = rng.uniform(0.22, 0.4) * size
    cx, cy = rng.uniform(r, size - r, 2)
    fill = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in colour)
    box = (cx - r, cy - r, cx + r, cy + r)
    if kind == "circle":
        d.ellipse(box, fill=fill)
    elif kind == "square":
        d.rectangle(box, fill=fill)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif kind == "cross":
        w = r / 3
        d.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)
        d.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
    else:                                   # ring
        d.ellipse(box, outline=fill, width=max(2, int(r / 3)))
    return im


def make_shapes(root: str | Path, per_class: int = 60, size: int = 32, test_per_class: int = 20,
                seed: int = 0) -> Path:
    """ROOT/train/<class>/*.png (per_class each) and ROOT/test/<class>/*.png (test_per_class)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for kind, colour in zip(CLASSES, COLOURS):
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw(kind, colour, size, rng).save(folder / f"{kind}_{i:04d}.png")
    return root


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root")
    ap.add_argument("--per-class", type=int, default=60)
    ap.add_argument("--test-per-class", type=int, default=20)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_shapes(a.root, a.per_class, a.size, a.test_per_class, a.seed))
