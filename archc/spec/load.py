"""Load a spec (YAML or TOML) into a plain tree plus a table of source positions.

The tree holds only dict / list / str / int / float / bool / None. Every node is
addressed by a path tuple (`("layers", 3, "conv", "k")`), and `Source.values` /
`Source.keys` map paths to 1-based (line, col) so later stages can point at the
exact spot of a bad value. Loading is safe: YAML is composed with the SafeLoader
and converted by hand (tags that would construct objects are rejected before
anything is built); TOML values come from tomllib, positions from a small scanner.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from archc import limits
from archc.errors import Location, SpecError
from archc.spec.bounds import check_tree, check_yaml_events, int_error

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


def load_file(path, at: Location | None = None, label: str = "") -> Source:
    """A spec file, read safely (archc.spec.files): a problem with the file itself is reported
    at `at` (a `use:` entry) when given, else at the file."""
    from archc.spec.files import read_text
    name = str(path)
    return load_text(read_text(path, name, at, label), name)


def load_text(text: str, file: str = "<string>", fmt: str | None = None) -> Source:
    if fmt is None:
        fmt = "toml" if file.lower().endswith(".toml") else "yaml"
    fmt = fmt.lower()
    try:
        if fmt in ("yaml", "yml"):
            return _load_yaml(text, file)
        if fmt == "toml":
            from archc.spec.load_toml import load_toml
            return load_toml(text, file)
    except RecursionError:      # a safety net: depth is bounded before anything recurses
        raise limits.too_large("depth", "spec nested too deeply", loc=Location(file)) from None
    raise SpecError(f"unknown spec format {fmt!r} (expected 'yaml' or 'toml')", Location(file))


def from_mapping(obj, file: str = "<mapping>") -> Source:
    check_tree(obj, lambda path: Location(file))
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
# libyaml composes ~10x faster; its error texts differ, so errors are re-read in pure Python
# (except in large files, where that would take seconds: libyaml's own words then)
_FAST = getattr(yaml, "CSafeLoader", None)
_REREAD_MAX = 64 << 10


def _compose(text: str, file: str):
    """The node tree (nodes only, never objects), after the event stream has shown that its
    depth and size are within the limits: the composers recurse, the parsers do not."""
    fast_error = None
    if _FAST is not None:
        try:
            _check_events(text, file, _FAST)
            return yaml.compose(text, Loader=_FAST)
        except yaml.YAMLError as e:
            if len(text) > _REREAD_MAX:
                raise
            fast_error = e
    try:
        _check_events(text, file, yaml.SafeLoader)
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except (ValueError, OverflowError) as e:    # PyYAML's scanner on "\U7fffffff": chr() out of range
        if fast_error is not None:
            raise fast_error from None
        raise SpecError(f"invalid YAML: {_one_line(e)}", Location(file)) from None


def _check_events(text: str, file: str, loader) -> None:
    events = yaml.parse(text, Loader=loader)
    try:
        check_yaml_events(events, file)
    finally:
        events.close()      # now, not whenever the collector gets to a half-read stream


def _load_yaml(text: str, file: str) -> Source:
    try:
        root = _compose(text, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        where = ""
        if e.problem and e.context and e.context_mark and e.problem_mark \
                and e.context_mark.line != e.problem_mark.line:   # where the unclosed thing began
            where = f" ({_one_line(e.context)} started at line {e.context_mark.line + 1}, " \
                    f"column {e.context_mark.column + 1})"
        raise SpecError(f"invalid YAML: {_one_line(e.problem or e.context or 'syntax error')}{where}",
                        loc) from None
    except yaml.reader.ReaderError as e:  # bad characters; has an offset, not a mark
        raise SpecError(f"invalid YAML: unacceptable character #x{e.character:04x}: {e.reason}",
                        Location(file, *_line_col(text, e.position))) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {_one_line(e)}", Location(file)) from None
    conv = _YamlConverter(file)
    tree = None if root is None else conv.convert(root, ())
    src = Source(tree, file, conv.values, conv.keys)
    return _pruned(src) if conv.merged else src   # only merge keys can leave stale positions


class _YamlConverter:
    def __init__(self, file: str):
        self.file = file
        self.values: dict[tuple, Pos] = {}
        self.keys: dict[tuple, Pos] = {}
        self.ctor = yaml.constructor.SafeConstructor()  # only ever fed plain scalar nodes
        self.count = 0
        self.limits = limits.current()
        self.active: set[int] = set()  # collection nodes being converted (catches recursive aliases)
        self.merged = False            # a merge key ran: some recorded paths may have been replaced

    def loc(self, node) -> Location:
        return Location(self.file, *self.pos(node))

    @staticmethod
    def pos(node) -> Pos:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def convert(self, node, path: tuple):
        self.count += 1
        if self.count > self.limits.values:      # aliases can expand exponentially ("billion laughs")
            raise limits.too_large("values", "too many values in one spec file (aliases expanded)",
                                   loc=self.loc(node))
        if len(path) > self.limits.depth:        # aliases can nest a deep node in another
            raise limits.too_large("depth", "mappings and lists nested too deeply (aliases expanded)",
                                   loc=self.loc(node))
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
            value = self.ctor.construct_object(node)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            if node.tag == _T + "int" and len(node.value) > 18:     # past Python's int-string limit
                raise limits.too_large("int_bits", f"integer of {len(node.value)} characters is too large",
                                       loc=self.loc(node)) from None
            shown = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise SpecError(f"bad {node.tag[len(_T):]} value {shown!r}", self.loc(node)) from None
        if isinstance(value, int) and not isinstance(value, bool):
            err = int_error(value, self.loc(node))
            if err is not None:
                raise err
        return value

    def mapping(self, node: MappingNode, path: tuple) -> dict:
        out: dict = {}
        # Merge keys (<<) as in SafeLoader: own entries beat merged ones, earlier sources beat
        # later ones. Converting in reverse precedence lets each winner overwrite the positions
        # of what it replaces; positions of paths that no longer exist are pruned afterwards.
        merges = [v for k, v in node.value if isinstance(k, ScalarNode) and k.tag == _MERGE]
        sources = [s for m in merges for s in (m.value if isinstance(m, SequenceNode) else [m])]
        self.merged = self.merged or bool(sources)
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
