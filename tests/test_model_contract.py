"""The model contract: what every registered architecture must do, tested for each of them.

An architecture is tested by registering it. This module registers one of its own, a tiny
factorized model written here alone, to show that a model file's worth of code, and nothing
else in the package, makes a new architecture train, export, code, tile, refine and withstand
damaged files.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from eic_jax import models
from eic_jax.codec import codec as codec_lib
from eic_jax.codec import export
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.entropy_models.entropy_bottleneck import EntropyBottleneck, FactorizedTables
from eic_jax.evaluation import report
from eic_jax.layers.gdn import GDN
from eic_jax.layers.padding import pad_to_multiple, restrict
from eic_jax.layers.signal_conv import SignalConv
from eic_jax.models import compiled
from eic_jax.models.base import CompressionModel
from eic_jax.models.bls2017 import FactorizedLatentCodec
from eic_jax.storage import checkpoints
from eic_jax.tools import fuzzing
from eic_jax.training import training_log
from tests.conftest import photo, trained_once


class TinyFactorized(CompressionModel):
  """Two 5×5/2 convolutions with a GDN between them, mirrored, and a factorized density."""

  num_filters: int = 8
  downsampling: ClassVar[int] = 4
  tile_margin: ClassVar[int] = 3
  decoder_modules: ClassVar[tuple[str, ...]] = ("synthesis_0", "igdn", "synthesis_1")
  encoder_modules: ClassVar[tuple[str, ...]] = ("analysis_0", "gdn", "analysis_1")
  table_types: ClassVar[dict[str, type]] = {"entropy_bottleneck": FactorizedTables}

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "TinyFactorized":
    return cls(num_filters=config.num_filters)

  @property
  def latent_channels(self) -> int:
    return self.num_filters

  def setup(self):
    self.analysis_0 = SignalConv(self.num_filters, 5, 2)
    self.gdn = GDN()
    self.analysis_1 = SignalConv(self.num_filters, 5, 2, use_bias=False)
    self.synthesis_0 = SignalConv(self.num_filters, 5, 2, upsample=True)
    self.igdn = GDN(inverse=True)
    self.synthesis_1 = SignalConv(3, 5, 2, upsample=True)
    self.entropy_bottleneck = EntropyBottleneck(self.num_filters)

  def analyze(self, x, region=None):
    x = pad_to_multiple(x, self.downsampling) / 255.0
    return self.analysis_1(restrict(self.gdn(self.analysis_0(x)), region, (1, 2)))

  def synthesize(self, y_hat, region=None):
    x = restrict(self.igdn(self.synthesis_0(y_hat)), region, (2, 1))
    return self.synthesis_1(x) * 255.0

  def quantize(self, y, training, straight_through=False):
    y_hat, likelihoods = self.entropy_bottleneck(y, training, straight_through)
    return y_hat, {"y": likelihoods}

  def latent_bits(self, y_hat, context):
    del context
    return self.entropy_bottleneck.bits(y_hat)

  @classmethod
  def build_coding_tables(cls, params: Any, config: ml_collections.ConfigDict):
    return {"entropy_bottleneck": entropy_bottleneck.build_tables(
        params["entropy_bottleneck"]["density"], config.tail_mass)}

  def latent_codec(self, params, tables):
    return FactorizedLatentCodec(tables["entropy_bottleneck"],
                                 compiled.method(self, params, "latent_bits"))


models.register("tiny_factorized", TinyFactorized)
ARCHITECTURES = sorted(models.ARCHITECTURES)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def trained(request, tmp_path_factory, photo_dir):
  """(architecture, workdir, codec): each registered architecture, trained briefly."""
  name = request.param
  known = {"bls2017": "trained_workdir", "bmshj2018": "hyperprior_workdir",
           "ms2020": "channel_conditional_workdir"}
  workdir = (request.getfixturevalue(known[name]) if name in known else
             trained_once(tmp_path_factory, photo_dir, name))
  return name, workdir, codec_lib.load_codec(str(workdir))


def _psnr(image, decoded):
  return report.distortion(image, decoded)["psnr"]


def test_training_logs_finite_losses_and_exports_the_last_step(trained):
  name, workdir, codec = trained
  assert codec.architecture == name and checkpoints.load_config(str(workdir)).model == name
  steps, losses = training_log.read_scalars(str(workdir))["train_loss"]
  assert steps[-1] == 60 and np.all(np.isfinite(losses))
  assert checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR) == 60 == codec.step
  assert export.pending(str(workdir)) is None
  assert list(codec.tables) == list(type(codec.model).table_types)


def test_decompressed_image_is_the_reconstruction_from_rounded_latents(trained):
  _, _, codec = trained
  image = photo("coffee", (70, 90))
  data, encoded = codec.compress_with_latents(image)
  decoded = codec.decompress(data)
  scale = codec.model.downsampling
  # The analysis sees the image extended to a multiple of its downsampling by its edge pixels.
  extended = np.pad(image, ((0, -70 % scale), (0, -90 % scale), (0, 0)), mode="edge")
  y = codec.model.apply({"params": codec.params}, jnp.asarray(extended[None], jnp.float32),
                        method="analyze")[0]
  # Rounded: to the integers, offset by each channel's median or each latent's mean where the
  # model has them.
  assert np.max(np.abs(encoded.latents - y)) <= 0.5 + 1e-4
  offsets = codec.latent_codec.refinement_context(np.asarray(y)).offsets
  assert np.allclose(encoded.latents, np.round(encoded.latents - offsets) + offsets, atol=1e-4)
  x_hat = codec.model.apply({"params": codec.params}, encoded.latents[None], method="synthesize")
  expected = np.asarray(jnp.round(jnp.clip(x_hat[0, :70, :90], 0, 255))).astype(np.uint8)
  assert decoded.dtype == np.uint8 and decoded.shape == (70, 90, 3)
  np.testing.assert_array_equal(decoded, expected)


def test_actual_rate_is_close_to_the_information_content(trained):
  _, _, codec = trained
  data, encoded = codec.compress_with_latents(photo("astronaut", (256, 256)))
  header_bits = 8 * (len(data) - sum(len(stream) for stream in encoded.streams))
  # Magic, version, CRC, the fixed fields, the three names, stream count and lengths.
  names = sum(len(name.encode()) for name in (codec.architecture, codec.name, codec.coder.name))
  assert header_bits <= 8 * (37 + names + 3 * (len(encoded.streams) - 1))
  assert 8 * len(data) <= encoded.bits * 1.01 + header_bits + 16 * len(encoded.streams)


@pytest.mark.parametrize("height,width", [(1, 1), (15, 17), (33, 2), (70, 130)])
def test_any_size_round_trips(trained, height, width):
  _, _, codec = trained
  image = np.random.default_rng(height).integers(0, 256, (height, width, 3), dtype=np.uint8)
  assert codec.decompress(codec.compress(image)).shape == (height, width, 3)


def test_tiled_coding_matches_untiled(trained):
  _, _, codec = trained
  image = photo("astronaut", (400, 500))
  tiled = codec_lib.Codec(codec.config, codec.params, codec.tables, max_tile=12)
  assert len(tiled._plan(400, 500)[0].starts) > 2  # pylint: disable=protected-access
  np.testing.assert_allclose(codec.latents(image), tiled.latents(image), atol=1e-3)
  whole, pieces = codec.encode(image).latents, tiled.encode(image).latents
  assert np.mean(whole == pieces) > 0.999
  assert np.max(np.abs(whole - pieces)) <= 1
  height, width = image.shape[:2]
  psnr_whole = _psnr(image, codec.reconstruct(whole, height, width))
  assert abs(psnr_whole - _psnr(image, tiled.reconstruct(whole, height, width))) <= 0.05
  assert tiled.decompress(tiled.compress(image)).shape == image.shape


def _rd_loss(codec, image, data, reconstruction):
  pixels = image.shape[0] * image.shape[1]
  return 8 * len(data) / pixels + codec.config.lmbda * report.distortion(
      image, reconstruction)["mse"]


def test_refined_files_decode_with_the_same_decoder_at_a_lower_rd_loss(trained):
  """Refined tile by tile, at most 12 latents a side: several tiles with margins (one tile is
  the same loop once)."""
  _, workdir, plain = trained
  image = photo("astronaut", (200, 200))
  refined = codec_lib.load_codec(str(workdir), refine_steps=30)
  plain = codec_lib.Codec(plain.config, plain.params, plain.tables, max_tile=12)
  refined.max_tile = 12
  plain_data, refined_data = plain.compress(image), refined.compress(image)
  assert refined_data != plain_data
  assert refined.compress(image) == refined_data  # the same file every time
  reconstruction = plain.decompress(refined_data)
  assert reconstruction.shape == image.shape
  assert (_rd_loss(plain, image, refined_data, reconstruction)
          < _rd_loss(plain, image, plain_data, plain.decompress(plain_data)))


def test_fuzzed_files_are_rejected_or_decoded_without_hanging(trained):
  """With the preferred installed coder: TensorFlow Compression's in `make test`'s [coding]
  environment, constriction's in its newest one."""
  name, _, codec = trained
  count = {"bls2017": 1400, "bmshj2018": 700}.get(name, 350)
  bounded = codec_lib.Codec(codec.config, codec.params, codec.tables, max_pixels=2**20)
  files = [bounded.compress(photo("astronaut", size)) for size in ((17, 30), (64, 64),
                                                                   (150, 120))]
  # The limit catches hangs, not speed: a damaged header may name any size up to max_pixels,
  # whose first decode includes compiling that shape (over 2 s on a loaded 2-core machine).
  result = fuzzing.run(bounded.decompress, files, count=count, seed=1, time_limit_s=30.0)
  assert result["failures"] == []
  assert result["rejected"] + result["decoded"] == count
  # Damage behind a recomputed CRC reaches the entropy decoder, which rejects every stream
  # that is not exactly what the encoder writes.
  assert result["totals"]["payload+crc: rejected"] > 0
  assert result["totals"]["flip: rejected"] == count // len(fuzzing.KINDS)


def test_a_registered_name_cannot_be_taken_twice():
  with pytest.raises(ValueError, match="taken"):
    models.register("bls2017", TinyFactorized)
  with pytest.raises(TypeError, match="not a CompressionModel"):
    models.register("not_a_model", nn.Dense)
