"""The spec's init rules read for the generated code (archc.emit.init writes them): what they say
for every value of the vars, not only the compiled one. A rule's `when:` over the vars is kept
as a condition, scheme params written as expressions of the vars keep their expressions, every
block with a class gets its rules; the module classes the file can build, and which of their
tensors some constructor may leave out (`bias=False`), are recorded as the layers are written."""
from __future__ import annotations

import ast
from typing import Any

from archc.emit.init import Written
from archc.emit.sym import Named, Sym, is_const, name, plain
from archc.emit.values import Env, sym
from archc.ir.init import SCHEMES, Rule
from archc.ops.base import Ctor
from archc.spec.init import ALIASES, rule, spec_init
from archc.spec.layers import At

# constructor args that decide whether a module has some of its tensors
OPTIONAL = {"bias": ("bias",), "affine": ("weight", "bias"), "elementwise_affine": ("weight", "bias"),
            "track_running_stats": ("running_mean", "running_var", "num_batches_tracked")}


def record_module(em, ctor: Ctor, tensors: dict) -> None:
    """Note the torch classes an op's module holds tensors in, and for each tensor its
    constructor may leave out, whether it does always (False), never (True) or by the vars (None)."""
    classes = {t.module for t in tensors.values() if t.module}
    em.built.update(classes)
    for key, value in ctor.args:
        if key not in OPTIONAL:
            continue
        if isinstance(value, Sym):
            state = bool(plain(value)) if value.node is not None and is_const(value.node) else None
        elif isinstance(value, bool):
            state = value
        else:
            state = None                  # chosen by a condition
        for cls in classes:
            for t in OPTIONAL[key]:
                em.presence.setdefault((cls, t), set()).add(state)


def written(em) -> Written:
    """Written for the network of an emission (every block translated already)."""
    env = Env({v: Named(val, name(v)) for v, val in em.vars.items()})
    concrete = dict(em.net.vars)
    at = At(em.src, ("init",))
    raw = em.spec.init
    body, b_at = [], at
    if isinstance(raw, list):
        body, raw = raw, None
    elif isinstance(raw, dict):
        body, b_at = raw.get("rules", []) or [], at / "rules"
        raw = {k: v for k, v in raw.items() if k != "rules"}
    head = spec_init(resolve(raw, concrete, at), at)           # the preset's rules
    w = Written(list(head.rules), [], built=em.built, presence=em.presence,
                preset_doc=head.preset_doc, preset=head.preset)
    w.rules += read_rules(body, b_at, concrete, env, w)
    for block in outer_first(em):
        bdef, bat = em.blocks.defs[block]
        rules = read_rules(bdef.init or [], bat / "init", concrete, env, w)
        w.blocks.append((block, em.class_name(block), rules))
    return w


def resolve(raw: Any, env: dict, at: At) -> Any:
    from archc.spec.expand import resolve_tree
    return resolve_tree(raw, env, at)


def read_rules(raws: Any, at: At, concrete: dict, env: Env, w: Written) -> list[Rule]:
    """Each rule as the compiled spec reads it, but with a `when` over the vars kept aside as
    a condition (a rule whose `when` is false for every value is dropped)."""
    if not isinstance(raws, list):
        return []
    out = []
    for j, raw in enumerate(raws):
        r_at = at / j
        cond = None
        if isinstance(raw, dict) and "when" in raw:
            s = sym(raw["when"], env, r_at / "when")
            node = getattr(s, "node", None)
            if node is None or is_const(node):
                if not plain(s):
                    continue
            else:
                cond = node
            raw = {k: v for k, v in raw.items() if k != "when"}
        one = rule(resolve(raw, concrete, r_at), r_at)
        if cond is not None:
            w.conds[id(one)] = cond
        for tname, scheme in one.tensors.items():
            exprs = param_exprs(raw.get(tname) if isinstance(raw, dict) else None, env, r_at / tname)
            if exprs:
                w.params[id(scheme)] = exprs
        out.append(one)
    return out


def param_exprs(raw: Any, env: Env, at: At) -> dict[str, ast.expr]:
    """Scheme params written as expressions of the vars (`uniform: {a: "${-1 / sqrt(n)}"}`)."""
    def expr(v):
        if not isinstance(v, str) or "$" not in v:
            return None
        node = getattr(sym(v, env, at), "node", None)
        return None if node is None or is_const(node) else node
    if isinstance(raw, str):
        node = expr(raw)
        return {"value": node} if node is not None else {}
    if not isinstance(raw, dict) or len(raw) != 1:
        return {}
    sname, params = next(iter(raw.items()))
    alias = ALIASES.get(str(sname))
    canonical = alias.scheme if alias else str(sname)
    if canonical not in SCHEMES or (alias and alias.derive):     # derived params: written as computed
        return {}
    if not isinstance(params, dict):
        node = expr(params)
        return {SCHEMES[canonical].short: node} if node is not None and SCHEMES[canonical].short else {}
    out = {}
    for k, v in params.items():
        node = expr(v)
        if node is not None:
            out[alias.rename.get(k, k) if alias else k] = node
    return out


def outer_first(em) -> list[str]:
    """Block names, each before the blocks whose classes its class builds (their rules run later
    and win, as in the static plan), else in the order they were first met."""
    order = list(em.first_seen)
    done: list[str] = []
    while len(done) < len(order):
        ready = next((b for b in order if b not in done and em.inside.get(b, set()) - {b} <= set(done)),
                     next(b for b in order if b not in done))
        done.append(ready)
    return done

