"""archc train: data sets (archc.train.data), the configuration (config), the loop (loop),
checkpoints (checkpoint) and evaluation of trained weights (eval).

    from archc.train import make_config, train
    history = train(archc.load(spec), open_data("digits"), make_config(net.train, epochs=5), "runs/x")
"""
from __future__ import annotations


def __getattr__(name):
    # lazy: `import archc.train.data` must not pull in the loop (and the loop's imports)
    if name == "train":
        from archc.train.loop import train
        return train
    if name in ("make_config", "TrainConfig"):
        from archc.train import config
        return getattr(config, name)
    raise AttributeError(name)
