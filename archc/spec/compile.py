"""Spec text -> Network: validate, apply the variant and overrides, expand, infer."""
from __future__ import annotations

from typing import Any, Mapping

import yaml

from archc.errors import SpecError, did_you_mean
from archc.ir.graph import Network
from archc.perf import paused_gc
from archc.spec.blocks import BlockTable
from archc.spec.network import network_from
from archc.spec.expr import resolve
from archc.spec.load import Source
from archc.spec.schema import SpecModel, parse_shape, validate


def parse_override(text: str) -> tuple[str, Any]:
    """`--set k=v`: v is read as a YAML scalar/list (so 10 is an int, 0.5 a float, [1,2] a list)."""
    if "=" not in text:
        raise SpecError(f"--set expects NAME=VALUE, got '{text}'")
    key, _, raw = text.partition("=")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw


def compile_source(src: Source, variant: str | None = None, overrides: Mapping[str, Any] | None = None,
                   input: Any = None) -> Network:
    spec = validate(SpecModel, src.tree, src, ())
    env = dict(spec.vars)
    shape = spec.input
    if variant is not None:
        if variant not in spec.variants:
            raise SpecError(f"unknown variant '{variant}'{did_you_mean(variant, spec.variants)}; "
                            f"variants: {', '.join(spec.variants) or 'none'}", src.loc(("variants",)))
        v = spec.variants[variant]
        for k in v.vars:
            if k not in env:
                raise SpecError(f"variant '{variant}' sets unknown var '{k}'{did_you_mean(k, env)}",
                                src.loc(("variants", variant, "vars", k), key=True))
        env.update(v.vars)
        shape = v.input or shape
    for k, value in (overrides or {}).items():
        if k not in env:
            raise SpecError(f"--set {k}: no var named '{k}'{did_you_mean(k, env)}; "
                            f"vars: {', '.join(env) or 'none'}", src.loc(("vars",), key=True))
        env[k] = value
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
    if variant is not None and spec.variants[variant].train:
        net.train = {**spec.train, **spec.variants[variant].train}
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
