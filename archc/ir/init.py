"""Weight initialisation as data: the schemes, the rules a spec writes, and which scheme each
tensor of a compiled network gets (`plan`), found statically, in the order the generated
`_init_weights` applies them: the spec's rules, then each block's rules (outer blocks first),
then the `init:` of single layers written at the top level. A tensor no rule reaches keeps
PyTorch's default."""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Iterator

from archc.errors import SpecError, did_you_mean
from archc.ops.base import KINDS, kind_of, tensor_key

if TYPE_CHECKING:
    from archc.ir.graph import Module, Network

REQUIRED = object()
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
CHOICES = {"mode": ("fan_in", "fan_out"), "nonlinearity": NONLINEARITIES,
           "distribution": ("truncated_normal", "untruncated_normal", "normal", "uniform")}

VARIANCE_SCALING = '''
def variance_scaling_(tensor, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    """Keras's VarianceScaling: variance scale / fan; a truncated normal is cut at two standard
    deviations and widened so that its variance stays scale / fan."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(tensor)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / fan
    if distribution == "truncated_normal":
        std = math.sqrt(variance) / 0.87962566103423978   # std of a unit normal cut at +-2
        return nn.init.trunc_normal_(tensor, std=std, a=-2 * std, b=2 * std)
    if distribution in ("normal", "untruncated_normal"):
        return nn.init.normal_(tensor, std=math.sqrt(variance))
    bound = math.sqrt(3 * variance)
    return nn.init.uniform_(tensor, -bound, bound)
'''

FAN_IN_UNIFORM = '''
def fan_in_uniform_(tensor, weight):
    """PyTorch's default bias: U(-1 / sqrt(fan_in), 1 / sqrt(fan_in)), fan_in read off the weight."""
    bound = 1 / math.sqrt(weight[0].numel())
    return nn.init.uniform_(tensor, -bound, bound)
'''


@dataclass(frozen=True)
class SchemeDef:
    """How to start one tensor. `call` is the generated statement: {t} is the tensor, {m} its
    module, {args} the params that differ from their defaults as `, k=v`, {name} a param's value."""
    params: dict[str, Any]
    call: str
    short: str | None = None          # the param a scalar fills (`normal: 0.01` is std)
    fan: bool = False                 # needs fans: a tensor of two dims or more
    kinds: tuple[str, ...] = ()       # only for modules of these kinds (it reads their attributes)
    helper: str | None = None         # a function the generated file defines once for it
    doc: str = ""


