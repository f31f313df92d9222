"""The PyTorch side of the whole-process comparison: import torch and an archc-emitted model file,
instantiate the network class, and print torchinfo's summary of it.

    python bench/torch_summary.py /tmp/resnet50.py Resnet50 1,3,224,224
"""
import importlib.util
import sys

import torch  # noqa: F401  (timed on purpose: a PyTorch-side summary has to pay for it)
import torchinfo

path, cls, size = sys.argv[1], sys.argv[2], tuple(int(d) for d in sys.argv[3].split(","))
spec = importlib.util.spec_from_file_location("emitted_model", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = getattr(mod, cls)()
torchinfo.summary(model, input_size=size)
