"""Deep factorized density (Ballé et al. 2018, "Variational image compression with a scale
hyperprior", appendix 6.1).

Each channel has its own univariate density whose cumulative is a monotonic function
c(x) = sigmoid(f_K ∘ … ∘ f_0(x)); each f_k is an affine map with a nonnegative matrix (softplus)
followed, except for the last, by x + tanh(a) ⊙ tanh(x) with a > -1 (tanh), which keeps every
f_k nondecreasing. The functions below work on logits to stay accurate in the tails.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.layers.bounds import lower_bound

LIKELIHOOD_BOUND = 1e-9


def logits_cumulative(params: dict, x: jax.Array) -> jax.Array:
  """The cumulative's logit for inputs `x` of shape (channels, n)."""
  num_layers = len([name for name in params if name.startswith("matrix")])
  logits = x[:, None, :]
  for k in range(num_layers):
    logits = jnp.matmul(jax.nn.softplus(params[f"matrix_{k}"]), logits) + params[f"bias_{k}"]
    if k < num_layers - 1:
      logits = logits + jnp.tanh(params[f"factor_{k}"]) * jnp.tanh(logits)
  return logits[:, 0, :]


def likelihood(params: dict, x: jax.Array) -> jax.Array:
  """P(x − ½ < X ≤ x + ½) for `x` of shape (channels, n), lower-bounded for finite rates.

  The difference of sigmoids is taken on the side of the median where both are small, so the
  tails keep their precision instead of cancelling near 1.
  """
  lower = logits_cumulative(params, x - 0.5)
  upper = logits_cumulative(params, x + 0.5)
  sign = jax.lax.stop_gradient(-jnp.sign(lower + upper))
  probability = jnp.abs(jax.nn.sigmoid(sign * upper) - jax.nn.sigmoid(sign * lower))
  return lower_bound(probability, LIKELIHOOD_BOUND)


def _uniform_centred(key, shape, dtype=jnp.float32):
  return jax.random.uniform(key, shape, dtype, minval=-0.5, maxval=0.5)


class DeepFactorized(nn.Module):
  """Creates the density's parameters, one univariate density per channel, and returns them.

  `init_scale` sets the initial width of every density.
  """

  channels: int
  hidden: Sequence[int] = (3, 3, 3)
  init_scale: float = 10.0

  @nn.compact
  def __call__(self) -> dict:
    widths = (1, *self.hidden, 1)
    scale = self.init_scale ** (1.0 / (len(widths) - 1))
    params = {}
    for k in range(len(widths) - 1):
      value = float(np.log(np.expm1(1.0 / scale / widths[k + 1])))
      params[f"matrix_{k}"] = self.param(
          f"matrix_{k}", nn.initializers.constant(value),
          (self.channels, widths[k + 1], widths[k]))
      params[f"bias_{k}"] = self.param(
          f"bias_{k}", _uniform_centred, (self.channels, widths[k + 1], 1))
      if k < len(widths) - 2:
        params[f"factor_{k}"] = self.param(
            f"factor_{k}", nn.initializers.zeros, (self.channels, widths[k + 1], 1))
    return params
