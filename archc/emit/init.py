"""The generated network's `_init_weights`: the spec's init rules written as torchvision writes
them (`for m in self.modules(): if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(...)`),
then each block's rules (`if isinstance(m, Bottleneck): nn.init.zeros_(m.bn3.weight)`), then
the layers' own `init:`. The order is the order of `archc.ir.init.plan`, so the module starts
the way the static plan says, and standalone code starts exactly like `to_module()`.

The code holds for every value of the spec's vars, as the rest of the generated file does
(`Written`, from archc.emit.init_rules): a rule's `when: $zero_init_residual` is an `if`, a
scheme param written as an expression of the vars stays that expression, rules select the
module classes the file can build, and every block class gets its rules, whether or not this
instance has one; the vars it reads are the method's arguments."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from archc.emit.code import literal
from archc.emit.nodes import same
from archc.ir.graph import Network
from archc.ir.init import (SCHEMES, Rule, Scheme, Sub, block_instances, modules, resolved, selects,
                           split, within)
from archc.ops.base import KINDS

INDENT = "    "


@dataclass
class Written:
    """The spec's init rules as the generated code writes them (see archc.emit.init_rules)."""
    rules: list[Rule]                                   # the spec's (a preset's first), conditional ones kept
    blocks: list[tuple[str, str, list[Rule]]]           # (block, its class, its rules), outer blocks first
    conds: dict[int, ast.expr] = field(default_factory=dict)             # id(rule) -> its `when` over the vars
    params: dict[int, dict[str, ast.expr]] = field(default_factory=dict)  # id(scheme) -> param -> expression
    built: set[str] = field(default_factory=set)        # torch classes the file builds (any var values)
    presence: dict[tuple[str, str], set] = field(default_factory=dict)   # (class, tensor) -> True/False/None (varies)
    preset_doc: str = ""
    preset: str = "torch"


@dataclass
class InitCode:
    """The method's body, and what the generated file needs for it."""
    lines: list[str] = field(default_factory=list)
    helpers: dict[str, None] = field(default_factory=dict)
    needs_math: bool = False
    needs_fnmatch: bool = False
    reads: dict[str, None] = field(default_factory=dict)    # names of vars the body reads


def call(scheme: Scheme, tensor: str, module: str, code: InitCode, w: Written) -> str:
    sdef = SCHEMES[scheme.name]
    params = dict(scheme.params)
    exprs = w.params.get(id(scheme), {})
    shown = {k: f'"{v}"' if isinstance(v, str) else literal(v) for k, v in params.items()}
    for k, node in exprs.items():
        shown[k] = ast.unparse(node)
        code.reads.update(dict.fromkeys(n.id for n in ast.walk(node) if isinstance(n, ast.Name)))
    shown = {k: shown[k] for k in sdef.params if k in shown}
    args = "".join(f", {k}={v}" for k, v in shown.items())
    text = sdef.call.format(t=tensor, m=module, args=args, **shown)
    if sdef.helper:
        code.helpers[sdef.helper] = None
    code.needs_math |= "math." in text
    return text


def access(base: str, path: str) -> str:
    """`m` + `downsample.1` -> `m.downsample[1]`; a path with other names -> get_submodule."""
    if not path:
        return base
    parts = path.split(".")
    if all(p.isidentifier() or p.isdigit() for p in parts):
        return base + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    return f"{base}.get_submodule({path!r})"


def selected_classes(rule: Rule, hit: list[Sub], w: Written) -> list[str]:
    """The torch classes a rule starts: for `op:` rules, those of its families the file builds
    (whatever the vars); for a rule by name alone, those its modules have here."""
    if rule.kinds:
        return [c for k in rule.kinds for c in KINDS[k].classes if c in w.built or any(s.cls == c for s in hit)]
    return sorted({s.cls for s in hit})


def tensor_lines(rule: Rule, hit: list[Sub], classes: list[str], subject: str, code: InitCode,
                 w: Written) -> list[str]:
    """The statements starting each tensor the rule names, on a module bound to `subject`; a
    tensor that some of the selected modules may lack (a conv built with `bias=False` somewhere)
    is guarded, one that none can have is skipped."""
    lines = []
    for tname, scheme in rule.tensors.items():
        states = set().union(*(w.presence.get((c, tname), {True}) for c in classes)) if classes else {True}
        states |= {tname in s.tensors for s in hit}
        if states == {False}:
            continue
        having = next((s for s in hit if tname in s.tensors), None) or Sub("", classes[0] if classes else "", {})
        # `default` differs by module kind: the rule's modules share one here (checked by plan)
        text = call(resolved(scheme, having, tname), f"{subject}.{tname}", subject, code, w)
        if states != {True}:
            lines += [f"if {subject}.{tname} is not None:", INDENT + text]
        else:
            lines.append(text)
    return lines


