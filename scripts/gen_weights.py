"""Write archc/zoo/weights.json: the published pretrained weights of every zoo entry whose
reference is a torchvision or timm model (file URL, checksum where one is published), read from
the libraries' own source without importing them.

    pip download --no-deps torchvision==0.28.0 timm==1.0.31 -d /tmp/w
    cd /tmp/w && python -m zipfile -e torchvision-*.whl tv && python -m zipfile -e timm-*.whl timm
    python scripts/gen_weights.py --torchvision /tmp/w/tv/torchvision --timm /tmp/w/timm/timm

torchvision (models/, models/segmentation/, models/video/): each builder's
`weights: Optional[X_Weights]` names its enum; each enum member's
`Weights(url=...)` is the file, whose name ends in the first hex digits of its sha256 (torch.hub's
check_hash convention, which torchvision's builders turn on). timm: each model's
`default_cfgs`; tags with `hf_hub_id` load from the Hugging Face hub (no checksum published);
the first tag is timm's default. Entries without a `reference:` are included when their name is a
torchvision builder and their state_dict equals that builder's fixture (../shared/reference)."""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archc  # noqa: E402
from archc.spec import zoo  # noqa: E402

# How torchvision's builders adapt a published file to the model (read from their source).
ADAPT = {
    "densenet": {"rename": [[r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
                             r"\1\2"]],
                 "note": "old-style keys (norm.1 -> norm1) renamed as torchvision's densenet._load_state_dict does"},
    "googlenet": {"drop": ["aux1.", "aux2."],
                  "note": "torchvision builds these weights with transform_input=True: feed images normalised "
                          "with mean 0.5 and std 0.5 per channel (what transform_input turns ImageNet "
                          "normalisation into); the file's auxiliary heads are dropped, as torchvision does "
                          "when aux_logits=False"},
    "googlenet_aux": {"note": "torchvision builds these weights with transform_input=True: feed images "
                              "normalised with mean 0.5 and std 0.5 per channel; its auxiliary heads are "
                              "not pretrained (torchvision warns the same)"},
    "inception_v3": {"drop": ["AuxLogits."],
                     "note": "torchvision builds these weights with transform_input=True: feed images normalised "
                             "with mean 0.5 and std 0.5 per channel; the file's auxiliary head is dropped, as "
                             "torchvision does when aux_logits=False"},
    "inception_v3_aux": {"note": "torchvision builds these weights with transform_input=True: feed images "
                                 "normalised with mean 0.5 and std 0.5 per channel"},
    "fcn_resnet50": {"drop": ["aux_classifier."],
                     "note": "trained on a COCO subset with the 20 VOC categories (21 classes with the "
                             "background); the file's auxiliary head is dropped, as the spec has none"},
    "fcn_resnet101": {"drop": ["aux_classifier."],
                      "note": "trained on a COCO subset with the 20 VOC categories (21 classes with the "
                              "background); the file's auxiliary head is dropped, as the spec has none"},
}
for _name in ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large"):   # as FCN's
    ADAPT[_name] = ADAPT["fcn_resnet50"]


# Published files that do not load into the zoo entry as they are (nor into torchvision's current
# class without its patching hook): left out, so that `--init-from torchvision` says none is published.
NOT_LOADABLE = {
    "mnasnet0_5": "the 2019 file has MNASNet's v1 layout (a fixed 32-channel stem); torchvision rebuilds "
                  "the stem when it loads it (MNASNet._load_from_state_dict), which a spec does not do",
}


def literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def torchvision_weights(src: Path) -> dict[str, dict]:
    """builder name -> {'enum', 'default', 'weights': {member: {url, sha256, params}}}."""
    enums: dict[str, dict] = {}
    builders: dict[str, str] = {}
    files = [f for sub in ("", "segmentation", "video") for f in sorted((src / "models" / sub).glob("*.py"))]
    for f in files:
        tree = ast.parse(f.read_text())
        # module-level dict literals, for `meta={**_COMMON_META, ...}`
        shared = {a.targets[0].id: a.value for a in tree.body if isinstance(a, ast.Assign)
                  and isinstance(a.targets[0], ast.Name) and isinstance(a.value, ast.Dict)}
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "WeightsEnum" for b in node.bases):
                members, default = {}, None
                for a in node.body:
                    if not (isinstance(a, ast.Assign) and isinstance(a.targets[0], ast.Name)):
                        continue
                    name = a.targets[0].id
                    if isinstance(a.value, ast.Name):
                        default = a.value.id
                    elif isinstance(a.value, ast.Call):
                        kw = {k.arg: k.value for k in a.value.keywords}
                        meta = {}
                        for k, v in zip(kw["meta"].keys, kw["meta"].values):
                            spread = shared.get(getattr(v, "id", None)) if k is None else None
                            pairs = zip(spread.keys, spread.values) if spread else [(k, v)] if k else []
                            meta.update({literal(a): literal(b) for a, b in pairs if a is not None})
                        url = literal(kw["url"])
                        members[name] = {"url": url, "sha256": hash_prefix(url),
                                         "params": meta.get("num_params"), "size_mb": meta.get("_file_size")}
                        crop = crop_size(kw.get("transforms"))
                        if crop is not None:    # the eval size, where a network's weights follow it (ViT)
                            members[name]["crop_size"] = crop
                enums[node.name] = {"enum": node.name, "default": default, "weights": members,
                                    "source": f"torchvision/{f.relative_to(src).as_posix()}"}
            if isinstance(node, ast.FunctionDef):
                for a in node.args.kwonlyargs:
                    ann = a.annotation
                    if a.arg == "weights" and isinstance(ann, ast.Subscript) and isinstance(ann.slice, ast.Name):
                        builders[node.name] = ann.slice.id
    return {b: enums[e] for b, e in builders.items() if e in enums}


