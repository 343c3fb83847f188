"""The scale hyperprior of Ballé, Minnen, Singh, Hwang & Johnston (2018), "Variational image
compression with a scale hyperprior".

Analysis: four 5×5/2 convolutions with GDN between them (N channels, then M latents);
synthesis: the mirror image with IGDN. A hyper-analysis on |y| (3×3/1 ReLU, 5×5/2 ReLU, 5×5/2)
gives side latents z, coded with a factorized density; the hyper-synthesis (5×5/2 ReLU,
5×5/2 ReLU, 3×3/1 ReLU) predicts from them the scale of every latent, whose Gaussian
conditional codes y. The hyper transforms run on the whole latent grid at once (it is 256×
smaller than the image), so only the main transforms are tiled.
"""

from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.coder.coders import Coder
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.entropy_models import gaussian_conditional
from eic_jax.entropy_models.entropy_bottleneck import EntropyBottleneck, FactorizedTables
from eic_jax.entropy_models.gaussian_conditional import GaussianConditional, GaussianTables
from eic_jax.layers.gdn import GDN
from eic_jax.layers.padding import pad_to_multiple, restrict
from eic_jax.layers.signal_conv import SignalConv
from eic_jax.models import compiled
from eic_jax.models.base import (SHAPE_BUCKET, CompressionModel, EncodedLatents,
                                 RefinementContext, pad_grid)

DOWNSAMPLING = 16
# The hyper-analysis downsamples the latents by this factor again.
HYPER_DOWNSAMPLING = 4


