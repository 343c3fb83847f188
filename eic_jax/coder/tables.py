"""Integer coding tables: quantised CDFs that every entropy coder of coders.py reads.

A table covers the integers between a distribution's tails, plus one escape symbol that carries
the remaining tail mass; each entropy model builds its own (entropy_models/) from its density.
Any integer outside a table's range is coded after the escape by the coder's own lossless code,
so every value codes however far out it lies.

The quantised CDFs are integers computed once, here in NumPy, and stored with a model's export;
encoding and decoding read them and never recompute them from floating point, whose results
differ between machines. The rows keep TensorFlow Compression's layout
[-precision, 0, cdf…, 2^precision, padding…] (the negated precision enables its overflow
coding), which the other coders read too. Nothing here knows a density.
"""

import dataclasses

import numpy as np

PRECISION = 16
# The probability mass beyond a table's integers, which the escape symbol carries.
DEFAULT_TAIL_MASS = 2.0**-8
# The escape symbol must fit in a 16-bit CDF alongside the regular ones.
MAX_TABLE_LENGTH = 2**PRECISION // 4


@dataclasses.dataclass(frozen=True)
class IntegerTables:
  """The coders' lookup rows [-precision, 0, cdf…, 2^precision, padding…] (int32, one per
  table) and the integer each table codes as symbol 0 (int32). An entropy model's tables add
  its own float32 fields (how it maps latents to these integers)."""

  lookup: np.ndarray
  minima: np.ndarray

  def as_dict(self) -> dict[str, np.ndarray]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, arrays: dict) -> "IntegerTables":
    return cls(**{field.name: np.asarray(arrays[field.name],
                                         np.int32 if field.name in ("lookup", "minima")
                                         else np.float32)
                  for field in dataclasses.fields(cls)})

  def to_bytes(self) -> bytes:
    return b"".join(np.ascontiguousarray(getattr(self, field.name)).tobytes()
                    for field in dataclasses.fields(self))

  @property
  def precision(self) -> int:
    return -int(self.lookup[0, 0])

  def frequencies(self, row: int) -> np.ndarray:
    """The integer frequencies (summing to 2^precision) of row `row`'s symbols, the escape
    last."""
    cdf = self.lookup[row, 1:]
    length = int(np.argmax(cdf == 2**self.precision))
    return np.diff(cdf[:length + 1])

  def lengths(self) -> np.ndarray:
    """The regular symbols (integers between the tails, without the escape) of every row."""
    cdf = self.lookup[:, 1:]
    return (np.argmax(cdf == 2**self.precision, axis=1) - 1).astype(np.int64)


def quantized_cdf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
  """The integer CDF [0, …, 2^precision] of `pmf` in which every symbol keeps a frequency of at
  least 1, with the least expected code length such frequencies allow, found greedily.

  Written here because the libraries that do this (TensorFlow Compression's
  pmf_to_quantized_cdf, CompressAI's) come with TensorFlow or PyTorch, and the coders' own
  quantisation (constriction's) is not exposed as a table; one quantiser in NumPy gives the same
  tables in every install.
  """
  total = 2**precision
  pmf = np.asarray(pmf, np.float64)
  pmf = pmf / pmf.sum()
  frequencies = np.maximum(np.rint(pmf * total), 1).astype(np.int64)
  excess = int(frequencies.sum()) - total
  # Each unit taken from (or given to) the symbol whose expected code length it changes least
  # (most): p·log2(f/(f−1)) per unit removed, p·log2((f+1)/f) per unit added.
  while excess > 0:
    cost = np.where(frequencies > 1,
                    pmf * (np.log2(frequencies) - np.log2(np.maximum(frequencies - 1, 1))),
                    np.inf)
    frequencies[np.argmin(cost)] -= 1
    excess -= 1
  while excess < 0:
    gain = pmf * (np.log2(frequencies + 1) - np.log2(frequencies))
    frequencies[np.argmax(gain)] += 1
    excess += 1
  return np.concatenate([[0], np.cumsum(frequencies)]).astype(np.int32)


def lookup_rows(pmfs: list[np.ndarray], tails: np.ndarray, precision: int = PRECISION
                ) -> np.ndarray:
  """The lookup table from one pmf per row (over its integers) and its tail mass."""
  lookup = np.full((len(pmfs), max(len(pmf) for pmf in pmfs) + 3), 2**precision, np.int32)
  for row, (pmf, tail) in enumerate(zip(pmfs, tails)):
    lookup[row, 0] = -precision  # negated: overflow (escape) coding enabled
    lookup[row, 1:len(pmf) + 3] = quantized_cdf(np.append(pmf, max(tail, 1e-9)), precision)
  return lookup


def check_length(length: int, what: str, precision: int = PRECISION) -> None:
  if length > MAX_TABLE_LENGTH:
    raise ValueError(f"{what} spans {length} integers between its tails, more than the "
                     f"{MAX_TABLE_LENGTH} a {precision}-bit table can hold")


def channel_indexes(shape: tuple[int, ...]) -> np.ndarray:
  """Table index = channel: for entropy models with one table per channel."""
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)
