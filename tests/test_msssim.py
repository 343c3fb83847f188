import numpy as np
import pytest

from eic_jax.evaluation import msssim
from eic_jax.runtime import tensorflow_setup
from tests.conftest import photo


@pytest.mark.coding
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
