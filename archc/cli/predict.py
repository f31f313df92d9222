"""predict: class probabilities of images under a run's weights, or any weights."""
from __future__ import annotations

import json
from pathlib import Path

import click

from archc.cli import main
from archc.cli.common import compile_spec, handle_errors, needs_training, spec_options
from archc.errors import SpecError

SPEC_SUFFIXES = (".yaml", ".yml", ".toml")


def _spec_and_images(args: tuple[str, ...], run_dir) -> tuple[str | None, list[str]]:
    """SPEC IMAGE...: with --run, SPEC may be left out; a first argument is SPEC when it reads as
    one (a .yaml/.yml/.toml file, or a zoo name that is no file here)."""
    if not args:
        return None, []
    if run_dir is None:
        return args[0], list(args[1:])
    first = Path(args[0])
    if first.suffix.lower() in SPEC_SUFFIXES or (not first.exists() and _is_zoo_name(args[0])):
        return args[0], list(args[1:])
    return None, list(args)


def _is_zoo_name(name: str) -> bool:
    from archc.spec import zoo
    return zoo.find(name) is not None


@main.command()
@click.argument("args", nargs=-1, metavar="[SPEC] IMAGE...")
@spec_options
@click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True),
              help="A run's directory: its spec, input size, normalisation and class names (run.json), its best.pt.")
@click.option("--weights", metavar="FILE|torchvision[:NAME]|timm[:TAG]",
              help="Weights to use (default with --run: its best.pt); without --run, SPEC and these are needed.")
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes shown per image, most probable first.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--mean", metavar="M[,M...]", help="Without --run: normalise with this mean per channel (on [0, 1] pixels).")
@click.option("--std", metavar="S[,S...]", help="Without --run: normalise with this std per channel.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--override", is_flag=True, help="With --run: let SPEC, --set, --input, --mean/--std differ from the run's.")
@handle_errors
@needs_training
def predict(args, variant, sets, input_, run_dir, weights, top_k, fmt, mean, std, device, override):
    """Class probabilities of images (files, or folders of them): `--run DIR IMAGE...`, or
    `SPEC --weights FILE IMAGE...`. A 1-logit head gives the probability of class 1.

    Images are resized to the network's input H x W and normalised as the run was trained
    (run.json); with --weights alone, as the checkpoint says, as --mean/--std say, or not at all
    (ImageNet's statistics for torchvision/timm weights), and the command says which."""
    from archc.train.dist import Place, device_for
    from archc.train.predict import find_images, probabilities, top
    say = lambda line: click.echo(line, err=True)       # noqa: E731
    spec, images = _spec_and_images(args, run_dir)
    if run_dir is None and (spec is None or weights is None):
        raise SpecError("predict needs --run DIR, or SPEC with --weights FILE; then IMAGE... (files or folders)")
    found = find_images(images)
    if found.skipped:
        names = ", ".join(p.name for p in found.skipped[:3]) + (", ..." if len(found.skipped) > 3 else "")
        one = len(found.skipped) == 1
        say(f"note: skipped {len(found.skipped)} file{'' if one else 's'} that {'is not an image' if one else 'are not images'} "
            f"by extension ({names})")
    if run_dir is not None:
        net, model, norm, classes = _from_run(run_dir, spec, variant, sets, input_, weights, mean, std,
                                              override, say)
    else:
        net, model, norm, classes = _from_weights(spec, variant, sets, input_, weights, mean, std, say)
    dev = device_for(Place(), device)
    model = model.to(dev)
    results = []
    for path, probs in probabilities(model, found.images, net.input, *(norm or (None, None)), dev, say=say):
        if probs.numel() == 1:
            p = float(probs[0])
            results.append({"image": str(path), "probability": p, "of": classes[1],
                            "predicted": classes[int(p > 0.5)]})
        else:
            results.append({"image": str(path), "top": top(probs, classes, top_k)})
    if fmt == "json":
        click.echo(json.dumps(results, indent=1))
        return
    for r in results:
        if "top" in r:
            click.echo(f"{r['image']}  " + "  ".join(f"{t['class']} {t['prob']:.4f}" for t in r["top"]))
        else:
            click.echo(f"{r['image']}  P({r['of']}) {r['probability']:.4f}  -> {r['predicted']}")


