"""Fine-tuning end to end, as docs/training.md shows it: a zoo ResNet-18 at 3x32x32 started from a
checkpoint the test makes, a new 5-class head, the stem frozen, trained on an image folder of
coloured shapes the test draws (examples/shapes.py); then resumed, evaluated with a confusion
matrix, and asked what is in its images (archc predict). Also: --init-from by name from a local
server, unexpected keys, freezing rules (frozen BatchNorm untouched, --unfreeze-at, resume
bit-exact), --lr-scale, and archc summary --freeze."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

import archc
from test_cli import cli_in

TESTS = Path(__file__).parent
SMALL = TESTS / "specs" / "resnet_small.yaml"         # BN everywhere; @tiny is 3x16x16, 5 classes
SHAPES = TESTS.parent / "examples" / "shapes.py"
FAST = ["--device", "cpu", "-q"]


def shapes_module():
    spec = importlib.util.spec_from_file_location("shapes", SHAPES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """The documented example: ResNet-18 from a 1000-class checkpoint, fine-tuned on shapes."""
    root = tmp_path_factory.mktemp("ft")
    shapes_module().make_shapes(root / "shapes", per_class=40, test_per_class=16, size=32)
    torch.manual_seed(1)
    torch.save(archc.load("resnet18", input="3x32x32").to_module().state_dict(), root / "r18.pt")
    mp = pytest.MonkeyPatch()
    cli = cli_in(mp, root, expect=None)
    r = cli("train", "resnet18", "--input", "3x32x32", "--set", "num_classes=5", "--init-from", "r18.pt",
            "--freeze", "conv1,bn1", "--data", "imagefolder:shapes", "--epochs", "2", "--batch-size", "20",
            "--optimizer", "adam", "--lr", "0.001", "--device", "cpu", "--out", "runs/shapes")
    yield root, cli, r
    mp.undo()


def test_finetuning_a_zoo_resnet18_on_shapes_reaches_well_above_chance(finetuned):
    root, _, r = finetuned
    out = root / "runs" / "shapes"
    assert r.exit_code == 0, r.output
    assert "r18.pt: loaded 120 of 122 tensors" in r.output and "fc.weight: checkpoint [1000, 512] vs model [5, 512]" in r.output
    assert "frozen: 9,536 of 11,179,077 parameters (conv1, bn1)" in r.output
    final = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["split"] == "test" and final["samples"] == 80
    assert final["test_acc"] >= 0.8, final              # chance is 0.2
    run = json.loads((out / "run.json").read_text())
    assert run["classes"] == ["circle", "cross", "ring", "square", "triangle"]
    start = run["init_from"]
    assert start["weights"] == str(root / "r18.pt") and start["loaded"] == 120
    assert start["kept"] == ["fc.weight", "fc.bias"] and start["sha256"].startswith("sha256:")
    before, after = torch.load(root / "r18.pt", weights_only=True), weights(out / "last.pt")
    for k in ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
              "bn1.num_batches_tracked"):                # the frozen stem, BN statistics included
        assert torch.equal(before[k], after[k]), k
    for k in ("layer1.0.conv1.weight", "layer1.0.bn1.running_mean", "layer4.1.conv2.weight"):
        assert not torch.equal(before[k], after[k]), k     # the rest trained from the checkpoint
    assert after["fc.weight"].shape == (5, 512)


def test_resuming_the_finetuning_run_keeps_its_start_and_its_freezing(finetuned):
    root, cli, _ = finetuned
    shutil.copytree(root / "runs" / "shapes", root / "runs" / "again")
    r = cli("train", "--resume", "runs/again", "--epochs", "3", "--batch-size", "20")
    assert r.exit_code == 0, r.output
    assert "loaded" not in r.output and "resuming from runs/again at epoch 3" in r.output
    assert "frozen: 9,536 of 11,179,077 parameters" in r.output
    before, after = weights(root / "runs" / "shapes" / "last.pt"), weights(root / "runs" / "again" / "last.pt")
    assert torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    run = json.loads((root / "runs" / "again" / "run.json").read_text())
    assert run["init_from"]["weights"] == str(root / "r18.pt")         # kept, not applied again
    r = cli("train", "--resume", "runs/again", "--epochs", "4", "--init-from", "r18.pt")
    assert r.exit_code == 2 and "--init-from starts a new run" in r.output
    r = cli("train", "--resume", "runs/again", "--epochs", "4", "--freeze", "layer1")
    assert r.exit_code == 2 and "--freeze layer1 says otherwise than the run's conv1,bn1" in r.output
    r = cli("train", "--resume", "runs/again", "--epochs", "4", "--lr-scale", "fc=2", "--override")
    assert r.exit_code == 2 and "the factors shape the optimizer's state" in r.output


def test_eval_confusion_prints_per_class_accuracy_and_draws_the_matrix(finetuned):
    root, cli, _ = finetuned
    final = json.loads((root / "runs" / "shapes" / "metrics.jsonl").read_text().splitlines()[-1])
    r = cli("eval", "--run", "runs/shapes", "--split", "test", "--confusion")
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[2:]}
    assert sorted(rows) == ["circle", "cross", "ring", "square", "triangle"]
    assert sum(int(v[1]) for v in rows.values()) == round(final["test_acc"] * 80)
    assert all(v[0] == "16" for v in rows.values())
    assert (root / "confusion-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = cli("eval", "--run", "runs/shapes", "--split", "test", "--confusion", "cm.png", "--format", "json")
    got = json.loads(r.stdout)
    assert sum(map(sum, got["confusion"])) == 80 and [c["class"] for c in got["per_class"]][0] == "circle"
    assert (root / "cm.png").is_file()
    r = cli("eval", "--run", "runs/shapes", "--confusion", "cm.txt")
    assert r.exit_code == 2 and "--confusion writes a PNG" in r.output


def test_predict_names_the_shapes_with_the_runs_size_and_normalisation(finetuned):
    root, cli, _ = finetuned
    folder = root / "shapes" / "test" / "ring"
    (folder / "README.txt").write_text("not an image")
    try:
        r = cli("predict", "--run", "runs/shapes", str(folder), "--top-k", "2")
    finally:
        (folder / "README.txt").unlink()
    assert r.exit_code == 0, r.output
    assert "skipped 1 file that is not an image by extension (README.txt)" in r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 16 and all(len(line.split()) == 5 for line in lines)
    scored = json.loads(cli("eval", "--run", "runs/shapes", "--split", "test", "--confusion", "cm-ring.png",
                            "--format", "json").stdout)
    ring = next(c for c in scored["per_class"] if c["class"] == "ring")
    assert sum(line.split()[1] == "ring" for line in lines) == ring["correct"]      # as eval counts them
    # the probabilities are the module's softmax on the image, normalised as run.json says
    image = folder / "ring_0003.png"
    got = json.loads(cli("predict", "--run", "runs/shapes", image, "--format", "json", "--top-k", "5").stdout)
    run = json.loads((root / "runs" / "shapes" / "run.json").read_text())
    from PIL import Image
    import numpy as np
    x = torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor(run["normalize"]["mean"]).view(3, 1, 1)) / torch.tensor(run["normalize"]["std"]).view(3, 1, 1)
    net = archc.load("resnet18", input="3x32x32", num_classes=5)
    model = net.to_module(weights=str(root / "runs" / "shapes" / "best.pt")).eval()
    want = torch.softmax(model(x[None]), 1)[0]
    assert {t["class"]: t["prob"] for t in got[0]["top"]} == pytest.approx(
        dict(zip(run["classes"], want.tolist())), abs=1e-5)


def test_predict_refuses_bad_images_and_paths_with_located_errors(finetuned):
    root, cli, _ = finetuned
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for arg, says in (("broken.png", "broken.png: cannot read it as an image"),
                      ("missing.png", "missing.png: no such file or directory"),
                      ("runs", "runs: no images in this folder")):
        r = cli("predict", "--run", "runs/shapes", arg)
        assert r.exit_code == 2 and says in r.stderr and "Traceback" not in r.output, r.output
    r = cli("predict", "--run", "runs/shapes", "shapes/test/ring", "--mean", "0.5")
    assert r.exit_code == 2 and "--mean 0.5 says otherwise than the run's mean" in r.stderr


def test_predict_with_weights_alone_says_what_it_assumes(finetuned):
    root, cli, _ = finetuned
    image = "shapes/test/cross/cross_0000.png"
    r = cli("predict", "resnet18", "--input", "3x32x32", "--set", "num_classes=5", "--weights",
            "runs/shapes/best.pt", image, "--top-k", "1")
    assert r.exit_code == 0, r.output
    assert "normalised as the checkpoint's run was" in r.stderr and "classes shown by index" in r.stderr
    assert r.stdout.split()[1] == "1"                 # cross is class 1, named by index
    sd = root / "bare.pt"
    torch.save(weights(root / "runs" / "shapes" / "best.pt"), sd)
    r = cli("predict", "resnet18", "--input", "3x32x32", "--set", "num_classes=5", "--weights", "bare.pt", image)
    assert r.exit_code == 0 and "not normalised: bare.pt says nothing of how its inputs were scaled" in r.stderr
    r = cli("predict", "resnet18", "--input", "3x32x32", "--set", "num_classes=5", "--weights", sd, image,
            "--mean", "0.2,0.2", "--std", "0.3")
    assert r.exit_code == 2 and "2 mean values for an input of 3 channels" in r.stderr
    r = cli("predict", "resnet18", image)
    assert r.exit_code == 2 and "predict needs --run DIR, or SPEC with --weights FILE" in r.stderr


def test_predict_on_a_one_logit_head_gives_the_probability_of_class_1(tmp_path, monkeypatch):
    spec = tmp_path / "bin.yaml"
    spec.write_text((TESTS / "specs" / "plain_cnn.yaml").read_text().replace("num_classes: 10", "num_classes: 1")
                    + "train: {loss: bce}\n")
    cli = cli_in(monkeypatch, tmp_path, expect=0)
    cli("train", spec, "--data", "synthetic:48", "--epochs", "1", "--batch-size", "16", "--out", "b", *FAST)
    from PIL import Image
    Image.new("L", (8, 8), 200).save(tmp_path / "a.png")
    Image.new("L", (16, 16), 10).save(tmp_path / "big.png")
    r = cli("predict", "--run", "b", "a.png", "big.png", "--format", "json")
    got = json.loads(r.stdout)
    assert [g["of"] for g in got] == ["1", "1"] and all(0 < g["probability"] < 1 for g in got)
    assert all(g["predicted"] == ("1" if g["probability"] > 0.5 else "0") for g in got)
    assert "1 of 2 images resized to 8x8" in r.stderr
    r = cli("predict", "--run", "b", "a.png")
    assert r.stdout.startswith(f"a.png  P(1) {got[0]['probability']:.4f}  -> ")


# -- starting points -------------------------------------------------------------------------------
def test_init_from_by_name_downloads_from_the_mirror_and_is_recorded(published, tmp_path, monkeypatch):
    row, path, data, _ = published
    cli = cli_in(monkeypatch, tmp_path, expect=0)
    r = cli("train", "lenet5", "--init-from", "torchvision", "--data", "synthetic:48", "--set", "num_classes=4",
            "--epochs", "1", "--batch-size", "16", "--out", "l", "--device", "cpu")
    assert "downloading" in r.output and "loaded 8 of 10 tensors" in r.output
    run = json.loads((tmp_path / "l" / "run.json").read_text())
    assert run["init_from"]["weights"] == "torchvision" and run["init_from"]["file"] == str(path)
    assert run["init_from"]["kept"] == ["linear3.weight", "linear3.bias"]
    assert run["init_from"]["sha256"].startswith("sha256:" + row["weights"]["V1"]["sha256"])


def test_unexpected_keys_are_an_error_unless_ignored(tmp_path, monkeypatch):
    net = archc.load(str(SMALL), variant="tiny")
    state = {**net.to_module().state_dict(), "extra.weight": torch.zeros(3)}
    torch.save(state, tmp_path / "w.pt")
    cli = cli_in(monkeypatch, tmp_path, expect=None)
    args = ["train", SMALL, "--variant", "tiny", "--data", "synthetic:40", "--epochs", "1", "--batch-size", "20",
            "--init-from", "w.pt", *FAST]
    r = cli(*args, "--out", "a")
    assert r.exit_code == 2 and "unexpected (1): extra.weight" in r.output and "--ignore-unexpected" in r.output
    assert not (tmp_path / "a").exists()                # refused before the run's directory is made
    r = cli(*args, "--out", "b", "--ignore-unexpected")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "run.json").read_text())["init_from"]["ignored"] == ["extra.weight"]
    r = cli(*args[:-len(FAST) - 2], "--out", "c", "--init-from", "nothere.pt", *FAST)
    assert r.exit_code == 2 and "--init-from nothere.pt: no such file" in r.output


# from test_pretrained: the local server and a generated "published" lenet5 file
from test_pretrained import published, server  # noqa: E402,F401
