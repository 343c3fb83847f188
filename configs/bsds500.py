"""BSDS500 (481x321 photographs): train + test splits for training, val for validation."""

from configs import default


def get_config():
  config = default.get_config()
  config.train_glob = "data/BSDS500/images/train/*.jpg,data/BSDS500/images/test/*.jpg"
  config.valid_glob = "data/BSDS500/images/val/*.jpg"
  return config
