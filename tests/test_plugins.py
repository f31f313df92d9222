"""Third-party ops register through the `archc.ops` entry-point group, loaded the first time a
name is unknown; an op is one class, and nothing else in archc changes."""
from __future__ import annotations

import importlib.metadata

import archc
from archc import ops
from archc.ops.base import REGISTRY, Ctor, Op, register


class FakeEntryPoint:
    name = "double"

    def load(self):
        @register("double")
        class Double(Op):
            doc = "x * 2 (a test plugin)."

            def module(self, a, ins, out):
                return Ctor("Double", support=("class Double(nn.Module):\n"
                                               "    def forward(self, x):\n"
                                               "        return x * 2\n",))
        return Double


def test_plugin_op_is_found_when_first_needed(monkeypatch):
    monkeypatch.setattr(ops, "_plugins_loaded", False)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [FakeEntryPoint()] if group == "archc.ops" else [])
    try:
        net = archc.load({"archc": 1, "name": "p", "input": [4], "layers": ["double", {"linear": 2}]})
        assert [n.op.name for n in net.nodes] == ["double", "linear"]
        import torch
        model = net.to_module()
        x = torch.randn(3, 4)
        assert torch.allclose(model.double1(x), 2 * x)
    finally:
        REGISTRY.pop("double", None)
