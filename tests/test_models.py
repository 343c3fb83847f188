import dataclasses
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eic_jax
from configs import default
from eic_jax import models
from eic_jax.codec import codec as codec_lib
from eic_jax.coder import bitstream
from eic_jax.evaluation import report
from eic_jax.models import bmshj2018
from eic_jax.runtime import image_io
from eic_jax.storage import shipped
from eic_jax.training import train
from tests.conftest import photo

DATA = pathlib.Path(__file__).parent / "data"


def _config(model: str):
  config = default.get_config()
  config.model = model
  config.num_filters, config.num_latent_filters = 8, 12
  return config


@pytest.mark.parametrize("model,likelihoods", [("bls2017", {"y": 8}), ("bmshj2018", {"y": 12, "z": 8})])
def test_every_architecture_gives_a_reconstruction_and_its_likelihoods(model, likelihoods):
  network = models.create(_config(model))
  x = jnp.zeros((2, 40, 72, 3))  # latents 3x5: odd, so z's grid is padded
  params = train.init_params(network, jax.random.PRNGKey(0))
  # Compiled whole: eagerly, every operation would compile on its own.
  apply = jax.jit(network.apply, static_argnames="training")
  for training in (True, False):
    x_hat, outputs = apply({"params": params}, x, training=training,
                           rngs={"noise": jax.random.PRNGKey(2)})
    assert x_hat.shape == x.shape
    assert {name: tensor.shape[-1] for name, tensor in outputs.items()} == likelihoods
    assert all(bool(jnp.all((t > 0) & (t <= 1))) for t in outputs.values())
  assert outputs["y"].shape[1:3] == (3, 5)
  if model == "bmshj2018":
    assert outputs["z"].shape[1:3] == bmshj2018.side_shape((3, 5), 8)[:2] == (1, 2)


