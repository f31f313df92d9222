"""Load a spec (YAML or TOML) into a plain tree plus a table of source positions.

The tree holds only dict / list / str / int / float / bool / None. Every node is
addressed by a path tuple (`("layers", 3, "conv", "k")`), and `Source.values` /
`Source.keys` map paths to 1-based (line, col) so later stages can point at the
exact spot of a bad value. Loading is safe: YAML is composed with the SafeLoader
and converted by hand (tags that would construct objects are rejected before
anything is built); TOML values come from tomllib, positions from a small scanner.
"""
from __future__ import annotations

import datetime as _dt
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from archc.errors import Location, SpecError

Pos = tuple[int, int]


@dataclass
class Source:
    tree: Any
    file: str
    values: dict[tuple, Pos] = field(default_factory=dict)
    keys: dict[tuple, Pos] = field(default_factory=dict)

    def loc(self, path: tuple = (), key: bool = False) -> Location:
        """Location of the node at `path`; with key=True the key's position when the node
        is a mapping entry. Falls back to the nearest ancestor with a position."""
        path = tuple(path)
        for n in range(len(path), -1, -1):
            p = path[:n]
            if key and p in self.keys:
                return Location(self.file, *self.keys[p])
            if p in self.values:
                return Location(self.file, *self.values[p])
        return Location(self.file)


def load_file(path) -> Source:
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # utf-8, tolerating a BOM
    except FileNotFoundError:
        raise SpecError(f"no such file: {name}") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"not UTF-8 text: {e.reason} at byte {e.start}", Location(name)) from None
    except OSError as e:
        raise SpecError(f"cannot read {name}: {e.strerror}") from None
    return load_text(text, name)


def load_text(text: str, file: str = "<string>", fmt: str | None = None) -> Source:
    if fmt is None:
        fmt = "toml" if file.lower().endswith(".toml") else "yaml"
    fmt = fmt.lower()
    try:
        if fmt in ("yaml", "yml"):
            return _load_yaml(text, file)
        if fmt == "toml":
            return _load_toml(text, file)
    except RecursionError:
        raise SpecError("spec is nested too deeply", Location(file)) from None
    raise SpecError(f"unknown spec format {fmt!r} (expected 'yaml' or 'toml')", Location(file))


def from_mapping(obj, file: str = "<mapping>") -> Source:
    return Source(obj, file, {}, {})


def _line_col(text: str, offset: int) -> Pos:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _one_line(s) -> str:
    return " ".join(str(s).split())


# ---------------------------------------------------------------- YAML

_T = "tag:yaml.org,2002:"
_MERGE, _VALUE, _TIMESTAMP = _T + "merge", _T + "value", _T + "timestamp"
# Tags allowed per node kind; anything else (!!python/..., !!binary, !!set, !local) is refused.
_ALLOWED = {
    ScalarNode: {_T + t for t in ("str", "int", "float", "bool", "null", "timestamp")},
    SequenceNode: {_T + "seq"},
    MappingNode: {_T + "map"},
}
_MAX_NODES = 1_000_000  # aliases can expand exponentially ("billion laughs")


def _load_yaml(text: str, file: str) -> Source:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)  # builds nodes only, never objects
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise SpecError(f"invalid YAML: {_one_line(e.problem or e.context or 'syntax error')}", loc) from None
    except yaml.reader.ReaderError as e:  # bad characters; has an offset, not a mark
        raise SpecError(f"invalid YAML: unacceptable character #x{e.character:04x}: {e.reason}",
                        Location(file, *_line_col(text, e.position))) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {_one_line(e)}", Location(file)) from None
    conv = _YamlConverter(file)
    tree = None if root is None else conv.convert(root, ())
    return _pruned(Source(tree, file, conv.values, conv.keys))


