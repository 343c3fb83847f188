"""Architectures by name: `config.model` picks one (see base.CompressionModel)."""

import ml_collections

from eic_jax.models.base import CompressionModel
from eic_jax.models.bls2017 import BLS2017
from eic_jax.models.bmshj2018 import BMSHJ2018
from eic_jax.models.ms2020 import MS2020

ARCHITECTURES: dict[str, type[CompressionModel]] = {
    "bls2017": BLS2017,
    "bmshj2018": BMSHJ2018,
    "ms2020": MS2020,
}
# Workdirs and shipped models from before there was a choice hold bls2017 configs without it.
DEFAULT = "bls2017"


def register(name: str, architecture: type[CompressionModel]) -> None:
  """Makes `architecture` available as config.model = name: training, export, coding and
  evaluation then serve it like the built-in ones."""
  if not (isinstance(architecture, type) and issubclass(architecture, CompressionModel)):
    raise TypeError(f"{architecture!r} is not a CompressionModel")
  if ARCHITECTURES.get(name, architecture) is not architecture:
    raise ValueError(f"the architecture name {name!r} is taken")
  ARCHITECTURES[name] = architecture


def architecture(config: ml_collections.ConfigDict) -> str:
  name = config.get("model", DEFAULT)
  if name not in ARCHITECTURES:
    raise ValueError(f"Unknown model {name!r}; use one of {', '.join(ARCHITECTURES)}")
  return name


def create(config: ml_collections.ConfigDict) -> CompressionModel:
  return ARCHITECTURES[architecture(config)].from_config(config)
