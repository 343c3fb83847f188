"""constriction's range coder over the integer tables of tables.py: the coder of the base install,
on every Python and NumPy that constriction has wheels for.

Each table row becomes a categorical model of its integer frequencies (the escape last), which
constriction requantises exactly as given to its own fixed-point precision; the symbols of one
table are coded together, tables in index order, so that a decoder that knows the indexes
reads them back in the same order. An integer outside its table is coded as the escape, then
after all regular symbols as an Elias gamma code (Elias 1975) of its distance beyond the table:
the bit length under probabilities 2^-(k+1), then the bits below the leading one uniformly.

Its range coder rather than its ANS coder, by measurement (experiments/constriction_range_or_ans.py,
2026-12-07, coffee with the shipped middle-rate models): as fast, and as close to the tables'
information content or closer (+0.019 % against +0.055 % on bmshj2018's latents, +0.57 %
against +1.56 % on its few side latents, equal on bls2017's); and it decodes in the order it
encodes, so the escapes' codes simply follow the symbols.
"""

import functools

import constriction
import numpy as np

from eic_jax.coder.errors import CodingError
from eic_jax.coder.tables import IntegerTables, channel_indexes

# The bit lengths of an escaped value's code, 0 to 32 (distances up to 2^33 − 2: any int32).
_MAX_BIT_LENGTH = 32
# Bits coded at once as a uniform symbol: constriction's uniform model is exact for powers of 2
# up to its precision (24 bits).
_CHUNK_BITS = 16


@functools.cache
def _bit_length_model():
  probabilities = 0.5 ** np.arange(1, _MAX_BIT_LENGTH + 2, dtype=np.float64)
  return constriction.stream.model.Categorical(probabilities, perfect=False)


@functools.lru_cache(maxsize=8)
def _cached_row_models(lookup: bytes, shape: tuple[int, int]) -> tuple:
  rows = IntegerTables(np.frombuffer(lookup, np.int32).reshape(shape), np.zeros(0, np.int32))
  models = []
  for row in range(shape[0]):
    frequencies = rows.frequencies(row).astype(np.float64)
    models.append(constriction.stream.model.Categorical(frequencies / frequencies.sum(),
                                                        perfect=False))
  return tuple(models)


def _row_models(tables: IntegerTables) -> tuple:
  """A categorical model per table row, built once per set of tables: not again for the
  re-encoding that checks every decoded stream, nor for the next image."""
  return _cached_row_models(np.ascontiguousarray(tables.lookup, np.int32).tobytes(),
                            tables.lookup.shape)


def _plan(indexes: np.ndarray):
  """(the order in which elements are coded, the table rows in use, where each row's elements
  begin and end in that order)."""
  flat = indexes.ravel()
  order = np.argsort(flat, kind="stable")
  rows, starts = np.unique(flat[order], return_index=True)
  ends = np.append(starts[1:], flat.size)
  return order, rows, starts, ends


def _escape_codes(distances: np.ndarray):
  """(bit lengths k, the k bits below the leading 1 of distance + 1) of Elias gamma codes."""
  values = distances.astype(np.uint64) + 1
  lengths = np.floor(np.log2(values.astype(np.float64))).astype(np.int64)
  # log2 in floating point may round up just below a power of 2: exact in integers.
  lengths -= (values < (np.uint64(1) << lengths.astype(np.uint64))).astype(np.int64)
  return lengths, values - (np.uint64(1) << lengths.astype(np.uint64))


def _chunks(lengths: np.ndarray):
  """(element, shift, bits) of every uniform symbol coding the bits below the leading 1."""
  elements, shifts, bits = [], [], []
  for shift in range(0, _MAX_BIT_LENGTH, _CHUNK_BITS):
    which = np.flatnonzero(lengths > shift)
    elements.append(which)
    shifts.append(np.full(which.size, shift, np.uint64))
    bits.append(np.minimum(lengths[which] - shift, _CHUNK_BITS))
  return np.concatenate(elements), np.concatenate(shifts), np.concatenate(bits)


