"""Image files decoded with Pillow when read: `imagefolder:DIR` (a folder per class) and `files:DIR`
(labels from the file names by a prefix rule, or from labels.csv). Served as torch Datasets of
(uint8 [C, H, W], label), for a DataLoader with workers; as_float() scales a batch as for
in-memory data."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from archc.errors import SpecError
from archc.train.data.core import Data, DataError, split_indices

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# The eye-screening data set of the textbooks: P* are patients (1), H* and N* healthy (0).
EYE_RULE = {"P": 1, "H": 0, "N": 0}


def pil():
    try:
        from PIL import Image
    except ImportError:
        raise SpecError("image data sets need Pillow: pip install pillow") from None
    return Image


def header(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the file's header, without decoding the pixels."""
    try:
        with pil().open(path) as im:
            return im.mode, im.size
    except Exception as e:  # noqa: BLE001 - UnidentifiedImageError, OSError, bombs...
        raise SpecError(f"{path}: cannot read image ({e})") from None


class ImageFiles(Dataset):
    """(path, label) pairs decoded to `mode` ("L" or "RGB") at (height, width) = size: resized to
    it when resize is set, otherwise an image of another size is an error naming it."""

    def __init__(self, samples: list[tuple[Path, int]], mode: str, size: tuple[int, int],
                 resize: bool = False):
        self.samples, self.mode, self.size, self.resize = samples, mode, tuple(size), resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        try:
            with pil().open(path) as im:
                im = im.convert(self.mode)  # decodes: a truncated or corrupt file fails here
        except Exception as e:  # noqa: BLE001
            raise DataError(f"{path}: cannot decode image ({e})") from None
        h, w = self.size
        if im.size != (w, h):
            if not self.resize:
                raise DataError(f"{path}: image is {im.size[1]}x{im.size[0]}, the data set's "
                                f"{h}x{w}: pass size=(H, W) to resize")
            im = im.resize((w, h), pil().Resampling.BILINEAR)
        a = torch.from_numpy(np.array(im, dtype=np.uint8))
        return (a.unsqueeze(0) if a.ndim == 2 else a.permute(2, 0, 1).contiguous()), label


def images_in(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
                  and p.is_file())


def make_data(name: str, classes: list[str], train, val, test, *, val_fraction: float, seed: int,
              size, channels: int | None) -> Data:
    """Data from sample lists; without a val list, a seeded split of train. Images decode to
    the input's channel count, or without one, to L or RGB as the first image is grey or not."""
    if not train:
        raise SpecError(f"{name}: no images (extensions {', '.join(sorted(IMAGE_EXTS))})")
    if val is None:
        tr, va = split_indices(len(train), val_fraction, seed)
        train, val = [train[i] for i in tr], [train[i] for i in va]
    if channels not in (None, 1, 3):
        raise SpecError(f"{name}: images can have 1 or 3 channels, the input asks for {channels}")
    mode, (w, h) = header(train[0][0])
    mode = {1: "L", 3: "RGB"}.get(channels) or ("L" if mode in GRAY_MODES else "RGB")
    hw = tuple(size) if size else (h, w)
    ds = [ImageFiles(s, mode, hw, resize=bool(size)) if s else None for s in (train, val, test)]
    return Data(name=name, train=ds[0], val=ds[1], test=ds[2], num_classes=len(classes),
                sample_shape=(1 if mode == "L" else 3, *hw), classes=classes)


def open_imagefolder(directory: str, *, val_fraction=0.1, seed=0, size=None, channels=None) -> Data:
    """DIR/<class>/*.jpg, or DIR/train/<class> with DIR/val/<class> (and DIR/test/<class>)."""
    d = Path(os.path.expanduser(directory))
    if not d.is_dir():
        raise SpecError(f"imagefolder: no directory {d}")
    splits = {s: d / s for s in ("train", "val", "test") if (d / s).is_dir()}
    train_root = splits.pop("train", d)
    classes = sorted(p.name for p in train_root.iterdir()
                     if p.is_dir() and not (train_root == d and p.name in splits))
    if not classes:
        raise SpecError(f"imagefolder: {train_root} has no class subfolders")
    index = {c: i for i, c in enumerate(classes)}

    def scan(root: Path, is_train: bool) -> list[tuple[Path, int]]:
        out = []
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if sub.name not in index:
                if is_train:
                    continue  # val/ or test/ beside the classes
                raise SpecError(f"imagefolder: {sub} is not one of the classes in {train_root}")
            files = images_in(sub, recursive=True)
            if is_train and not files:
                raise SpecError(f"imagefolder: class folder {sub} has no images")
            out += [(f, index[sub.name]) for f in files]
        return out

    train = scan(train_root, True)
    val, test = (scan(splits[s], False) if s in splits else None for s in ("val", "test"))
    return make_data(f"imagefolder:{d}", classes, train, val, test, val_fraction=val_fraction,
                     seed=seed, size=size, channels=channels)


def read_labels_csv(path: Path) -> list[tuple[Path, str]]:
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise SpecError(f"{path}:{line}: expected 'filename,label', found {len(row)} fields")
            file, label = (c.strip() for c in row)
            if line == 1 and file.lower() in ("filename", "file", "path", "image"):
                continue  # a header
            if not (path.parent / file).is_file():
                raise SpecError(f"{path}:{line}: no file {path.parent / file}")
            rows.append((path.parent / file, label))
    return rows


def open_files(directory: str, *, rule: dict[str, int] | None = None, val_fraction=0.1, seed=0,
               size=None, channels=None) -> Data:
    """Images in DIR labelled by DIR/labels.csv (filename,label) when there is one, else by the
    longest file-name prefix of `rule` (prefix -> label; EYE_RULE by default, case-sensitive)."""
    d = Path(os.path.expanduser(directory))
    if not d.is_dir():
        raise SpecError(f"files: no directory {d}")
    if (d / "labels.csv").is_file():
        rows = read_labels_csv(d / "labels.csv")
        labels = [lab for _, lab in rows]
        if all(lab.lstrip("-").isdigit() for lab in labels):  # integer labels are class indices
            ints = [int(lab) for lab in labels]
            if ints and min(ints) < 0:
                raise SpecError(f"{d / 'labels.csv'}: negative label {min(ints)}")
            classes = [str(i) for i in range(max(ints, default=-1) + 1)]
            samples = [(p, i) for (p, _), i in zip(rows, ints)]
        else:  # names: classes in sorted order
            classes = sorted(set(labels))
            index = {c: i for i, c in enumerate(classes)}
            samples = [(p, index[lab]) for p, lab in rows]
    else:
        rule = EYE_RULE if rule is None else rule
        by_length = sorted(rule, key=len, reverse=True)
        samples = []
        for p in images_in(d, recursive=False):
            prefix = next((r for r in by_length if p.name.startswith(r)), None)
            if prefix is None:
                raise SpecError(f"{p}: its name starts with none of the prefixes {sorted(rule)}; "
                                f"rename it or label the files in {d / 'labels.csv'}")
            samples.append((p, int(rule[prefix])))
        classes = [str(i) for i in range(max(rule.values(), default=-1) + 1)]
    return make_data(f"files:{d}", classes, samples, None, None, val_fraction=val_fraction,
                     seed=seed, size=size, channels=channels)
