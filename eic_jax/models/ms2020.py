"""The channel-conditional mean–scale hyperprior of Minnen & Singh (2020), "Channel-wise
autoregressive entropy models for learned image compression".

The analysis and synthesis are bmshj2018's. A hyper-analysis of y (not |y|: means need the
signs) gives the side latents z, coded with a factorized density; two hyper-syntheses turn ẑ
into mean and scale features at the latents' resolution. The M latent channels are split into
`num_slices` slices coded one after another: each slice's means and scales come from the
features and from the first `max_support` slices decoded before it, and each latent is coded as
the integer nearest to its distance from its mean, with the Gaussian table of its scale (the
location–scale model of TensorFlow Compression), so ŷ = round(y − μ) + μ. A decoder thus runs
`num_slices` small networks in turn, where a spatial context model runs one per latent.

Each slice network is a residual over the hyperprior's own prediction for its channels, whose
last layer starts at zero, and the mean hyper-synthesis starts at zero too: a model grown from a
trained bmshj2018 (`init_from`, which copies the parameters of the same name and shape) starts
with its transforms and its scale predictions, and its entropy model learns from there.
"""

import functools
from typing import Any, Callable, ClassVar, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.coder.coders import Coder
from eic_jax.coder.errors import CodingError
from eic_jax.entropy_models import gaussian_conditional
from eic_jax.entropy_models.entropy_bottleneck import EntropyBottleneck, FactorizedTables
from eic_jax.entropy_models.gaussian_conditional import GaussianTables
from eic_jax.entropy_models.quantization import quantize
from eic_jax.layers.padding import restrict
from eic_jax.layers.signal_conv import SignalConv
from eic_jax.models import bmshj2018
from eic_jax.models import compiled
from eic_jax.models.base import EncodedLatents, RefinementContext, pad_grid

# The slice networks' kernels: 3×3 sees the neighbours of every latent at a ninth of the work
# of TensorFlow Compression's 5×5, which matters because the decoder runs them in float64.
CONTEXT_KERNEL = 3


class SliceNetwork(nn.Module):
  """One slice's means or scales: its channels of the hyperprior's `features` plus a correction
  computed from all of them and the slices decoded before it (`support`)."""

  hidden: Sequence[int]
  channels: int
  first_channel: int

  @nn.compact
  def __call__(self, features: jax.Array, support: jax.Array,
               region: jax.Array | None = None) -> jax.Array:
    x = jnp.concatenate([features, support], axis=-1)
    for k, width in enumerate(self.hidden):
      x = nn.relu(SignalConv(width, CONTEXT_KERNEL, 1, name=f"conv_{k}")(x))
      x = restrict(x, region, (1, 1))
    correction = SignalConv(self.channels, CONTEXT_KERNEL, 1, zero_init=True,
                            name=f"conv_{len(self.hidden)}")(x)
    return features[..., self.first_channel:self.first_channel + self.channels] + correction


