"""Published weights by name: `torchvision[:WEIGHTS]` or `timm[:TAG]` for a zoo entry with that
reference, resolved from archc/zoo/weights.json (generated from the libraries' source by
scripts/gen_weights.py), downloaded once into torch's hub cache with the checksum verified.

A download goes to a temporary file beside the cached one and takes its name only once it is
whole and its checksum holds, so a wrong, truncated or interrupted download leaves nothing
behind, and a good cached file is never overwritten. ARCHC_WEIGHTS_MIRROR=URL fetches
`URL/<cached file name>` instead of the published URL (a local mirror; the tests' server)."""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from archc.errors import SpecError, Unavailable, did_you_mean
from archc.spec.zoo import ZOO_DIR, entry_for

NAMED = re.compile(r"^(torchvision|timm)(?::([\w.\-]+))?$")
MIRROR_ENV = "ARCHC_WEIGHTS_MIRROR"
CHUNK = 1 << 20


@lru_cache(maxsize=1)
def table() -> dict[str, dict]:
    return json.loads((ZOO_DIR / "weights.json").read_text())["entries"]


def is_named(weights) -> bool:
    return isinstance(weights, str) and NAMED.match(weights) is not None and not Path(weights).exists()


def hub_dir() -> Path:
    """torch's hub cache for checkpoints: $TORCH_HOME/hub/checkpoints (torch.hub.get_dir)."""
    import torch.hub
    return Path(torch.hub.get_dir()) / "checkpoints"


@dataclass(frozen=True)
class Published:
    entry: str
    library: str
    tag: str
    url: str
    file: str
    sha256: str | None           # the first hex digits of the file's sha256; None: none published
    drop: tuple[str, ...] = ()   # key prefixes the library drops from the file for this entry
    rename: tuple[tuple[str, str], ...] = ()
    note: str = ""
    params: int | None = None    # what the file holds, as the library publishes it
    crop_size: int | None = None  # the size it was evaluated at

    @property
    def path(self) -> Path:
        return hub_dir() / self.file

    @property
    def label(self) -> str:
        return f"{self.library}:{self.tag}"