class AnalysisTransform(nn.Module):
  num_filters: int
  num_latent_filters: int

  @nn.compact
  def __call__(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    x = x / 255.0
    for k in range(3):
      x = GDN(name=f"gdn_{k}")(SignalConv(self.num_filters, 5, 2, name=f"conv_{k}")(x))
      x = restrict(x, region, (1, 2 ** (k + 1)))
    return SignalConv(self.num_latent_filters, 5, 2, use_bias=False, name="conv_3")(x)


class SynthesisTransform(nn.Module):
  num_filters: int

  @nn.compact
  def __call__(self, y: jax.Array, region: jax.Array | None = None) -> jax.Array:
    x = y
    for k in range(3):
      x = SignalConv(self.num_filters, 5, 2, upsample=True, name=f"conv_{k}")(x)
      x = restrict(GDN(inverse=True, name=f"igdn_{k}")(x), region, (2 ** (k + 1), 1))
    x = SignalConv(3, 5, 2, upsample=True, name="conv_3")(x)
    return x * 255.0


def _region(extent: jax.Array | None) -> jax.Array | None:
  """The region of layers.padding.restrict for a grid whose first `extent` positions are real."""
  return None if extent is None else jnp.concatenate([jnp.zeros(2, jnp.int32), extent])


class HyperAnalysis(nn.Module):
  num_filters: int
  # The scale hyperprior sees |y|: the scales do not depend on the signs. A model that also
  # predicts means needs them.
  absolute: bool = True

  @nn.compact
  def __call__(self, y: jax.Array, extent: jax.Array | None = None) -> jax.Array:
    """`extent`: for latents zero-padded past a grid of this size, rounded up to a multiple of
    4 (see BMSHJ2018.hyper_analyze); the result is that of the unpadded grid."""
    region = _region(extent)
    z = pad_to_multiple(jnp.abs(y) if self.absolute else y, HYPER_DOWNSAMPLING)
    z = restrict(nn.relu(SignalConv(self.num_filters, 3, 1, name="conv_0")(z)), region, (1, 1))
    z = restrict(nn.relu(SignalConv(self.num_filters, 5, 2, name="conv_1")(z)), region, (1, 2))
    return SignalConv(self.num_filters, 5, 2, use_bias=False, name="conv_2")(z)


class HyperSynthesis(nn.Module):
  num_filters: int
  num_latent_filters: int
  # Scales are non-negative; means are not, and a branch added to a trained model starts at
  # zero (see SignalConv.zero_init).
  nonnegative: bool = True
  zero_init: bool = False

  @nn.compact
  def __call__(self, z_hat: jax.Array, extent: jax.Array | None = None) -> jax.Array:
    """Scales on the grid of the padded latents (crop to the latents' size). `extent`: the
    size of z's grid when it is zero-padded past it."""
    region = _region(extent)
    x = nn.relu(SignalConv(self.num_filters, 5, 2, upsample=True, name="conv_0")(z_hat))
    x = restrict(x, region, (2, 1))
    x = nn.relu(SignalConv(self.num_filters, 5, 2, upsample=True, name="conv_1")(x))
    x = restrict(x, region, (4, 1))
    x = SignalConv(self.num_latent_filters, 3, 1, upsample=True, zero_init=self.zero_init,
                   name="conv_2")(x)
    return nn.relu(x) if self.nonnegative else x


def side_shape(latent_shape: tuple[int, ...], channels: int) -> tuple[int, int, int]:
  """The shape of z for latents of shape (h, w, …)."""
  return (-(-latent_shape[0] // HYPER_DOWNSAMPLING), -(-latent_shape[1] // HYPER_DOWNSAMPLING),
          channels)


class BMSHJ2018(CompressionModel):
  """N channels in the transforms and in z, M latent channels in y."""

  num_filters: int = 128
  num_latent_filters: int = 192
  density_hidden: Sequence[int] = (3, 3, 3)
  density_init_scale: float = 10.0

  decoder_modules: ClassVar[tuple[str, ...]] = ("hyper_synthesis", "synthesis")
  encoder_modules: ClassVar[tuple[str, ...]] = ("analysis", "hyper_analysis")
  entropy_modules: ClassVar[tuple[str, ...]] = ("hyper_analysis", "hyper_synthesis",
                                                "entropy_bottleneck")
  table_types: ClassVar[dict[str, type]] = {"entropy_bottleneck": FactorizedTables,
                                            "gaussian_conditional": GaussianTables}

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "BMSHJ2018":
    return cls(num_filters=config.num_filters, num_latent_filters=config.num_latent_filters,
               density_hidden=tuple(config.density_hidden),
               density_init_scale=config.density_init_scale)

  @property
  def latent_channels(self) -> int:
    return self.num_latent_filters

  def setup(self):
    self.analysis = AnalysisTransform(self.num_filters, self.num_latent_filters)
    self.synthesis = SynthesisTransform(self.num_filters)
    self.hyper_analysis = HyperAnalysis(self.num_filters)
    self.hyper_synthesis = HyperSynthesis(self.num_filters, self.num_latent_filters)
    self.entropy_bottleneck = EntropyBottleneck(
        self.num_filters, self.density_hidden, self.density_init_scale)
    self.gaussian_conditional = GaussianConditional()

  def quantize(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    z_hat, z_likelihoods = self.entropy_bottleneck(self.hyper_analysis(y), training,
                                                   straight_through)
    scales = self.predict_scales(z_hat)[:, :y.shape[1], :y.shape[2]]
    y_hat, y_likelihoods = self.gaussian_conditional(y, scales, training, straight_through)
    return y_hat, {"y": y_likelihoods, "z": z_likelihoods}

  def analyze(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    return self.analysis(pad_to_multiple(x, DOWNSAMPLING), region)

  def synthesize(self, y_hat: jax.Array, region: jax.Array | None = None) -> jax.Array:
    return self.synthesis(y_hat, region)

  def hyper_analyze(self, y: jax.Array, extent: jax.Array | None = None) -> jax.Array:
    return self.hyper_analysis(y, extent)

  def predict_scales(self, z_hat: jax.Array, extent: jax.Array | None = None) -> jax.Array:
    return self.hyper_synthesis(z_hat, extent)

  def side_bits(self, z_hat: jax.Array) -> jax.Array:
    return self.entropy_bottleneck.bits(z_hat)

  def latent_bits(self, y_hat: jax.Array, context: jax.Array) -> jax.Array:
    return -jnp.log2(gaussian_conditional.likelihoods(y_hat, context))

  def side_rate(self, z_hat: jax.Array, y_hat: jax.Array, extent: jax.Array) -> jax.Array:
    """Bits of side latents z_hat and of quantised latents y_hat with the scales z_hat
    predicts, per image, on grids zero-padded past the latents' `extent` (h, w): what refining
    z for fixed latents lowers (see RefinementContext.side)."""
    side_extent = -(-extent // HYPER_DOWNSAMPLING)
    scales = self.predict_scales(z_hat, side_extent)[:, :y_hat.shape[1], :y_hat.shape[2]]
    side_bits = restrict(self.side_bits(z_hat), _region(side_extent), (1, 1))
    latent_bits = restrict(self.latent_bits(y_hat, scales), _region(extent), (1, 1))
    return jnp.sum(side_bits, axis=(1, 2, 3)) + jnp.sum(latent_bits, axis=(1, 2, 3))

  @classmethod
  def build_coding_tables(cls, params: Any, config: ml_collections.ConfigDict
                          ) -> dict[str, Any]:
    return {
        "entropy_bottleneck": entropy_bottleneck.build_tables(
            params["entropy_bottleneck"]["density"], config.tail_mass),
        "gaussian_conditional": gaussian_conditional.build_tables(
            gaussian_conditional.scale_table(), config.tail_mass)}

  def latent_codec(self, params: Any, tables: dict[str, Any]) -> "HyperpriorLatentCodec":
    return HyperpriorLatentCodec(
        tables["entropy_bottleneck"], tables["gaussian_conditional"], self.num_filters,
        hyper_analyze=compiled.method(self, params, "hyper_analyze"),
        predict_scales=compiled.method_float64(self, params, "predict_scales"),
        side_bits=compiled.method(self, params, "side_bits"),
        latent_bits=compiled.method(self, params, "latent_bits"))


class HyperpriorLatentCodec:
  """The side latents z with the factorized tables, then every latent of y as an integer with
  the Gaussian table its predicted scale selects: two streams, z then y."""

  num_streams = 2

  def __init__(self, side_tables: FactorizedTables, latent_tables: GaussianTables,
               side_channels: int, hyper_analyze: Callable[..., np.ndarray],
               predict_scales: Callable[..., np.ndarray], side_bits: Callable[..., np.ndarray],
               latent_bits: Callable[..., np.ndarray]):
    """The callables are BMSHJ2018's methods of those names, compiled; `predict_scales` in
    float64."""
    self.side_tables = side_tables
    self.latent_tables = latent_tables
    self.side_channels = side_channels
    self._hyper_analyze = hyper_analyze
    self._predict_scales = predict_scales
    self._side_bits = side_bits
    self._latent_bits = latent_bits

  def latent_scales(self, z_symbols: np.ndarray, latent_shape: tuple[int, ...]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(z_hat, the scales of latents of `latent_shape`) from z's integers.

    The scales decide every latent's coding table, so the decoder must reproduce the encoder's
    exactly: they are computed in float64, where the last-bit differences between machines
    and compilations (about 1e-7 relative in float32) shrink to about 1e-16, far below the
    table's spacing. The file's index checksum catches what remains (docs/bitstream.md).
    """
    z_hat = (z_symbols + self.side_tables.medians).astype(np.float32)
    scales = self._predict_scales(pad_grid(z_hat)[None], np.array(z_hat.shape[:2], np.int32))[0]
    return z_hat, scales[:latent_shape[0], :latent_shape[1]]

  def side_latents(self, y: np.ndarray) -> np.ndarray:
    """z: the hyper-analysis of latents `y` (h, w, C), before quantisation."""
    extent = -(-np.array(y.shape[:2]) // HYPER_DOWNSAMPLING) * HYPER_DOWNSAMPLING
    z = self._hyper_analyze(pad_grid(y, HYPER_DOWNSAMPLING * SHAPE_BUCKET)[None],
                            extent.astype(np.int32))[0]
    return z[:extent[0] // HYPER_DOWNSAMPLING, :extent[1] // HYPER_DOWNSAMPLING]

  def side_symbols(self, y: np.ndarray) -> np.ndarray:
    """z's integers: the hyper-analysis of latents `y` (h, w, C), quantised."""
    return self.quantize_side(self.side_latents(y))

  def quantize_side(self, z: np.ndarray) -> np.ndarray:
    """The integers that code side latents z."""
    return np.round(z - self.side_tables.medians).astype(np.int32)

  def refinement_context(self, y: np.ndarray, side: np.ndarray | None = None
                         ) -> RefinementContext:
    z = self.side_latents(y) if side is None else side
    z_symbols = self.quantize_side(z)
    _, scales = self.latent_scales(z_symbols, y.shape)
    return RefinementContext(scales.astype(np.float32), np.zeros(y.shape[-1], np.float32),
                             z_symbols, side=np.asarray(z, np.float32),
                             side_offsets=self.side_tables.medians)

  def encode(self, y: np.ndarray, coder: Coder, refined_from: Any = None) -> EncodedLatents:
    """z is the hyper-analysis of `y`, or, for refined latents, of the latents before
    refinement, whose scales the refinement optimised for (`refined_from`)."""
    z_symbols = self.side_symbols(y) if refined_from is None else refined_from
    z_hat, scales = self.latent_scales(z_symbols, y.shape)
    indexes = gaussian_conditional.scale_indexes(scales, self.latent_tables)
    symbols = np.round(y).astype(np.int32)
    streams = [coder.encode(z_symbols, self.side_tables),
               coder.encode(symbols, self.latent_tables, indexes)]
    y_hat = symbols.astype(np.float32)

    def information() -> float:
      z_bits = self._side_bits(pad_grid(z_hat)[None])[0]
      y_bits = self._latent_bits(pad_grid(y_hat)[None],
                                 pad_grid(scales.astype(np.float32))[None])[0]
      return float(np.sum(z_bits[:z_hat.shape[0], :z_hat.shape[1]])
                   + np.sum(y_bits[:y.shape[0], :y.shape[1]]))

    return EncodedLatents(streams, y_hat,
                          np.concatenate([coding_tables.channel_indexes(z_symbols.shape).ravel(),
                                          indexes.ravel()]), information)

  def decode(self, streams: list[bytes], shape: tuple[int, int, int], verify, coder: Coder
             ) -> np.ndarray:
    z_shape = side_shape(shape, self.side_channels)
    z_symbols = coder.decode(streams[0], self.side_tables, z_shape)
    _, scales = self.latent_scales(z_symbols, shape)
    indexes = gaussian_conditional.scale_indexes(scales, self.latent_tables)
    verify(np.concatenate([coding_tables.channel_indexes(z_shape).ravel(), indexes.ravel()]))
    return coder.decode(streams[1], self.latent_tables, shape,
                              indexes).astype(np.float32)
