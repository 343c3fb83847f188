"""A λ sweep (experiments/lambda_sweep.py): the default setup trained once per λ, spanning
roughly 0.15 to 0.6 bpp."""

from configs import default


def get_config():
  config = default.get_config()
  config.lmbdas = (0.0035, 0.0067, 0.013)
  return config
