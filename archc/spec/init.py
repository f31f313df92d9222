"""Reading `init:` (a preset, rules, and a layer's own tensors) into the IR's rules and schemes,
every mistake located. Keras's and Paddle's initialiser names are accepted as aliases."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from archc.errors import did_you_mean
from archc.ir.init import CHOICES, FAN_AVG, REQUIRED, SCHEMES, InitSpec, Rule, Scheme
from archc.ops.base import KINDS
from archc.spec.layers import At


@dataclass(frozen=True)
class Alias:
    """Another framework's name for a scheme: its param names, its own defaults, fixed params."""
    scheme: str
    rename: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    derive: Callable[[dict], dict] | None = None


def two_sigma(p: dict) -> dict:
    """Keras's TruncatedNormal cuts at two standard deviations around the mean."""
    mean, std = p.get("mean", 0.0), p["std"]
    return {**p, "a": mean - 2 * std, "b": mean + 2 * std}


def vs(scale: float, mode: str, distribution: str) -> Alias:
    return Alias("variance_scaling", fixed={"scale": scale, "mode": mode, "distribution": distribution})


ALIASES: dict[str, Alias] = {
    # Keras (keras.initializers)
    "glorot_uniform": Alias("xavier_uniform"),
    "glorot_normal": vs(1.0, "fan_avg", "truncated_normal"),
    "he_normal": vs(2.0, "fan_in", "truncated_normal"),
    "he_uniform": vs(2.0, "fan_in", "uniform"),
    "lecun_normal": vs(1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": vs(1.0, "fan_in", "uniform"),
    "random_normal": Alias("normal", {"stddev": "std"}, {"std": 0.05}),
    "random_uniform": Alias("uniform", {"minval": "a", "maxval": "b"}, {"a": -0.05, "b": 0.05}),
    "truncated_normal": Alias("trunc_normal", {"stddev": "std"}, {"std": 0.05}, derive=two_sigma),
    # Paddle (paddle.nn.initializer)
    "Constant": Alias("constant"),
    "Normal": Alias("normal"),
    "TruncatedNormal": Alias("trunc_normal"),
    "Uniform": Alias("uniform", {"low": "a", "high": "b"}, {"a": -1.0, "b": 1.0}),
    "XavierUniform": Alias("xavier_uniform"),
    "XavierNormal": Alias("xavier_normal"),
    "KaimingNormal": Alias("kaiming_normal", {"negative_slope": "a"}, {"nonlinearity": "relu"}, {"mode": "fan_in"}),
    "KaimingUniform": Alias("kaiming_uniform", {"negative_slope": "a"}, {"nonlinearity": "relu"}, {"mode": "fan_in"}),
    "Orthogonal": Alias("orthogonal"),
}

# Whole frameworks' defaults, as rules over PyTorch's (BatchNorm, LayerNorm and PReLU start the
# same in Paddle; Keras's PReLU starts at zero).
PRESETS: dict[str, tuple[str, list[tuple[tuple[str, ...], dict[str, str]]]]] = {
    "torch": ("", []),
    "paddle": ("Paddle's default initialisation", [
        (("conv",), {"weight": "paddle_conv", "bias": "zeros"}),
        (("conv_transpose", "linear"), {"weight": "xavier_uniform", "bias": "zeros"})]),
    "keras": ("Keras's default initialisation", [
        (("conv", "conv_transpose", "linear"), {"weight": "xavier_uniform", "bias": "zeros"}),
        (("prelu",), {"weight": "zeros"})]),
}
RULE_KEYS = ("op", "name", "when")


def scheme(raw: Any, at: At) -> Scheme:
    """`zeros` | `0.5` (a constant) | `{normal: {std: 0.01}}` | `{normal: 0.01}` (its main param)."""
    if isinstance(raw, bool):
        raise at.error(f"expected an init scheme (zeros, {{normal: {{std: 0.01}}}}, ...), got {raw!r}")
    if isinstance(raw, (int, float)):
        return Scheme("constant", (("value", raw),), at)
    if isinstance(raw, str):
        name, params, p_at = raw, {}, at
    elif isinstance(raw, dict) and len(raw) == 1:
        name, params = next(iter(raw.items()))
        p_at = at / name
        params = {} if params is None else params
    else:
        raise at.error(f"expected an init scheme: a name (zeros) or one-key mapping "
                       f"({{normal: {{std: 0.01}}}}), got {raw!r}")
    name = str(name)
    alias = ALIASES.get(name)
    canonical = alias.scheme if alias else name
    if canonical not in SCHEMES:
        known = list(SCHEMES) + list(ALIASES)
        raise (p_at if p_at is not at else at).error(
            f"unknown init scheme '{name}'{did_you_mean(name, known)}; known: {', '.join(SCHEMES)} "
            f"(and Keras/Paddle names such as he_normal, XavierUniform)", key=p_at is not at)
    sdef = SCHEMES[canonical]
    if not isinstance(params, dict):
        short = sdef.short if alias is None else next((k for k, v in alias.rename.items() if v == sdef.short), sdef.short)
        if short is None or (alias and sdef.short in alias.fixed):
            raise p_at.error(f"'{name}' takes named params ({', '.join(param_names(name, alias, sdef)) or 'none'}), "
                             f"got {params!r}")
        params = {short: params}
    return Scheme(canonical, tuple(checked_params(name, alias, sdef, params, p_at).items()), at)


def param_names(name: str, alias: Alias | None, sdef) -> list[str]:
    back = {v: k for k, v in alias.rename.items()} if alias else {}
    fixed = alias.fixed if alias else {}
    return [back.get(p, p) for p in sdef.params if p not in fixed]


def checked_params(name: str, alias: Alias | None, sdef, given: dict, at: At) -> dict:
    allowed = param_names(name, alias, sdef)
    out = dict(alias.defaults) if alias else {}
    for key, value in given.items():
        if key not in allowed:
            raise (at / key).error(f"'{name}' has no param '{key}'{did_you_mean(str(key), allowed)}; "
                                   f"params: {', '.join(allowed) or 'none'}", key=True)
        canon = alias.rename.get(key, key) if alias else key
        default = sdef.params[canon]
        if canon in CHOICES:
            choices = CHOICES[canon] + (("fan_avg",) if canon == "mode" and alias is None
                                        and name in FAN_AVG else ())
            if value not in choices:
                raise (at / key).error(f"'{key}' must be one of {', '.join(choices)}, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise (at / key).error(f"'{key}' must be a number, got {value!r}")
        elif default is not REQUIRED:
            value = float(value)
        out[canon] = value
    if alias:
        out.update(alias.fixed)
        if alias.derive:
            out = alias.derive({**{k: v for k, v in sdef.params.items() if v is not REQUIRED}, **out})
    missing = [p for p, v in sdef.params.items() if v is REQUIRED and p not in out]
    if missing:
        raise at.error(f"'{name}' needs {', '.join(missing)}")
    # only what differs from the scheme's own defaults is kept (and written in generated code)
    return {k: v for k, v in out.items() if sdef.params.get(k) is REQUIRED or v != sdef.params.get(k)}


def tensors_of(raw: dict, at: At, allowed: dict[str, Any] | None, what: str) -> dict[str, Scheme]:
    """`{weight: ..., bias: ...}` -> tensor name -> Scheme; names checked against `allowed`."""
    out = {}
    for tname, value in raw.items():
        tname = str(tname)
        if allowed is not None and tname not in allowed:
            raise (at / tname).error(f"{what} has no tensor '{tname}'{did_you_mean(tname, allowed)}; "
                                     f"tensors: {', '.join(allowed) or 'none'}", key=True)
        out[tname] = scheme(value, at / tname)
    return out


def rule(raw: Any, at: At) -> Rule:
    if not isinstance(raw, dict):
        raise at.error(f"an init rule is a mapping such as {{op: conv, weight: kaiming_normal}}, got {raw!r}")
    kinds = as_list(raw.get("op"), at / "op")
    names = as_list(raw.get("name"), at / "name")
    for j, k in enumerate(kinds):
        if k not in KINDS:
            where = at / "op" / j if isinstance(raw.get("op"), list) else at / "op"
            raise where.error(f"init rules select {', '.join(KINDS)}; got '{k}'{did_you_mean(k, KINDS)}")
    if not kinds and not names:
        raise at.error("an init rule needs 'op' (conv, linear, bn, ...) or 'name' (a layer path or glob) "
                       "to say which layers it starts")
    owned = {t for k in kinds for t in KINDS[k].tensors} if kinds else None
    what = f"{' / '.join(kinds)}" if kinds else "a layer"
    tensors = tensors_of({k: v for k, v in raw.items() if k not in RULE_KEYS}, at, owned, what)
    if not tensors:
        raise at.error("an init rule names no tensor: add e.g. 'weight: kaiming_normal'")
    return Rule(tuple(kinds), tuple(names), tensors, at)


def as_list(value, at: At) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise at.error(f"expected a name or a list of names, got {value!r}")
    return values


def rules(raw: Any, at: At) -> list[Rule]:
    """A list of rules (their `$` expressions already resolved); `when: false` drops a rule."""
    if not isinstance(raw, list):
        raise at.error(f"expected a list of init rules, got {raw!r}")
    out = []
    for j, r in enumerate(raw):
        if isinstance(r, dict) and "when" in r:
            if not isinstance(r["when"], bool):
                raise (at / j / "when").error(f"'when' must be true or false, got {r['when']!r}")
            if not r["when"]:
                continue
        out.append(rule(r, at / j))
    return out


def spec_init(raw: Any, at: At) -> InitSpec:
    """The spec's `init:`: a preset name, a list of rules, or {preset, rules}."""
    if raw is None:
        return InitSpec()
    if isinstance(raw, str):
        preset, body, b_at = raw, [], at
        p_at = at
    elif isinstance(raw, list):
        preset, body, b_at, p_at = "torch", raw, at, at
    elif isinstance(raw, dict):
        unknown = [k for k in raw if k not in ("preset", "rules")]
        if unknown:
            raise (at / unknown[0]).error(f"'init' takes 'preset' and 'rules', got '{unknown[0]}'"
                                          f"{did_you_mean(str(unknown[0]), ['preset', 'rules'])}", key=True)
        preset, body = raw.get("preset", "torch"), raw.get("rules", [])
        p_at, b_at = at / "preset", at / "rules"
    else:
        raise at.error(f"'init' is a preset ({', '.join(PRESETS)}), a list of rules, or {{preset, rules}}; "
                       f"got {raw!r}")
    if preset not in PRESETS:
        raise p_at.error(f"unknown init preset '{preset}'{did_you_mean(str(preset), PRESETS)}; "
                         f"presets: {', '.join(PRESETS)}")
    doc, preset_rules = PRESETS[preset]
    made = [Rule(kinds, (), {t: Scheme(s, (), p_at) for t, s in tensors.items()}, p_at)
            for kinds, tensors in preset_rules]
    return InitSpec(preset, made + rules(body, b_at), doc)
