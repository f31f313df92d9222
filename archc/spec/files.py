"""Reading spec files safely, and where `use:` may read from.

A spec file is read only if it is a regular file no larger than the `file_bytes` limit: a FIFO
would block, /dev/zero never ends, a directory is no text. The file is opened without blocking
and checked with fstat before anything is read. `use:` reads only inside the top spec's folder
tree and the folders given with --include or ARCHC_PATH, judged after symbolic links are
resolved, so a spec from a stranger cannot make archc read (and echo) files elsewhere."""
from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from archc import limits
from archc.errors import Location, SpecError

PATH_ENV = "ARCHC_PATH"
_include: ContextVar[tuple[str, ...]] = ContextVar("archc_include", default=())

_REASONS = {errno.ENOENT: "no such file", errno.EISDIR: "is a directory, not a spec file",
            errno.ELOOP: "a loop of symbolic links", errno.ENAMETOOLONG: "file name too long",
            errno.EACCES: "permission denied", errno.ENOTDIR: "a part of the path is not a directory"}


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory, not a spec file"
    what = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"is {what}: specs are read from regular files only"


def read_text(path, shown: str, at: Location | None = None, label: str = "") -> str:
    """The UTF-8 text of a spec file, named `shown` in messages. A file that cannot be read is a
    SpecError at `at` (default: the file itself), its message starting with `label` (a block
    file's name as the `use:` entry at `at` wrote it)."""
    loc = at or Location(shown)

    def fail(reason: str) -> SpecError:
        return SpecError(f"{label}: {reason}" if label else reason, loc)
    if "\0" in str(path):
        raise fail("the file name holds a NUL character")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if at is None:
            raise SpecError(f"no such file: {shown}") from None
        raise fail("no such file") from None
    except OSError as e:
        raise fail(_REASONS.get(e.errno, e.strerror or "cannot open")) from None
    except ValueError as e:
        raise fail(str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise fail(_kind(st.st_mode))
        cap = limits.current().file_bytes
        if st.st_size > cap:
            raise limits.too_large("file_bytes", label or "spec file too large", st.st_size, loc)
        chunks, got = [], 0
        while got <= cap:          # a file growing while read stops at the limit, too
            chunk = os.read(fd, min(cap + 1 - got, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > cap:
            raise limits.too_large("file_bytes", label or "spec file too large", got, loc)
    except OSError as e:
        raise fail(_REASONS.get(e.errno, e.strerror or "cannot read")) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8-sig")         # utf-8, tolerating a BOM
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text: {e.reason} at byte {e.start}", Location(shown)) from None


def shown(name: str, most: int = 200) -> str:
    """A file name as the user wrote it, fit for one line of a message: control characters
    escaped, a very long name cut."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= most else text[:most] + "..."


# ---------------------------------------------------------------- where `use:` may read

def include_dirs() -> list[str]:
    """Folders `use:` may read besides the spec's own: --include ones, then ARCHC_PATH's."""
    env = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]
    return [*_include.get(), *env]


@contextmanager
def including(dirs) -> Iterator[None]:
    token = _include.set(tuple(str(d) for d in dirs or ()))
    try:
        yield
    finally:
        _include.reset(token)


def _real(p) -> Path:
    return Path(os.path.realpath(os.path.expanduser(str(p))))


def roots(spec_file: str) -> list[Path]:
    """The folders a spec's `use:` may read from: its own folder (followed to where it really
    is), and the included ones."""
    return [_real(Path(spec_file).parent), *(_real(d) for d in include_dirs())]


def use_target(rel: str, base: Path, allowed: list[Path]) -> tuple[Path, str | None]:
    """(path to read, None) for a `use:` entry, or (path, why not) when it lies outside every
    allowed folder once symbolic links are resolved."""
    if "\0" in rel:
        return Path(base), "the file name holds a NUL character"
    path = Path(rel) if Path(rel).is_absolute() else base / rel
    try:
        real = _real(path)
    except (OSError, ValueError):
        return path, "the path cannot be resolved"
    if not any(real == r or r in real.parents for r in allowed):
        return path, ("outside the spec's folder; `use:` reads only inside it and the folders given "
                      f"with --include DIR or {PATH_ENV}")
    return path, None
