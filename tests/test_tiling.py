import numpy as np
import pytest

from eic_jax.codec import codec as codec_lib
from eic_jax.codec import tiling
from eic_jax.models.base import SHAPE_BUCKET
from eic_jax.models.bls2017 import BLS2017
from tests.conftest import photo


@pytest.mark.parametrize("length", [1, 7, 8, 100, 128, 129, 250, 375, 1000])
def test_tiles_cover_every_latent_once_with_bucketed_sizes(length):
  axis = tiling.plan_axis(length, tiling.MAX_TILE, BLS2017.tile_margin)
  covered = np.zeros(length, int)
  for start in axis.starts:
    covered[start:start + axis.core] += 1
    # The window holds the core and, past it, the margin of context.
    window_end = start - axis.margin + axis.size
    assert window_end >= min(start + axis.core, length) + axis.margin
  assert np.all(covered == 1)
  assert axis.size % SHAPE_BUCKET == 0 and axis.size <= tiling.MAX_TILE
  assert axis.size <= 1.25 * min(length + 2 * axis.margin, tiling.MAX_TILE) + SHAPE_BUCKET


def test_mixed_sizes_share_compiled_shapes(codec):
  fresh = codec_lib.Codec(codec.config, codec.params, codec.tables)
  for height, width in [(100, 120), (90, 128), (128, 97), (120, 111), (33, 65)]:
    fresh.decompress(fresh.compress(photo("coffee", (height, width))))
  # Five sizes, all inside one 128x128-pixel bucket: one compilation each way.
  assert fresh._analyze._cache_size() == 1
  assert fresh._synthesize._cache_size() == 1
