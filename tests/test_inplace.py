"""In-place ops (archc/ir/inplace.py): where the IR proves nobody needs a tensor again, the
activation or residual sum overwrites it, as torchvision writes `inplace=True` and `+=`; nowhere
else. The oracle for 'safe': the same weights, one training step with and without the in-place
forms give the same outputs and gradients (autograd itself raises if a tensor it saved was
overwritten)."""
from __future__ import annotations

import pytest

import archc


def spec(layers: str, blocks: str = "", input_: str = "[4, 8, 8]") -> str:
    return f"archc: 1\nname: t\ninput: {input_}\n{blocks}layers:\n{layers}"


def in_place(net) -> dict[str, bool]:
    return {n.name: bool(n.args.inplace) for n in net.nodes if "inplace" in type(n.args).model_fields}


def load(tmp_path, text: str):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return archc.load(str(p))


def test_a_residual_block_is_written_as_torchvision_writes_it(tmp_path):
    net = load(tmp_path, spec("""  - conv: {out: 4, k: 3, pad: 1, name: conv1}
  - residual:
      body:
        - conv: {out: 4, k: 3, pad: 1}
        - bn
        - relu
        - conv: {out: 4, k: 3, pad: 1}
        - bn
  - relu
"""))
    assert all(in_place(net).values()), in_place(net)
    src = net.source()
    assert "nn.ReLU(inplace=True)" in src and " += " in src


def test_what_autograd_or_another_reader_needs_is_never_overwritten(tmp_path):
    net = load(tmp_path, spec("""  - relu: {name: on_input}           # the caller's tensor
  - conv: {out: 4, k: 1, name: c1}
  - relu: {name: after_conv}         # a conv keeps its input, not its output
  - relu: {name: after_relu}         # a relu's result is what its backward reads
  - conv: {out: 4, k: 1, id: shared}
  - relu: {name: one_of_two, from: shared}
  - conv: {out: 4, k: 1, id: a}
  - conv: {out: 4, k: 1, from: shared, id: b}
  - add: {from: [a, b], name: sum}   # into a conv's output
  - relu: {name: after_sum}
  - conv: {out: 4, k: 1}
  - sigmoid
  - relu: {name: after_sigmoid}      # sigmoid keeps its result too
  - conv: {out: 4, k: 1}
  - relu: {name: explicit, inplace: false}
  - conv: {out: 4, k: 1}
  - relu: {name: last}               # the network's output: still its own tensor to write
"""))
    flags = in_place(net)
    assert flags == {"on_input": False, "after_conv": True, "after_relu": False,
                     "one_of_two": False, "sum": True, "after_sum": True, "after_sigmoid": False, "explicit": False,
                     "last": True}, flags


def test_one_decision_per_layer_of_a_block_definition(tmp_path):
    # the block's relu reads the block's input: safe after a conv, not on the network's input
    net = load(tmp_path, spec("""  - act_block: {name: first}
  - conv: {out: 4, k: 1}
  - act_block: {name: second}
""", blocks="blocks:\n  act_block:\n    layers:\n      - relu\n      - conv: {out: 4, k: 1}\n"))
    assert set(in_place(net).values()) == {False}
    src = net.source()
    assert "inplace=True" not in src


def train_step(module, x):
    import torch
    module.train()
    out = module(x)
    out = out if isinstance(out, torch.Tensor) else out[0]
    out.square().mean().backward()
    return out.detach(), {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "efficientnet_b0", "densenet121",
                                  "googlenet", "mobilenet_v3_small", "inception_v3", "squeezenet1_1",
                                  "shufflenet_v2_x0_5", "mnasnet0_5", "vgg11_bn", "seresnet50"])
def test_in_place_forms_give_the_same_step(name):
    import torch
    torch.manual_seed(0)
    net = archc.load(name, input=(3, 96, 96) if name != "inception_v3" else (3, 75, 75))
    chosen = [n for n in net.nodes if getattr(n.args, "inplace", False)]
    assert chosen, "nothing in place"
    fast = net.to_module()
    for n in chosen:
        n.args = n.args.model_copy(update={"inplace": False})
    plain = net.to_module()
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, *net.input)
    torch.manual_seed(1)
    out_a, grads_a = train_step(fast, x)
    torch.manual_seed(1)
    out_b, grads_b = train_step(plain, x)
    torch.testing.assert_close(out_a, out_b)
    assert grads_a.keys() == grads_b.keys()
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], msg=k)
