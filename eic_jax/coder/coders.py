"""The entropy coders that write .eic streams, by the name a file records (docs/bitstream.md).

Both read the same integer tables (tables.py) and both guarantee the same things: indexes are
checked by the container, and a stream decodes only if it is exactly what encoding its values
gives. TensorFlow Compression's range coder is the project's choice where it installs (the
[coding] extra, Python ≤ 3.12); constriction's is in the base install, on any Python.
"""

import dataclasses
import importlib
import importlib.util
from types import ModuleType

import numpy as np

from eic_jax.coder.tables import IntegerTables
from eic_jax.runtime.tensorflow_setup import CODING_INSTALL, MissingDependencyError


@dataclasses.dataclass(frozen=True)
class Coder:
  name: str  # as files record it and --coder takes it
  description: str
  module: str  # the implementation, imported on first use
  packages: tuple[str, ...]  # what must be installed
  install: str

  def available(self) -> bool:
    """Whether its packages are installed, without importing them."""
    return all(importlib.util.find_spec(package) is not None for package in self.packages)

  def require(self, purpose: str) -> None:
    """Raises MissingDependencyError, one line, unless it is installed."""
    if not self.available():
      raise MissingDependencyError(f"{purpose} needs {self.description} ({self.name}), which "
                                   f"is not installed: {self.install}")

  def _implementation(self) -> ModuleType:
    self.require(f"coding with {self.name}")
    return importlib.import_module(self.module)

  def encode(self, symbols: np.ndarray, tables: IntegerTables,
             indexes: np.ndarray | None = None) -> bytes:
    """Codes integers (…, channels) into one byte string, each with the table its index names
    (default: its channel's)."""
    return self._implementation().encode(symbols, tables, indexes)

  def decode(self, data: bytes, tables: IntegerTables, shape: tuple[int, ...],
             indexes: np.ndarray | None = None) -> np.ndarray:
    """The integers of `shape` that `encode` coded with the same tables and indexes; raises
    errors.CodingError for any stream that is not exactly what `encode` writes."""
    return self._implementation().decode(data, tables, shape, indexes)


TFC = Coder("tfc", "TensorFlow Compression's range coder", "eic_jax.coder.tfc_range_coder",
            ("tensorflow", "tensorflow_compression_ops"), CODING_INSTALL)
CONSTRICTION = Coder("constriction", "constriction's range coder",
                     "eic_jax.coder.constriction_coder", ("constriction",),
                     "pip install constriction")
# In order of preference: the first installed one writes unless another is named.
CODERS = {coder.name: coder for coder in (TFC, CONSTRICTION)}


def get(name: str | None = None) -> Coder:
  """The coder of that name, or the preferred installed one for None; raises ValueError for an
  unknown name and MissingDependencyError for one not installed, each in one line."""
  if name is None:
    for coder in CODERS.values():
      if coder.available():
        return coder
    raise MissingDependencyError("no entropy coder is installed: pip install constriction")
  if name not in CODERS:
    raise ValueError(f"unknown coder {name!r}; choose one of {', '.join(CODERS)}")
  CODERS[name].require(f"coding with {name}")
  return CODERS[name]


def installed() -> list[str]:
  return [name for name, coder in CODERS.items() if coder.available()]
