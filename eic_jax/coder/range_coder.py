"""Range coding of integers with TensorFlow Compression's coder, over integer tables.

A table covers the integers between a distribution's tails, plus one escape symbol that carries
the remaining tail mass; each entropy model builds its own (entropy_models/) from its density.
With the coder's overflow mode (a negated precision in the lookup), any integer outside a
table's range is coded after the escape with an Elias gamma code, so every value codes
losslessly however far out it lies.

The quantised CDFs are integers computed once and stored; encoding and decoding read them and
never recompute them from floating point, whose results differ between machines. Quantising a
CDF and coding need the range coder (the [coding] extra); the tables themselves are plain arrays
that load anywhere. Nothing here knows a density.
"""

import dataclasses

import numpy as np

from eic_jax.coder.bitstream import BitstreamError
from eic_jax.runtime import tensorflow_setup

PRECISION = 16
# The probability mass beyond a table's integers, which the escape symbol carries.
DEFAULT_TAIL_MASS = 2.0**-8
# The escape symbol must fit in a 16-bit CDF alongside the regular ones.
MAX_TABLE_LENGTH = 2**PRECISION // 4


class CodingError(BitstreamError):
  """The range coder could not decode a stream (corrupted data or mismatched tables)."""


@dataclasses.dataclass(frozen=True)
class IntegerTables:
  """The coder's lookup rows [-precision, 0, cdf…, 2^precision, padding…] (int32, one per
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


def lookup_rows(pmfs: list[np.ndarray], tails: np.ndarray, precision: int = PRECISION
                ) -> np.ndarray:
  """The coder's lookup table from one pmf per row (over its integers) and its tail mass."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  lookup = np.full((len(pmfs), max(len(pmf) for pmf in pmfs) + 3), 2**precision, np.int32)
  for row, (pmf, tail) in enumerate(zip(pmfs, tails)):
    with_escape = np.append(pmf, max(tail, 1e-9)).astype(np.float32)
    cdf = tfc_ops.pmf_to_quantized_cdf(with_escape, precision=precision)
    lookup[row, 0] = -precision  # negated: overflow (escape) coding enabled
    lookup[row, 1:len(pmf) + 3] = cdf.numpy()
  return lookup


def check_length(length: int, what: str, precision: int = PRECISION) -> None:
  if length > MAX_TABLE_LENGTH:
    raise ValueError(f"{what} spans {length} integers between its tails, more than the "
                     f"{MAX_TABLE_LENGTH} a {precision}-bit table can hold")


def channel_indexes(shape: tuple[int, ...]) -> np.ndarray:
  """Table index = channel: for entropy models with one table per channel."""
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def encode(symbols: np.ndarray, tables: IntegerTables, indexes: np.ndarray | None = None) -> bytes:
  """Range-codes integers (…, channels) into one byte string, each with the table its index
  names (default: its channel's)."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  symbols = np.asarray(symbols, np.int32)
  indexes = channel_indexes(symbols.shape) if indexes is None else np.asarray(indexes, np.int32)
  handle = tfc_ops.create_range_encoder([], tables.lookup)
  handle = tfc_ops.entropy_encode_index(handle, indexes, symbols - tables.minima[indexes])
  return tfc_ops.entropy_encode_finalize(handle).numpy()


# Bytes past a stream's end that the decoder reads as the zeros it assumes there.
_LOOKAHEAD_ZEROS = 8
# Upper bound on the bits one escaped value takes when every bit is 1: the escape symbol
# (probability ≥ 2^-16), a one-bit Elias gamma prefix and the sign; in bytes, rounded up.
_BYTES_PER_ESCAPE = 3


def _guarded(data: bytes, count: int) -> bytes:
  """`data` followed by what makes the coder's escape decoding terminate on any input.

  After an escape symbol the coder reads the Elias gamma prefix one bit at a time until a 1,
  and past the end of the data it reads zeros: a damaged or crafted stream that ends there
  would never return. Past a few zero bytes (which a valid stream may still read, and which
  leave its values unchanged), ones end every prefix, and there are enough of them for all
  `count` values to be decoded as escapes.
  """
  return (bytes(data) + bytes(_LOOKAHEAD_ZEROS)
          + b"\xff" * (_BYTES_PER_ESCAPE * count + 64))


def decode(data: bytes, tables: IntegerTables, shape: tuple[int, ...],
           indexes: np.ndarray | None = None) -> np.ndarray:
  """Decodes integers of `shape` coded by `encode` with the same tables and indexes; raises
  CodingError on a broken stream, including any that is not exactly what `encode` writes."""
  tf, tfc_ops = tensorflow_setup.coding_ops()
  indexes = channel_indexes(shape) if indexes is None else np.asarray(indexes, np.int32)
  try:
    handle = tfc_ops.create_range_decoder(_guarded(data, indexes.size), tables.lookup)
    handle, values = tfc_ops.entropy_decode_index(handle, indexes, shape, tf.int32)
  except tf.errors.OpError as error:
    raise CodingError(f"the range coder rejected the stream: {error.message}") from error
  decoded = values.numpy() + tables.minima[indexes]
  # The coder's own end check does not hold past the guard bytes; the exact one: a stream is
  # valid when it is what encoding its values gives (range coding is deterministic).
  if encode(decoded, tables, indexes) != bytes(data):
    raise CodingError("the range-coded stream is inconsistent")
  return decoded