def resolve(net, name: str) -> Published:
    """The published file that `name` ("torchvision", "timm:a1_in1k", ...) means for `net`."""
    library, tag = NAMED.match(name).groups()
    entry = entry_for(net.file, net.variant)
    row = table().get(entry.name) if entry else None
    if row is None:
        where = Path(net.file).name + (f" (variant {net.variant})" if net.variant else "")
        names = list(table())
        raise SpecError(f"'{name}': named weights exist for the {len(names)} zoo entries with a torchvision or "
                        f"timm reference ({', '.join(names[:4])}, ...; docs/api.md lists them); {where} is not "
                        f"one: give a state_dict file instead")
    if row["library"] != library:
        raise SpecError(f"'{name}': {entry.name}'s reference is {row['library']}'s {row['builder']}: "
                        f"use --weights {row['library']}[:{row['default']}]")
    tag = tag or row["default"]
    if tag not in row["weights"]:
        raise SpecError(f"'{name}': {row['library']} publishes {', '.join(row['weights'])} for {row['builder']} "
                        f"(default {row['default']}), not '{tag}'{did_you_mean(tag, row['weights'])}")
    w = row["weights"][tag]
    return Published(entry.name, library, tag, w["url"], w.get("file") or w["url"].rsplit("/", 1)[-1],
                     w["sha256"], tuple(row.get("drop", ())), tuple(map(tuple, row.get("rename", ()))),
                     row.get("note", ""), w.get("params"), w.get("crop_size"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch(pub: Published, say=print) -> Path:
    """The cached file of `pub`, downloaded first if it is absent or fails its checksum."""
    path = pub.path
    if path.is_file():
        if pub.sha256 is None:
            say(f"note: {path}: {pub.library} publishes no checksum for this file; archc cannot verify it")
            return path
        if sha256_of(path).startswith(pub.sha256):
            return path
        say(f"note: {path} is not the published file (its sha256 does not start with {pub.sha256}): "
            f"downloading it again")
    mirror = os.environ.get(MIRROR_ENV)
    url = f"{mirror.rstrip('/')}/{pub.file}" if mirror else pub.url
    say(f"downloading {url} to {path}")
    download(url, path, pub.sha256, offline_help(pub))
    if pub.sha256 is None:
        say(f"note: {pub.library} publishes no checksum for this file; archc cannot verify it")
    return path


def offline_help(pub: Published) -> str:
    check = (f"its sha256 starts with {pub.sha256}" if pub.sha256
             else "no checksum is published for it")
    return (f"Offline? Download {pub.url} on a machine that can reach it and place it at {pub.path} "
            f"({check}); archc uses a file found there without downloading")


def download(url: str, dest: Path, sha256: str | None, help_text: str = "") -> None:
    """`url` to `dest`, atomically: through a temporary file in dest's folder, renamed over dest
    only once its length and checksum hold; removed on any failure or interruption."""
    import http.client
    import urllib.error
    import urllib.request
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    except OSError as e:
        raise Unavailable(f"cannot write to {dest.parent}: {e.strerror or e}") from None
    try:
        h, n = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
                total = r.headers.get("Content-Length")
                while chunk := r.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    n += len(chunk)
        except (OSError, http.client.HTTPException, ValueError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            raise Unavailable(f"cannot download {url}: {reason}\n{help_text}".rstrip()) from None
        if total is not None and n != int(total):
            raise Unavailable(f"the download of {url} stopped after {n:,} of {int(total):,} bytes; nothing was "
                              f"kept\n{help_text}".rstrip())
        digest = h.hexdigest()
        if sha256 and not digest.startswith(sha256):
            raise Unavailable(f"{url}: the downloaded file's sha256 is {digest}, the published one starts with "
                              f"{sha256}: not kept")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def adapt(state: dict, pub: Published) -> dict:
    """The file's state_dict as the library adapts it for this entry: dropped heads, renamed keys."""
    out = {}
    for k, v in state.items():
        if any(k.startswith(p) for p in pub.drop):
            continue
        for pattern, repl in pub.rename:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def refuse_mismatch(net, pub: Published) -> None:
    """Before a download: published weights whose size says they cannot load strictly (ViT's
    SWAG weights, trained at 384x384 and more: one position-embedding row per patch)."""
    if pub.params is None or pub.params == net.params:
        return
    size = net.input[-1] if len(net.input) == 3 else None
    why = (f"they were trained at {pub.crop_size}x{pub.crop_size}: build at that size "
           f"(--input 3x{pub.crop_size}x{pub.crop_size})" if pub.crop_size and size and pub.crop_size != size
           else "load what fits with --no-strict (a new head keeps its initialisation)")
    raise SpecError(f"{pub.label} weights of {pub.entry} hold {pub.params:,} parameters, this network "
                    f"{net.params:,}: they cannot load strictly; {why}")


def hint_tag(net, weights) -> None:
    """`--weights IMAGENET1K_V1`, no such file: say how to name the published weights."""
    if not isinstance(weights, str) or Path(weights).exists():
        return
    entry = entry_for(net.file, net.variant)
    row = table().get(entry.name) if entry else None
    if row and weights in row["weights"]:
        raise SpecError(f"no such weights file: {weights}; for {entry.name}'s published weights of that name, "
                        f"write --weights {row['library']}:{weights}")


def preflight(net, weights, strict: bool = True) -> None:
    """What can be refused before the module is built (seconds and gigabytes for the biggest
    networks): a weights file that is not there, published weights that cannot load strictly."""
    if is_named(weights):
        if strict:
            refuse_mismatch(net, resolve(net, weights))
        return
    from archc.emit.weights import regular_file
    hint_tag(net, weights)
    regular_file(weights)


def load_named_or_file(model, net, weights, strict: bool = True, ignore_unexpected: bool = False, say=print):
    """Load `weights` (a file, or a name for `net`'s published weights) into `model`: a WeightsReport."""
    from archc.emit.weights import load_state, read_weights, unwrap
    if not is_named(weights):
        hint_tag(net, weights)
        return load_state(model, read_weights(weights), weights, strict=strict, ignore_unexpected=ignore_unexpected)
    pub = resolve(net, weights)
    if strict:
        refuse_mismatch(net, pub)
    path = fetch(pub, say)
    if pub.note:
        say(f"note: {pub.label} weights of {pub.entry}: {pub.note}")
    state = unwrap(read_weights(path))
    if not isinstance(state, dict):
        raise SpecError(f"{path}: not a state_dict (found {type(state).__name__})")
    return load_state(model, adapt(state, pub), f"{path} ({pub.label})", strict=strict,
                      ignore_unexpected=ignore_unexpected)
