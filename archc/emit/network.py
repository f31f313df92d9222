"""The network class: the spec's vars as constructor arguments (the spec's values as defaults,
tables as module constants, vars defined by expressions computed when not given), its layers
and outputs; and a builder function per variant, as torchvision's builders are."""
from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass, field
from typing import Any

from archc.emit.body import Writer
from archc.emit.classes import Parts, Text, doc_lines, forward_lines, render_class
from archc.emit.code import INDENT, Code, call, literal
from archc.emit.entries import FALSE, TRUE
from archc.emit.scope import ClassState, Names, T, emit_error
from archc.emit.sym import Named, make, name, plain, text
from archc.emit.values import Env, condition, sym
from archc.spec.expand import shape_facts
from archc.spec.expr import resolve
from archc.spec.layers import At, explicit_names, reads_input


@dataclass
class Root:
    name: str
    text: str
    constants: list[str] = field(default_factory=list)      # module-level tables
    const_names: dict[str, str] = field(default_factory=dict)   # var -> constant name


def is_expression(raw) -> bool:
    return isinstance(raw, str) and "$" in raw and not raw.startswith("$$")


def root_class(em) -> Root:
    """The network class; where the spec says how weights start, its `_init_weights` method,
    called at the end of `__init__` (written once every block has its class)."""
    net, spec = em.net, em.spec
    shape = net.input
    cls = docstring_name(net)
    root = Root(cls, "")
    names = {v: Named(val, name(v)) for v, val in em.vars.items()}
    names["c_in"] = Named(shape[0], ast.Constant(shape[0]))
    for k, v in shape_facts(shape).items():
        if k != "c_in":
            names[k] = Named(v, None, True, name(k))
    env = Env(names)
    st = ClassState(env, root=True)
    w = Writer(em, st)
    params, derived = [], Code(3)
    for k, raw in spec.vars.items():
        if not k.isidentifier() or keyword.iskeyword(k) or k in ("self", "super", "nn", "torch", "F"):
            raise emit_error(em.src.loc(("vars", k)), f"var '{k}' cannot be a Python argument name")
        if is_expression(raw):
            params.append((k, None))
            s = sym(raw, Env({v: names[v] for v in spec.vars if v != k}), At(em.src, ("vars", k)))
            derived.lines.append(f"{INDENT * 2}if {k} is None:")
            derived.assign(k, s.node)
        elif isinstance(raw, (list, dict)):
            const = k.upper() if k.upper() != k else f"{k}_DEFAULT"
            root.constants.append(f"{const} = {literal(raw)}")
            root.const_names[k] = const
            params.append((k, Text(const)))
        else:
            params.append((k, raw))
    at = At(em.src, ("layers",))
    sc = Names(explicit_names(spec.layers, at))
    if reads_input(spec.layers):
        sc.chain_var = "h"
        sc.vars.add("h")
    x = T("x", (make(shape[0], ast.Constant(shape[0])), *w.spatial(shape[1:])))
    sc.ids["input"] = x
    last = w.chain(sc, spec.layers, at, x, sc.chain_var, env)
    outs = outputs(spec.outputs, sc, last, env, At(em.src, ("outputs",)))
    mark_train_only(st, outs)
    doc = (net.doc or net.name).rstrip()
    doc += "" if doc.endswith((".", "!", "?")) else "."
    parts = Parts("nn.Module", f"{doc} Input: [N, {', '.join(map(str, spec_input(em)))}].")
    parts.params = params
    parts.init = derived.lines + st.init.lines
    parts.forward = forward_lines(st, returns(st, outs))
    em.store_constants(st, parts)
    init = em.weights_init()
    if init is not None:        # the vars it reads are its arguments
        args = ", ".join(init.reads)
        parts.init_tail = [f"{INDENT * 2}self._init_weights({args})"]
        parts.extra_methods = ["\n".join([f"def _init_weights({', '.join(['self', *init.reads])}):",
                                          *(INDENT + ln for ln in init.lines)])]
    root.text = render_class(cls, parts)
    return root


def docstring_name(net) -> str:
    from archc.emit.classes import camel
    return camel(net.name)


def spec_input(em):
    return em.spec.input if isinstance(em.spec.input, list) else em.net.input


def outputs(raw, sc: Names, last: T, env: Env, at: At) -> list[tuple[str, bool, ast.expr]]:
    """(variable, training only, condition) of each output, as the spec lists them."""
    if raw is None:
        return [(last.var, False, TRUE)]
    out = []
    for j, o in enumerate(raw):
        o_at = at / j
        cond, train = TRUE, False
        if isinstance(o, dict):
            unknown = set(o) - {"id", "name", "train_only", "when"}
            if unknown or "id" not in o:
                raise o_at.error("an output is an id, or a mapping {id, name, train_only, when}")
            if "when" in o:
                _, cond = condition(o["when"], env, o_at / "when")
                if cond is FALSE or (isinstance(cond, ast.Constant) and cond.value is False):
                    continue
            ident, train = o["id"], bool(o.get("train_only", False))
        else:
            ident = o
        if ident not in sc.ids:
            from archc.errors import did_you_mean
            raise o_at.error(f"unknown output id '{ident}'{did_you_mean(ident, sc.ids)}")
        out.append((sc.ids[ident].var, train, cond))
    return out


