"""TOML specs: values from tomllib, positions from a small scanner over the text.

tomllib reports no positions, so the scanner walks the text and records where every key and
value starts, under the same paths the YAML loader uses. It is best effort: where it meets
something it does not understand it stops, and positions fall back to the nearest ancestor.
"""
from __future__ import annotations

import datetime as _dt
import re
from bisect import bisect_right

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from archc import limits
from archc.errors import Location, SpecError
from archc.spec.bounds import check_toml_text, check_tree
from archc.spec.load import Pos, Source, _line_col, _one_line, _pruned

def _plainer(msg: str, text: str, line: int, col: int) -> tuple[str, int]:
    """tomllib's terse messages in plainer words (and a duplicate key located at the key)."""
    if msg == "Cannot overwrite a value" and 0 < line <= len(lines := text.splitlines()):
        m = re.match(r"\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=", lines[line - 1])
        if m:
            return f"duplicate key '{m[1]}' (a key can be set only once)", m.start(1) + 1
    m = re.fullmatch(r"Cannot declare \((.*)\) twice", msg)
    if m:
        name = ".".join(re.findall(r"'([^']*)'", m[1]))
        return f"table [{name}] declared twice", col
    plain = {"Unclosed array": "expected ',' or ']' after an array item",
             "Unclosed inline table": "expected ',' or '}' after an inline table entry "
                                      "(an inline table must fit on one line)"}
    return plain.get(msg, msg), col


def load_toml(text: str, file: str) -> Source:
    check_toml_text(text, file)       # tomllib recurses into nested arrays and tables
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg, line, col = getattr(e, "msg", None), getattr(e, "lineno", None), getattr(e, "colno", None)
        if msg is None or line is None:  # Python < 3.14: the position is only in the text
            s = str(e)
            m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", s)
            if m:
                msg, line, col = s[: m.start()], int(m[1]), int(m[2])
            elif s.endswith("(at end of document)"):
                msg = s[: -len("(at end of document)")]
                line, col = _line_col(text, len(text))
            else:
                msg, line, col = s, 0, 0
        msg, col = _plainer(_one_line(msg), text, line, col)
        raise SpecError(f"invalid TOML: {msg}", Location(file, line, col)) from None
    except ValueError:      # an integer past Python's int-string limit
        m = re.search(r"[0-9][0-9_]{18,}", text)
        at = Location(file, *_line_col(text, m.start())) if m else Location(file)
        raise limits.too_large("int_bits", f"integer of {len(m.group()) if m else 'many'} characters "
                               "is too large", loc=at) from None
    tree = _plain_dates(tree)
    values: dict[tuple, Pos] = {}
    keys: dict[tuple, Pos] = {}
    try:
        _TomlScanner(text, values, keys).run()
    except Exception:  # noqa: BLE001 - positions are best effort; keep what was found so far
        pass
    # Safety net: a confused scanner must never invent positions for paths that don't exist.
    src = _pruned(Source(tree, file, values, keys))
    check_tree(tree, src.loc)
    return src


def _plain_dates(x):
    """TOML dates/times -> ISO strings, like YAML timestamps (kept as text)."""
    if isinstance(x, dict):
        return {k: _plain_dates(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain_dates(v) for v in x]
    if isinstance(x, (_dt.date, _dt.time)):
        return x.isoformat()
    return x


class _Bail(Exception):
    """The scanner met something it does not understand."""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE = re.compile(r"[^\s,\]}#]+")  # numbers, bools, dates, times
_DATE_THEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:[^\s,\]}#]*")  # '1979-05-27 07:32:00'


