"""Inference of one node: shape, state tensors, MACs and FLOPs from its op's rules.

The expander calls this as it creates each node, so the whole network is inferred in one
topological pass (blocks need their input shape to expand: `c_in`, residual shortcuts)."""
from __future__ import annotations

from archc.errors import ShapeError, SpecError
from archc.ir.graph import Node
from archc.ops.base import Shape


def infer_node(node: Node, in_shapes: list[Shape]) -> Node:
    op = node.op
    node.in_shapes = list(in_shapes)
    try:
        if op.arity is not None and len(in_shapes) != op.arity:
            raise ShapeError(f"takes {op.arity} input(s), got {len(in_shapes)}")
        if op.arity is None and len(in_shapes) < 2:
            raise ShapeError(f"merges two or more inputs, got {len(in_shapes)}: use 'from: [a, b]'")
        node.out = tuple(op.infer(node.args, in_shapes))
        node.tensors = op.tensors(node.args, in_shapes, node.out)
        node.macs = op.macs(node.args, in_shapes, node.out)
        node.flops = op.flops(node.args, in_shapes, node.out)
    except ShapeError as e:
        shapes = " and ".join(str(list(s)) for s in in_shapes)
        msg = e.message
        if not msg.startswith("'"):
            msg = f"cannot take input {shapes}: {msg}" if "input" not in msg else msg
        raise SpecError(f"layer '{node.name}' ({op.name}) {msg}", node.loc) from None
    return node