def mark_train_only(st: ClassState, outs) -> None:
    """Steps that only training-time outputs need run only in training."""
    live = {v for v, train, _ in outs if not train}
    for s in reversed(st.steps):
        if s.dst in live:
            if not s.guarded:
                live.discard(s.dst)
            live |= set(s.srcs)
        else:
            s.train_only = True


def returns(st: ClassState, outs) -> list[str]:
    evals = [(v, c) for v, train, c in outs if not train]
    trains = [(v, c) for v, train, c in outs if train]
    if any(c is not TRUE for _, c in evals):
        raise emit_error(None, "an inference output that exists only in some variants")
    ret = evals[0][0] if len(evals) == 1 else f"({', '.join(v for v, _ in evals)})"
    if not trains:
        return [f"return {ret}"]
    conds = {text(c) for _, c in trains}
    if len(conds) > 1:
        raise emit_error(None, "training-time outputs with different 'when' conditions")
    cond = trains[0][1]
    guard = "self.training" if cond is TRUE else f"{st.forward_text(cond)} and self.training"
    every = ", ".join(v for v, _, _ in outs)
    return [f"if {guard}:", f"{INDENT}return ({every})", f"return {ret}"]


# -- vars passed, builders ------------------------------------------------------------------------

def default_vars(spec, overrides: dict | None = None) -> dict[str, Any]:
    env = dict(spec.vars)
    env.update(overrides or {})
    for k in list(env):
        env[k] = resolve(env[k], env)
    return env


def passed_vars(net) -> dict[str, Any]:
    """The constructor arguments that build `net`: its vars that differ from what the class
    would compute from its defaults (and from the other arguments)."""
    spec = net.definition.spec
    given = {k: v for k, v in net.vars.items() if not is_expression(spec.vars.get(k))
             and not same(v, spec.vars.get(k))}
    env = default_vars(spec, given)
    for k, v in net.vars.items():
        if not same(env[k], v):
            given[k] = v
    return {k: given[k] for k in spec.vars if k in given}


def same(a, b) -> bool:
    return type(a) is type(b) and a == b


def function_name(em, variant: str) -> str:
    for zname, entry in em.spec.zoo.items():
        if entry.variant == variant:
            return zname.replace("-", "_")
    base = em.net.name.replace("-", "_")
    return variant if variant.startswith(base) else f"{base}_{variant}"


def variant_args(em, root: Root, v) -> list[str]:
    names = {}
    defaults = default_vars(em.spec)
    for k in em.spec.vars:
        node = name(root.const_names[k]) if k in root.const_names else ast.Constant(defaults[k])
        names[k] = Named(defaults[k], node)
    env = Env(names)
    out = []
    for k, raw in v.vars.items():
        s = sym(raw, env, At(em.src, ("variants",)))
        out.append(f"{k}={text(s.node) if getattr(s, 'node', None) is not None else literal(plain(s))}")
    return out


def variant_functions(em, root: Root) -> list[str]:
    out = []
    for vname, v in em.spec.variants.items():
        fn = function_name(em, vname)
        if not fn.isidentifier():
            continue
        doc = v.doc or f"{em.net.name}, variant '{vname}'"
        doc = doc.rstrip() + ("" if doc.rstrip().endswith((".", "!", "?")) else ".")
        if v.input:
            doc += f" Input: [N, {', '.join(map(str, v.input))}]."
        body = call(f"return {root.name}", variant_args(em, root, v) + ["**kwargs"], 1)
        out.append("\n".join([f"def {fn}(**kwargs):", *doc_lines(doc, INDENT), INDENT + body]))
    return out


def constructor_call(em, root: Root) -> str:
    net = em.net
    passed = passed_vars(net)
    if net.variant is not None:
        v = em.spec.variants[net.variant]
        at_variant = default_vars(em.spec, {k: resolve(r, {**default_vars(em.spec)}) for k, r in v.vars.items()})
        extra = {k: val for k, val in net.vars.items() if not same(at_variant.get(k), val)}
        if not set(extra) & set(v.vars) and function_name(em, net.variant).isidentifier():
            # the builder passes its own vars; others go through its **kwargs, those the class
            # computes from them (vars defined by expressions) only where they differ
            base = {k: x for k, x in extra.items() if not is_expression(em.spec.vars.get(k))}
            computed = default_vars(em.spec, {**{k: at_variant[k] for k in v.vars}, **base})
            args = ", ".join(f"{k}={literal(val)}" for k, val in extra.items()
                             if k in base or not same(computed.get(k), val))
            return f"{function_name(em, net.variant)}({args})"
    return f"{root.name}({', '.join(f'{k}={literal(v)}' for k, v in passed.items())})"
