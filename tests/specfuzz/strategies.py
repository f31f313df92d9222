"""Hypothesis strategies for specs: networks generated from the spec grammar, and the shipped
specs mutated structurally (a node replaced, removed, copied, wrapped, nested deep, given a
wiring key or an extreme value), written as YAML or TOML and sometimes damaged as text."""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import tomli_w
import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "archc" / "zoo"
SMALL = [*sorted((ROOT / "tests" / "specs").glob("*.yaml")), ZOO / "lenet5.yaml", ZOO / "digits_cnn.yaml",
         *sorted((ZOO / "textbook").glob("*.yaml"))]
LARGE = [p for p in sorted(ZOO.glob("*.yaml"))]
SUPPORT = {"common_blocks.yaml": ROOT / "tests" / "specs" / "common_blocks.yaml",
           "ref.yaml": ROOT / "tests" / "specs" / "lenet5.yaml",
           # the zoo's shared block files, so that mutants of the specs that use them get past `use:`
           **{f"blocks/{p.name}": p for p in sorted((ZOO / "blocks").glob("*.yaml"))}}


def read_tree(path: Path):
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


SEEDS_SMALL = [(p.name, read_tree(p)) for p in SMALL if p.name != "common_blocks.yaml"]
SEEDS_LARGE = [(p.name, read_tree(p)) for p in LARGE]

OPS = ["relu", "conv", "linear", "bn", "maxpool", "avgpool", "gap", "flatten", "dropout", "add", "concat",
       "mul", "conv_transpose", "upsample", "pad", "dwconv", "sepconv", "conv_bn", "se", "layernorm",
       "groupnorm", "lrn", "softmax", "reshape", "split", "channel_shuffle", "adaptive_avgpool", "identity",
       "scale", "prelu", "drop_path", "tanh", "sigmoid", "permute", "layer_scale"]
ARGS = ["out", "k", "stride", "pad", "dilation", "groups", "bias", "p", "scale", "size", "dims", "dim",
        "shape", "mode", "index", "parts", "mult", "act", "squeeze", "eps", "output_padding", "ceil_mode",
        "over", "value"]
WIRING = ["name", "id", "from", "repeat", "first", "when"]
EXPRS = ["${i}", "${i + 1}", "${c_in}", "${c_in * 2}", "${h_in // 2}", "${num_classes}", "${1/0}", "${'a' * 10 ** 6}",
         "${[1] * 100000}", "${len([[0] * 1000] * 1000)}", "${'%0999999999d' % 1}", "${round(5, -10 ** 9)}",
         "${10 ** 10 ** 10}", "${2 ** 62 * 4}", "${max([])}", "${make_divisible(c_in * 0.5, 0)}", "${sqrt(-1)}",
         "${[c_in, 3][i]}", "${true if i else false}", "${i % 2 == 0}", "${x.y}", "${(lambda: 1)()}",
         "${" + "-" * 1900 + "1}", "${" + "+".join(["1"] * 900) + "}", "${" + "(" * 150 + "1" + ")" * 150 + "}",
         "$num_classes", "$i", "$nope", "$$x", "${", "${}", "$", "conv${i + 1}", "${'a' in 'abc'}", "${-i}",
         "${float('inf')}", "${int(1e300)}", "${[[1, 2], [3]]}", "${not i}", "${ceil(1e308 * 10)}",
         "${[j for j in range(10 ** 9)]}", "${[j * k for j in range(10 ** 4) for k in range(10 ** 4)]}",
         "${sum([[j] for j in range(50000)], [])}", "${log(0)}", "${exp(10 ** 4)}", "${[i for i in range(3)]}",
         "${[c_in // (j + 1) for j in range(3)][i % 3]}", "${log2(c_in)}", "${range(c_in)}", "${sum(range(i + 2))}",
         "${[a for a, b in [[1, 2]]]}", "${sum(j for j in [1])}", "${[[j] * 1000 for j in range(1000)]}"]
STRINGS = ["", "a", "x", "input", "self", "forward", "class", "a\n", "\ud800", "a-b", "1abc", "é", "\x00", "\t",
           "same", "valid", "auto", "none", "add", "concat", "3x224x224", "3x0x0", "a" * 5000, "../../etc/passwd",
           "/dev/zero", "blocks/resnet.yaml", "common_blocks.yaml", "spec.yaml", "ref.yaml", "relu", "conv",
           "seq", "residual", "parallel", "layers", "int", "int | list", "str", "any", "x" * 300 + ".yaml",
           "last", "channels", "module_list", "convs"]
INTS = [0, 1, 2, 3, 4, 7, 8, 16, 64, 1000, -1, -2, 10 ** 4, 10 ** 6, 2 ** 31, 2 ** 62, 2 ** 63 - 1, 2 ** 63,
        -(2 ** 63), 10 ** 30]
