"""Gaussian conditional entropy model (Ballé, Minnen, Singh, Hwang & Johnston 2018, "Variational
image compression with a scale hyperprior", section 3).

Each latent is modelled as a zero-mean Gaussian whose scale a hyperprior predicts, convolved with
a unit box so that it also models the latent plus uniform noise (training) and the probability
of its integer (coding). Scales are lower-bounded, which keeps the rate of near-certain latents
finite. For coding, each scale is replaced by the smallest entry of a fixed log-spaced table
that is at least as large, so the coder needs one integer table per entry and the decoder must
recompute the same entry from its own hyper-synthesis (see docs/bitstream.md).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def scale_indexes(scales: jax.Array, table: jax.Array) -> jax.Array:
  """The index of the smallest table entry ≥ each scale (the last entry for larger ones)."""
  return jnp.sum(scales[..., None] > table[:-1], axis=-1).astype(jnp.int32)


class GaussianConditional(nn.Module):
  """Quantises latents given their predicted scales and returns them with their likelihoods.

  Training adds uniform noise for the rate; with `straight_through` the synthesis sees the
  rounded latents, as in entropy_bottleneck.EntropyBottleneck. Evaluation rounds to integers.
  """

  @nn.compact
  def __call__(self, y: jax.Array, scales: jax.Array, training: bool,
               straight_through: bool = False) -> tuple[jax.Array, jax.Array]:
    if not training:
      rounded = jnp.round(y)
      return rounded, likelihoods(rounded, scales)
    noisy = y + jax.random.uniform(self.make_rng("noise"), y.shape, y.dtype, -0.5, 0.5)
    if not straight_through:
      return noisy, likelihoods(noisy, scales)
    rounded = y + jax.lax.stop_gradient(jnp.round(y) - y)
    return rounded, likelihoods(noisy, scales)
