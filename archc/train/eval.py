"""`archc eval`: the metrics of trained weights on a split of a data set."""
from __future__ import annotations

from pathlib import Path

import torch

from archc.emit.weights import load_state
from archc.errors import SpecError
from archc.train.checkpoint import check_run, load_checkpoint
from archc.train.config import TrainConfig, make_config
from archc.train.data import Data
from archc.train.dist import Place, device_for
from archc.train.fit import fit_network
from archc.train.loop import normalisation
from archc.train.runner import Runner, evaluate


def evaluate_weights(net, data: Data, weights, cfg: TrainConfig, split: str = "val",
                     say=print) -> dict[str, float]:
    """{"loss", "acc", "samples"} of the weights in `weights` (a checkpoint from train(), or
    a bare state_dict) on data.<split>. A checkpoint brings its own normalisation and loss;
    a bare state_dict is normalised with the train split's statistics when cfg.normalize."""
    part = getattr(data, split, None)
    if part is None:
        raise SpecError(f"{data.name} has no {split} split")
    path = Path(weights) / "last.pt" if Path(weights).is_dir() else Path(weights)
    obj = load_checkpoint(path, run=False)
    if isinstance(obj, dict) and ("config" in obj or "normalize" in obj):    # a run's checkpoint
        check_run(obj, path, ("model", "config", "normalize"))
        saved = make_config(obj["config"])        # its settings, checked
        cfg = cfg.model_copy(update={k: getattr(saved, k) for k in ("loss", "normalize", "label_smoothing")})
        mean, std = obj["normalize"]["mean"], obj["normalize"]["std"]
    else:
        mean, std = normalisation(cfg, data) if cfg.normalize else (torch.zeros(1), torch.ones(1))
    net = fit_network(net, data, cfg, say)
    dev = device_for(Place(), cfg.device)
    model = net.to_module()
    load_state(model, obj, path)                 # strict, with mismatches listed by name
    run = Runner(model.to(dev), cfg, dev, mean, std)
    return {**evaluate(run, part, cfg), "samples": len(part)}