FLOATS = [0.0, 0.5, -0.5, 1.5, 1e-9, 1e308, float("inf"), float("-inf"), float("nan")]


def scalars():
    return st.one_of(st.sampled_from(INTS), st.sampled_from(FLOATS), st.sampled_from(STRINGS),
                     st.sampled_from(EXPRS), st.sampled_from(OPS), st.booleans(), st.none(),
                     st.integers(-5, 300), st.text(max_size=8))


def values(depth: int = 2):
    if depth <= 0:
        return SCALARS
    inner = values(depth - 1)
    return st.one_of(SCALARS, st.lists(inner, max_size=4),
                     st.dictionaries(st.sampled_from(ARGS + WIRING + OPS + ["body", "shortcut", "branches",
                                                                            "merge", "layers", "params"]),
                                     inner, max_size=3))


# built once: making strategies costs more than drawing from them
SCALARS = scalars()
VALUES = values()
WIRING_VALUES = {k: st.one_of(st.sampled_from(v), SCALARS) for k, v in {
    "repeat": [0, 1, 2, 3, "${i}", 20000], "when": ["${i != 1}", True, "${c_in > 4}", 1],
    "id": ["a", "b", "input", "a\n"], "from": ["a", "input", ["a", "b"], {}], "first": [{"stride": 2}, 5],
    "name": ["n1", "layer${i + 1}", "forward", "1"]}.items()}
ARGS_OF_OP = st.one_of(st.none(), st.sampled_from([1, 2, 3, 8, 16, 0.5, [1, 2, 0], [2, 0, 1], [0]]),
                       st.dictionaries(st.sampled_from(ARGS), st.one_of(st.integers(0, 9), SCALARS), max_size=3))


def deep(depth: int, kind: str):
    """A nest `depth` levels deep: seqs, lists or mappings."""
    node = "relu"
    for _ in range(depth):
        node = {"seq": [node]} if kind == "seq" else [node] if kind == "list" else {"a": node}
    return node


@st.composite
def layer(draw, depth: int = 2):
    """One layer item of the spec grammar."""
    kind = draw(st.sampled_from(OPS + ["block"] + (["seq", "residual", "parallel"] if depth > 0 else [])))
    if kind == "seq":
        item = {"seq": draw(st.lists(LAYERS[depth - 1], min_size=1, max_size=3))}
    elif kind == "residual":
        item = {"residual": {"body": draw(st.lists(LAYERS[depth - 1], min_size=1, max_size=3)),
                             "shortcut": draw(st.sampled_from([None, "auto", "none"]))}}
        if item["residual"]["shortcut"] is None:
            del item["residual"]["shortcut"]
    elif kind == "parallel":
        item = {"parallel": {"branches": draw(st.lists(st.lists(LAYERS[depth - 1], min_size=1, max_size=2),
                                                       min_size=1, max_size=3)),
                             "merge": draw(st.sampled_from(["concat", "add", "mul"]))}}
        if draw(st.booleans()):
            item["parallel"]["module_list"] = draw(st.sampled_from(["convs", "branches", "a b", 3, None]))
    elif kind == "block":
        item = {"unit": {"width": draw(st.sampled_from([4, 8, "${c_in}", 0]))}}
    else:
        item = {kind: draw(ARGS_OF_OP)}
    for key in draw(st.lists(st.sampled_from(WIRING), max_size=2, unique=True)):
        item[key] = draw(WIRING_VALUES[key])
    return item


LAYERS = [layer(0), layer(1), layer(2)]


@st.composite
def generated(draw):
    """A network written from the grammar: vars, a block, layers, perhaps outputs and train."""
    tree = {"archc": 1, "name": draw(st.sampled_from(["net", "n_1", "x-y", "_", "Net"])),
            "input": draw(st.sampled_from([[3, 16, 16], [1, 8, 8], [8], [4, 12], [3, 1, 1], "3x16x16", [2, 4, 4, 4]])),
            "vars": {"num_classes": draw(st.sampled_from([10, 1, 0, "${2 * 5}"]))},
            "blocks": {"unit": {"params": {"width": "int"},
                                "layers": draw(st.lists(LAYERS[1], min_size=1, max_size=3))}},
            "layers": draw(st.lists(LAYERS[2], min_size=1, max_size=6))}
    if draw(st.booleans()):
        tree["layers"] += [{"flatten": None}, {"linear": "$num_classes"}]
    if draw(st.integers(0, 9)) == 0:
        tree["outputs"] = draw(st.sampled_from([["a"], [{"id": "a", "train_only": True}], [[]], [{}]]))
    if draw(st.integers(0, 9)) == 0:
        tree["train"] = draw(st.dictionaries(st.sampled_from(["lr", "epochs", "optimizer", "bogus"]), SCALARS,
                                             max_size=2))
    return tree


