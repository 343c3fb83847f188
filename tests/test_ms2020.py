"""The channel-conditional model (models/ms2020.py): grown from the scale hyperprior, coded slice
by slice around its means. What every architecture must do is in test_model_contract.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import smoke
from eic_jax import models
from eic_jax.codec import codec as codec_lib
from eic_jax.coder import bitstream
from eic_jax.storage import checkpoints
from eic_jax.training import train
from tests.conftest import photo


def _config(model: str):
  config = smoke.get_config()
  config.model = model
  return config


def test_grown_from_a_hyperprior_it_starts_with_its_transforms_and_scales(hyperprior_workdir):
  config = _config("ms2020")
  state = train.create_train_state(config, jax.random.PRNGKey(3))
  grown = train.start_from_export(state, str(hyperprior_workdir), "ms2020")
  source, _, step = checkpoints.restore_export(str(hyperprior_workdir))
  assert int(grown.step) == step
  for name in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis",
               "entropy_bottleneck"):
    for a, b in zip(jax.tree_util.tree_leaves(grown.params[name]),
                    jax.tree_util.tree_leaves(source[name])):
      np.testing.assert_array_equal(a, b)
  model = models.create(config)
  z_hat = jnp.asarray(np.random.default_rng(0).integers(-3, 4, (1, 2, 3, 16)), jnp.float32)
  features = model.apply({"params": grown.params}, z_hat, method="predict_features")
  scales = models.create(_config("bmshj2018")).apply({"params": source}, z_hat,
                                                     method="predict_scales")
  np.testing.assert_array_equal(features[..., :24], 0.0)
  np.testing.assert_allclose(features[..., 24:], scales, rtol=1e-6)
  # Whatever was decoded before, every slice starts from the hyperprior's own prediction.
  decoded = jnp.asarray(np.random.default_rng(1).normal(size=(1, 8, 12, 24)), jnp.float32)
  for index in range(config.num_slices):
    means, slice_scales = model.apply({"params": grown.params}, features, decoded,
                                      jnp.array([8, 12]), index, method="slice_parameters")
    np.testing.assert_array_equal(means, 0.0)
    np.testing.assert_allclose(slice_scales, scales[..., 8 * index:8 * index + 8], rtol=1e-6)


def test_growing_is_for_other_architectures_the_same_one_must_match(hyperprior_workdir):
  narrower = _config("bmshj2018")
  narrower.num_filters, narrower.num_latent_filters = 8, 12
  state = train.create_train_state(narrower, jax.random.PRNGKey(3))
  with pytest.raises(ValueError, match="another shape than this config's"):
    train.start_from_export(state, str(hyperprior_workdir), "bmshj2018")


def test_each_slice_is_a_stream_decoded_after_the_slices_before_it(channel_conditional_workdir):
  codec = codec_lib.load_codec(str(channel_conditional_workdir))
  image = photo("coffee", (96, 128))
  data, encoded = codec.compress_with_latents(image)
  assert len(encoded.streams) == 1 + codec.config.num_slices == codec.latent_codec.num_streams
  assert codec.decompress(data).shape == image.shape
  # What another machine's floating point can do: one scale of slice 1 across a table boundary.
  # The tables of every later slice follow from it, so the decoder must notice.
  parameters = codec.latent_codec._slice_parameters  # pylint: disable=protected-access
  original = parameters[1]

  def nudged(*args):
    output = original(*args).copy()
    output[1].flat[5] = 1.2 * max(float(output[1].flat[5]), 0.2)
    return output

  parameters[1] = nudged
  try:
    with pytest.raises(bitstream.BitstreamError,
                       match="coding-table indexes it computed|slice 1 of the latents cannot"):
      codec.decompress(data)
  finally:
    parameters[1] = original
  np.testing.assert_array_equal(codec.decompress(data), codec.decompress(data))


def test_slice_count_must_divide_the_latents():
  config = _config("ms2020")
  config.num_slices = 5
  with pytest.raises(ValueError, match="num_slices = 5 does not divide the 24 latent channels"):
    models.create(config)
