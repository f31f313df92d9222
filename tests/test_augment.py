"""Batch augmentation (crop with padding, flip, rotation) and normalisation with given
statistics: each transform checked sample by sample against its definition."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import archc
from archc.errors import SpecError
from archc.train.augment import Augment, random_crop, random_flip, random_rotation, rotate
from archc.train.config import make_config
from archc.train.data import open_data
from archc.train.loop import normalisation, train

CNN = str(Path(__file__).resolve().parent.parent / "specs" / "digits_cnn.yaml")


def test_random_crop_takes_a_window_of_the_zero_padded_image():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 6, 5)
    out = random_crop(x, 2)
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for b in range(64):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(padded[b, :, dy:dy + 6, dx:dx + 5], out[b])]
        assert hits, f"sample {b} is no window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 10            # offsets are drawn per sample, over the whole range


def test_random_flip_mirrors_about_half_the_images():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 4, 4)
    out = random_flip(x)
    flipped = [torch.equal(o, s.flip(-1)) for o, s in zip(out, x)]
    assert all(f or torch.equal(o, s) for f, o, s in zip(flipped, out, x))
    assert 70 < sum(flipped) < 130


def test_rotation_by_right_angles_is_exact_and_random_angles_stay_in_range():
    x = torch.rand(2, 3, 6, 6)
    quarter = rotate(x, torch.tensor([math.pi / 2, -math.pi / 2]))
    assert torch.allclose(quarter[0], torch.rot90(x[0], 1, (1, 2)), atol=1e-5)
    assert torch.allclose(quarter[1], torch.rot90(x[1], -1, (1, 2)), atol=1e-5)
    assert torch.allclose(rotate(x, torch.zeros(2)), x, atol=1e-6)
    # a ring of ones keeps its centre: small rotations move mass only near the border
    torch.manual_seed(1)
    img = torch.zeros(8, 1, 9, 9)
    img[:, :, 4, 4] = 1
    assert torch.allclose(random_rotation(img, 30)[:, :, 4, 4], torch.ones(8, 1), atol=1e-5)


def test_augment_runs_in_torchvision_order_and_only_when_asked():
    assert not Augment() and Augment(flip=True)
    with pytest.raises(ValueError, match=r"image batches \[B, C, H, W\]"):
        Augment(crop=1)(torch.rand(4, 10))


def test_training_with_augmentation_and_given_statistics(tmp_path):
    net = archc.load(CNN)
    digits = open_data("digits")
    cfg = make_config(net.train, device="cpu", epochs=5, crop=1, rotate=10,
                      normalize={"mean": [0.3], "std": [0.4]})
    assert (cfg.crop, cfg.rotate, cfg.mean, cfg.std) == (1, 10.0, [0.3], [0.4])
    hist = train(net, digits, cfg, tmp_path, quiet=True)
    assert max(h["val_acc"] for h in hist) > 0.85
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["normalize"]["mean"].tolist() == pytest.approx([0.3])
    mean, std = normalisation(make_config({}, std="0.5"), digits)      # mean computed, std given
    assert std.tolist() == [0.5] and mean.item() == pytest.approx(digits.train.x.float().mean().item(), rel=1e-4)


def test_augmentation_of_non_images_is_refused(tmp_path):
    spec = tmp_path / "mlp.yaml"
    spec.write_text("archc: 1\nname: mlp\ninput: [10]\nvars: {num_classes: 10}\n"
                    "layers:\n  - linear: 16\n  - relu\n  - linear: $num_classes\n")
    cfg = make_config({}, device="cpu", epochs=1, flip=True)
    with pytest.raises(SpecError, match="augmentation .* is for images"):
        train(archc.load(str(spec)), open_data("synthetic:64", input_shape=(10,)), cfg, tmp_path / "o")