def encode(symbols: np.ndarray, tables: IntegerTables, indexes: np.ndarray | None = None) -> bytes:
  """Codes integers (…, channels) into one byte string, each with the table its index names
  (default: its channel's)."""
  symbols = np.asarray(symbols, np.int64)
  indexes = channel_indexes(symbols.shape) if indexes is None else np.asarray(indexes, np.int32)
  order, rows, starts, ends = _plan(indexes)
  values = (symbols.ravel() - tables.minima[indexes.ravel()])[order]
  lengths = tables.lengths()[indexes.ravel()][order]
  escaped = (values < 0) | (values >= lengths)
  categories = np.where(escaped, lengths, values).astype(np.int32)
  encoder = constriction.stream.queue.RangeEncoder()
  models = _row_models(tables)
  for row, start, end in zip(rows, starts, ends):
    encoder.encode(categories[start:end], models[row])
  outside = values[escaped]
  # Below the table: 1, 3, 5, …; above it: 0, 2, 4, …
  distances = np.where(outside < 0, -2 * outside - 1, 2 * (outside - lengths[escaped]))
  bit_lengths, low_bits = _escape_codes(distances)
  if bit_lengths.size:
    encoder.encode(bit_lengths.astype(np.int32), _bit_length_model())
    elements, shifts, bits = _chunks(bit_lengths)
    if elements.size:
      chunk_values = (low_bits[elements] >> shifts) & ((np.uint64(1) << bits.astype(np.uint64))
                                                        - np.uint64(1))
      encoder.encode(chunk_values.astype(np.int32), constriction.stream.model.Uniform(),
                     (1 << bits).astype(np.int32))
  return encoder.get_compressed().astype("<u4").tobytes()


def decode(data: bytes, tables: IntegerTables, shape: tuple[int, ...],
           indexes: np.ndarray | None = None) -> np.ndarray:
  """Decodes integers of `shape` coded by `encode` with the same tables and indexes; raises
  CodingError on a broken stream, including any that is not exactly what `encode` writes."""
  indexes = channel_indexes(shape) if indexes is None else np.asarray(indexes, np.int32)
  if len(data) % 4:
    raise CodingError(f"the coded stream is {len(data)} bytes, not whole 32-bit words")
  order, rows, starts, ends = _plan(indexes)
  lengths = tables.lengths()[indexes.ravel()][order]
  try:
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    categories = np.empty(order.size, np.int64)
    models = _row_models(tables)
    for row, start, end in zip(rows, starts, ends):
      categories[start:end] = decoder.decode(models[row], int(end - start))
    escaped = categories == lengths
    values = categories.copy()
    count = int(np.count_nonzero(escaped))
    if count:
      bit_lengths = decoder.decode(_bit_length_model(), count).astype(np.int64)
      elements, shifts, bits = _chunks(bit_lengths)
      low_bits = np.zeros(count, np.uint64)
      if elements.size:
        chunk_values = decoder.decode(constriction.stream.model.Uniform(),
                                      (1 << bits).astype(np.int32)).astype(np.uint64)
        np.add.at(low_bits, elements, chunk_values << shifts)
      distances = ((np.uint64(1) << bit_lengths.astype(np.uint64)) + low_bits
                   - np.uint64(1)).astype(np.int64)
      values[escaped] = np.where(distances % 2 == 1, -(distances + 1) // 2,
                                 lengths[escaped] + distances // 2)
  # constriction reports data that no encoder wrote as AssertionError, running out of data as
  # ValueError or RuntimeError.
  except (AssertionError, ValueError, RuntimeError, OverflowError) as error:
    raise CodingError(f"the range coder rejected the stream: {error}") from error
  decoded = np.empty(order.size, np.int64)
  decoded[order] = values + tables.minima[indexes.ravel()][order]
  if decoded.size and (decoded.min() < np.iinfo(np.int32).min
                       or decoded.max() > np.iinfo(np.int32).max):
    raise CodingError("the range-coded stream is inconsistent")
  decoded = decoded.astype(np.int32).reshape(shape)
  # A stream is valid when it is what encoding its values gives (range coding is
  # deterministic): this refuses damaged streams that happen to decode.
  if encode(decoded, tables, indexes) != bytes(data):
    raise CodingError("the range-coded stream is inconsistent")
  return decoded
