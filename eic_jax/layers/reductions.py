"""Sums written as matrix–vector products.

XLA:CPU reduces large arrays over their major axes several times slower than it multiplies them
by a vector of ones (measured 3.7 ms against 0.7 ms for an 8x64x64x128 activation), and the
training step takes several such sums in the gradients of biases and of GDN's β.
"""

import jax
import jax.numpy as jnp


def sum_all_but_last(x: jax.Array) -> jax.Array:
  """Σ over every axis but the last: (…, C) → (C,)."""
  flat = x.reshape(-1, x.shape[-1])
  return jnp.dot(jnp.ones((flat.shape[0],), x.dtype), flat)


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
  """x + bias over the last axis, with the bias gradient summed as a matrix–vector product."""
  return x + bias


def _add_bias_fwd(x, bias):
  return x + bias, None


def _add_bias_bwd(_, g):
  return g, sum_all_but_last(g)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)
