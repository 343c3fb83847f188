"""Quantisation, the one operation every entropy model shares.

Training replaces rounding by additive uniform noise, so a density convolved with a unit box
models the noisy latents (Ballé et al. 2017, section 2). With `straight_through` the synthesis
sees the rounded latents a decoder gets, with the rounding's gradient taken as the identity,
while the rate still sees noisy ones (Minnen & Singh 2020, "Channel-wise autoregressive entropy
models for learned image compression", section 2.2). Evaluation and coding round.
"""

import jax
import jax.numpy as jnp


def round_around(y: jax.Array, offsets: jax.Array | float) -> jax.Array:
  """The latents (…, channels) rounded to the integers shifted by each channel's offset."""
  return jnp.round(y - offsets) + offsets


def quantize(y: jax.Array, offsets: jax.Array | float, training: bool, straight_through: bool,
             key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """(the latents the synthesis sees, the latents whose rate is measured). `offsets`: where
  the quantisation points lie relative to the integers; `key`: the noise's, in training."""
  if not training:
    rounded = round_around(y, offsets)
    return rounded, rounded
  noisy = y + jax.random.uniform(key, y.shape, y.dtype, -0.5, 0.5)
  if not straight_through:
    return noisy, noisy
  return y + jax.lax.stop_gradient(round_around(y, offsets) - y), noisy
