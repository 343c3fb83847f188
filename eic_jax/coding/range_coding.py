"""Integer coding tables of the entropy models, and range coding with TensorFlow Compression's coder.

Every table covers the integers between a distribution's tails, plus one escape symbol that
carries the remaining tail mass: one table per channel of a factorized density (integers
relative to the channel's median), one per scale of the Gaussian conditional's scale table. With the coder's overflow mode (a
negated precision in the lookup), any integer outside that range is coded after the escape with
an Elias gamma code, so every latent codes losslessly however far out it lies.

The quantised CDFs are integers computed once and stored; encoding and decoding read them and
never recompute them from floating point, whose results differ between machines. Building
tables and coding need the range coder (the [coding] extra); the tables themselves are plain
arrays that load anywhere.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.entropy_models import deep_factorized
from eic_jax.coding.bitstream import BitstreamError
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.entropy_models import gaussian_conditional
from eic_jax import tensorflow_setup

PRECISION = 16
# The escape symbol must fit in a 16-bit CDF alongside the regular ones.
MAX_TABLE_LENGTH = 2**PRECISION // 4


class CodingError(BitstreamError):
  """The range coder could not decode a stream (corrupted data or mismatched tables)."""


@dataclasses.dataclass(frozen=True)
class _IntegerTables:
  """The coder's lookup rows [-precision, 0, cdf…, 2^precision, padding…] (int32, one per
  table) and the integer each table codes as symbol 0 (int32), then the model's own fields
  (float32)."""

  lookup: np.ndarray
  minima: np.ndarray

  def as_dict(self) -> dict[str, np.ndarray]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, arrays: dict) -> "_IntegerTables":
    return cls(**{field.name: np.asarray(arrays[field.name],
                                         np.int32 if field.name in ("lookup", "minima")
                                         else np.float32)
                  for field in dataclasses.fields(cls)})

  def to_bytes(self) -> bytes:
    return b"".join(np.ascontiguousarray(getattr(self, field.name)).tobytes()
                    for field in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class FactorizedTables(_IntegerTables):
  """One table per channel of a factorized density; latents are rounded around `medians`
  (float32, per channel)."""

  medians: np.ndarray


@dataclasses.dataclass(frozen=True)
class GaussianTables(_IntegerTables):
  """One table per entry of the Gaussian conditional's scale table, whose `scales` (float32)
  it keeps; latents are rounded to integers."""

  scales: np.ndarray


Tables = FactorizedTables | GaussianTables


def tables_as_dict(tables: dict[str, Tables]) -> dict[str, dict[str, np.ndarray]]:
  return {name: table.as_dict() for name, table in tables.items()}


def tables_from_dict(arrays: dict) -> dict[str, Tables]:
  """The inverse of tables_as_dict; also reads exports written before models had more than
  one entropy model (one factorized table set, stored flat)."""
  if "lookup" in arrays:
    return {"entropy_bottleneck": FactorizedTables.from_dict(arrays)}
  return {name: (GaussianTables if "scales" in table else FactorizedTables).from_dict(table)
          for name, table in arrays.items()}


def _lookup_rows(pmfs: list[np.ndarray], tails: np.ndarray, precision: int) -> np.ndarray:
  """The coder's lookup table from one pmf per row (over its integers) and its tail mass."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  lookup = np.full((len(pmfs), max(len(pmf) for pmf in pmfs) + 3), 2**precision, np.int32)
  for row, (pmf, tail) in enumerate(zip(pmfs, tails)):
    with_escape = np.append(pmf, max(tail, 1e-9)).astype(np.float32)
    cdf = tfc_ops.pmf_to_quantized_cdf(with_escape, precision=precision)
    lookup[row, 0] = -precision  # negated: overflow (escape) coding enabled
    lookup[row, 1:len(pmf) + 3] = cdf.numpy()
  return lookup


def _check_length(length: int, precision: int, what: str) -> None:
  if length > MAX_TABLE_LENGTH:
    raise ValueError(f"{what} spans {length} integers between its tails, more than the "
                     f"{MAX_TABLE_LENGTH} a {precision}-bit table can hold")