SCHEMES: dict[str, SchemeDef] = {
    "default": SchemeDef({}, "", doc="PyTorch's own initialisation of that tensor of that module"),
    "zeros": SchemeDef({}, "nn.init.zeros_({t})"),
    "ones": SchemeDef({}, "nn.init.ones_({t})"),
    "constant": SchemeDef({"value": REQUIRED}, "nn.init.constant_({t}, {value})", short="value"),
    "normal": SchemeDef({"mean": 0.0, "std": 1.0}, "nn.init.normal_({t}{args})", short="std"),
    "uniform": SchemeDef({"a": 0.0, "b": 1.0}, "nn.init.uniform_({t}{args})"),
    "trunc_normal": SchemeDef({"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}, "nn.init.trunc_normal_({t}{args})",
                              short="std", doc="normal cut at a and b (absolute values, as torch's)"),
    "xavier_uniform": SchemeDef({"gain": 1.0}, "nn.init.xavier_uniform_({t}{args})", short="gain", fan=True),
    "xavier_normal": SchemeDef({"gain": 1.0}, "nn.init.xavier_normal_({t}{args})", short="gain", fan=True),
    "kaiming_uniform": SchemeDef({"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
                                 "nn.init.kaiming_uniform_({t}{args})", fan=True),
    "kaiming_normal": SchemeDef({"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
                                "nn.init.kaiming_normal_({t}{args})", fan=True),
    "orthogonal": SchemeDef({"gain": 1.0}, "nn.init.orthogonal_({t}{args})", short="gain", fan=True),
    "variance_scaling": SchemeDef({"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"},
                                  "variance_scaling_({t}{args})", short="scale", fan=True,
                                  helper=VARIANCE_SCALING, doc="Keras's VarianceScaling"),
    "paddle_conv": SchemeDef({}, "nn.init.normal_({t}, std=math.sqrt(2.0 / ({m}.in_channels * math.prod({m}.kernel_size))))",
                             kinds=("conv",), doc="Paddle's conv default: Normal(0, sqrt(2 / (C_in * k_h * k_w))), "
                                                  "every input channel counted"),
    "fan_in_uniform": SchemeDef({}, "fan_in_uniform_({t}, {m}.weight)", kinds=("conv", "conv_transpose", "linear"),
                                helper=FAN_IN_UNIFORM, doc="PyTorch's bias default: U(+-1 / sqrt(fan_in))"),
    "reset": SchemeDef({}, "{m}.reset_parameters()", doc="the module's own reset_parameters()"),
}
# params that take a mode also accept fan_avg where the scheme has it
FAN_AVG = {"variance_scaling"}


@dataclass(frozen=True)
class Scheme:
    name: str
    params: tuple[tuple[str, Any], ...] = ()
    at: Any = field(default=None, compare=False)     # where it was written (an At), for errors

    def arg(self, key: str):
        return dict(self.params).get(key, SCHEMES[self.name].params.get(key))


@dataclass
class Rule:
    """`{op: conv, name: "layer*", weight: ..., bias: ...}`: kinds and name globs select modules
    (both must hold when both are given); each tensor named gets its scheme."""
    kinds: tuple[str, ...]
    names: tuple[str, ...]
    tensors: dict[str, Scheme]
    at: Any = None

    def exact(self) -> str | None:
        """The one module path this rule names without wildcards, if it does."""
        if len(self.names) == 1 and not any(c in self.names[0] for c in "*?["):
            return self.names[0]
        return None


@dataclass
class InitSpec:
    """Everything a spec says about initialisation: its rules (a preset's first) and each block's."""
    preset: str = "torch"
    rules: list[Rule] = field(default_factory=list)
    preset_doc: str = ""         # what the preset is, said in the generated code
    blocks: dict[str, list[Rule]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rules or any(self.blocks.values()))


# -- the modules of a network and where blocks sit ---------------------------------------------

@dataclass
class Sub:
    """A module holding tensors: its path (from the network, or from a block instance), torch
    class and tensors (name -> shape)."""
    path: str
    cls: str
    tensors: dict[str, tuple]


def modules(net: Network) -> list[Sub]:
    """Every module of the network that holds tensors, in state_dict order."""
    subs: dict[str, Sub] = {}
    for n in net.nodes:
        for key, t in n.tensors.items():
            path, tname = split(tensor_key(n.name, key))
            sub = subs.setdefault(path, Sub(path, t.module, {}))
            sub.tensors[tname] = t.shape
    return list(subs.values())


def block_instances(root: Module) -> Iterator[tuple[Module, str]]:
    """(block instance, its dotted path) in pre-order: outer blocks before the blocks inside them."""
    todo = [(c, c.attr) for c in reversed(root.children)]
    while todo:
        m, path = todo.pop()
        if m.kind == "class" and m.block is not None:
            yield m, path
        todo.extend((c, f"{path}.{c.attr}") for c in reversed(m.children))


def within(subs: list[Sub], prefix: str) -> list[Sub]:
    """The modules under `prefix`, with paths relative to it."""
    head = prefix + "."
    return [Sub(s.path[len(head):], s.cls, s.tensors) for s in subs if s.path.startswith(head)]


# -- matching -----------------------------------------------------------------------------------

def selects(rule: Rule, sub: Sub) -> bool:
    if rule.kinds and not any(sub.cls in KINDS[k].classes for k in rule.kinds):
        return False
    return not rule.names or any(fnmatchcase(sub.path, p) for p in rule.names)


def resolved(scheme: Scheme, sub: Sub, tname: str) -> Scheme:
    """`default` made concrete for this module kind and tensor."""
    if scheme.name != "default":
        return scheme
    kind = kind_of(sub.cls)
    if kind is None or tname not in kind.defaults:
        raise SpecError(f"no PyTorch default is known for {sub.path}.{tname} ({sub.cls})", scheme.at.loc())
    name, params = kind.defaults[tname]
    return Scheme(name, tuple(params.items()), scheme.at)


def check(scheme: Scheme, sub: Sub, tname: str, where: str) -> None:
    """A scheme that cannot start this tensor is an error at the scheme, before any torch runs."""
    sdef = SCHEMES[scheme.name]
    shape = sub.tensors[tname]
    label = f"{where}{sub.path}.{tname}" if sub.path else f"{where}{tname}"
    if sdef.fan and len(shape) < 2:
        raise SpecError(f"'{scheme.name}' needs fans, which a tensor of shape {list(shape)} does not have "
                        f"({label}); give it zeros, constant, normal or uniform", scheme.at.loc())
    kind = kind_of(sub.cls)
    if sdef.kinds and (kind is None or kind.name not in sdef.kinds):
        raise SpecError(f"'{scheme.name}' starts only {', '.join(sdef.kinds)} layers, not {sub.cls} ({label})",
                        scheme.at.loc())


def apply(rule: Rule, subs: list[Sub], plan: dict, prefix: str, where: str) -> None:
    """Give the tensors the rule reaches their schemes."""
    hit = [s for s in subs if selects(rule, s)]
    exact = rule.exact()
    if exact is not None and not hit:
        inside = f" in {where.rstrip(': ')}" if where else ""
        raise SpecError(f"init rule names '{exact}', which is no layer with tensors{inside}"
                        f"{did_you_mean(exact, [s.path for s in subs])}", rule.at.loc())
    for tname, scheme in rule.tensors.items():
        made: dict[Scheme, str] = {}
        for s in hit:
            if tname in s.tensors:
                one = resolved(scheme, s, tname)
                check(one, s, tname, where)
                plan[f"{prefix}{s.path}.{tname}" if s.path else f"{prefix}{tname}"] = one
                made.setdefault(one, s.cls)
        if len(made) > 1:     # `default` of several module kinds: one generated line cannot say it
            raise SpecError(f"'default' differs between {' and '.join(sorted(set(made.values())))}: "
                            f"give each its own rule", scheme.at.loc())


def split(key: str) -> tuple[str, str]:
    """`layer1.0.se.fc1.weight` -> (`layer1.0.se.fc1`, `weight`)."""
    path, _, tname = key.rpartition(".")
    return path, tname


def plan(net: Network) -> dict[str, Scheme]:
    """state_dict key -> the scheme it starts with, for every tensor a rule or a layer's own
    `init:` reaches. Raises a located SpecError for a scheme that cannot start its tensor."""
    out: dict[str, Scheme] = {}
    init = net.init
    subs = modules(net)
    for rule in init.rules:
        apply(rule, subs, out, "", "")
    for inst, path in block_instances(net.root):
        for rule in init.blocks.get(inst.block, ()):
            apply(rule, within(subs, path), out, path + ".", f"block '{inst.block}' at {path}: ")
    by_path = {s.path: s for s in subs}
    for n in net.nodes:
        for key, scheme in n.init.items():
            path, tname = split(f"{n.name}.{key}")
            sub = by_path[path]
            one = resolved(scheme, sub, tname)
            check(one, sub, tname, "")
            out[f"{path}.{tname}"] = one
    return out
