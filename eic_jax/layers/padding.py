"""Padding of images to the transforms' grid, and the zeroing that makes tiles exact."""

import jax
import jax.numpy as jnp
import numpy as np


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
  """Zero-pads signals (N, H, W, C) at the bottom and right to a multiple of `multiple`."""
  height, width = x.shape[1:3]
  return jnp.pad(x, ((0, 0), (0, -height % multiple), (0, -width % multiple), (0, 0)))


def extend_edges(image: np.ndarray, multiple: int) -> np.ndarray:
  """An image (H, W, C) extended at the bottom and right to a multiple of `multiple` by
  repeating its edge pixels: what the analysis sees in coding, since zeros there would be a
  hard edge that costs bits and, in a small image, drags its colours."""
  height, width = image.shape[:2]
  return np.pad(image, ((0, -height % multiple), (0, -width % multiple), (0, 0)), mode="edge")


def restrict(x: jax.Array, region: jax.Array | None, rate: tuple[int, int]) -> jax.Array:
  """Zeroes the positions of a tile that lie outside the whole signal.

  Large images are transformed tile by tile (see codec/tiling.py). A tile sees its neighbours'
  data through its margins, but where it reaches past the signal's edge every layer must see
  zeros, as the "same" zero padding of the untiled transform gives. `region` = (top, left,
  height, width): the tile's origin and the signal's size in units of the transform's input;
  `x` has rate[0] / rate[1] positions per input unit (all divisions are exact).
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
