"""Downloads for the sources users expect to fetch (MNIST, CIFAR), each file checked against the
published checksum before it is kept. `fetch` (url -> bytes) is a parameter so that tests, and
anyone behind a proxy, can replace the network."""
from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Callable

from archc.errors import SpecError

# name -> (mirrors, [(file, "algorithm:hex digest")], archive to unpack). The MD5 digests are the
# ones published with the data sets (and listed by torchvision.datasets).
SOURCES = {
    "mnist": (["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
              [("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
               ("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"),
               ("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"),
               ("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c")], False),
    "cifar10": (["https://www.cs.toronto.edu/~kriz/"],
                [("cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a")], True),
    "cifar100": (["https://www.cs.toronto.edu/~kriz/"],
                 [("cifar-100-python.tar.gz", "md5:eb9058c3a382ffc7106e4002c42a8d85")], True),
}
TIMEOUT_S = 60


def data_root() -> Path:
    """Where sources named without a DIR live: $ARCHC_DATA, else ~/.cache/archc/data."""
    return Path(os.environ.get("ARCHC_DATA") or Path.home() / ".cache" / "archc" / "data")


def urlopen_fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
        return r.read()


def verify(blob: bytes, digest: str) -> str | None:
    """None when blob has the digest ("md5:..." or "sha256:..."), else what it has instead."""
    algo, _, expected = digest.partition(":")
    got = hashlib.new(algo, blob, usedforsecurity=False).hexdigest()  # FIPS builds refuse md5 otherwise
    return None if got == expected.lower() else f"{algo} {got}, expected {expected}"


def fetch_verified(urls: list[str], dest: Path, digest: str,
                   fetch: Callable[[str], bytes] = urlopen_fetch) -> None:
    """Write dest from the first url whose content has the digest. Nothing is written for a
    failed or mismatching download: a later run must not mistake it for the real file."""
    problems = []
    for url in urls:
        try:
            blob = fetch(url)
        except Exception as e:  # noqa: BLE001 - URLError, timeouts, HTTP errors: try the next mirror
            problems.append(f"{url}: {e}")
            continue
        bad = verify(blob, digest)
        if bad:
            problems.append(f"{url}: checksum mismatch ({bad})")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(blob)
        tmp.replace(dest)
        return
    raise SpecError("; ".join(problems))


def download(name: str, directory: str | Path, *, fetch: Callable[[str], bytes] | None = None) -> Path:
    """Download source `name` into `directory` (archives unpacked there); returns the directory.
    On failure a SpecError says what failed and how to place the files by hand."""
    if name not in SOURCES:
        raise SpecError(f"no download for '{name}'; downloadable: {', '.join(SOURCES)}")
    mirrors, files, is_archive = SOURCES[name]
    directory = Path(directory)
    for file, digest in files:
        dest = directory / file
        if dest.is_file() and verify(dest.read_bytes(), digest) is None:
            continue
        try:
            fetch_verified([m + file for m in mirrors], dest, digest, fetch or urlopen_fetch)
        except SpecError as e:
            names = ", ".join(f for f, _ in files)
            raise SpecError(f"{name}: download failed ({e.message}). Without network, place "
                            f"{names} by hand in {directory} (from {mirrors[0]}"
                            f"{'; unpacked or not' if is_archive else ''}), "
                            f"or pass {name}:DIR") from None
        if is_archive:
            unpack(dest, directory)
    return directory


def unpack(archive: Path, directory: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            # refuses absolute paths, '..', links out of the directory and device files
            tar.extractall(directory, filter="data")
            return
        for m in tar.getmembers():  # Python before 3.10.12 / 3.11.4: the same checks by hand
            if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise SpecError(f"{archive}: unsafe member {m.name!r}")
        tar.extractall(directory)
