"""TensorFlow Compression's range coder (tensorflow-compression-ops, the [coding] extra) over the
integer tables of tables.py: the project's coder where it installs (Python ≤ 3.12).

With the coder's overflow mode (the negated precision in each lookup row), an integer outside a
table's range is coded after the escape with an Elias gamma code.
"""

import numpy as np

from eic_jax.coder.errors import CodingError
from eic_jax.coder.tables import IntegerTables, channel_indexes
from eic_jax.runtime import tensorflow_setup


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
