"""The bad inputs of issue 10, each with the exact message archc gives (exit 2). Shared by
tests/test_limits.py (which checks every message) and bench/limits.py (which times each one).

A case is a set of files made in an empty folder, the command line run there, and the first line
of stderr. Files are text, bytes, or a function that makes the file at a path (FIFOs, links,
sparse files)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

HEAD = "archc: 1\nname: net\ninput: [3, 8, 8]\n"
FIXED = "this limit is fixed"


def raise_hint(name: str) -> str:
    return f"raise it with --limit {name}=N or ARCHC_LIMITS={name}=N"


def fifo(path: str) -> None:
    os.mkfifo(path)


def self_link(path: str) -> None:
    os.symlink(os.path.basename(path), path)


def sparse(size: int) -> Callable[[str], None]:
    def make(path: str) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return make


@dataclass
class Case:
    name: str
    files: dict[str, str | bytes | Callable[[str], None]]
    args: list[str]
    message: str
    env: dict[str, str] = field(default_factory=dict)


def layers(text: str) -> str:
    return HEAD + "layers:\n" + text


def deep_seq(n: int) -> str:
    return layers("  - " + "{seq: [" * n + "relu" + "]}" * n + "\n")


def nested_blocks(n: int) -> str:
    blocks = "".join(f"  b{i}: {{layers: [b{i + 1}]}}\n" for i in range(n))
    return HEAD + "blocks:\n" + blocks + f"  b{n}: {{layers: [relu]}}\nlayers: [b0]\n"


CASES = [
    # -- nesting: nothing recursive sees more than the limits allow ----------------------------
    Case("deep_seq", {"s.yaml": deep_seq(3000)}, ["check", "s.yaml"],
         f"s.yaml:5:348: mappings and lists nested too deeply: over the limit of 100 levels; {FIXED}"),
    Case("deep_flow_yaml", {"s.yaml": layers("  - " + "[" * 100_000 + "]" * 100_000 + "\n")},
         ["check", "s.yaml"], "s.yaml:5:1003: invalid YAML: exceeded maximum nesting depth"),
    Case("deep_toml", {"s.toml": 'archc = 1\nname = "n"\ninput = [3, 8, 8]\nlayers = [' + "[" * 5000
                       + "]" * 5000 + "]\n"}, ["check", "s.toml"],
         f"s.toml:4:110: arrays and tables nested too deeply: over the limit of 100 levels; {FIXED}"),
    Case("deep_toml_header", {"s.toml": 'archc = 1\nname = "n"\ninput = [3, 8, 8]\nlayers = ["relu"]\n[vars.'
                              + ".".join(["a"] * 150) + "]\nb = 1\n"}, ["check", "s.toml"],
         f"s.toml:5:204: arrays and tables nested too deeply: over the limit of 100 levels; {FIXED}"),
    Case("deep_toml_key", {"s.toml": 'archc = 1\nname = "n"\ninput = [3, 8, 8]\nlayers = ["relu"]\nvars.'
                           + ".".join(["a"] * 150) + " = 1\n"}, ["check", "s.toml"],
         f"s.toml:5:203: arrays and tables nested too deeply: over the limit of 100 levels; {FIXED}"),
    Case("deep_alias", {"s.yaml": HEAD + "vars:\n  a: &a " + "[" * 60 + "]" * 60 + "\n  b: &b "
                        + "[" * 60 + "*a" + "]" * 60 + "\nlayers: [relu]\n"}, ["check", "s.yaml"],
         f"s.yaml:5:48: mappings and lists nested too deeply (aliases expanded): over the limit of 100 "
         f"levels; {FIXED}"),
    Case("deep_blocks", {"s.yaml": nested_blocks(200)}, ["check", "s.yaml"],
         f"s.yaml:54:18: modules nested too deeply: over the limit of 50 levels; {FIXED}"),
    Case("unary_5000", {"s.yaml": layers('  - conv: {out: "${' + "-" * 5000 + '4}", k: 3}\n')},
         ["check", "s.yaml"], "s.yaml:5:17: expression too long: 5,001 characters is over the limit of "
         f"2,000; {raise_hint('expr_chars')}"),
    Case("unary_deep", {"s.yaml": layers('  - conv: {out: "${' + "-" * 1500 + '4}", k: 3}\n')},
         ["check", "s.yaml"], f"s.yaml:5:17: expression nested too deeply: over the limit of 50 levels; {FIXED}"),
    Case("sum_1mb", {"s.yaml": layers('  - conv: {out: "${' + "+".join(["1"] * 500_000) + '}", k: 3}\n')},
         ["check", "s.yaml", "--limit", "expr_chars=2000000", "--limit", "file_bytes=2000000"],
         f"s.yaml:5:17: expression nested too deeply: over the limit of 50 levels; {FIXED}"),
    # -- files: regular, small, inside the spec's folder ---------------------------------------
    Case("use_long_name", {"s.yaml": HEAD + f"use: [{'a' * 300}.yaml]\nlayers: [relu]\n"}, ["check", "s.yaml"],
         f"s.yaml:4:7: no such block file '{'a' * 200}...' (looked in .)"),
    Case("use_nul", {"s.yaml": HEAD + 'use: ["a\\0b.yaml"]\nlayers: [relu]\n'}, ["check", "s.yaml"],
         "s.yaml:4:7: block file 'a\\x00b.yaml': the file name holds a NUL character"),
    Case("use_self_link", {"s.yaml": HEAD + "use: [self.yaml]\nlayers: [relu]\n", "self.yaml": self_link},
         ["check", "s.yaml"], "s.yaml:4:7: block file 'self.yaml': a loop of symbolic links"),
    Case("use_dev_zero", {"s.yaml": HEAD + "use: [/dev/zero]\nlayers: [relu]\n"}, ["check", "s.yaml"],
         "s.yaml:4:7: block file '/dev/zero': outside the spec's folder; `use:` reads only inside it and "
         "the folders given with --include DIR or ARCHC_PATH"),
    Case("use_dev_zero_included", {"s.yaml": HEAD + "use: [/dev/zero]\nlayers: [relu]\n"},
         ["check", "s.yaml", "--include", "/dev"],
         "s.yaml:4:7: block file '/dev/zero': is a device: specs are read from regular files only"),
    Case("use_fifo", {"s.yaml": HEAD + "use: [f.yaml]\nlayers: [relu]\n", "f.yaml": fifo}, ["check", "s.yaml"],
         "s.yaml:4:7: block file 'f.yaml': is a FIFO: specs are read from regular files only"),
    Case("spec_fifo", {"f.yaml": fifo}, ["check", "f.yaml"],
         "f.yaml: is a FIFO: specs are read from regular files only"),
    Case("spec_dev_zero", {}, ["check", "/dev/zero"], "/dev/zero: is a device: specs are read from regular files only"),
    Case("spec_directory", {"d/x": "x"}, ["summary", "d"], "d: is a directory, not a spec file"),
    Case("use_etc_passwd", {"s.yaml": HEAD + "use: [../../../../../../../../etc/passwd]\nlayers: [relu]\n"},
         ["check", "s.yaml"], "s.yaml:4:7: block file '../../../../../../../../etc/passwd': outside the spec's "
         "folder; `use:` reads only inside it and the folders given with --include DIR or ARCHC_PATH"),
    Case("use_link_out", {"s.yaml": HEAD + "use: [l.yaml]\nlayers: [relu]\n",
                          "l.yaml": lambda p: os.symlink("/etc/passwd", p)}, ["check", "s.yaml"],
         "s.yaml:4:7: block file 'l.yaml': outside the spec's folder; `use:` reads only inside it and the "
         "folders given with --include DIR or ARCHC_PATH"),
    Case("spec_50mb", {"s.yaml": sparse(50 << 20)}, ["check", "s.yaml"],
         f"s.yaml: spec file too large: 52,428,800 bytes is over the limit of 1,048,576; {raise_hint('file_bytes')}"),
    Case("use_50mb", {"s.yaml": HEAD + "use: [b.yaml]\nlayers: [relu]\n", "b.yaml": sparse(50 << 20)},
         ["check", "s.yaml"], "s.yaml:4:7: block file 'b.yaml': 52,428,800 bytes is over the limit of 1,048,576; "
         f"{raise_hint('file_bytes')}"),
    # -- types where ids are expected ----------------------------------------------------------
    Case("from_mapping", {"s.yaml": layers("  - conv: {out: 4, k: 3}\n    from: {}\n")}, ["check", "s.yaml"],
         "s.yaml:6:11: 'from' takes an id or a list of ids, got {}"),
    Case("outputs_list", {"s.yaml": layers("  - conv: {out: 4, k: 3}\noutputs: [[]]\n")}, ["check", "s.yaml"],
         "s.yaml:6:11: an output is an id, or a mapping {id, name, train_only, when}; got []"),
    Case("id_newline", {"s.yaml": layers('  - conv: {out: 4, k: 3}\n    id: "a\\n"\n')}, ["build", "s.yaml"],
         "s.yaml:6:9: name must be a Python identifier, got 'a\\n'"),
    # -- integers and sizes --------------------------------------------------------------------
    Case("set_5000_digits", {"s.yaml": HEAD + "vars: {n: 4}\nlayers:\n  - conv: {out: $n, k: 3}\n"},
         ["summary", "s.yaml", "--set", "n=" + "9" * 5000],
         f"s.yaml:4:11: --set n: integer of 5000 characters is too large: over the limit of 63 bits "
         f"(+-9,223,372,036,854,775,807); {FIXED}"),
    Case("yaml_int_2_63", {"s.yaml": layers("  - relu: null\n    repeat: 9223372036854775808\n")}, ["check", "s.yaml"],
         "s.yaml:6:13: integer 9223372036854775808 is too large: over the limit of 63 bits "
         f"(+-9,223,372,036,854,775,807); {FIXED}"),
    Case("toml_int_5000_digits", {"s.toml": 'archc = 1\nname = "n"\ninput = [3, 8, 8]\nlayers = ["relu"]\n'
                                  f"vars = {{n = {'9' * 5000}}}\n"}, ["check", "s.toml"],
         f"s.toml:5:13: integer of 5000 characters is too large: over the limit of 63 bits "
         f"(+-9,223,372,036,854,775,807); {FIXED}"),
    Case("repeat_1e9", {"s.yaml": layers("  - relu: null\n    repeat: 1000000000\n")}, ["check", "s.yaml"],
         f"s.yaml:6:13: repeat count: 1,000,000,000 copies is over the limit of 10,000; {raise_hint('repeat')}"),
    Case("repeat_of_repeats", {"s.yaml": HEAD + "blocks:\n  a: {layers: [{relu: null, repeat: 1000}]}\n"
                               "  b: {layers: [{a: null, repeat: 1000}]}\nlayers:\n  - b: null\n    repeat: 1000\n"},
         ["check", "s.yaml"], "s.yaml:6:34: this repeat would make the network about 1,000,000 layers: over the "
         f"limit of 5,000 layers; {raise_hint('layers')}"),
    Case("list_bomb", {"s.yaml": layers('  - conv: {out: "${len([[0] * 100000] * 100000)}", k: 3}\n')},
         ["check", "s.yaml"], "s.yaml:5:17: expression result too large: 100,001 items is over the limit of "
         f"100,000; {raise_hint('expr_items')}"),
    Case("format_bomb", {"s.yaml": layers('''  - conv: {out: "${len('%0999999999d' % 1)}", k: 3}\n''')},
         ["check", "s.yaml"], "s.yaml:5:17: expression result too large: 1,000,000,011 items is over the limit "
         f"of 100,000; {raise_hint('expr_items')}"),
    Case("layers_listed", {"s.yaml": layers("  - relu\n" * 1001)}, ["check", "s.yaml"],
         f"s.yaml:1005:5: the network has too many layers: over the limit of 1,000 layers; {raise_hint('layers')}",
         env={"ARCHC_LIMITS": "layers=1000"}),
    # -- wrong output ---------------------------------------------------------------------------
]
