import numpy as np
import pytest

from eic_jax.coding import codec as codec_lib
from eic_jax.evaluation import report
from eic_jax.coding import tiling
from tests.conftest import photo


@pytest.mark.parametrize("length", [1, 7, 8, 100, 128, 129, 250, 375, 1000])
def test_tiles_cover_every_latent_once_with_bucketed_sizes(length):
  axis = tiling.plan_axis(length)
  covered = np.zeros(length, int)
  for start in axis.starts:
    covered[start:start + axis.core] += 1
    # The window holds the core and, past it, the margin of context.
    window_end = start - axis.margin + axis.size
    assert window_end >= min(start + axis.core, length) + axis.margin
  assert np.all(covered == 1)
  assert axis.size % tiling.BUCKET == 0 and axis.size <= tiling.MAX_TILE
  assert axis.size <= 1.25 * min(length + 2 * axis.margin, tiling.MAX_TILE) + tiling.BUCKET


@pytest.mark.coding
def test_tiled_coding_matches_untiled(any_codec):
  codec = any_codec
  image = photo("astronaut", (400, 500))
  tiled = codec_lib.Codec(codec.config, codec.params, codec.tables, max_tile=12)
  assert len(tiled._plan(400, 500)[0].starts) > 2
  np.testing.assert_allclose(codec.latents(image), tiled.latents(image), atol=1e-3)
  whole, pieces = codec.encode(image).latents, tiled.encode(image).latents
  assert np.mean(whole == pieces) > 0.999
  assert np.max(np.abs(whole - pieces)) <= 1
  reference = codec.reconstruct(whole, 400, 500)
  psnr_whole = report.distortion(image, reference)["psnr"]
  psnr_tiled = report.distortion(image, tiled.reconstruct(whole, 400, 500))["psnr"]
  assert abs(psnr_whole - psnr_tiled) <= 0.05
  assert tiled.decompress(tiled.compress(image)).shape == image.shape


@pytest.mark.coding
def test_mixed_sizes_share_compiled_shapes(codec):
  fresh = codec_lib.Codec(codec.config, codec.params, codec.tables)
  for height, width in [(100, 120), (90, 128), (128, 97), (120, 111), (33, 65)]:
    fresh.decompress(fresh.compress(photo("coffee", (height, width))))
  # Five sizes, all inside one 128x128-pixel bucket: one compilation each way.
  assert fresh._analyze._cache_size() == 1
  assert fresh._synthesize._cache_size() == 1
