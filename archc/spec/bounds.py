"""Bounds on the shape of spec data, checked before anything recursive walks it: nesting depth,
number of values and integer size (docs/spec.md, Limits). YAML is measured on its event stream
(libyaml's parser is a state machine, so a deep document costs no stack), TOML on its text
before tomllib (which recurses) sees it, and plain trees (TOML's, a mapping given to
archc.load, a --set value) by an iterative walk."""
from __future__ import annotations

import re
from typing import Any, Callable

import yaml

from archc import limits
from archc.errors import Location, SpecError

_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
_LEAF = (yaml.ScalarEvent, yaml.AliasEvent)


def _mark(file: str, mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)


def check_yaml_events(events, file: str) -> None:
    """Refuse a YAML document nested deeper than the `depth` limit, or holding more than
    `values` values, as its events stream by (a syntax error surfaces as the parser's own)."""
    lim = limits.current()
    depth = count = 0
    for ev in events:
        if isinstance(ev, _OPEN):
            depth += 1
            count += 1
            if depth > lim.depth:
                raise limits.too_large("depth", "mappings and lists nested too deeply",
                                       loc=_mark(file, ev.start_mark))
        elif isinstance(ev, _CLOSE):
            depth -= 1
        elif isinstance(ev, _LEAF):
            count += 1
        if count > lim.values:
            raise limits.too_large("values", "too many values in one spec file",
                                   loc=_mark(file, ev.start_mark))


# TOML tokens that matter for nesting: strings and comments (skipped whole), brackets, and what
# delimits keys (dotted keys and table headers nest as deep as brackets do)
_TOML_TOKEN = re.compile(r'"""(?:\\.|[^\\])*?"""|\'\'\'.*?\'\'\'|"(?:\\.|[^"\\\n])*"|\'[^\'\n]*\'|#[^\n]*'
                         r'|[\[\]{}.=,\n]', re.S)


def check_toml_text(text: str, file: str) -> None:
    """Refuse TOML text that nests deeper than the `depth` limit: arrays and inline tables, and
    the parts of dotted keys and table headers (`[a.b.c]`), before tomllib (which recurses)
    reads it."""
    lim = limits.current().depth
    brackets: list[str] = []      # open [ and { (a header's [ is not among them)
    table = dots = 0              # depth of the current [table]; dots of the key being read
    in_key = line_start = True
    header = False
    for m in _TOML_TOKEN.finditer(text):
        c = m.group()
        if c == "\n":
            if not brackets:
                in_key, line_start, dots = True, True, 0
            continue
        if c == "[" and line_start and not brackets:       # a [table] or [[array]] header
            header, dots = True, 0
            line_start = False
            continue
        line_start = False
        if header:
            if c == ".":
                dots += 1
            elif c == "]":
                header, table = False, dots + 2           # + 1: an array of tables nests once more
            depth = dots + 1
        elif c in "[{":
            brackets.append(c)
            in_key, dots = c == "{", 0
            depth = table + len(brackets)
        elif c in "]}":
            if brackets:
                brackets.pop()
            continue
        elif c == "=":
            in_key, depth = False, table + len(brackets) + dots + 1
        elif c == ",":
            in_key, dots = bool(brackets) and brackets[-1] == "{", 0
            continue
        elif c == "." and in_key:
            dots += 1
            depth = table + len(brackets) + dots + 1
        else:
            continue
        if depth > lim:
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            raise limits.too_large("depth", "arrays and tables nested too deeply", loc=Location(file, line, col))


def int_error(value: int, loc) -> SpecError | None:
    """The error for an integer outside the `int_bits` limit, or None."""
    bits = limits.current().int_bits
    if value.bit_length() <= bits:
        return None
    shown = str(value) if value.bit_length() <= 96 else f"of {value.bit_length()} bits"
    return limits.too_large("int_bits", f"integer {shown} is too large", loc=loc)


def check_tree(tree: Any, where: Callable[[tuple], Location]) -> None:
    """Walk a plain tree without recursion: refuse depth, value count and integer size past the
    limits; `where(path)` locates a node. Cycles (possible in a mapping given from Python) show
    up as depth."""
    lim = limits.current()
    count = 0
    todo: list[tuple[Any, tuple]] = [(tree, ())]
    while todo:
        node, path = todo.pop()
        count += 1
        if count > lim.values:
            raise limits.too_large("values", "too many values in one spec", loc=where(path))
        if isinstance(node, bool) or node is None:
            continue
        if isinstance(node, int):
            err = int_error(node, where(path))
            if err is not None:
                raise err
        elif isinstance(node, (dict, list)):
            if len(path) >= lim.depth:
                raise limits.too_large("depth", "mappings and lists nested too deeply", loc=where(path))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            todo.extend((v, path + (k,)) for k, v in items)
