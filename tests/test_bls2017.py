import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.models.bls2017 import BLS2017
from eic_jax.training import train


@pytest.fixture(scope="module")
def model_and_params():
  model = BLS2017(num_filters=8)
  return model, train.init_params(model, jax.random.PRNGKey(0))


@pytest.mark.parametrize("height,width", [(1, 1), (15, 17), (33, 20), (64, 48)])
def test_any_image_size_reconstructs_at_its_own_size(model_and_params, height, width):
  model, params = model_and_params
  x = jnp.full((2, height, width, 3), 128.0)
  apply = jax.jit(model.apply, static_argnames="training")
  for training in (True, False):
    x_hat, outputs = apply({"params": params}, x, training=training,
                           rngs={"noise": jax.random.PRNGKey(2)})
    likelihoods = outputs["y"]
    assert x_hat.shape == x.shape
    assert likelihoods.shape == (2, -(-height // 16), -(-width // 16), 8)
    assert np.all((likelihoods > 0) & (likelihoods <= 1))


def test_analysis_and_synthesis_shapes(model_and_params):
  model, params = model_and_params
  y = model.apply({"params": params}, jnp.zeros((1, 40, 24, 3)), method=BLS2017.analyze)
  assert y.shape == (1, 3, 2, 8)
  x_hat = model.apply({"params": params}, y, method=BLS2017.synthesize)
  assert x_hat.shape == (1, 48, 32, 3)


def test_transforms_have_the_papers_kernels(model_and_params):
  _, params = model_and_params
  shapes = {f"{part}/{layer}": params[part][layer]["kernel_fourier"].shape
            for part in ("analysis", "synthesis") for layer in ("conv_0", "conv_1", "conv_2")}
  assert shapes == {
      "analysis/conv_0": (9, 9, 3, 8), "analysis/conv_1": (5, 5, 8, 8),
      "analysis/conv_2": (5, 5, 8, 8), "synthesis/conv_0": (5, 5, 8, 8),
      "synthesis/conv_1": (5, 5, 8, 8), "synthesis/conv_2": (9, 9, 8, 3)}
  assert set(params["analysis"]) == {"conv_0", "conv_1", "conv_2", "gdn_0", "gdn_1"}
  assert set(params["synthesis"]) == {"conv_0", "conv_1", "conv_2", "igdn_0", "igdn_1"}