class _TomlScanner:
    """Walks TOML text, recording the position of each key and value it passes.
    It trusts that tomllib already accepted the text, so it checks little."""

    def __init__(self, text: str, values: dict, keys: dict):
        self.s, self.i = text, 0
        self.values, self.keys = values, keys
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.aot: dict[tuple, int] = {}  # array-of-tables path -> elements seen so far

    def pos(self, i: int) -> Pos:
        n = bisect_right(self.line_starts, i) - 1
        return n + 1, i - self.line_starts[n] + 1

    def peek(self, k: int = 1) -> str:
        return self.s[self.i:self.i + k]

    def skip(self, newlines: bool = True) -> None:
        """Skip blanks (and newlines and comments unless newlines=False)."""
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#" and newlines:
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            else:
                return

    def expect(self, tok: str) -> None:
        self.skip(newlines=False)
        if not self.s.startswith(tok, self.i):
            raise _Bail(tok)
        self.i += len(tok)

    def run(self) -> None:
        table: tuple = ()
        while True:
            self.skip()
            if self.i >= len(self.s):
                return
            self.values.setdefault((), self.pos(self.i))  # the root starts at the first entry
            if self.peek() == "[":
                table = self.header()
            else:
                self.keyval(table)

    def header(self) -> tuple:
        start, aot = self.i, self.peek(2) == "[["
        self.i += 2 if aot else 1
        parts = self.key()
        self.expect("]]" if aot else "]")
        path: tuple = ()
        for n, (name, at) in enumerate(parts):
            path += (name,)
            if n < len(parts) - 1:  # implicit parent table (or the last element of a parent array)
                self.keys.setdefault(path, self.pos(at))
                self.values.setdefault(path, self.pos(parts[n + 1][1]))
                if path in self.aot:
                    path += (self.aot[path] - 1,)
            elif aot:  # [[a]]: the array sits at the first header, each element at its own
                self.keys.setdefault(path, self.pos(at))
                self.values.setdefault(path, self.pos(start))
                idx = self.aot.get(path, 0)
                self.aot[path] = idx + 1
                path += (idx,)
                self.values[path] = self.pos(start)
            else:  # [a]: key at its name, value at the '['
                self.keys[path] = self.pos(at)
                self.values[path] = self.pos(start)
        return path

    def keyval(self, table: tuple) -> None:
        parts = self.key()
        path = table
        for n, (name, at) in enumerate(parts):
            path += (name,)
            self.keys.setdefault(path, self.pos(at))
            if n < len(parts) - 1:  # a.b = 1 behaves like a = {b = 1}: a's value starts at b
                self.values.setdefault(path, self.pos(parts[n + 1][1]))
        self.expect("=")
        self.value(path)

    def key(self) -> list[tuple[str, int]]:
        """A dotted key as [(name, offset), ...]."""
        s, parts = self.s, []
        while True:
            self.skip(newlines=False)
            at = self.i
            if self.peek() == '"':
                self.i = self.basic_string_end(at)
                name = tomllib.loads("k = " + s[at:self.i])["k"]  # let tomllib undo the escapes
            elif self.peek() == "'":
                self.i = s.index("'", at + 1) + 1
                name = s[at + 1:self.i - 1]
            else:
                m = _BARE_KEY.match(s, at)
                if not m:
                    raise _Bail("key")
                self.i, name = m.end(), m.group()
            parts.append((name, at))
            self.skip(newlines=False)
            if self.peek() != ".":
                return parts
            self.i += 1

    def value(self, path: tuple) -> None:
        self.skip(newlines=False)
        s, at = self.s, self.i
        self.values[path] = self.pos(at)
        if s.startswith('"""', at) or s.startswith("'''", at):
            self.i = self.multiline_string_end(at)
        elif s.startswith('"', at):
            self.i = self.basic_string_end(at)
        elif s.startswith("'", at):
            self.i = s.index("'", at + 1) + 1
        elif s.startswith("[", at):
            self.i += 1
            self.items("]", lambda n: self.value(path + (n,)))
        elif s.startswith("{", at):
            self.i += 1
            self.items("}", lambda n: self.keyval(path))
        else:
            m = _DATE_THEN_TIME.match(s, at) or _BARE_VALUE.match(s, at)
            if not m:
                raise _Bail("value")
            self.i = m.end()

    def items(self, close: str, one) -> None:
        """Comma-separated entries up to `close` (trailing comma, newlines, comments allowed)."""
        n = 0
        while True:
            self.skip()
            if self.peek() == close:
                self.i += 1
                return
            one(n)
            n += 1
            self.skip()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != close:
                raise _Bail(close)

    def basic_string_end(self, at: int) -> int:
        s, j = self.s, at + 1
        while s[j] != '"':
            if s[j] == "\n":
                raise _Bail("string")
            j += 2 if s[j] == "\\" else 1
        return j + 1

    def multiline_string_end(self, at: int) -> int:
        s, q = self.s, self.s[at]
        j = at + 3
        while not s.startswith(q * 3, j):
            if j >= len(s):
                raise _Bail("string")
            j += 2 if (q == '"' and s[j] == "\\") else 1
        j += 3
        for _ in range(2):  # up to two quotes may end the content: """a""""" is 'a""'
            if s.startswith(q, j):
                j += 1
        return j
