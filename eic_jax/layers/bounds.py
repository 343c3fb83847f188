"""Bounds with gradients that let optimisation escape them (Ballé et al. 2017, appendix)."""

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def lower_bound(x: jax.Array, bound: float) -> jax.Array:
  """max(x, bound), whose gradient still flows where it would raise x back above the bound.

  A plain maximum has zero gradient below the bound, so a parameter pushed there can never
  recover; like the reference implementation, gradients pointing towards the feasible region
  pass through.
  """
  return jnp.maximum(x, bound)


def _lower_bound_fwd(x, bound):
  return jnp.maximum(x, bound), x


def _lower_bound_bwd(bound, x, g):
  passes = (x >= bound) | (g < 0)
  return (jnp.where(passes, g, jnp.zeros_like(g)),)


lower_bound.defvjp(_lower_bound_fwd, _lower_bound_bwd)


class NonnegativeParameter:
  """Reparameterises a value v >= minimum as v = max(p, sqrt(minimum + ε²))² − ε².

  Squaring makes small values change slowly, which stabilises GDN's β and γ near zero
  (Ballé et al. 2017, section 3).
  """

  def __init__(self, minimum: float = 0.0, offset: float = 2.0**-18):
    self.pedestal = offset**2
    self.bound = (minimum + self.pedestal) ** 0.5

  def to_parameter(self, value: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.maximum(value + self.pedestal, self.pedestal))

  def to_value(self, parameter: jax.Array) -> jax.Array:
    return jnp.square(lower_bound(parameter, self.bound)) - self.pedestal
