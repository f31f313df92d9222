"""The generated network's `_init_weights`: the spec's init rules written as torchvision writes
them (`for m in self.modules(): if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(...)`),
then each block's rules (`if isinstance(m, Bottleneck): nn.init.zeros_(m.bn3.weight)`), then
the layers' own `init:`. The order is the order of `archc.ir.init.plan`, so the module starts
the way the static plan says, and standalone code starts exactly like `to_module()`."""
from __future__ import annotations

from dataclasses import dataclass, field

from archc.emit.code import literal
from archc.ir.graph import Network
from archc.ir.init import (SCHEMES, Rule, Scheme, Sub, block_instances, modules, resolved, selects,
                           split, within)

INDENT = "    "


@dataclass
class InitCode:
    """The method's body, and what the generated file needs for it."""
    lines: list[str] = field(default_factory=list)
    helpers: dict[str, None] = field(default_factory=dict)
    needs_math: bool = False
    needs_fnmatch: bool = False


def call(scheme: Scheme, tensor: str, module: str, code: InitCode) -> str:
    sdef = SCHEMES[scheme.name]
    params = dict(scheme.params)
    shown = {k: f'"{v}"' if isinstance(v, str) else literal(v) for k, v in params.items()}
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


def tensor_lines(rule: Rule, hit: list[Sub], subject: str, code: InitCode) -> list[str]:
    """The statements starting each tensor the rule names, on a module bound to `subject`;
    a tensor that only some of the selected modules have (a conv's bias) is guarded."""
    lines = []
    if not hit:
        return lines
    for tname, scheme in rule.tensors.items():
        having = [s for s in hit if tname in s.tensors]
        if not having:
            continue
        # `default` differs by module kind: the rule's modules share one here (checked by plan)
        text = call(resolved(scheme, having[0], tname), f"{subject}.{tname}", subject, code)
        if len(having) < len(hit):
            lines += [f"if {subject}.{tname} is not None:", INDENT + text]
        else:
            lines.append(text)
    return lines


def classes(hit: list[Sub]) -> str:
    names = sorted({s.cls for s in hit})
    return names[0] if len(names) == 1 else f"({', '.join(names)})"


def condition(rule: Rule, hit: list[Sub], subject: str, code: InitCode) -> str:
    """`fnmatchcase(name, 'layer*') and isinstance(m, nn.Conv2d)`: the rule's selection."""
    parts = []
    if rule.names:
        code.needs_fnmatch = True
        names = " or ".join(f"fnmatchcase(name, {p!r})" for p in rule.names)
        parts.append(f"({names})" if len(rule.names) > 1 and rule.kinds else names)
    if rule.kinds:
        parts.append(f"isinstance({subject}, {classes(hit)})")
    return " and ".join(parts)


def scope_loop(rules: list[Rule], subs: list[Sub], code: InitCode) -> list[str]:
    """Rules over every module of the network: rules naming one layer start it directly; the
    others share `for m in self.modules()` loops, an if/elif chain where they select disjoint
    module classes (torchvision's form), else one `if` per rule, in order (later rules win)."""
    out: list[str] = []
    group: list[tuple[Rule, list[Sub]]] = []

    def flush():
        if not group:
            return
        named = any(r.names for r, _ in group)
        out.append("for name, m in self.named_modules():" if named else "for m in self.modules():")
        seen: set[str] = set()
        disjoint = not named
        for r, hit in group:
            cls = {s.cls for s in hit}
            disjoint &= not (cls & seen)
            seen |= cls
        for j, (r, hit) in enumerate(group):
            keyword = "elif" if disjoint and j else "if"
            out.append(f"{INDENT}{keyword} {condition(r, hit, 'm', code)}:")
            out.extend(INDENT * 2 + line for line in tensor_lines(r, hit, "m", code))
        group.clear()

    for rule in rules:
        hit = [s for s in subs if selects(rule, s)]
        if not hit or not any(t in s.tensors for s in hit for t in rule.tensors):
            continue
        exact = rule.exact()
        if exact is not None:
            flush()
            out.extend(tensor_lines(rule, hit, access("self", exact), code))
        else:
            group.append((rule, hit))
    flush()
    return out


def block_loop(cls_names: list[str], rules: list[Rule], instances: list[list[Sub]], code: InitCode) -> list[str]:
    """`for m in self.modules(): if isinstance(m, Block): ...`: a rule naming one path present in
    every instance starts it directly (m.bn3.weight); others look inside the instance."""
    body: list[str] = []
    for rule in rules:
        hits = [[s for s in subs if selects(rule, s)] for subs in instances]
        flat = [s for h in hits for s in h]
        if not flat:
            continue
        exact = rule.exact()
        if exact is not None and all(hits):
            body.extend(tensor_lines(rule, [h[0] for h in hits], access("m", exact), code))
            continue
        body.append("for name, sub in m.named_modules():")
        body.append(f"{INDENT}if {condition(rule, flat, 'sub', code)}:")
        body.extend(INDENT * 2 + line for line in tensor_lines(rule, flat, "sub", code))
    if not body:
        return []
    target = cls_names[0] if len(cls_names) == 1 else f"({', '.join(cls_names)})"
    return ["for m in self.modules():", f"{INDENT}if isinstance(m, {target}):",
            *(INDENT * 2 + line for line in body)]


def layer_rules(net: Network) -> dict[str | None, list[Rule]]:
    """The layers' own `init:` as exact-path rules of the innermost block that holds them (None:
    the network's own layers)."""
    owner: dict[str, tuple[str, str]] = {}
    for inst, path in block_instances(net.root):
        owner[path] = (inst.block, path)
    out: dict[str | None, list[Rule]] = {}
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
            out.setdefault(block, []).append(Rule((), (path,), {tname: scheme}, scheme.at))
    return out


def outer_first(net: Network) -> list[str]:
    """Block names, each before the blocks nested in it, else in order of first appearance: the
    inner block's rules run later and win, as in plan."""
    order: list[str] = []
    inside: dict[str, set[str]] = {}      # block -> blocks that hold an instance of it
    for inst, _ in block_instances(net.root):
        if inst.block not in order:
            order.append(inst.block)
        for nested, _ in block_instances(inst):
            inside.setdefault(nested.block, set()).add(inst.block)
    done: list[str] = []
    while len(done) < len(order):
        ready = next(b for b in order if b not in done and inside.get(b, set()) <= set(done) | {b})
        done.append(ready)
    return done


def init_code(net: Network, class_names: dict[str, list[str]]) -> InitCode | None:
    """The body of `_init_weights`, or None when every tensor keeps PyTorch's default."""
    own = layer_rules(net)
    if not net.init and not own:
        return None
    code = InitCode()
    subs = modules(net)
    code.lines += scope_loop(net.init.rules, subs, code)
    if net.init.preset_doc and code.lines:
        code.lines.insert(0, f"# {net.init.preset_doc} (the spec's `init: {net.init.preset}`)")
    instances: dict[str, list[list[Sub]]] = {}
    for inst, path in block_instances(net.root):
        instances.setdefault(inst.block, []).append(within(subs, path))
    for block in outer_first(net):
        rules = net.init.blocks.get(block, []) + own.get(block, [])
        code.lines += block_loop(class_names[block], rules, instances[block], code)
    code.lines += scope_loop(own.get(None, []), subs, code)
    return code if code.lines else None
