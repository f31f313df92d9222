"""The textbooks' training recipes ship with their specs: each parses into the configuration its
text trains with (issue 9's table), and the settings the recipes need work."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import archc
from archc.train.augment import Augment
from archc.train.config import make_config
from archc.train.data import open_data
from archc.train.loop import notes

ROOT = Path(__file__).resolve().parent.parent
MOMENTUM = dict(optimizer="sgd", momentum=0.9, nesterov=False)
PADDLE_EYE = dict(**MOMENTUM, lr=0.001, batch_size=10, epochs=5, loss="bce", normalize=True,
                  mean=[0.5], std=[0.5], resize=True, data=None, weight_decay=0.0)
KERAS_ADAM = dict(optimizer="adam", eps=1e-7, betas=(0.9, 0.999), loss="cross_entropy",
                  normalize=True, mean=[0.5], std=[0.5])
NO_AUGMENT = dict(crop=0, flip=False, vflip=False, rotate=0.0)

RECIPES = {
    # Paddle ch.3: LeNet on MNIST, and the eye-data networks
    "seed_lenet_mnist": dict(**MOMENTUM, data="mnist", lr=0.001, batch_size=10, epochs=5,
                             loss="cross_entropy", mean=[0.5], std=[0.5], **NO_AUGMENT),
    "seed_lenet_eye": dict(PADDLE_EYE, **NO_AUGMENT),
    "seed_alexnet": dict(PADDLE_EYE, **NO_AUGMENT),
    "seed_vgg16": dict(PADDLE_EYE, **NO_AUGMENT),
    "seed_googlenet": dict(PADDLE_EYE, **NO_AUGMENT),
    "seed_resnet50": dict(PADDLE_EYE, **NO_AUGMENT),
    # the Paddle ResNet chapter: ResNet-50 on CIFAR-10, top-1 and top-5
    "seed_resnet50@cifar10": dict(**MOMENTUM, data="cifar10", lr=0.01, weight_decay=1e-4, decay_all=True,
                                  batch_size=64, epochs=50, loss="cross_entropy", normalize=False,
                                  metrics=["top1", "top5"], resize=False, **NO_AUGMENT),
    # TensorFlow 2 notes
    "seed_lenet5_tf": dict(KERAS_ADAM, data="mnist", lr=1e-4, batch_size=128, epochs=20, **NO_AUGMENT),
    "seed_lenet5_tf_bn": dict(KERAS_ADAM, data="mnist", lr=1e-4, batch_size=128, epochs=20),
    "seed_vgg13_cifar": dict(KERAS_ADAM, data="cifar10", lr=1e-4, batch_size=128, epochs=50, **NO_AUGMENT),
    "seed_resnet18_cifar": dict(KERAS_ADAM, data="cifar100", lr=1e-3, batch_size=256, epochs=50, **NO_AUGMENT),
    # PyTorch course text
    "seed_food11": dict(optimizer="adam", eps=1e-8, lr=1e-3, batch_size=128, epochs=100, loss="cross_entropy",
                        flip=True, vflip=False, rotate=15.0, crop=0, normalize=False, resize=True, data=None,
                        labels={f"{i}_": i for i in range(11)}),
    # Python DL ch.4: the PyTorch CIFAR-10 CNN and its Keras twin
    "seed_cifar10_cnn": dict(optimizer="adam", eps=1e-8, lr=1e-3, batch_size=50, val_batch_size=100, epochs=50,
                             loss="cross_entropy", from_logits=True, flip=True, vflip=True, rotate=0.0, crop=0,
                             normalize=True, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                             data="cifar10"),
    "examples/cifar10_cnn_keras.yaml": dict(optimizer="adam", eps=1e-7, lr=1e-3, batch_size=50, epochs=100,
                                            loss="cross_entropy", from_logits=False, flip=True, vflip=True,
                                            normalize=True, mean=None, std=None, data="cifar10"),
}


def load(name: str):
    if "@" in name:
        name, variant = name.split("@")
        return archc.load(name, variant=variant)
    return archc.load(str(ROOT / name) if name.endswith(".yaml") else name)


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_textbook_recipe_parses_into_its_texts_configuration(name):
    cfg = make_config(load(name).train)
    got = {k: getattr(cfg, k) for k in RECIPES[name]}
    assert got == RECIPES[name]


def test_every_textbook_spec_but_the_exercise_carries_a_recipe():
    from archc.spec import zoo
    textbook = {e.name for e in zoo.entries() if "textbook" in str(e.spec)}
    shared = {"seed_resnet101", "seed_resnet152", "seed_resnet34_cifar"}   # their spec's recipe
    assert textbook - {n.split("@")[0] for n in RECIPES} == shared | {"seed_simplenet"}
    for name in textbook - {"seed_simplenet"}:      # an exercise: its text trains it nowhere
        assert archc.load(name).train, name
    assert archc.load("seed_simplenet").train == {}


def test_a_variant_replaces_the_specs_train_keys():
    base, eye = archc.load("seed_lenet_mnist"), archc.load("seed_lenet_eye")
    assert base.train["loss"] == "cross_entropy" and base.train["data"] == "mnist"
    assert eye.train["loss"] == "bce" and eye.train["data"] is None and eye.train["lr"] == 0.001


def test_imagenet_constants_on_another_data_set_are_warned_about():
    cfg = make_config(archc.load("seed_cifar10_cnn").train)
    data = open_data("synthetic:8", input_shape=(3, 32, 32))
    (said,) = notes(cfg, data)
    assert "ImageNet's constants" in said and "synthetic:8" in said
    assert notes(make_config({}), data) == []


def test_vertical_flip_and_top5():
    torch.manual_seed(0)
    x = torch.arange(16.).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = Augment(vflip=True)(x)
    flipped = (out == x.flip(-2)).flatten(1).all(1)
    assert 10 < int(flipped.sum()) < 54 and bool(((out == x).flatten(1).all(1) | flipped).all())
    from archc.train.runner import Runner
    cfg = make_config({"metrics": ["top1", "top5"]}, device="cpu")
    run = Runner(torch.nn.Identity(), cfg, torch.device("cpu"), torch.zeros(1), torch.ones(1))
    logits = torch.tensor([[9., 8, 7, 6, 5, 4, 0], [0, 1, 2, 3, 4, 5, 9]])
    _, top1, top5 = run.score(run.eval_fwd, logits, torch.tensor([4, 4]), True)
    assert (int(top1), int(top5)) == (0, 2)
    _, top1, top5 = run.score(run.eval_fwd, logits, torch.tensor([0, 1]), True)
    assert (int(top1), int(top5)) == (1, 1)


def test_probabilities_take_keras_cross_entropy():
    from archc.train.runner import Runner
    cfg = make_config({"loss": {"name": "cross_entropy", "from_logits": False}}, device="cpu")
    run = Runner(torch.nn.Identity(), cfg, torch.device("cpu"), torch.zeros(1), torch.ones(1))
    logits = torch.randn(5, 10)
    y = torch.arange(5)
    assert run.loss(logits.softmax(1), y) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)


def test_file_name_labels_from_the_recipe(tmp_path):
    from PIL import Image
    for name in ("0_1.png", "3_7.png", "10_2.png", "10_5.png"):
        Image.new("RGB", (9, 5)).save(tmp_path / name)
    cfg = make_config(archc.load("seed_food11").train)
    data = open_data(f"files:{tmp_path}", rule=cfg.labels, val_fraction=0, size=(4, 4))
    assert sorted(label for _, label in data.train.samples) == [0, 3, 10, 10] and data.num_classes == 11
    assert data.train[0][0].shape == (3, 4, 4)
