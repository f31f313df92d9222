"""Weights by key and by name: a non-strict load keeps a new head's initialisation and lists it;
unexpected keys are an error unless ignored; `torchvision[:NAME]` / `timm[:TAG]` resolve the
published file and checksum and download it into torch's hub cache. The downloads come from a
local HTTP server on 127.0.0.1 (ARCHC_WEIGHTS_MIRROR); no test reaches the internet. A wrong
checksum, a truncated and an interrupted download leave nothing in the cache."""
from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import archc
from archc.emit import pretrained
from archc.errors import Unavailable
from reference_util import deterministic_
from test_cli import cli_in

SPECS = Path(__file__).parent / "specs"


def lenet_state(num_classes=10):
    return deterministic_(archc.load("lenet5", num_classes=num_classes).to_module()).state_dict()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "lenet5.pth"
    torch.save(lenet_state(), path)
    return path


def fresh(num_classes, seed=0):
    torch.manual_seed(seed)
    return archc.load("lenet5", num_classes=num_classes).to_module().state_dict()


# -- by key --------------------------------------------------------------------------------------

def test_a_new_head_keeps_its_initialisation(checkpoint):
    saved = torch.load(checkpoint, weights_only=True)
    torch.manual_seed(0)
    with pytest.warns(archc.WeightsWarning, match="keep their initialisation") as w:
        model = archc.load("lenet5", num_classes=5).to_module(weights=checkpoint, strict=False)
    init = fresh(5)
    head = [k for k, v in init.items() if v.shape != saved[k].shape]
    assert head == ["linear3.weight", "linear3.bias"]
    assert "linear3.weight: checkpoint [10, 84] vs model [5, 84]" in str(w[0].message)
    report = model.archc_weights
    assert report.kept == head and len(report.loaded) == len(init) - 2
    for k, v in model.state_dict().items():
        assert torch.equal(v, init[k] if k in head else saved[k]), k
    with pytest.raises(archc.SpecError, match=r"mis-shaped \(2\): linear3.weight"):
        archc.load("lenet5", num_classes=5).to_module(weights=checkpoint)      # strict by default


