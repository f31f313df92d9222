"""What the expander keeps while it fills one class: the value flowing through its layers, and the
names, ids and variables its scope has given out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archc.ir.graph import Module
from archc.ops.base import Shape
from archc.spec.layers import At


@dataclass
class Value:
    """A tensor in a forward method: the variable holding it, its producer and shape."""
    var: str
    node: int          # producer node index; -1 = network input
    shape: Shape


@dataclass
class ClassScope:
    """The emitted class being filled: its module, dotted prefix, names, ids and variables."""
    module: Module
    prefix: str
    env: dict[str, Any]
    reserved: set[str]
    taken: set[str] = field(default_factory=set)
    ids: dict[str, Value] = field(default_factory=dict)
    vars: set[str] = field(default_factory=lambda: {"x"})
    chain_var: str = "x"     # the variable a plain chain reassigns
    counters: dict[str, int] = field(default_factory=dict)

    def auto(self, base: str) -> str:
        base = base if base.isidentifier() else "layer"
        k = self.counters.get(base, 1)      # next number to try: linear, not quadratic
        while f"{base}{k}" in self.taken or f"{base}{k}" in self.reserved:
            k += 1
        self.counters[base] = k + 1
        name = f"{base}{k}"
        self.taken.add(name)
        return name

    def claim(self, name: str, at: At) -> str:
        if name in self.taken:
            raise at.error(f"duplicate name '{name}' in '{self.prefix.rstrip('.') or 'the network'}'")
        self.taken.add(name)
        return name

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.vars or name in self.ids:
            k += 1
            name = f"{base}{k}"
        self.vars.add(name)
        return name