def _class_names(classes, k: int) -> list[str]:
    k = max(k, 2)
    return [str(c) for c in classes] if classes and len(classes) == k else [str(i) for i in range(k)]


def _from_run(run_dir, spec, variant, sets, input_, weights, mean, std, override, say):
    """The run's network with its weights (best.pt unless --weights), normalisation and classes."""
    from archc.cli.training import _from_run as run_of
    run, net, _, _ = run_of(run_dir, spec, variant, sets, input_, None, override, {"mean": mean, "std": std})
    norm = run["normalize"]
    if override and (mean or std):
        norm = _given(mean, std, norm)
    weights = weights or str(Path(run_dir) / "best.pt")
    model = _load(net, weights, say)
    k = int(net.output_shapes[0][0]) if len(net.output_shapes[0]) == 1 else 0
    return net, model, (norm["mean"], norm["std"]) if norm else None, _class_names(run.get("classes"), k)


def _from_weights(spec, variant, sets, input_, weights, mean, std, say):
    """SPEC with --weights: normalisation from the checkpoint, else --mean/--std, else (named
    weights) ImageNet's, else none; each choice said."""
    from archc.emit.pretrained import is_named
    from archc.emit.weights import read_weights
    net = compile_spec(spec, variant, sets, input_)
    model = _load(net, weights, say)
    k = int(net.output_shapes[0][0]) if len(net.output_shapes[0]) == 1 else 0
    saved = None if is_named(weights) else read_weights(weights)
    c, h, w = (list(net.input) + [None] * 3)[:3]
    if mean or std:
        norm = _given(mean, std, None)
        said = f"normalised with --mean {mean} --std {std}"
    elif isinstance(saved, dict) and isinstance(saved.get("normalize"), dict) and "config" in saved:
        norm = {k_: [float(v) for v in saved["normalize"][k_].flatten()] for k_ in ("mean", "std")} \
            if saved["config"].get("normalize", True) else None
        said = "normalised as the checkpoint's run was" if norm else "not normalised (the checkpoint's run was not)"
    elif is_named(weights):
        from archc.train.loop import IMAGENET
        norm = {"mean": list(IMAGENET[0]), "std": list(IMAGENET[1])}
        said = "normalised with ImageNet's mean and std (what the published weights were trained with)"
    else:
        norm = None
        said = (f"not normalised: {weights} says nothing of how its inputs were scaled, so pixels are taken "
                f"in [0, 1]; give --mean/--std as the network was trained (or use --run DIR)")
    say(f"note: images taken at {h}x{w} (resized where they differ), {said}; classes shown by index (class names come with --run DIR)")
    return net, model, (norm["mean"], norm["std"]) if norm else None, _class_names(None, k)


def _given(mean, std, norm):
    parse = lambda v: [float(t) for t in str(v).split(",") if t.strip()]    # noqa: E731
    try:
        return {"mean": parse(mean) if mean else (norm or {}).get("mean", [0.0]),
                "std": parse(std) if std else (norm or {}).get("std", [1.0])}
    except ValueError:
        raise SpecError(f"--mean/--std take numbers, one or one a channel: '{mean}', '{std}'") from None


def _load(net, weights, say):
    """The emitted module with `weights` loaded strictly."""
    from archc.emit.pretrained import load_named_or_file, preflight
    from archc.emit.pytorch import build_module
    if not weights:
        raise SpecError("predict needs weights: --run DIR (its best.pt) or --weights FILE")
    if not Path(weights).exists() and not _named(weights):
        raise SpecError(f"--weights {weights}: no such file")
    preflight(net, weights)
    model = build_module(net)
    load_named_or_file(model, net, weights, strict=True, say=say)
    return model


def _named(weights) -> bool:
    from archc.emit.pretrained import is_named
    return is_named(weights)
