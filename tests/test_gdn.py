import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.layers import bounds
from eic_jax.layers import gdn


def _reference(x, beta, gamma, inverse):
  norm = np.einsum("...j,ij->...i", x**2, gamma) + beta
  return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


@pytest.fixture
def inputs():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 5, 7, 4)).astype(np.float32) * 3
  beta = rng.uniform(0.5, 2.0, size=4).astype(np.float32)
  gamma = rng.uniform(0.0, 0.3, size=(4, 4)).astype(np.float32)
  return x, beta, gamma


@pytest.mark.parametrize("inverse", [False, True])
def test_matches_formula(inputs, inverse):
  x, beta, gamma = inputs
  np.testing.assert_allclose(gdn.gdn(x, beta, gamma, inverse), _reference(x, beta, gamma, inverse),
                             rtol=1e-5, atol=1e-6)


def test_gdn_and_igdn_divide_and_multiply_by_the_same_norm(inputs):
  x, beta, gamma = inputs
  product = gdn.gdn(x, beta, gamma) * gdn.gdn(x, beta, gamma, inverse=True)
  np.testing.assert_allclose(product, x**2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inverse", [False, True])
def test_gradient_matches_automatic_differentiation(inputs, inverse):
  x, beta, gamma = inputs

  def plain(x, beta, gamma):
    norm = jnp.einsum("...j,ij->...i", x**2, gamma) + beta
    return x * (jnp.sqrt(norm) if inverse else jax.lax.rsqrt(norm))

  def objective(fn):
    return lambda *args: jnp.sum(jnp.sin(fn(*args)))

  ours = jax.grad(objective(lambda *a: gdn.gdn(*a, inverse)), (0, 1, 2))(x, beta, gamma)
  expected = jax.grad(objective(plain), (0, 1, 2))(x, beta, gamma)
  for a, b in zip(ours, expected):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_module_initialises_beta_to_one_and_gamma_to_scaled_identity():
  module = gdn.GDN()
  x = jnp.ones((1, 3, 3, 5))
  params = module.init(jax.random.PRNGKey(0), x)["params"]
  beta = gdn._BETA.to_value(params["beta"])
  gamma = gdn._GAMMA.to_value(params["gamma"])
  np.testing.assert_allclose(beta, np.ones(5), rtol=1e-6)
  np.testing.assert_allclose(gamma, 0.1 * np.eye(5), atol=1e-6)
  np.testing.assert_allclose(module.apply({"params": params}, x), 1 / np.sqrt(1.1), rtol=1e-5)


def test_parameters_stay_nonnegative_and_can_recover():
  parameter = bounds.NonnegativeParameter(minimum=1e-6)
  raw = jnp.array([-3.0, 0.0, 0.5])
  assert np.all(parameter.to_value(raw) >= 1e-6 - 1e-12)
  # Below the bound, a gradient that would raise the value passes; one that lowers it does not.
  raise_value = jax.grad(lambda p: -jnp.sum(parameter.to_value(p)))(raw)
  lower_value = jax.grad(lambda p: jnp.sum(parameter.to_value(p)))(raw)
  assert raise_value[0] != 0.0
  assert lower_value[0] == 0.0
  assert lower_value[2] != 0.0
