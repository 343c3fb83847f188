import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.entropy_models import deep_factorized
from eic_jax.entropy_models import entropy_bottleneck


@pytest.fixture(scope="module")
def density():
  return deep_factorized.DeepFactorized(channels=3).init(jax.random.PRNGKey(0))["params"]


def test_cumulative_is_monotone(density):
  x = jnp.tile(jnp.linspace(-60.0, 60.0, 2001), (3, 1))
  logits = deep_factorized.logits_cumulative(density, x)
  assert np.all(np.diff(np.asarray(logits), axis=1) >= 0)
  cdf = jax.nn.sigmoid(logits)
  assert np.all(cdf[:, 0] < 0.01) and np.all(cdf[:, -1] > 0.99)


def test_likelihoods_over_the_integers_sum_to_one(density):
  integers = jnp.tile(jnp.arange(-200.0, 201.0), (3, 1))
  total = jnp.sum(deep_factorized.likelihood(density, integers), axis=1)
  np.testing.assert_allclose(total, 1.0, atol=1e-4)


def test_likelihoods_are_lower_bounded_and_gradients_finite(density):
  x = jnp.array([[0.0, 1e4, -1e4]] * 3)
  probabilities = deep_factorized.likelihood(density, x)
  assert np.all(probabilities >= deep_factorized.LIKELIHOOD_BOUND)
  grads = jax.grad(lambda p, x: jnp.sum(-jnp.log2(deep_factorized.likelihood(p, x))),
                   (0, 1))(density, x)
  for leaf in jax.tree_util.tree_leaves(grads):
    assert np.all(np.isfinite(leaf))


def test_likelihood_is_accurate_far_in_the_tail(density):
  # One minus nearly one would round to zero; the tail-side difference does not.
  x = jnp.full((3, 1), 40.0)
  direct = deep_factorized.likelihood(density, x)
  assert np.all(direct > deep_factorized.LIKELIHOOD_BOUND)


def test_quantiles_are_the_tails_and_median_of_the_density(density):
  tail = 2.0**-8
  solved = entropy_bottleneck.quantiles(density, tail)
  cdf = jax.nn.sigmoid(deep_factorized.logits_cumulative(density, solved))
  np.testing.assert_allclose(cdf, np.tile([tail / 2, 0.5, 1 - tail / 2], (3, 1)), atol=1e-5)
  np.testing.assert_allclose(entropy_bottleneck.medians(density), solved[:, 1], atol=1e-5)


def test_training_adds_noise_and_evaluation_rounds_around_the_median():
  module = entropy_bottleneck.EntropyBottleneck(channels=2)
  y = jnp.linspace(-3.0, 3.0, 16).reshape(1, 2, 4, 2)
  rngs = {"params": jax.random.PRNGKey(1), "noise": jax.random.PRNGKey(2)}
  params = module.init(rngs, y, training=True)["params"]
  noisy, _ = module.apply({"params": params}, y, training=True, rngs={"noise": rngs["noise"]})
  assert np.all(np.abs(noisy - y) <= 0.5) and not np.allclose(noisy, y)
  rounded, likelihoods = module.apply({"params": params}, y, training=False)
  medians = np.asarray(entropy_bottleneck.medians(params["density"]))
  assert np.all(np.abs(medians - np.round(medians)) > 1e-3)  # a real offset, not zero
  np.testing.assert_allclose(rounded, np.round(np.asarray(y) - medians) + medians, atol=1e-6)
  assert likelihoods.shape == y.shape


def test_straight_through_synthesis_sees_rounded_latents_and_rate_sees_noise():
  module = entropy_bottleneck.EntropyBottleneck(channels=2)
  y = jnp.linspace(-3.0, 3.0, 16).reshape(1, 2, 4, 2)
  rngs = {"params": jax.random.PRNGKey(1), "noise": jax.random.PRNGKey(2)}
  params = module.init(rngs, y, training=True)["params"]

  def apply(latents, straight_through):
    return module.apply({"params": params}, latents, training=True,
                        straight_through=straight_through, rngs={"noise": rngs["noise"]})

  rounded, rate_likelihoods = apply(y, True)
  _, noisy_likelihoods = apply(y, False)
  evaluated, _ = module.apply({"params": params}, y, training=False)
  np.testing.assert_allclose(rounded, evaluated, atol=1e-6)
  np.testing.assert_allclose(rate_likelihoods, noisy_likelihoods, rtol=1e-6)
  # The rounding passes gradients through unchanged.
  gradient = jax.grad(lambda latents: jnp.sum(apply(latents, True)[0] * y))(y)
  np.testing.assert_allclose(gradient, y, atol=1e-6)
