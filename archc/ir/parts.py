"""Parts of a network chosen by name: what `--freeze` and `--lr-scale` select, and what
`archc summary --freeze` marks. Static (no torch): patterns are matched against the state_dict
keys the emitted module will have (Network.state_dict_shapes), which are the scoped names.

A pattern is a scoped name or a glob of one (fnmatch: `*` crosses dots). It selects every tensor
whose key, or a dotted prefix of the key, it matches: `layer1` selects all of layer1,
`layer1.0.conv1` one conv, `features.*` everything under `features`, `*.bias` every bias,
`conv1` only the top-level conv1 (names are anchored at the network).

Two named parts, for any network: `head`, the last layer with parameters before each output
(ResNet's `fc`, VGG's `classifier.6`, GoogLeNet's `fc` and its auxiliary heads' `fc2`): what a
new `num_classes` replaces; and `backbone`, every other tensor. A network with a top-level
layer of that very name means the layer."""
from __future__ import annotations

from fnmatch import fnmatchcase

from archc.errors import SpecError, did_you_mean
from archc.ops.base import tensor_key

PARTS = ("backbone", "head")


def prefixes(key: str) -> list[str]:
    """'layer1.0.conv1.weight' -> ['layer1', 'layer1.0', 'layer1.0.conv1', 'layer1.0.conv1.weight']."""
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def head_nodes(net) -> list:
    """The last node with tensors on every path back from each output (training-only ones too)."""
    found, seen = [], set()
    stack = [node.index for _, node, _ in net.outputs if node is not None]
    while stack:
        i = stack.pop()
        if i < 0 or i in seen:
            continue
        seen.add(i)
        node = net.nodes[i]
        if node.tensors:
            found.append(node)
        else:
            stack.extend(node.inputs)
    return sorted(found, key=lambda n: n.index)


def part_keys(net, part: str) -> list[str]:
    head = {tensor_key(n.name, k) for n in head_nodes(net) for k in n.tensors}
    keys = list(net.state_dict_shapes())
    return [k for k in keys if (k in head) == (part == "head")]


def select(net, pattern: str) -> list[str]:
    """The state_dict keys `pattern` selects (see the module's doc)."""
    keys = list(net.state_dict_shapes())
    if pattern in PARTS and not any(k.split(".", 1)[0] == pattern for k in keys):
        return part_keys(net, pattern)
    return [k for k in keys if any(fnmatchcase(p, pattern) for p in prefixes(k))]


def resolve(net, patterns, flag: str = "--freeze") -> dict[str, list[str]]:
    """{pattern: keys} for each pattern; one that selects nothing is an error with the nearest
    scoped name."""
    out = {}
    for pattern in patterns:
        keys = select(net, pattern)
        if not keys:
            bare = [n.name for n in net.nodes if any(fnmatchcase(q, pattern) for q in prefixes(n.name))]
            if bare:
                raise SpecError(f"{flag} '{pattern}' matches only layers without parameters or buffers "
                                f"({', '.join(bare[:4])}{', ...' if len(bare) > 4 else ''}): nothing to "
                                f"{'freeze' if flag == '--freeze' else 'scale'}")
            names = sorted({p for k in net.state_dict_shapes() for p in prefixes(k)[:-1]})
            top = sorted({n.split(".")[0] for n in names})
            raise SpecError(f"{flag} '{pattern}' matches no layer with parameters or buffers in {net.name}"
                            f"{did_you_mean(pattern, names + list(PARTS))}: give scoped names such as "
                            f"{', '.join(top[:6])}{', ...' if len(top) > 6 else ''} (or globs of them: "
                            f"'{top[-1]}.*'), or a part: backbone, head")
        out[pattern] = keys
    return out


def split_patterns(values) -> list[str]:
    """Patterns from repeated flags and commas: ('conv1,bn1', 'layer1') -> [conv1, bn1, layer1]."""
    if values is None:
        return []
    values = [values] if isinstance(values, str) else values
    return [p.strip() for v in values for p in str(v).split(",") if p.strip()]


def frozen_keys(net, patterns) -> set[str]:
    """Every state_dict key the freeze patterns select (parameters and buffers)."""
    return {k for keys in resolve(net, split_patterns(patterns)).values() for k in keys}


def frozen_params(net, patterns) -> dict[str, int]:
    """Node name -> number of its trainable parameters that the patterns freeze (nodes with any)."""
    keys = frozen_keys(net, patterns)
    out = {}
    for n in net.nodes:
        count = sum(t.numel for k, t in n.tensors.items() if t.trainable and tensor_key(n.name, k) in keys)
        if count:
            out[n.name] = count
    return out
