"""Architectures by name: `config.model` picks one (see base.CompressionModel)."""

import ml_collections

from eic_jax.models.base import CompressionModel
from eic_jax.models.bls2017 import BLS2017
from eic_jax.models.bmshj2018 import BMSHJ2018

ARCHITECTURES: dict[str, type[CompressionModel]] = {
    "bls2017": BLS2017,
    "bmshj2018": BMSHJ2018,
}
# Workdirs and shipped models from before there was a choice hold bls2017 configs without it.
DEFAULT = "bls2017"


def architecture(config: ml_collections.ConfigDict) -> str:
  name = config.get("model", DEFAULT)
  if name not in ARCHITECTURES:
    raise ValueError(f"Unknown model {name!r}; use one of {', '.join(ARCHITECTURES)}")
  return name


def create(config: ml_collections.ConfigDict) -> CompressionModel:
  return ARCHITECTURES[architecture(config)].from_config(config)