class _YamlConverter:
    def __init__(self, file: str):
        self.file = file
        self.values: dict[tuple, Pos] = {}
        self.keys: dict[tuple, Pos] = {}
        self.ctor = yaml.constructor.SafeConstructor()  # only ever fed plain scalar nodes
        self.count = 0
        self.active: set[int] = set()  # collection nodes being converted (catches recursive aliases)

    def loc(self, node) -> Location:
        return Location(self.file, *self.pos(node))

    @staticmethod
    def pos(node) -> Pos:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(self, node, path: tuple):
        self.count += 1
        if self.count > _MAX_NODES:
            raise SpecError("spec too large (runaway alias expansion?)", self.loc(node))
        self.values[path] = self.pos(node)  # for aliases: the anchored node's position
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        self.check_tag(node)
        if id(node) in self.active:
            raise SpecError("recursive alias: a node contains itself", self.loc(node))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def check_tag(self, node) -> None:
        if node.tag not in _ALLOWED[type(node)]:
            tag = "!!" + node.tag[len(_T):] if node.tag.startswith(_T) else node.tag
            raise SpecError(f"YAML tag '{tag}' is not allowed (specs hold plain data only)",
                            self.loc(node))

    def scalar(self, node: ScalarNode):
        if node.tag in (_MERGE, _VALUE):  # '<<' or '=' outside a key position: just text
            return node.value
        self.check_tag(node)
        if node.tag == _TIMESTAMP:  # keep dates as written, so the tree stays plain
            return node.value
        try:
            return self.ctor.construct_object(node)
        except (ValueError, TypeError, yaml.YAMLError):
            raise SpecError(f"bad {node.tag[len(_T):]} value {node.value!r}", self.loc(node)) from None

    def mapping(self, node: MappingNode, path: tuple) -> dict:
        out: dict = {}
        # Merge keys (<<) as in SafeLoader: own entries beat merged ones, earlier sources beat
        # later ones. Converting in reverse precedence lets each winner overwrite the positions
        # of what it replaces; positions of paths that no longer exist are pruned afterwards.
        merges = [v for k, v in node.value if isinstance(k, ScalarNode) and k.tag == _MERGE]
        sources = [s for m in merges for s in (m.value if isinstance(m, SequenceNode) else [m])]
        for src in reversed(sources):
            if not isinstance(src, MappingNode):
                raise SpecError("merge key '<<' needs a mapping or a list of mappings", self.loc(src))
            out.update(self.convert(src, path))
        self.values[path] = self.pos(node)
        first_line: dict = {}
        for knode, vnode in node.value:
            if isinstance(knode, ScalarNode) and knode.tag == _MERGE:
                continue
            if not isinstance(knode, ScalarNode):
                raise SpecError("mapping keys must be plain scalars", self.loc(knode))
            k = self.scalar(knode)
            if k in first_line:
                raise SpecError(f"duplicate key '{k}' (first at line {first_line[k]})", self.loc(knode))
            first_line[k] = knode.start_mark.line + 1
            self.keys[path + (k,)] = self.pos(knode)
            out[k] = self.convert(vnode, path + (k,))
        return out


# ---------------------------------------------------------------- TOML

def _load_toml(text: str, file: str) -> Source:
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
        raise SpecError(f"invalid TOML: {_one_line(msg)}", Location(file, line, col)) from None
    tree = _plain_dates(tree)
    values: dict[tuple, Pos] = {}
    keys: dict[tuple, Pos] = {}
    try:
        _TomlScanner(text, values, keys).run()
    except Exception:  # noqa: BLE001 - positions are best effort; keep what was found so far
        pass
    # Safety net: a confused scanner must never invent positions for paths that don't exist.
    return _pruned(Source(tree, file, values, keys))


def _plain_dates(x):
    """TOML dates/times -> ISO strings, like YAML timestamps (kept as text)."""
    if isinstance(x, dict):
        return {k: _plain_dates(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_plain_dates(v) for v in x]
    if isinstance(x, (_dt.date, _dt.time)):
        return x.isoformat()
    return x


def _pruned(src: Source) -> Source:
    """Drop positions of paths that are not in the tree."""
    src.values = {p: at for p, at in src.values.items() if _exists(src.tree, p)}
    src.keys = {p: at for p, at in src.keys.items() if _exists(src.tree, p)}
    return src


def _exists(tree, path: tuple) -> bool:
    for p in path:
        if isinstance(tree, dict) and p in tree:
            tree = tree[p]
        elif isinstance(tree, list) and isinstance(p, int) and 0 <= p < len(tree):
            tree = tree[p]
        else:
            return False
    return True


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