def test_missing_and_unexpected_keys(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state.pop("conv1.bias")
    state["extra.weight"] = torch.zeros(2)
    odd = tmp_path / "odd.pth"
    torch.save(state, odd)
    net = archc.load("lenet5")
    with pytest.raises(archc.SpecError) as e:
        net.to_module(weights=odd, strict=False)
    assert "unexpected (1): extra.weight" in str(e.value) and "ignore_unexpected=True" in str(e.value)
    with pytest.warns(archc.WeightsWarning, match="missing from the file"):
        model = net.to_module(weights=odd, strict=False, ignore_unexpected=True)
    assert model.archc_weights.missing == ["conv1.bias"] and model.archc_weights.ignored == ["extra.weight"]
    torch.save({"other.weight": torch.zeros(3)}, odd)
    with pytest.raises(archc.SpecError, match="no tensor of the checkpoint fits"):
        net.to_module(weights=odd, strict=False, ignore_unexpected=True)


def test_old_checkpoints_without_batchnorm_counters_load_strictly(tmp_path):
    net = archc.load(SPECS / "resnet_small.yaml")
    state = {k: v for k, v in deterministic_(net.to_module()).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = net.to_module(weights=path)
    assert model.archc_weights.counters > 0 and "before PyTorch 0.4.1" in str(model.archc_weights)


def test_build_no_strict_lists_the_kept_tensors(monkeypatch, checkpoint):
    run = cli_in(monkeypatch, SPECS)
    r = run("build", "lenet5", "--set", "num_classes=5", "--weights", checkpoint, code=2)
    assert "mis-shaped (2): linear3.weight" in r.stderr
    r = run("build", "lenet5", "--set", "num_classes=5", "--weights", checkpoint, "--no-strict", "-o", "/dev/null")
    assert "loaded 8 of 10 tensors; these keep their initialisation:" in r.stderr
    assert "shape differs (2): linear3.weight: checkpoint [10, 84] vs model [5, 84]" in r.stderr


# -- by name: a local server ---------------------------------------------------------------------

class Handler(http.server.SimpleHTTPRequestHandler):
    """/files/X serves X; /truncated/X sends half of X under X's full Content-Length."""
    hits: list[str] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        Handler.hits.append(self.path)
        kind, _, name = self.path.strip("/").partition("/")
        if kind == "files":
            self.path = "/" + name
            return super().do_GET()
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def published(server, monkeypatch, tmp_path):
    """lenet5 given published weights: a generated file named as torchvision names theirs."""
    root, url = server
    data_path = tmp_path / "x.pth"
    torch.save(lenet_state(), data_path)
    data = data_path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name = f"lenet5-{sha[:8]}.pth"
    (root / name).write_bytes(data)
    row = {"library": "torchvision", "builder": "lenet5", "default": "V1",
           "weights": {"V1": {"url": f"https://example.invalid/models/{name}", "sha256": sha[:8]}}}
    monkeypatch.setattr(pretrained, "table", lambda: {"lenet5": row})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(pretrained.MIRROR_ENV, f"{url}/files")
    Handler.hits.clear()
    return row, tmp_path / "torch" / "hub" / "checkpoints" / name, data, url


def cache_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else []


def test_named_weights_download_once_then_load(published, capsys):
    row, path, data, _ = published
    model = archc.load("lenet5").to_module(weights="torchvision")
    assert path.read_bytes() == data
    assert f"downloading" in capsys.readouterr().err
    for k, v in model.state_dict().items():
        assert torch.equal(v, lenet_state()[k])
    archc.load("lenet5").to_module(weights="torchvision:V1")
    assert len(Handler.hits) == 1                    # the cached file is used, not fetched again
    assert cache_files(path) == [path.name]


def test_a_good_cached_file_is_never_overwritten_and_a_bad_one_is_replaced(published, server):
    row, path, data, _ = published
    root, _ = server
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    (root / path.name).write_bytes(b"something else")      # the server now serves another file
    archc.load("lenet5").to_module(weights="torchvision")
    assert path.read_bytes() == data and Handler.hits == []
    path.write_bytes(b"corrupt")
    (root / path.name).write_bytes(data)
    archc.load("lenet5").to_module(weights="torchvision")
    assert path.read_bytes() == data and len(Handler.hits) == 1


def test_wrong_checksum_truncated_and_interrupted_downloads_leave_nothing(published, monkeypatch):
    row, path, data, url = published
    wrong = {**row, "weights": {"V1": {**row["weights"]["V1"], "sha256": "00000000"}}}
    monkeypatch.setattr(pretrained, "table", lambda: {"lenet5": wrong})
    with pytest.raises(Unavailable, match="the published one starts with 00000000: not kept"):
        archc.load("lenet5").to_module(weights="torchvision")
    assert cache_files(path) == []
    monkeypatch.setattr(pretrained, "table", lambda: {"lenet5": row})
    monkeypatch.setenv(pretrained.MIRROR_ENV, f"{url}/truncated")
    with pytest.raises(Unavailable, match="stopped after|cannot download"):
        archc.load("lenet5").to_module(weights="torchvision")
    assert cache_files(path) == []
    # Ctrl-C in the middle: raised inside the read loop, after the first chunk was written, as a
    # SIGINT would be (a real signal from a server thread was not delivered reliably in CI)
    monkeypatch.setenv(pretrained.MIRROR_ENV, f"{url}/files")
    monkeypatch.setattr(pretrained, "hashlib", SimpleNamespace(sha256=InterruptedHash))
    with pytest.raises(KeyboardInterrupt):
        archc.load("lenet5").to_module(weights="torchvision")
    assert InterruptedHash.chunks == 1 and cache_files(path) == []


class InterruptedHash:
    """A sha256 whose first update is where Ctrl-C arrives."""
    chunks = 0

    def update(self, chunk: bytes) -> None:
        InterruptedHash.chunks += 1
        raise KeyboardInterrupt


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_says_where_to_place_the_file(published, monkeypatch, tmp_path):
    row, path, data, _ = published
    monkeypatch.setenv(pretrained.MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    run = cli_in(monkeypatch, tmp_path)
    r = run("build", "lenet5", "--weights", "torchvision", code=1)
    assert "Traceback" not in r.output
    assert f"place it at {path}" in r.stderr and row["weights"]["V1"]["url"] in r.stderr
    assert f"its sha256 starts with {row['weights']['V1']['sha256']}" in r.stderr
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)                               # placed by hand: used as it is
    r = run("build", "lenet5", "--weights", "torchvision", "-o", "m.py")
    assert "loaded 10 of 10 tensors" in r.stderr


def test_named_weights_with_a_new_head(published):
    torch.manual_seed(0)
    with pytest.warns(archc.WeightsWarning, match="linear3.weight"):
        model = archc.load("lenet5", num_classes=3).to_module(weights="torchvision", strict=False)
    assert torch.equal(model.state_dict()["linear3.bias"], fresh(3)["linear3.bias"])


def test_unverifiable_files_say_so(published, monkeypatch, capsys):
    row, path, data, _ = published
    unverified = {**row, "library": "timm", "default": "in1k",
                  "weights": {"in1k": {"url": "https://example.invalid/x/pytorch_model.bin",
                                       "file": path.name, "sha256": None}}}
    monkeypatch.setattr(pretrained, "table", lambda: {"lenet5": unverified})
    archc.load("lenet5").to_module(weights="timm")
    assert "publishes no checksum for this file; archc cannot verify it" in capsys.readouterr().err
    with pytest.raises(archc.SpecError, match="reference is timm's lenet5: use --weights timm"):
        archc.load("lenet5").to_module(weights="torchvision")


# -- the shipped table ---------------------------------------------------------------------------

def test_the_table_resolves_torchvision_names(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    p = pretrained.resolve(archc.load("resnet18"), "torchvision")
    assert (p.url, p.sha256, p.tag) == ("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd",
                                        "IMAGENET1K_V1")
    assert p.path == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert pretrained.resolve(archc.load("resnet50"), "torchvision:IMAGENET1K_V1").file == "resnet50-0676ba61.pth"
    with pytest.raises(archc.SpecError, match="did you mean 'IMAGENET1K_V2'"):
        pretrained.resolve(archc.load("resnet50"), "torchvision:IMAGENET1K_V3")
    with pytest.raises(archc.SpecError, match="lenet5.yaml is not one"):
        pretrained.resolve(archc.load("lenet5"), "torchvision")
    timm = pretrained.resolve(archc.load("seresnet50"), "timm")
    assert timm.sha256 is None and timm.url.startswith("https://huggingface.co/timm/seresnet50.")


# FCN's files hold torchvision's auxiliary FCNHead on layer3 (dropped while loading): a 3x3 conv
# 1024 -> 256 without bias, a BN of 256, a 1x1 conv 256 -> 21 with bias
FCN_AUX = 1024 * 256 * 9 + 2 * 256 + 256 * 21 + 21
DROPPED_PARAMS = {"fcn_resnet50": FCN_AUX, "fcn_resnet101": FCN_AUX,        # DeepLabV3 has the same aux head
                  "deeplabv3_resnet50": FCN_AUX, "deeplabv3_resnet101": FCN_AUX,
                  # on MobileNetV3 the aux FCNHead reads features.4 (40 channels, 10 inside)
                  "deeplabv3_mobilenet_v3_large": 40 * 10 * 9 + 2 * 10 + 10 * 21 + 21}


def test_every_torchvision_row_fits_its_entries():
    """Each published parameter count is that of the entry (or of its sibling with the auxiliary
    heads the file holds) at the size the weights were evaluated at (ViT's SWAG weights: 384 and
    more, one position-embedding row per patch), and each file name carries its checksum prefix."""
    from functools import cache

    @cache
    def load(name, size=None):          # each entry once: siblings share a builder
        return archc.load(name) if size is None else archc.load(name, input=[3, size, size])

    table = pretrained.table()
    assert len(table) >= 40
    for name, row in table.items():
        net = load(name)
        if row["library"] != "torchvision":
            continue
        siblings = {load(n).params for n, r in table.items() if r["builder"] == row["builder"]}
        for tag, w in row["weights"].items():
            size = w.get("crop_size")
            at_size = {load(name, size).params} if size and len(net.input) == 3 else set()
            assert w["params"] - DROPPED_PARAMS.get(name, 0) in siblings | at_size, (name, tag, net.params)
            assert w["url"].rsplit("/", 1)[-1].split("-")[-1].startswith(w["sha256"] + "."), (name, tag)


def test_the_libraries_adaptations_give_the_entries_keys():
    """What torchvision does to its files before loading them, redone on key names: DenseNet's
    old-style keys (norm.1) are renamed, GoogLeNet's and Inception v3's auxiliary heads dropped."""
    import re

    def published(name, row):
        return pretrained.Published(name, "torchvision", "x", "u", "f", None, tuple(row.get("drop", ())),
                                    tuple(map(tuple, row.get("rename", ()))))
    table = pretrained.table()
    # (the 2017 files predate BatchNorm's num_batches_tracked; the load fills it in)
    keys = [k for k in archc.load("densenet121").state_dict_shapes() if not k.endswith("num_batches_tracked")]
    old = [re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k) for k in keys]
    assert old != keys
    assert list(pretrained.adapt(dict.fromkeys(old), published("densenet121", table["densenet121"]))) == keys
    for name, full in (("googlenet", "googlenet_aux"), ("inception_v3", "inception_v3_aux")):
        file_keys = dict.fromkeys(archc.load(full).state_dict_shapes())
        adapted = pretrained.adapt(file_keys, published(name, table[name]))
        assert list(adapted) == list(archc.load(name).state_dict_shapes())
    # FCN's file: the entry's keys, then torchvision's auxiliary head
    keys = list(archc.load("fcn_resnet50").state_dict_shapes())
    aux = ["aux_classifier.0.weight", *(f"aux_classifier.1.{t}" for t in ("weight", "bias", "running_mean",
           "running_var", "num_batches_tracked")), "aux_classifier.4.weight", "aux_classifier.4.bias"]
    adapted = pretrained.adapt(dict.fromkeys(keys + aux), published("fcn_resnet50", table["fcn_resnet50"]))
    assert list(adapted) == keys


def test_docs_list_every_named_entry():
    page = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    for name, row in pretrained.table().items():
        w = row["weights"][row["default"]]
        assert f"| {name} | {row['library']} `{row['builder']}` | {row['default']}" in page, name
        assert f"`{w.get('file') or w['url'].rsplit('/', 1)[-1]}`" in page, name


def test_a_bare_weights_name_is_pointed_to_its_library(monkeypatch, tmp_path):
    run = cli_in(monkeypatch, tmp_path)
    r = run("build", "resnet18", "--weights", "IMAGENET1K_V1", code=2)
    assert "write --weights torchvision:IMAGENET1K_V1" in r.stderr
    r = run("build", "resnet18", "--weights", "nope.pth", code=2)
    assert "no such weights file: nope.pth" in r.stderr


def test_weights_for_another_size_are_refused_before_downloading(monkeypatch, tmp_path):
    """ViT-H/14's default weights were trained at 518x518: building it at 224 with them is
    refused with the size to use, before a 2.4 GB download; a new head is pointed to --no-strict."""
    run = cli_in(monkeypatch, tmp_path)
    monkeypatch.setenv(pretrained.MIRROR_ENV, "http://127.0.0.1:9")     # nothing is fetched

    def not_built(net):     # refused before the module is built: ViT-H's takes seconds
        raise AssertionError(f"{net.name} built")
    monkeypatch.setattr("archc.emit.pytorch.build_module", not_built)
    r = run("build", "vit_h_14", "--weights", "torchvision", "-o", "v.py", code=2)
    assert "IMAGENET1K_SWAG_E2E_V1 weights of vit_h_14 hold 633,470,440 parameters, this network 632,045,800" \
        in r.stderr and "build at that size (--input 3x518x518)" in r.stderr
    assert "downloading" not in r.stderr
    r = run("build", "vit_b_16", "--set", "num_classes=5", "--weights", "torchvision", "-o", "v.py", code=2)
    assert "load what fits with --no-strict" in r.stderr and "downloading" not in r.stderr
