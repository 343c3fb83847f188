"""The model of Ballé, Laparra & Simoncelli (2017), "End-to-end optimized image compression".

Analysis: 9×9/4, 5×5/2, 5×5/2 convolutions with GDN after the first two. Synthesis: the mirror
image with IGDN. The latents are quantised by an entropy bottleneck with a deep factorized
density, and the model is trained on rate + λ·distortion.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from eic_jax.entropy_bottleneck import EntropyBottleneck
from eic_jax.gdn import GDN
from eic_jax.signal_conv import SignalConv

# Total downsampling factor of the analysis transform: images are padded to a multiple of it.
DOWNSAMPLING = 16


def restrict(x: jax.Array, region: jax.Array | None, rate: tuple[int, int]) -> jax.Array:
  """Zeroes the positions of a tile that lie outside the whole signal.

  Large images are transformed tile by tile (see tiling.py). A tile sees its neighbours' data
  through its margins, but where it reaches past the signal's edge every layer must see zeros,
  as the "same" zero padding of the untiled transform gives. `region` = (top, left, height,
  width): the tile's origin and the signal's size in units of the transform's input; `x` has
  rate[0] / rate[1] positions per input unit (all divisions are exact).
  """
  if region is None:
    return x
  numerator, denominator = rate

  def inside(origin, extent, size):
    positions = jnp.arange(size) + origin * numerator // denominator
    return (positions >= 0) & (positions < extent * numerator // denominator)

  mask = (inside(region[0], region[2], x.shape[1])[:, None]
          & inside(region[1], region[3], x.shape[2])[None, :])
  return x * mask[None, :, :, None].astype(x.dtype)


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


def pad_to_multiple(x: jax.Array, multiple: int = DOWNSAMPLING) -> jax.Array:
  """Zero-pads images (N, H, W, C) at the bottom and right to a multiple of `multiple`."""
  height, width = x.shape[1:3]
  return jnp.pad(x, ((0, 0), (0, -height % multiple), (0, -width % multiple), (0, 0)))


class BLS2017(nn.Module):
  """Images (N, H, W, 3) on the 0–255 scale → reconstruction, likelihoods of the latents."""

  num_filters: int = 128
  density_hidden: Sequence[int] = (3, 3, 3)
  density_init_scale: float = 10.0

  def setup(self):
    self.analysis = AnalysisTransform(self.num_filters)
    self.synthesis = SynthesisTransform(self.num_filters)
    self.entropy_bottleneck = EntropyBottleneck(
        self.num_filters, self.density_hidden, self.density_init_scale)

  def __call__(self, x: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """`straight_through`: in training, synthesise from rounded latents (see EntropyBottleneck)."""
    height, width = x.shape[1:3]
    y = self.analysis(pad_to_multiple(x))
    y_hat, likelihoods = self.entropy_bottleneck(y, training, straight_through)
    x_hat = self.synthesis(y_hat)[:, :height, :width, :]
    return x_hat, likelihoods

  def analyze(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    """Latents of images padded to a multiple of 16; with `region`, of one tile (see
    `restrict`; the tile's input must be a multiple of 16 already)."""
    return self.analysis(pad_to_multiple(x), region)

  def synthesize(self, y_hat: jax.Array, region: jax.Array | None = None) -> jax.Array:
    return self.synthesis(y_hat, region)
