"""Coding tables from the learned density, and range coding with TensorFlow Compression's coder.

Each channel's table covers the integers between the density's tails (relative to its median),
plus one escape symbol that carries the remaining tail mass. With the coder's overflow mode (a
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

from eic_jax import deep_factorized
from eic_jax.bitstream import BitstreamError
from eic_jax import entropy_bottleneck
from eic_jax import tensorflow_setup

PRECISION = 16
# The escape symbol must fit in a 16-bit CDF alongside the regular ones.
MAX_TABLE_LENGTH = 2**PRECISION // 4


class CodingError(BitstreamError):
  """The range coder could not decode a stream (corrupted data or mismatched tables)."""


@dataclasses.dataclass(frozen=True)
class CodingTables:
  """Per channel: the coder's lookup row, the first coded integer and the quantisation offset.

  lookup: int32 (channels, length): [-precision, 0, cdf…, 2^precision, padding…].
  minima: int32 (channels,): the integer coded as symbol 0.
  medians: float32 (channels,): latents are rounded around these.
  """

  lookup: np.ndarray
  minima: np.ndarray
  medians: np.ndarray

  def as_dict(self) -> dict[str, np.ndarray]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, arrays: dict) -> "CodingTables":
    return cls(lookup=np.asarray(arrays["lookup"], np.int32),
               minima=np.asarray(arrays["minima"], np.int32),
               medians=np.asarray(arrays["medians"], np.float32))

  def to_bytes(self) -> bytes:
    return b"".join(np.ascontiguousarray(a).tobytes()
                    for a in (self.lookup, self.minima, self.medians))


def build_tables(density: dict, tail_mass: float = entropy_bottleneck.DEFAULT_TAIL_MASS,
                 precision: int = PRECISION) -> CodingTables:
  """Quantised CDF tables for every channel of a deep factorized density."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  density = jax.tree_util.tree_map(jnp.asarray, density)
  quantiles = np.asarray(entropy_bottleneck.quantiles(density, tail_mass))
  medians = quantiles[:, 1].astype(np.float32)
  minima = np.floor(quantiles[:, 0] - medians).astype(np.int32)
  maxima = np.ceil(quantiles[:, 2] - medians).astype(np.int32)
  lengths = maxima - minima + 1
  if lengths.max() > MAX_TABLE_LENGTH:
    raise ValueError(f"A channel's density spans {lengths.max()} integers between its tails, "
                     f"more than the {MAX_TABLE_LENGTH} a {precision}-bit table can hold")
  samples = (np.arange(lengths.max())[None, :] + minima[:, None]).astype(np.float32)
  centres = jnp.asarray(samples + medians[:, None])
  pmf = np.asarray(deep_factorized.likelihood(density, centres), np.float64)
  lower = np.asarray(deep_factorized.logits_cumulative(density, centres[:, :1] - 0.5))[:, 0]
  upper = np.asarray(deep_factorized.logits_cumulative(
      density, jnp.asarray((maxima + medians + 0.5)[:, None], jnp.float32)))[:, 0]
  tails = 1.0 / (1.0 + np.exp(-lower.astype(np.float64))) + 1.0 / (1.0 + np.exp(upper))
  table_length = lengths.max() + 3  # precision, leading zero, escape symbol
  lookup = np.full((len(medians), table_length), 2**precision, np.int32)
  for channel, length in enumerate(lengths):
    channel_pmf = np.append(pmf[channel, :length], max(tails[channel], 1e-9))
    cdf = tfc_ops.pmf_to_quantized_cdf(channel_pmf.astype(np.float32), precision=precision)
    lookup[channel, 0] = -precision  # negated: overflow (escape) coding enabled
    lookup[channel, 1:length + 3] = cdf.numpy()
  return CodingTables(lookup=lookup, minima=minima, medians=medians)


def _channel_index(shape: tuple[int, ...]) -> np.ndarray:
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)


def encode(symbols: np.ndarray, tables: CodingTables) -> bytes:
  """Range-codes integer latents (…, channels) into one byte string."""
  _, tfc_ops = tensorflow_setup.coding_ops()
  symbols = np.asarray(symbols, np.int32)
  index = _channel_index(symbols.shape)
  handle = tfc_ops.create_range_encoder([], tables.lookup)
  handle = tfc_ops.entropy_encode_index(handle, index, symbols - tables.minima)
  return tfc_ops.entropy_encode_finalize(handle).numpy()


def decode(data: bytes, tables: CodingTables, shape: tuple[int, ...]) -> np.ndarray:
  """Decodes integer latents of `shape` (…, channels); raises CodingError on a broken stream."""
  tf, tfc_ops = tensorflow_setup.coding_ops()
  index = _channel_index(shape)
  try:
    handle = tfc_ops.create_range_decoder(data, tables.lookup)
    handle, values = tfc_ops.entropy_decode_index(handle, index, shape, tf.int32)
    finished = bool(tfc_ops.entropy_decode_finalize(handle).numpy())
  except tf.errors.OpError as error:
    raise CodingError(f"the range coder rejected the stream: {error.message}") from error
  if not finished:
    raise CodingError("the range-coded stream is inconsistent")
  return values.numpy() + tables.minima
