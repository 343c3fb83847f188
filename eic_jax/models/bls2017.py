"""The model of Ballé, Laparra & Simoncelli (2017), "End-to-end optimized image compression".

Analysis: 9×9/4, 5×5/2, 5×5/2 convolutions with GDN after the first two. Synthesis: the mirror
image with IGDN. The latents are quantised by an entropy bottleneck with a deep factorized
density, and the model is trained on rate + λ·distortion.
"""

from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.coder.coders import Coder
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.entropy_models.entropy_bottleneck import EntropyBottleneck, FactorizedTables
from eic_jax.layers.gdn import GDN
from eic_jax.layers.padding import pad_to_multiple, restrict
from eic_jax.layers.signal_conv import SignalConv
from eic_jax.models import compiled
from eic_jax.models.base import CompressionModel, EncodedLatents, RefinementContext, pad_grid

DOWNSAMPLING = 16


class AnalysisTransform(nn.Module):
  num_filters: int

  @nn.compact
  def __call__(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    x = x / 255.0
    x = GDN(name="gdn_0")(SignalConv(self.num_filters, 9, 4, name="conv_0")(x))
    x = restrict(x, region, (1, 4))
    x = GDN(name="gdn_1")(SignalConv(self.num_filters, 5, 2, name="conv_1")(x))
    x = restrict(x, region, (1, 8))
    return SignalConv(self.num_filters, 5, 2, use_bias=False, name="conv_2")(x)


class SynthesisTransform(nn.Module):
  num_filters: int

  @nn.compact
  def __call__(self, y: jax.Array, region: jax.Array | None = None) -> jax.Array:
    x = SignalConv(self.num_filters, 5, 2, upsample=True, name="conv_0")(y)
    x = restrict(GDN(inverse=True, name="igdn_0")(x), region, (2, 1))
    x = SignalConv(self.num_filters, 5, 2, upsample=True, name="conv_1")(x)
    x = restrict(GDN(inverse=True, name="igdn_1")(x), region, (4, 1))
    x = SignalConv(3, 9, 4, upsample=True, name="conv_2")(x)
    return x * 255.0


class BLS2017(CompressionModel):
  """N latent channels, each with its own learned density."""

  num_filters: int = 128
  density_hidden: Sequence[int] = (3, 3, 3)
  density_init_scale: float = 10.0

  table_types: ClassVar[dict[str, type]] = {"entropy_bottleneck": FactorizedTables}

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "BLS2017":
    return cls(num_filters=config.num_filters, density_hidden=tuple(config.density_hidden),
               density_init_scale=config.density_init_scale)

  @property
  def latent_channels(self) -> int:
    return self.num_filters

  def setup(self):
    self.analysis = AnalysisTransform(self.num_filters)
    self.synthesis = SynthesisTransform(self.num_filters)
    self.entropy_bottleneck = EntropyBottleneck(
        self.num_filters, self.density_hidden, self.density_init_scale)

  def quantize(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    y_hat, likelihoods = self.entropy_bottleneck(y, training, straight_through)
    return y_hat, {"y": likelihoods}

  def analyze(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    return self.analysis(pad_to_multiple(x, DOWNSAMPLING), region)

  def synthesize(self, y_hat: jax.Array, region: jax.Array | None = None) -> jax.Array:
    return self.synthesis(y_hat, region)

  def latent_bits(self, y_hat: jax.Array, context: jax.Array) -> jax.Array:
    del context  # every position has the same per-channel densities
    return self.entropy_bottleneck.bits(y_hat)

  @classmethod
  def build_coding_tables(cls, params: Any, config: ml_collections.ConfigDict
                          ) -> dict[str, FactorizedTables]:
    return {"entropy_bottleneck": entropy_bottleneck.build_tables(
        params["entropy_bottleneck"]["density"], config.tail_mass)}

  def latent_codec(self, params: Any, tables: dict[str, FactorizedTables]
                   ) -> "FactorizedLatentCodec":
    return FactorizedLatentCodec(tables["entropy_bottleneck"],
                                 compiled.method(self, params, "latent_bits"))


class FactorizedLatentCodec:
  """Every latent coded as an integer relative to its channel's median, with its channel's
  table: one stream."""

  num_streams = 1

  def __init__(self, tables: FactorizedTables,
               latent_bits: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    self.tables = tables
    self._latent_bits = latent_bits  # BLS2017.latent_bits, compiled

  def refinement_context(self, y: np.ndarray, side: np.ndarray | None = None
                         ) -> RefinementContext:
    del side  # no side latents
    return RefinementContext(np.zeros(y.shape[:2] + (0,), np.float32), self.tables.medians)

  def encode(self, y: np.ndarray, coder: Coder, refined_from: Any = None) -> EncodedLatents:
    del refined_from  # the densities do not depend on the latents
    symbols = np.round(y - self.tables.medians).astype(np.int32)
    y_hat = (symbols + self.tables.medians).astype(np.float32)

    def information() -> float:
      bits = self._latent_bits(pad_grid(y_hat)[None], np.zeros((1, 1, 1, 0), np.float32))
      return float(np.sum(bits[0][:y.shape[0], :y.shape[1]]))

    return EncodedLatents([coder.encode(symbols, self.tables)], y_hat,
                          coding_tables.channel_indexes(y.shape), information)

  def decode(self, streams: list[bytes], shape: tuple[int, int, int], verify, coder: Coder
             ) -> np.ndarray:
    verify(coding_tables.channel_indexes(shape))
    return (coder.decode(streams[0], self.tables, shape)
            + self.tables.medians).astype(np.float32)
