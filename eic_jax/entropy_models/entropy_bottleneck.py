"""The entropy bottleneck: quantisation of the latents and their rate under a learned density.

Training replaces rounding by additive uniform noise, so the density convolved with a unit box
models the noisy latents (Ballé et al. 2017, section 2). Evaluation rounds around each channel's
median. The median and the tails (the quantiles at tail_mass / 2 and 1 − tail_mass / 2) are
solved from the density itself by bisection on its monotone cumulative, so they are exact for
every checkpoint, with no auxiliary parameters that would lag behind the density.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.entropy_models import deep_factorized

DEFAULT_TAIL_MASS = 2.0**-8
# Bisection bracket; enough iterations to reach float32 resolution from it.
_SEARCH_RANGE = 2.0**16
_BISECTIONS = 64


def _solve_cumulative_logit(density: dict, targets: jax.Array) -> jax.Array:
  """x (channels, len(targets)) with logits_cumulative(x) = targets, per channel."""
  channels = jax.tree_util.tree_leaves(density)[0].shape[0]
  shape = (channels, targets.shape[0])

  def bisect(_, bracket):
    low, high = bracket
    middle = 0.5 * (low + high)
    below = deep_factorized.logits_cumulative(density, middle) < targets
    return jnp.where(below, middle, low), jnp.where(below, high, middle)

  low, high = jax.lax.fori_loop(
      0, _BISECTIONS, bisect,
      (jnp.full(shape, -_SEARCH_RANGE), jnp.full(shape, _SEARCH_RANGE)))
  return 0.5 * (low + high)


def quantiles(density: dict, tail_mass: float = DEFAULT_TAIL_MASS) -> jax.Array:
  """Per channel (channels, 3): the lower tail, the median and the upper tail."""
  edge = float(np.log(2.0 / tail_mass - 1.0))
  targets = jnp.array([-edge, 0.0, edge], jnp.float32)
  return _solve_cumulative_logit(jax.lax.stop_gradient(density), targets)


def medians(density: dict) -> jax.Array:
  zero = jnp.zeros((1,), jnp.float32)
  return _solve_cumulative_logit(jax.lax.stop_gradient(density), zero)[:, 0]


def round_around(y: jax.Array, offsets: jax.Array) -> jax.Array:
  """The latents (…, channels) rounded to the integers shifted by each channel's offset."""
  return jnp.round(y - offsets) + offsets


def round_around_medians(density: dict, y: jax.Array) -> jax.Array:
  return round_around(y, medians(density))


def likelihoods(density: dict, y: jax.Array) -> jax.Array:
  """Probability of each element of the quantised latents `y` (…, channels)."""
  channels = y.shape[-1]
  flat = y.reshape(-1, channels).T
  return deep_factorized.likelihood(density, flat).T.reshape(y.shape)


class EntropyBottleneck(nn.Module):
  """Quantises latents (…, channels) and returns them with their likelihoods."""

  channels: int
  hidden: Sequence[int] = (3, 3, 3)
  init_scale: float = 10.0

  @nn.compact
  def __call__(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """(latents for the synthesis, likelihoods for the rate). In training the rate always sees
    noisy latents; with `straight_through` the synthesis sees the rounded latents that a decoder
    gets, with the rounding's gradient taken as the identity (Minnen & Singh 2020, "Channel-wise
    autoregressive entropy models for learned image compression", section 2.2)."""
    density = deep_factorized.DeepFactorized(
        self.channels, self.hidden, self.init_scale, name="density")()
    if not training:
      rounded = round_around_medians(density, y)
      return rounded, likelihoods(density, rounded)
    noisy = y + jax.random.uniform(self.make_rng("noise"), y.shape, y.dtype, -0.5, 0.5)
    if not straight_through:
      return noisy, likelihoods(density, noisy)
    rounded = y + jax.lax.stop_gradient(round_around_medians(density, y) - y)
    return rounded, likelihoods(density, noisy)

  def bits(self, y_hat: jax.Array) -> jax.Array:
    """−log2 P of each element of quantised latents (…, channels)."""
    return -jnp.log2(likelihoods(self.variables["params"]["density"], y_hat))
