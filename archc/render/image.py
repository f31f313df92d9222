"""Images through Graphviz's `dot` program (a system package, not a Python one)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from archc import limits
from archc.errors import SpecError

TEXT = {".dot", ".gv"}              # written by archc itself
IMAGES = {".svg", ".png", ".pdf"}   # drawn by `dot`; its run time is the render_seconds limit

INSTALL = ("install Graphviz (the system package 'graphviz': `apt-get install graphviz`, "
           "`brew install graphviz`, `conda install graphviz`; `pip install graphviz` alone does not "
           "provide the program), or write DOT text with -o net.dot")


class RenderFailed(Exception):
    """`dot` ran but failed or took too long: not bad input, so the CLI exits 1."""


def output_kind(path: str) -> str:
    """'dot' or the image format for an output path; an unknown suffix is bad input."""
    suffix = Path(path).suffix.lower()
    if suffix in TEXT:
        return "dot"
    if suffix in IMAGES:
        return suffix[1:]
    known = ", ".join(sorted(TEXT | IMAGES))
    raise SpecError(f"cannot render to '{path}': the file name must end in one of {known} "
                    f"(or use -o - for DOT on stdout)")


def find_dot() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise SpecError(f"drawing an image needs Graphviz's `dot` program, which is not on PATH: {INSTALL}")
    return exe


def check_size(boxes: int, loc) -> None:
    """Refuse to hand Graphviz a picture of more boxes than the render_nodes limit: its layout
    time grows much faster than the graph."""
    if boxes > limits.current().render_nodes:
        raise limits.too_large("render_nodes", "the picture is too large for Graphviz (fold it with "
                               "--depth N or --repeats fold, or write DOT text with -o net.dot)", boxes, loc)


def draw(dot_text: str, fmt: str, exe: str, loc=None) -> bytes:
    """The image `dot` draws from DOT text, within the render_seconds limit."""
    timeout = limits.current().render_seconds
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(errors="backslashreplace"),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise limits.too_large("render_seconds", "Graphviz took too long (fold the picture with --depth N "
                               "or --repeats fold)", loc=loc) from None
    except OSError as e:
        raise RenderFailed(f"cannot run {exe}: {e.strerror}") from None
    if done.returncode != 0:
        raise RenderFailed(f"Graphviz failed (exit {done.returncode}): {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as e:    # a bad -o is bad input (exit 2), as for `build`
        raise SpecError(f"cannot write {path}: {e.strerror}") from None
