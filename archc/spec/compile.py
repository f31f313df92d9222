"""Spec text -> Network: validate, apply the variant and overrides, expand, infer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from archc.errors import Location, SpecError, did_you_mean
from archc.limits import LimitError
from archc.ir.graph import Network
from archc.perf import paused_gc
from archc.spec.blocks import BlockTable
from archc.spec.network import network_from
from archc.spec.expr import resolve
from archc.spec.bounds import check_tree
from archc.spec.load import Source, load_text
from archc.spec.schema import SpecModel, parse_shape, validate


@dataclass(frozen=True)
class FlagValue:
    """A `--set` value as typed. It is read once the spec is known, so that a value past a limit
    is reported at the var it sets."""
    text: str


def parse_override(text: str) -> tuple[str, Any]:
    """`--set k=v`: v is read as a YAML scalar/list (so 10 is an int, 0.5 a float, [1,2] a list)."""
    if "=" not in text:
        raise SpecError(f"--set expects NAME=VALUE, got '{text[:200]}'")
    key, _, raw = text.partition("=")
    return key.strip(), FlagValue(raw)


def read_flag(text: str, name: str) -> Any:
    """A flag's value read as YAML (10 an int, [1, 2] a list); text that is not YAML stays text.
    A value past a limit (depth, size, a 5,000-digit integer) raises LimitError."""
    try:
        return load_text(text, name, "yaml").tree
    except LimitError:
        raise
    except SpecError:
        return text


def override_value(name: str, value: Any, loc: Location) -> Any:
    """A --set value, or a value from Python, within the limits on depth, size and integers."""
    try:
        if isinstance(value, FlagValue):
            return read_flag(value.text, f"--set {name}")
        check_tree(value, lambda path: loc)
        return value
    except LimitError as e:
        raise SpecError(f"--set {name}: {e.message}", loc) from None


def compile_source(src: Source, variant: str | None = None, overrides: Mapping[str, Any] | None = None,
                   input: Any = None) -> Network:
    spec = validate(SpecModel, src.tree, src, ())
    env = dict(spec.vars)
    shape = spec.input
    if variant is not None:
        if variant not in spec.variants:
            raise SpecError(f"unknown variant '{variant}'{did_you_mean(variant, spec.variants)}; "
                            f"variants: {', '.join(spec.variants) or 'none'}", src.loc(("variants",)))
    # every variant, not only the one built: the generated code has a builder for each
    for name, v in spec.variants.items():
        for k in v.vars:
            if k not in env:
                raise SpecError(f"variant '{name}' sets unknown var '{k}'{did_you_mean(k, env)}",
                                src.loc(("variants", name, "vars", k), key=True))
    if variant is not None:
        v = spec.variants[variant]
        env.update(v.vars)
        shape = v.input or shape
    for k, value in (overrides or {}).items():
        if k not in env:
            raise SpecError(f"--set {k}: no var named '{k}'{did_you_mean(k, env)}; "
                            f"vars: {', '.join(env) or 'none'}", src.loc(("vars",), key=True))
        env[k] = override_value(k, value, src.loc(("vars", k)))
    # vars may refer to earlier vars: `width: "${base * 2}"`
    for k in list(env):
        env[k] = resolve(env[k], env, src.loc(("vars", k)))
    declared = _shape(shape, env, src, "input")
    shape = declared if input is None else _shape(input, env, src, "--input")
    if len(shape) != len(declared):
        # a 2-d size on an image spec would silently build a Conv1d network
        raise SpecError(f"--input {'x'.join(map(str, shape))} has {len(shape)} dims but the spec's input "
                        f"{list(declared)} has {len(declared)}: give all {len(declared)} "
                        f"(e.g. {'x'.join(map(str, declared))})", src.loc(("input",)))
    blocks = BlockTable.build(spec.blocks, spec.use, src)
    with paused_gc():
        net = network_from(spec, src, env, blocks, tuple(shape), variant)
    # where each setting of `train:` was written, for the errors of `archc train`
    net.train_locs = {p[1:]: src.loc(p) for p in src.values if p[:1] == ("train",)}
    if variant is not None and spec.variants[variant].train:
        net.train = {**spec.train, **spec.variants[variant].train}
        net.train_locs.update({p[3:]: src.loc(p) for p in src.values
                               if p[:3] == ("variants", variant, "train") and len(p) > 3})
    return net


def _shape(shape, env: dict, src: Source, what: str) -> list[int]:
    shape = resolve(shape, env, src.loc(("input",))) if isinstance(shape, str) else shape
    try:
        shape = [int(resolve(d, env, src.loc(("input",)))) for d in parse_shape(shape)]
    except (ValueError, TypeError) as e:
        raise SpecError(f"{what}: {e}", src.loc(("input",))) from None
    if not 1 <= len(shape) <= 4 or any(d <= 0 for d in shape):
        raise SpecError(f"input must be 1 to 4 positive sizes ([F], [C, L], [C, H, W], [C, D, H, W]), "
                        f"got {shape}", src.loc(("input",)))
    return shape
