"""archc train: datasets (archc.train.data) and, later, the training loop."""
