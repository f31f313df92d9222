"""The graph IR: op nodes in topological order, and the module tree they sit in (the
state_dict's nesting: summaries fold it by depth, diffs name layers by it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from archc.errors import Location
from archc.ir.init import InitSpec
from archc.ops.base import Op, OpArgs, Shape, Tensor, tensor_key


@dataclass(eq=False)
class Node:
    """One op instance, with everything inference found out about it."""
    index: int
    name: str                    # scoped attribute path: layer2.0.conv2
    op: Op
    args: OpArgs
    inputs: list[int]            # producer node indices; -1 is the network input
    at: Any                      # where in the spec: has .loc(), looked up only when needed
    in_shapes: list[Shape] = field(default_factory=list)
    out: Shape = ()
    tensors: dict[str, Tensor] = field(default_factory=dict)
    macs: int = 0
    flops: int = 0
    train_only: bool = False     # feeds only training-time outputs (auxiliary heads)
    init: dict = field(default_factory=dict)   # the layer's own `init:`: tensor key -> Scheme

    @property
    def loc(self) -> Location:
        return self.at.loc() if hasattr(self.at, "loc") else self.at

    @cached_property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors.values() if t.trainable)

    @cached_property
    def buffers(self) -> int:
        return sum(t.numel for t in self.tensors.values() if not t.trainable)


@dataclass(eq=False)
class Module:
    """A module of the emitted tree: an op's module, an nn.Sequential, or a block class."""
    attr: str                    # name in the parent ('layer1', '0', 'conv1')
    kind: str                    # 'op' | 'seq' | 'class'
    node: Node | None = None
    children: list["Module"] = field(default_factory=list)
    block: str | None = None     # block definition name; None for the network itself
    loc: Any = None              # where in the spec (an At), for messages


@dataclass
class Network:
    name: str
    doc: str
    input: Shape
    nodes: list[Node]
    root: Module
    outputs: list[tuple[str, Node | None, bool]]    # (output name, producer, train_only)
    vars: dict[str, Any]
    variant: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    file: str = "<mapping>"
    init: InitSpec = field(default_factory=InitSpec)   # the spec's init rules and its blocks'
    train_locs: dict[tuple, Location] = field(default_factory=dict)   # where `train:` settings were written
    definition: Any = None       # what the network was compiled from (spec, source, blocks): emission reads it
    # layers of the definitions whose op runs in place (archc.ir.inplace: op name, file, path)
    in_place: frozenset = frozenset()

    @property
    def graph(self):
        """The op graph as a networkx DiGraph (imported here: the summary path does not need it)."""
        import networkx as nx
        g = nx.DiGraph()
        g.add_node("input", shape=self.input)
        for n in self.nodes:
            g.add_node(n.name, node=n, op=n.op.name, shape=n.out)
        for n in self.nodes:
            for i in n.inputs:
                g.add_edge("input" if i < 0 else self.nodes[i].name, n.name)
        return g

    def _eval_nodes(self):
        return [n for n in self.nodes if not n.train_only]

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def buffers(self) -> int:
        return sum(n.buffers for n in self.nodes)

    @property
    def macs(self) -> int:
        """Eval-mode MACs: training-only heads do not run at inference."""
        return sum(n.macs for n in self._eval_nodes())

    @property
    def flops(self) -> int:
        return sum(n.flops for n in self._eval_nodes())

    @property
    def output_shapes(self) -> list[Shape]:
        return [self.input if n is None else n.out for _, n, _ in self.outputs]

    def state_dict_shapes(self) -> dict[str, Shape]:
        """The state_dict the emitted module will have, in module order (the order modules are
        registered, which is not always the order they run: RegNet's `proj` before `f`)."""
        return {tensor_key(n.name, k): t.shape for n in self.module_order() for k, t in n.tensors.items()}

    def module_order(self) -> list[Node]:
        """The nodes that are modules, in the module tree's order (walked without recursion); a
        class's own parameters (a `layer_scale`'s) come before its children, as torch orders them."""
        out, todo = [], [self.root]
        while todo:
            m = todo.pop()
            if m.node is not None:
                out.append(m.node)
            todo.extend(reversed(sorted(m.children, key=lambda c: c.node is None or not c.node.op.holds_parameter)))
        return out