def crop_size(transforms) -> int | None:
    """`transforms=partial(ImageClassification, crop_size=384, ...)` -> 384."""
    if isinstance(transforms, ast.Call):
        for k in transforms.keywords:
            if k.arg == "crop_size" and isinstance(literal(k.value), int):
                return literal(k.value)
    return None


def hash_prefix(url: str) -> str:
    m = re.search(r"-([a-f0-9]+)\.", url.rsplit("/", 1)[-1])
    assert m, url
    return m.group(1)


def timm_weights(src: Path, model: str) -> dict:
    """{'default': tag, 'weights': {tag: {url, sha256: None}}, 'source'} of one timm model."""
    for f in sorted((src / "models").glob("*.py")):
        text = f.read_text()
        if f"'{model}." not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "generate_default_cfgs"):
                continue
            tags = {}
            for k, v in zip(node.args[0].keys, node.args[0].values):
                key = literal(k)
                if not (isinstance(key, str) and key.startswith(model + ".")):
                    continue
                cfg = ({literal(a): literal(b) for a, b in zip(v.keys, v.values)} if isinstance(v, ast.Dict)
                       else {kw.arg: literal(kw.value) for kw in v.keywords} | (
                           {"url": literal(v.args[0])} if v.args else {}))
                tag = key.split(".", 1)[1]
                if cfg.get("hf_hub_id") == "timm/":
                    tags[tag] = {"url": f"https://huggingface.co/timm/{key}/resolve/main/pytorch_model.bin",
                                 "file": f"timm-{key}-pytorch_model.bin", "sha256": None}
                elif cfg.get("url"):
                    tags[tag] = {"url": cfg["url"], "sha256": None}
            if tags:
                return {"default": next(iter(tags)), "weights": tags, "source": f"timm/models/{f.name}"}
    raise SystemExit(f"no default_cfgs for timm model {model}")


def fixture_matches(name: str) -> bool:
    for base in (ROOT / "tests/reference/models", ROOT.parent.parent / "shared/reference/models",
                 Path("/work/shared/reference/models")):
        f = base / f"{name}.json"
        if f.exists():
            d = json.loads(f.read_text())
            ours = {k: list(v) for k, v in archc.load(name).state_dict_shapes().items()}
            return list(ours.items()) == [(k, list(v)) for k, v in d["state_dict"]]
    return False


def build(tv_src: Path, timm_src: Path) -> dict:
    tv = torchvision_weights(tv_src)
    refs = zoo.references()
    out = {}
    for e in zoo.entries():
        source = refs.get(e.reference, {}).get("source", "") if e.reference else ""
        library, _, call = source.partition(" ")
        builder = call.split(": ", 1)[-1].split("(")[0] if call else None
        if library == "torchvision" and builder in tv:
            row = {"library": "torchvision", "builder": builder, **tv[builder]}
        elif library == "timm":
            row = {"library": "timm", "builder": builder, **timm_weights(timm_src, builder)}
        elif not e.reference and e.name in tv and fixture_matches(e.name):
            row = {"library": "torchvision", "builder": e.name, **tv[e.name]}
        else:
            continue
        if e.name in NOT_LOADABLE:
            continue
        adapt = ADAPT.get(e.name) or ADAPT.get("densenet" if e.name.startswith("densenet") else "") or {}
        out[e.name] = {**row, **adapt}
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--torchvision", type=Path, required=True, help="the torchvision package folder (source)")
    ap.add_argument("--timm", type=Path, required=True, help="the timm package folder (source)")
    a = ap.parse_args()
    table = build(a.torchvision, a.timm)
    doc = {"_about": "Published pretrained weights of the zoo entries, by entry name: generated by "
                     "scripts/gen_weights.py from the source of torchvision 0.28.0 (models/*.py Weights "
                     "enums) and timm 1.0.31 (models/*.py default_cfgs). sha256: the first hex digits "
                     "of the file's sha256 as its name carries them (torch.hub's convention); null where "
                     "none is published.",
           "entries": table}
    (ROOT / "archc/zoo/weights.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(table)} entries: {', '.join(table)}")