class ChannelContext(nn.Module):
  """The mean and scale networks of every slice."""

  latent_channels: int
  num_slices: int
  max_support: int
  hidden: Sequence[int]

  def setup(self):
    depth = self.latent_channels // self.num_slices
    self.means = [SliceNetwork(self.hidden, depth, k * depth) for k in range(self.num_slices)]
    self.scales = [SliceNetwork(self.hidden, depth, k * depth) for k in range(self.num_slices)]

  def support_channels(self, index: int) -> int:
    """How many channels of the slices decoded before slice `index` it sees: the first ones."""
    return min(index, self.max_support) * (self.latent_channels // self.num_slices)

  def __call__(self, index: int, features: jax.Array, decoded: jax.Array,
               region: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(means, scales) of slice `index` from the hyperprior's features (mean features, then
    scale features) and the latents decoded so far (at least `support_channels(index)`)."""
    mean_features, scale_features = jnp.split(features, 2, axis=-1)
    support = decoded[..., :self.support_channels(index)]
    return (self.means[index](mean_features, support, region),
            self.scales[index](scale_features, support, region))


class MS2020(bmshj2018.BMSHJ2018):
  """bmshj2018's transforms and side latents (N channels in the transforms and in z, M latent
  channels in y), y in `num_slices` slices."""

  num_slices: int = 6
  max_support: int = 6
  context_hidden: Sequence[int] = (128, 64)

  decoder_modules: ClassVar[tuple[str, ...]] = ("hyper_synthesis", "hyper_synthesis_mean",
                                                "channel_context", "synthesis")
  entropy_modules: ClassVar[tuple[str, ...]] = ("hyper_analysis", "hyper_synthesis",
                                                "hyper_synthesis_mean", "channel_context",
                                                "entropy_bottleneck")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "MS2020":
    num_slices = config.get("num_slices", cls.num_slices)
    if num_slices < 1 or config.num_latent_filters % num_slices:
      raise ValueError(f"num_slices = {num_slices} does not divide the "
                       f"{config.num_latent_filters} latent channels")
    return cls(num_filters=config.num_filters, num_latent_filters=config.num_latent_filters,
               density_hidden=tuple(config.density_hidden),
               density_init_scale=config.density_init_scale, num_slices=num_slices,
               max_support=config.get("max_support", cls.max_support),
               context_hidden=tuple(config.get("context_hidden", cls.context_hidden)))

  def setup(self):
    self.analysis = bmshj2018.AnalysisTransform(self.num_filters, self.num_latent_filters)
    self.synthesis = bmshj2018.SynthesisTransform(self.num_filters)
    self.hyper_analysis = bmshj2018.HyperAnalysis(self.num_filters, absolute=False)
    self.hyper_synthesis = bmshj2018.HyperSynthesis(self.num_filters, self.num_latent_filters)
    self.hyper_synthesis_mean = bmshj2018.HyperSynthesis(
        self.num_filters, self.num_latent_filters, nonnegative=False, zero_init=True)
    self.channel_context = ChannelContext(self.num_latent_filters, self.num_slices,
                                          self.max_support, tuple(self.context_hidden))
    self.entropy_bottleneck = EntropyBottleneck(
        self.num_filters, self.density_hidden, self.density_init_scale)

  def _slices(self, y: jax.Array) -> list[jax.Array]:
    return jnp.split(y, self.num_slices, axis=-1)

  def quantize(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    z_hat, z_likelihoods = self.entropy_bottleneck(self.hyper_analysis(y), training,
                                                   straight_through)
    features = self.predict_features(z_hat)[:, :y.shape[1], :y.shape[2]]
    decoded, likelihoods = [], []
    for index, y_slice in enumerate(self._slices(y)):
      means, scales = self.channel_context(index, features, _joined(decoded, y_slice))
      y_hat, measured = quantize(y_slice, means, training, straight_through,
                                 self.make_rng("noise") if training else None)
      likelihoods.append(gaussian_conditional.likelihoods(measured - means, scales))
      decoded.append(y_hat)
    return (jnp.concatenate(decoded, axis=-1),
            {"y": jnp.concatenate(likelihoods, axis=-1), "z": z_likelihoods})

  def predict_features(self, z_hat: jax.Array, extent: jax.Array | None = None) -> jax.Array:
    """The mean features, then the scale features, of every latent (…, 2M)."""
    return jnp.concatenate([self.hyper_synthesis_mean(z_hat, extent),
                            self.hyper_synthesis(z_hat, extent)], axis=-1)

  def slice_parameters(self, features: jax.Array, decoded: jax.Array, extent: jax.Array,
                       index: int) -> jax.Array:
    """The means and scales (2, N, h, w, M / num_slices) of slice `index` on a grid zero-padded
    past `extent`, as if it were not padded."""
    region = jnp.concatenate([jnp.zeros(2, jnp.int32), extent])
    return jnp.stack(self.channel_context(index, features, decoded, region))

  def latent_bits(self, y_hat: jax.Array, context: jax.Array) -> jax.Array:
    """−log2 P of quantised latents given the hyperprior's features (`context`), each slice's
    means and scales computed from the slices of `y_hat` before it, as a decoder would."""
    bits = []
    slices = self._slices(y_hat)
    for index, y_slice in enumerate(slices):
      means, scales = self.channel_context(index, context, _joined(slices[:index], y_slice))
      bits.append(-jnp.log2(gaussian_conditional.likelihoods(y_slice - means, scales)))
    return jnp.concatenate(bits, axis=-1)

  def latent_codec(self, params: Any, tables: dict[str, Any]) -> "ChannelConditionalLatentCodec":
    return ChannelConditionalLatentCodec(
        tables["entropy_bottleneck"], tables["gaussian_conditional"], self.num_filters,
        hyper_analyze=compiled.method(self, params, "hyper_analyze"),
        predict_scales=compiled.method_float64(self, params, "predict_features"),
        side_bits=compiled.method(self, params, "side_bits"),
        latent_bits=compiled.method(self, params, "latent_bits"),
        slice_parameters=[compiled.method_float64(
            self, params, functools.partial(MS2020.slice_parameters, index=index))
                          for index in range(self.num_slices)])


def _joined(decoded: list[jax.Array], like: jax.Array) -> jax.Array:
  """The slices decoded so far along the channels (none: zero channels shaped like `like`)."""
  return jnp.concatenate(decoded, axis=-1) if decoded else like[..., :0]


class ChannelConditionalLatentCodec(bmshj2018.HyperpriorLatentCodec):
  """z as in bmshj2018, then y slice by slice: 1 + num_slices streams. Every slice's means and
  scales are computed in float64 (see HyperpriorLatentCodec.latent_scales) from the features
  and the latents decoded before it, and the coding-table indexes checked against the file's
  checksum after the last slice."""

  def __init__(self, side_tables: FactorizedTables, latent_tables: GaussianTables,
               side_channels: int, slice_parameters: list[Callable[..., np.ndarray]], **methods):
    """`slice_parameters`: MS2020.slice_parameters of each slice, compiled in float64;
    `methods`: those of HyperpriorLatentCodec, with MS2020.predict_features for its scales."""
    super().__init__(side_tables, latent_tables, side_channels, **methods)
    self._slice_parameters = slice_parameters
    self.num_streams = 1 + len(slice_parameters)

  def _slices(self, features: np.ndarray, shape: tuple[int, int, int],
              symbols_of: Callable[[int, np.ndarray, np.ndarray], np.ndarray]):
    """Decodes the slices in order, yielding (symbols, means, table indexes) of each;
    `symbols_of(index, means, indexes)` gives a slice's integers (the encoder rounds, the
    decoder reads its stream)."""
    padded_features = pad_grid(features)[None]
    decoded = np.zeros(padded_features.shape[:3] + (shape[2],), np.float64)
    depth = shape[2] // len(self._slice_parameters)
    extent = np.array(shape[:2], np.int32)
    for index, parameters in enumerate(self._slice_parameters):
      means, scales = parameters(padded_features, decoded[..., :index * depth], extent)[
          :, 0, :shape[0], :shape[1]]
      indexes = gaussian_conditional.scale_indexes(scales, self.latent_tables)
      symbols = symbols_of(index, means, indexes)
      decoded[0, :shape[0], :shape[1], index * depth:(index + 1) * depth] = symbols + means
      yield symbols, means, indexes

  def _code(self, y: np.ndarray, z_symbols: np.ndarray):
    """(z_hat, features, [(symbols, means, indexes) of each slice]) of latents `y`."""
    z_hat, features = self.latent_scales(z_symbols, y.shape)
    depth = y.shape[2] // len(self._slice_parameters)

    def rounded(index, means, indexes):
      del indexes
      return np.round(y[..., index * depth:(index + 1) * depth] - means).astype(np.int32)

    return z_hat, features, list(self._slices(features, y.shape, rounded))

  def refinement_context(self, y: np.ndarray, side: np.ndarray | None = None
                         ) -> RefinementContext:
    """The features for the rate; the means of the latents as coded, around which refinement
    rounds them (it keeps them fixed: their change with the refined latents is left out).
    z is not offered for refinement: it moves the means, and so the latents' quantisation
    points, which only a refinement through the synthesis could follow."""
    del side  # never offered
    z_symbols = self.side_symbols(y)
    _, features, slices = self._code(y, z_symbols)
    means = np.concatenate([means for _, means, _ in slices], axis=-1)
    return RefinementContext(features.astype(np.float32), means.astype(np.float32), z_symbols)

  def encode(self, y: np.ndarray, coder: Coder, refined_from: Any = None) -> EncodedLatents:
    z_symbols = self.side_symbols(y) if refined_from is None else refined_from
    z_hat, features, slices = self._code(y, z_symbols)
    streams = [coder.encode(z_symbols, self.side_tables)]
    streams += [coder.encode(symbols, self.latent_tables, indexes)
                for symbols, _, indexes in slices]
    y_hat = np.concatenate([symbols + means for symbols, means, _ in slices],
                           axis=-1).astype(np.float32)

    def information() -> float:
      z_bits = self._side_bits(pad_grid(z_hat)[None])[0]
      y_bits = self._latent_bits(pad_grid(y_hat)[None],
                                 pad_grid(features.astype(np.float32))[None])[0]
      return float(np.sum(z_bits[:z_hat.shape[0], :z_hat.shape[1]])
                   + np.sum(y_bits[:y.shape[0], :y.shape[1]]))

    return EncodedLatents(streams, y_hat, self._all_indexes(z_symbols.shape, slices),
                          information)

  @staticmethod
  def _all_indexes(z_shape: tuple[int, ...], slices: list) -> np.ndarray:
    """z's table indexes, then each slice's in order (see docs/bitstream.md)."""
    return np.concatenate([coding_tables.channel_indexes(z_shape).ravel()]
                          + [indexes.ravel() for _, _, indexes in slices])

  def decode(self, streams: list[bytes], shape: tuple[int, int, int], verify, coder: Coder
             ) -> np.ndarray:
    z_shape = bmshj2018.side_shape(shape, self.side_channels)
    z_symbols = coder.decode(streams[0], self.side_tables, z_shape)
    _, features = self.latent_scales(z_symbols, shape)
    depth = shape[2] // len(self._slice_parameters)

    def read(index, means, indexes):
      try:
        return coder.decode(streams[1 + index], self.latent_tables,
                            means.shape[:2] + (depth,), indexes)
      except CodingError as error:
        raise CodingError(
            f"slice {index} of the latents cannot be decoded ({error}): the file is corrupted, "
            "or this decoder computed other coding tables from the slices before it than the "
            "encoder did (another CPU, backend or library version; see docs/bitstream.md)"
        ) from error

    slices = list(self._slices(features, shape, read))
    # A slice's tables depend on the slices before it, so the indexes are only all known now.
    verify(self._all_indexes(z_shape, slices))
    return np.concatenate([symbols + means for symbols, means, _ in slices],
                          axis=-1).astype(np.float32)