def classes_text(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


def when(rule: Rule, code: InitCode, w: Written, outer: ast.expr | None = None) -> str | None:
    """The rule's `when` as Python, where it depends on the vars (and an enclosing `if` does not
    test it already)."""
    cond = w.conds.get(id(rule))
    if cond is None or outer is not None and same(cond, outer):
        return None
    code.reads.update(dict.fromkeys(n.id for n in ast.walk(cond) if isinstance(n, ast.Name)))
    return ast.unparse(cond)


def condition(rule: Rule, classes: list[str], subject: str, code: InitCode, w: Written,
              outer: ast.expr | None = None) -> str:
    """`fnmatchcase(name, 'layer*') and isinstance(m, nn.Conv2d)`: the rule's selection, after
    its `when` where that depends on the vars."""
    parts = []
    cond = when(rule, code, w, outer)
    if cond is not None:
        parts.append(f"({cond})" if " or " in cond or " if " in cond else cond)
    if rule.names:
        code.needs_fnmatch = True
        names = " or ".join(f"fnmatchcase(name, {p!r})" for p in rule.names)
        parts.append(f"({names})" if len(rule.names) > 1 and (rule.kinds or cond is not None) else names)
    if rule.kinds:
        parts.append(f"isinstance({subject}, {classes_text(classes)})")
    return " and ".join(parts)


def guarded(rule: Rule, lines: list[str], code: InitCode, w: Written, outer: ast.expr | None = None) -> list[str]:
    """Lines under the rule's `when`, where that depends on the vars."""
    cond = when(rule, code, w, outer) if lines else None
    return lines if cond is None else [f"if {cond}:", *(INDENT + ln for ln in lines)]


def scope_loop(rules: list[Rule], subs: list[Sub], code: InitCode, w: Written) -> list[str]:
    """Rules over every module of the network: rules naming one layer start it directly; the
    others share `for m in self.modules()` loops, an if/elif chain where they select disjoint
    module classes (torchvision's form), else one `if` per rule, in order (later rules win)."""
    out: list[str] = []
    group: list[tuple[Rule, list[Sub], list[str]]] = []

    def flush():
        if not group:
            return
        named = any(r.names for r, _, _ in group)
        out.append("for name, m in self.named_modules():" if named else "for m in self.modules():")
        seen: set[str] = set()
        disjoint = not named
        for _, _, cls in group:
            disjoint &= not (set(cls) & seen)
            seen |= set(cls)
        for j, (r, hit, cls) in enumerate(group):
            keyword = "elif" if disjoint and j else "if"
            out.append(f"{INDENT}{keyword} {condition(r, cls, 'm', code, w)}:")
            out.extend(INDENT * 2 + line for line in tensor_lines(r, hit, cls, "m", code, w))
        group.clear()

    for rule in rules:
        hit = [s for s in subs if selects(rule, s)]
        cls = selected_classes(rule, hit, w)
        if not cls or not tensor_lines(rule, hit, cls, "m", InitCode(), w):
            continue
        exact = rule.exact()
        if exact is not None:
            flush()
            out.extend(guarded(rule, tensor_lines(rule, hit, cls, access("self", exact), code, w), code, w))
        else:
            group.append((rule, hit, cls))
    flush()
    return out


def block_body(rules: list[Rule], instances: list[list[Sub]], code: InitCode, w: Written,
               outer: ast.expr | None) -> list[str]:
    """What a block's rules do to one of its instances, bound to `m`: a rule naming one path
    starts it directly (m.bn3.weight); others look inside the instance."""
    body: list[str] = []
    for rule in rules:
        hits = [[s for s in subs if selects(rule, s)] for subs in instances]
        flat = [s for h in hits for s in h]
        exact = rule.exact()
        if exact is not None and all(hits):
            one = [h[0] for h in hits]
            lines = tensor_lines(rule, one, [s.cls for s in one[:1]], access("m", exact), code, w)
            body.extend(guarded(rule, lines, code, w, outer))
            continue
        cls = selected_classes(rule, flat, w)
        if rule.kinds and not cls or not rule.kinds and not flat:
            continue
        lines = tensor_lines(rule, flat, cls, "sub", code, w)
        if lines:
            body.append("for name, sub in m.named_modules():")
            body.append(f"{INDENT}if {condition(rule, cls, 'sub', code, w, outer)}:")
            body.extend(INDENT * 2 + line for line in lines)
    return body


def block_loops(entries: list[tuple[str, list[str]]]) -> list[str]:
    """`for m in self.modules(): if isinstance(m, Bottleneck): ... elif isinstance(m, BasicBlock):
    ...`, one loop for all blocks (distinct classes: an if/elif chain); a `when` every rule of
    the blocks shares goes around it (`if zero_init_residual:`), as torchvision writes it."""
    if not entries:
        return []
    lines = ["for m in self.modules():"]
    for j, (cls, body) in enumerate(entries):
        lines.append(f"{INDENT}{'elif' if j else 'if'} isinstance(m, {cls}):")
        lines.extend(INDENT * 2 + ln for ln in body)
    return lines


def layer_rules(net: Network) -> dict[str | None, list[Rule]]:
    """The layers' own `init:` as exact-path rules of the innermost block that holds them (None:
    the network's own layers): one rule per layer of the block's definition where every instance
    starts it alike, else one per instance, by its full path."""
    owner: dict[str, tuple[str, str]] = {}
    for inst, path in block_instances(net.root):
        owner[path] = (inst.block, path)
    found: dict[tuple, list[tuple[str, Scheme]]] = {}        # (block, rel path, tensor) -> (full path, scheme)
    for n in net.nodes:
        if not n.init:
            continue
        block, prefix = None, ""
        parts = n.name.split(".")
        for j in range(len(parts) - 1, 0, -1):
            hit = owner.get(".".join(parts[:j]))
            if hit:
                block, prefix = hit
                break
        rel = n.name[len(prefix) + 1:] if prefix else n.name
        for key, scheme in n.init.items():
            path, tname = split(f"{rel}.{key}")
            found.setdefault((block, path, tname), []).append((split(f"{n.name}.{key}")[0], scheme))
    out: dict[str | None, list[Rule]] = {}
    for (block, path, tname), hits in found.items():
        if all(sc == hits[0][1] for _, sc in hits):
            out.setdefault(block, []).append(Rule((), (path,), {tname: hits[0][1]}, hits[0][1].at))
        else:
            out.setdefault(None, []).extend(Rule((), (full,), {tname: sc}, sc.at) for full, sc in hits)
    return out


def shared_cond(rules: list[Rule], w: Written) -> ast.expr | None:
    """The `when` all of a block's rules have, if they have one and the same."""
    conds = [w.conds.get(id(r)) for r in rules]
    if not conds or conds[0] is None or any(c is None or not same(c, conds[0]) for c in conds):
        return None
    return conds[0]


def init_code(net: Network, w: Written) -> InitCode | None:
    """The body of `_init_weights`, or None when every tensor keeps PyTorch's default."""
    own = layer_rules(net)
    code = InitCode()
    subs = modules(net)
    code.lines += scope_loop(w.rules, subs, code, w)
    if w.preset_doc and code.lines:
        code.lines.insert(0, f"# {w.preset_doc} (the spec's `init: {w.preset}`)")
    instances: dict[str, list[list[Sub]]] = {}
    for inst, path in block_instances(net.root):
        instances.setdefault(inst.block, []).append(within(subs, path))
    runs: list[tuple[ast.expr | None, list[tuple[str, list[str]]]]] = []    # loops, by shared `when`
    for block, cls, rules in w.blocks:
        rules = rules + own.get(block, [])
        cond = shared_cond(rules, w)
        body = block_body(rules, instances.get(block, []), code, w, cond)
        if not body:
            continue
        if runs and (runs[-1][0] is None) == (cond is None) and \
                (cond is None or same(runs[-1][0], cond)):
            runs[-1][1].append((cls, body))
        else:
            runs.append((cond, [(cls, body)]))
    for cond, entries in runs:
        loop = block_loops(entries)
        if cond is not None:
            code.reads.update(dict.fromkeys(n.id for n in ast.walk(cond) if isinstance(n, ast.Name)))
            loop = [f"if {ast.unparse(cond)}:", *(INDENT + ln for ln in loop)]
        code.lines += loop
    code.lines += scope_loop(own.get(None, []), subs, code, w)
    return code if code.lines else None
