"""Tiles for transforming images of any size with bounded memory and few compiled shapes.

Along each axis, a signal of n latents (16 pixels each) is covered by tiles whose cores
partition it; each tile adds `margin` latents of context on both sides, more than the
transforms' receptive fields, so a tile's core equals the untiled result (positions past the
signal's edge are zeroed at every layer, see layers.padding.restrict). Tile sizes are rounded
up to a multiple of `bucket` latents, so all images share a few compiled shapes.
"""

import dataclasses
import math

from eic_jax.models.base import SHAPE_BUCKET

# Default: tiles of up to 128 latents a side (2048 pixels).
MAX_TILE = 128


@dataclasses.dataclass(frozen=True)
class AxisTiles:
  """Tiles along one axis, in latents: cores [starts[i], starts[i] + core) ∩ [0, length), each
  computed from a window of `size` latents starting at starts[i] − margin."""

  length: int
  starts: tuple[int, ...]
  core: int
  margin: int
  size: int


def plan_axis(length: int, max_tile: int, margin: int, bucket: int = SHAPE_BUCKET
              ) -> AxisTiles:
  """The tiles of a signal of `length` latents, each of at most `max_tile` with `margin`
  latents of context (the model's tile_margin) on both sides."""
  if length <= max_tile:
    return AxisTiles(length, (0,), length, 0, bucket * math.ceil(length / bucket))
  count = math.ceil(length / (max_tile - 2 * margin))
  core = math.ceil(length / count)
  size = bucket * math.ceil((core + 2 * margin) / bucket)
  return AxisTiles(length, tuple(range(0, length, core)), core, margin, size)


def windows(rows: AxisTiles, cols: AxisTiles):
  """Yields (row start, col start, core height, core width) of every tile."""
  for top in rows.starts:
    for left in cols.starts:
      yield top, left, min(rows.core, rows.length - top), min(cols.core, cols.length - left)