def _sigmoid(logits: np.ndarray) -> np.ndarray:
  """1 / (1 + exp(−logits)) in float64, without overflow: a narrow density's logits at its
  table's rounded-out edges can pass what exp takes in float32 (88) and float64 (709)."""
  return np.exp(-np.logaddexp(0.0, -np.asarray(logits, np.float64)))


def build_tables(density: dict, tail_mass: float = entropy_bottleneck.DEFAULT_TAIL_MASS,
                 precision: int = PRECISION) -> FactorizedTables:
  """Quantised CDF tables for every channel of a deep factorized density."""
  density = jax.tree_util.tree_map(jnp.asarray, density)
  quantiles = np.asarray(entropy_bottleneck.quantiles(density, tail_mass))
  medians = quantiles[:, 1].astype(np.float32)
  minima = np.floor(quantiles[:, 0] - medians).astype(np.int32)
  maxima = np.ceil(quantiles[:, 2] - medians).astype(np.int32)
  lengths = maxima - minima + 1
  _check_length(int(lengths.max()), precision, "A channel's density")
  samples = (np.arange(lengths.max())[None, :] + minima[:, None]).astype(np.float32)
  centres = jnp.asarray(samples + medians[:, None])
  pmf = np.asarray(deep_factorized.likelihood(density, centres), np.float64)
  lower = np.asarray(deep_factorized.logits_cumulative(density, centres[:, :1] - 0.5))[:, 0]
  upper = np.asarray(deep_factorized.logits_cumulative(
      density, jnp.asarray((maxima + medians + 0.5)[:, None], jnp.float32)))[:, 0]
  tails = _sigmoid(lower) + _sigmoid(-upper)
  lookup = _lookup_rows([pmf[c, :n] for c, n in enumerate(lengths)], tails, precision)
  return FactorizedTables(lookup=lookup, minima=minima, medians=medians)


def build_gaussian_tables(scales: np.ndarray,
                          tail_mass: float = entropy_bottleneck.DEFAULT_TAIL_MASS,
                          precision: int = PRECISION) -> GaussianTables:
  """Quantised CDF tables of the zero-mean Gaussian at every scale of `scales`, each over the
  integers within its tails (tail_mass / 2 on either side)."""
  scales = np.asarray(scales, np.float32)
  edge = -float(jax.scipy.special.ndtri(tail_mass / 2))
  maxima = np.ceil(scales.astype(np.float64) * edge).astype(np.int32)
  _check_length(int(2 * maxima.max() + 1), precision, "The widest Gaussian")
  pmfs, tails = [], []
  for scale, maximum in zip(scales, maxima):
    integers = jnp.arange(-maximum, maximum + 1, dtype=jnp.float32)
    pmfs.append(np.asarray(gaussian_conditional.likelihoods(integers, jnp.float32(scale)),
                           np.float64))
    tails.append(2.0 * float(jax.scipy.special.ndtr(-(maximum + 0.5) / float(scale))))
  lookup = _lookup_rows(pmfs, np.array(tails), precision)
  return GaussianTables(lookup=lookup, minima=-maxima, scales=scales)


def _channel_index(shape: tuple[int, ...]) -> np.ndarray:
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def encode(symbols: np.ndarray, tables: Tables, indexes: np.ndarray | None = None) -> bytes:
  """Range-codes integers (…, channels) into one byte string, each with the table its index
  names (default: its channel's)."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  symbols = np.asarray(symbols, np.int32)
  indexes = _channel_index(symbols.shape) if indexes is None else np.asarray(indexes, np.int32)
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


def decode(data: bytes, tables: Tables, shape: tuple[int, ...],
           indexes: np.ndarray | None = None) -> np.ndarray:
  """Decodes integers of `shape` coded by `encode` with the same tables and indexes; raises
  CodingError on a broken stream, including any that is not exactly what `encode` writes."""
  tf, tfc_ops = tensorflow_setup.coding_ops()
  indexes = _channel_index(shape) if indexes is None else np.asarray(indexes, np.int32)
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
