"""Gaussian conditional entropy model (Ballé, Minnen, Singh, Hwang & Johnston 2018, "Variational
image compression with a scale hyperprior", section 3).

Each latent is modelled as a zero-mean Gaussian whose scale a hyperprior predicts, convolved with
a unit box so that it also models the latent plus uniform noise (training) and the probability
of its integer (coding). Scales are lower-bounded, which keeps the rate of near-certain latents
finite. For coding, each scale is replaced by the smallest entry of a fixed log-spaced table
that is at least as large, so the coder needs one integer table per entry and the decoder must
recompute the same entry from its own hyper-synthesis (see docs/bitstream.md).
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.entropy_models.quantization import quantize
from eic_jax.layers.bounds import lower_bound

SCALE_BOUND = 0.11
LIKELIHOOD_BOUND = 1e-9
# The scale table of TensorFlow Compression's and CompressAI's hyperprior models.
NUM_SCALES = 64
MAX_SCALE = 256.0


def scale_table(minimum: float = SCALE_BOUND, maximum: float = MAX_SCALE,
                levels: int = NUM_SCALES) -> np.ndarray:
  return np.exp(np.linspace(np.log(minimum), np.log(maximum), levels)).astype(np.float32)


def _upper_tail(x: jax.Array) -> jax.Array:
  """P(X > x) of a standard normal, accurate far into the tail (no 1 − Φ cancellation)."""
  return 0.5 * jax.scipy.special.erfc(x / np.sqrt(2.0))


def likelihoods(y: jax.Array, scales: jax.Array) -> jax.Array:
  """P(y − ½ < Y ≤ y + ½) for Y ~ N(0, scale²), lower-bounded for finite rates.

  Computed on the side of zero where both tails are small: by symmetry only |y| matters.
  """
  scales = lower_bound(scales, SCALE_BOUND)
  values = jnp.abs(y)
  probability = _upper_tail((values - 0.5) / scales) - _upper_tail((values + 0.5) / scales)
  return lower_bound(probability, LIKELIHOOD_BOUND)


class GaussianConditional(nn.Module):
  """Quantises latents to integers given their predicted scales and returns them with their
  likelihoods (see quantization.quantize)."""

  @nn.compact
  def __call__(self, y: jax.Array, scales: jax.Array, training: bool,
               straight_through: bool = False) -> tuple[jax.Array, jax.Array]:
    y_hat, measured = quantize(y, 0.0, training, straight_through,
                               self.make_rng("noise") if training else None)
    return y_hat, likelihoods(measured, scales)


@dataclasses.dataclass(frozen=True)
class GaussianTables(coding_tables.IntegerTables):
  """One table per entry of the scale table, whose `scales` (float32) it keeps; latents are
  coded as integers."""

  scales: np.ndarray


def build_tables(scales: np.ndarray, tail_mass: float = coding_tables.DEFAULT_TAIL_MASS,
                 precision: int = coding_tables.PRECISION) -> GaussianTables:
  """Quantised CDF tables of the zero-mean Gaussian at every scale of `scales`, each over the
  integers within its tails (tail_mass / 2 on either side)."""
  scales = np.asarray(scales, np.float32)
  edge = -float(jax.scipy.special.ndtri(tail_mass / 2))
  maxima = np.ceil(scales.astype(np.float64) * edge).astype(np.int32)
  coding_tables.check_length(int(2 * maxima.max() + 1), "The widest Gaussian", precision)
  pmfs, tails = [], []
  for scale, maximum in zip(scales, maxima):
    integers = jnp.arange(-maximum, maximum + 1, dtype=jnp.float32)
    pmfs.append(np.asarray(likelihoods(integers, jnp.float32(scale)), np.float64))
    tails.append(2.0 * float(jax.scipy.special.ndtr(-(maximum + 0.5) / float(scale))))
  lookup = coding_tables.lookup_rows(pmfs, np.array(tails), precision)
  return GaussianTables(lookup=lookup, minima=-maxima, scales=scales)


def scale_indexes(scales: np.ndarray, tables: GaussianTables) -> np.ndarray:
  """The coding table of every latent: the index of the smallest table scale ≥ its scale (the
  last for larger ones). On the host in float64, from scales the encoder and the decoder both
  compute in float64: the one computation whose agreement the bitstream depends on."""
  table = tables.scales.astype(np.float64)
  return np.searchsorted(table[:-1], np.asarray(scales, np.float64), side="left").astype(np.int32)
