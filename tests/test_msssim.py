import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.models.objective import Objective
from eic_jax.ops import msssim
from eic_jax.runtime import tensorflow_setup
from tests.conftest import photo


@pytest.mark.tfc
@pytest.mark.parametrize("size", [(176, 176), (256, 300), (213, 187)])
def test_matches_tensorflow(size):
  tf = tensorflow_setup.tensorflow()
  original = photo("astronaut", size).astype(np.float32)
  rng = np.random.default_rng(0)
  distorted = np.clip(original + rng.normal(0, 12, original.shape), 0, 255).astype(np.float32)
  blurred = (original + np.roll(original, 1, axis=0) + np.roll(original, 1, axis=1)) / 3
  x = np.stack([original, original])
  y = np.stack([distorted, blurred.astype(np.float32)])
  expected = tf.image.ssim_multiscale(x, y, max_val=255.0).numpy()
  np.testing.assert_allclose(msssim.ms_ssim(x, y), expected, atol=1e-4)


def test_identical_images_score_one_and_small_images_are_refused():
  x = photo("coffee", (200, 200))[None].astype(np.float32)
  np.testing.assert_allclose(msssim.ms_ssim(x, x), [1.0], atol=1e-6)
  with pytest.raises(ValueError, match="at least 176x176"):
    msssim.ms_ssim(x[:, :100], x[:, :100])


def test_decibels():
  np.testing.assert_allclose(msssim.to_decibels(np.float32(0.99)), 20.0, rtol=1e-5)


@pytest.mark.tfc
def test_the_ms_ssim_objective_is_one_minus_tensorflows_ms_ssim():
  tf = tensorflow_setup.tensorflow()
  original = photo("astronaut", (192, 200)).astype(np.float32)[None]
  distorted = np.clip(original + np.random.default_rng(1).normal(0, 20, original.shape), 0,
                      255).astype(np.float32)
  expected = 1.0 - tf.image.ssim_multiscale(original, distorted, max_val=255.0).numpy()
  objective = Objective(lmbda=10.0, distortion_name="ms-ssim")
  np.testing.assert_allclose(objective.distortion(original, distorted), expected, atol=1e-4)
  bpp = np.float32(0.5)
  np.testing.assert_allclose(objective.loss(bpp, expected), 0.5 + 10.0 * expected, rtol=1e-6)


@pytest.mark.parametrize("fill", ["flat", "noise"])
def test_the_ms_ssim_objective_has_finite_gradients_on_flat_and_noisy_images(fill):
  objective = Objective(lmbda=10.0, distortion_name="ms-ssim")
  x = jnp.full((1, 176, 176, 3), 128.0)
  # Noise: the reconstructions of the first steps, whose contrast terms can be negative.
  x_hat = x if fill == "flat" else jnp.asarray(
      np.random.default_rng(0).uniform(0, 255, x.shape), jnp.float32)
  gradient = jax.grad(lambda image: objective.distortion(x, image)[0])(x_hat)
  assert bool(jnp.all(jnp.isfinite(gradient)))
  if fill == "noise":
    assert float(jnp.max(jnp.abs(gradient))) > 0


def test_the_ms_ssim_objective_refuses_images_too_small_for_it():
  objective = Objective(lmbda=10.0, distortion_name="ms-ssim")
  with pytest.raises(ValueError, match="a training crop of 128x128 pixels is too small for the "
                                       "ms-ssim distortion, which needs at least 176x176"):
    objective.check_size(128, 128, "a training crop")
  with pytest.raises(ValueError, match="Unknown distortion 'ssim'; use one of mse, ms-ssim"):
    Objective(lmbda=1.0, distortion_name="ssim")
