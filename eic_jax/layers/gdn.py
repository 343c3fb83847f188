"""Generalized divisive normalization (Ballé, Laparra & Simoncelli 2016; 2017, eq. 2-3).

GDN:  y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)
IGDN: y_i = x_i · sqrt(β_i + Σ_j γ_ij x_j²)   (the approximate inverse used in synthesis)
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from eic_jax.layers import reductions
from eic_jax.layers.bounds import NonnegativeParameter

_BETA = NonnegativeParameter(minimum=1e-6)
_GAMMA = NonnegativeParameter()


def _norm(x: jax.Array, beta: jax.Array, gamma: jax.Array) -> jax.Array:
  return jnp.dot(jnp.square(x), gamma.T) + beta


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def gdn(x: jax.Array, beta: jax.Array, gamma: jax.Array, inverse: bool = False) -> jax.Array:
  """Applies (I)GDN over the last axis of `x` with nonnegative `beta` (C,) and `gamma` (C, C)."""
  norm = _norm(x, beta, gamma)
  return x * jnp.sqrt(norm) if inverse else x * jax.lax.rsqrt(norm)


def _gdn_fwd(x, beta, gamma, inverse):
  norm = _norm(x, beta, gamma)
  scale = jnp.sqrt(norm) if inverse else jax.lax.rsqrt(norm)
  return x * scale, (x, scale, gamma)


def _gdn_bwd(inverse, residuals, g):
  # Written out because automatic differentiation keeps several more full-size intermediates,
  # and at these sizes GDN is bound by memory traffic, not arithmetic.
  x, scale, gamma = residuals
  # d(scale)/d(norm) is ½/scale for IGDN and −½·scale³ for GDN.
  dnorm = g * x * (0.5 / scale if inverse else -0.5 * scale**3)
  channels = x.shape[-1]
  flat_dnorm = dnorm.reshape(-1, channels)
  dx = g * scale + 2.0 * x * jnp.dot(dnorm, gamma)
  dbeta = reductions.sum_all_but_last(dnorm)
  dgamma = jax.lax.dot_general(flat_dnorm, jnp.square(x).reshape(-1, channels),
                               (((0,), (0,)), ((), ())))
  return dx, dbeta, dgamma


gdn.defvjp(_gdn_fwd, _gdn_bwd)


class GDN(nn.Module):
  """Flax wrapper: β initialised to 1 and γ to 0.1·I, both kept nonnegative."""

  inverse: bool = False
  gamma_init: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = x.shape[-1]
    beta = self.param(
        "beta", lambda _, c: _BETA.to_parameter(jnp.ones((c,))), channels)
    gamma = self.param(
        "gamma", lambda _, c: _GAMMA.to_parameter(self.gamma_init * jnp.eye(c)), channels)
    return gdn(x, _BETA.to_value(beta), _GAMMA.to_value(gamma), inverse=self.inverse)