def test_hyperprior_has_the_papers_layers():
  network = models.create(_config("bmshj2018"))
  params = jax.eval_shape(functools.partial(network.init, training=True),
                          {"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(1)},
                          jnp.zeros((1, 64, 64, 3)))["params"]
  kernels = {f"{part}/{layer}": params[part][layer]["kernel_fourier"].shape
             for part in ("analysis", "synthesis", "hyper_analysis", "hyper_synthesis")
             for layer in params[part] if layer.startswith("conv")}
  assert kernels == {
      "analysis/conv_0": (5, 5, 3, 8), "analysis/conv_1": (5, 5, 8, 8),
      "analysis/conv_2": (5, 5, 8, 8), "analysis/conv_3": (5, 5, 8, 12),
      "synthesis/conv_0": (5, 5, 12, 8), "synthesis/conv_1": (5, 5, 8, 8),
      "synthesis/conv_2": (5, 5, 8, 8), "synthesis/conv_3": (5, 5, 8, 3),
      "hyper_analysis/conv_0": (3, 3, 12, 8), "hyper_analysis/conv_1": (5, 5, 8, 8),
      "hyper_analysis/conv_2": (5, 5, 8, 8),
      "hyper_synthesis/conv_0": (5, 5, 8, 8), "hyper_synthesis/conv_1": (5, 5, 8, 8),
      "hyper_synthesis/conv_2": (3, 3, 8, 12)}
  assert "bias" not in params["analysis"]["conv_3"] and "bias" not in params["hyper_analysis"]["conv_2"]
  assert set(params["analysis"]) >= {"gdn_0", "gdn_1", "gdn_2"}


def test_unknown_architecture_is_named():
  config = default.get_config()
  config.model = "bmshj2019"
  with pytest.raises(ValueError, match="Unknown model 'bmshj2019'; use one of bls2017, bmshj2018, ms2020"):
    models.create(config)


def test_configs_written_before_the_choice_are_bls2017():
  config = default.get_config()
  del config["model"]
  assert models.architecture(config) == "bls2017"


def test_a_wrong_scale_index_is_caught_before_the_latents_are_decoded(hyperprior_codec):
  data = hyperprior_codec.compress(photo("coffee", (96, 128)))
  codec = codec_lib.Codec(hyperprior_codec.config, hyperprior_codec.params,
                          hyperprior_codec.tables)
  predict_scales = codec.latent_codec._predict_scales  # pylint: disable=protected-access

  def nudged(*args):
    # What another machine's floating point can do: one scale across a table boundary.
    output = predict_scales(*args).copy()
    output.flat[7] = 1.2 * max(float(output.flat[7]), 0.2)
    return output

  codec.latent_codec._predict_scales = nudged  # pylint: disable=protected-access
  with pytest.raises(bitstream.BitstreamError, match="coding-table indexes it computed"):
    codec.decompress(data)
  codec.latent_codec._predict_scales = predict_scales  # pylint: disable=protected-access
  assert codec.decompress(data).shape == (96, 128, 3)


def test_files_of_earlier_weights_and_other_models_say_which(codec, hyperprior_codec):
  data = hyperprior_codec.compress(photo("coffee", (40, 40)))
  written = f"fingerprint {hyperprior_codec.fingerprint.hex()}"
  with pytest.raises(bitstream.BitstreamError,
                     match=f"different model: the file was written by .*bmshj2018, "
                           f"training step 60, {written}"):
    codec.decompress(data)
  retrained = codec_lib.Codec(
      hyperprior_codec.config, jax.tree_util.tree_map(lambda a: a * 1.001, hyperprior_codec.params),
      hyperprior_codec.tables, name=hyperprior_codec.name, step=90)
  with pytest.raises(bitstream.BitstreamError, match=f"earlier weights of {hyperprior_codec.name}"
                     r".*training step 60.*this copy is .*training step 90"):
    retrained.decompress(data)


def test_files_of_earlier_shipped_weights_name_the_commit_that_holds_them():
  codec = eic_jax.load_codec("bls2017-mse-0.013")
  earlier = shipped.record("bls2017-mse-0.013")["releases"][1]
  header, streams = bitstream.unpack(codec.compress(photo("coffee", (40, 40))))
  header = dataclasses.replace(header, fingerprint=bytes.fromhex(earlier["fingerprint"]),
                               step=earlier["step"])
  with pytest.raises(bitstream.BitstreamError,
                     match=f"earlier weights of bls2017-mse-0.013: .*training step "
                           f"{earlier['step']:,}.*shipped in commit {earlier['commit']}; "):
    codec.decompress(bitstream.pack(header, streams))


@pytest.mark.tfc
def test_version_1_files_still_decode():
  """A file written before version 2, by the shipped model it names, decodes to the pixels it
  decoded to then."""
  codec = eic_jax.load_codec("bls2017-mse-0.013")
  decoded = codec.decompress((DATA / "coffee-v1-bls2017-mse-0.013.eic").read_bytes())
  expected = image_io.read_image(str(DATA / "coffee-v1-bls2017-mse-0.013.png"))
  assert decoded.shape == expected.shape == (48, 40, 3)
  assert np.mean(decoded == expected) > 0.99 and np.max(np.abs(decoded - expected.astype(int))) <= 1


@pytest.mark.tfc
def test_version_2_files_still_decode():
  """A version-2 file (no coder name: TensorFlow Compression's range coder wrote it) of a
  64x96 crop of coffee, by the shipped model it names: its streams are what this version
  writes with that coder."""
  data = (DATA / "coffee-bls2017-version2-tfc.eic").read_bytes()
  codec = eic_jax.load_codec("bls2017-mse-0.0067", coder="tfc")
  image = photo("coffee")[100:164, 200:296]
  decoded = codec.decompress(data)
  assert decoded.shape == image.shape and report.distortion(image, decoded)["psnr"] > 25
  assert bitstream.unpack(codec.compress(image))[1] == bitstream.unpack(data)[1]


def test_files_written_with_constriction_in_the_other_environment_decode():
  """Written with constriction under Python 3.11, NumPy 1 and JAX 0.5 (`make test`'s [coding]
  environment) by a shipped hyperprior, whose scales decide every table index: it decodes here
  too, in `make test`'s newest environment (Python 3.13, NumPy 2, the newest JAX), where the
  same commands write the same bytes."""
  data = (DATA / "coffee-bmshj2018-constriction-python3.11.eic").read_bytes()
  assert bitstream.unpack(data)[0].coder == "constriction"
  codec = eic_jax.load_codec("bmshj2018-mse-0.0067")
  image = photo("coffee")[100:164, 200:296]
  decoded = codec.decompress(data)  # the index checksum and the coder's own checks hold
  assert decoded.shape == image.shape and report.distortion(image, decoded)["psnr"] > 25


def test_version_1_files_of_earlier_shipped_weights_are_named(codec):
  data = (DATA / "coffee-v1-bls2017-mse-0.013.eic").read_bytes()
  with pytest.raises(bitstream.BitstreamError,
                     match=r"written by bls2017-mse-0.013 \(bls2017, training step 80,000"):
    codec.decompress(data)