def paths(tree, prefix=()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += paths(v, prefix + (i,))
    return out


def get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


MUTATIONS = ["replace", "delete", "copy", "wrap", "deep", "wiring", "rename", "swap", "grow"]


@st.composite
def mutated(draw, seeds):
    name, seed = draw(st.sampled_from(seeds))
    tree = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        every = paths(tree)
        path = draw(st.sampled_from(every))
        what = draw(st.sampled_from(MUTATIONS))
        parent, key = (get(tree, path[:-1]), path[-1]) if path else (None, None)
        node = get(tree, path)
        if what == "replace" and parent is not None:
            parent[key] = draw(VALUES)
        elif what == "delete" and parent is not None:
            del parent[key]
        elif what == "copy" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(node))
        elif what == "wrap" and parent is not None:
            parent[key] = draw(st.sampled_from([[node], {"seq": [node]}, {"x": node}, {"repeat": 2, "relu": node}]))
        elif what == "deep" and parent is not None:
            parent[key] = deep(draw(st.sampled_from([30, 60, 99, 120, 400])), draw(st.sampled_from(["seq", "list", "map"])))
        elif what == "wiring" and isinstance(node, dict):
            node[draw(st.sampled_from(WIRING))] = draw(SCALARS)
        elif what == "rename" and parent is not None and isinstance(parent, dict):
            parent[draw(st.sampled_from(WIRING + OPS + ARGS + ["use", "blocks", "vars"]))] = parent.pop(key)
        elif what == "swap":
            other = draw(st.sampled_from(every))
            if path and other and path[:len(other)] != other and other[:len(path)] != path:
                a, b = get(tree, other[:-1]), other[-1]
                parent[key], a[b] = copy.deepcopy(a[b]), copy.deepcopy(node)
        elif what == "grow" and isinstance(node, list) and node:
            # many copies of a small item (a long list of layers); a big item only a few times
            times = draw(st.sampled_from([1, 10, 1000])) if len(repr(node[0])) < 200 else 2
            node.extend([copy.deepcopy(node[0]) for _ in range(times)])
    return f"mutant of {name}", tree


# -- writing ---------------------------------------------------------------------------------

def _toml_plain(x):
    """What TOML can hold: no nulls (dropped from tables, text in arrays), string keys, no
    lone surrogates."""
    if isinstance(x, dict):
        return {str(k).encode("utf-8", "replace").decode(): _toml_plain(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_toml_plain(v) if v is not None else "null" for v in x]
    if isinstance(x, str):
        return x.encode("utf-8", "replace").decode()
    return x


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write(tree, fmt: str) -> str:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20_000))      # the writers recurse; the deep nests are on purpose
    try:
        if fmt == "toml":
            plain = _toml_plain(tree) if isinstance(tree, dict) else {"value": _toml_plain(tree)}
            return tomli_w.dumps(plain)
        try:
            return yaml.dump(tree, Dumper=DUMPER, sort_keys=False, allow_unicode=True, width=120)
        except UnicodeEncodeError:      # libyaml cannot write a lone surrogate; PyYAML escapes it
            return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=120)
    finally:
        sys.setrecursionlimit(old)


@st.composite
def damaged(draw, text: str) -> str:
    """Text edits: a span cut, repeated or replaced by characters that matter to parsers."""
    for _ in range(draw(st.integers(1, 3))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = min(len(text), i + draw(st.integers(0, 40)))
        edit = draw(st.sampled_from(["cut", "repeat", "insert"]))
        if edit == "cut":
            text = text[:i] + text[j:]
        elif edit == "repeat":
            text = text[:j] + text[i:j] * draw(st.sampled_from([2, 50])) + text[j:]
        else:
            text = text[:i] + draw(st.text(alphabet="{}[]:,-&*!|>'\"\n\t #$%=.0123456789", max_size=6)) + text[i:]
    return text


@dataclass
class Case:
    origin: str          # 'generated', or the seed it mutates
    fmt: str             # 'yaml' | 'toml'
    text: str


@st.composite
def cases(draw, seeds=SEEDS_SMALL):
    origin, tree = draw(st.one_of(generated().map(lambda t: ("generated", t)), mutated(seeds)))
    fmt = draw(st.sampled_from(["yaml", "yaml", "toml"]))
    try:
        text = write(tree, fmt)
    except (ValueError, TypeError, RecursionError, yaml.YAMLError):
        fmt, text = "yaml", write(tree, "yaml")
    if draw(st.integers(0, 7)) == 0:
        text = draw(damaged(text))
    return Case(origin, fmt, text)
