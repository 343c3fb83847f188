"""The benchmark's compute floors count the work the training step and the transforms really do."""

import pytest

from eic_jax.coder import coders
from eic_jax.models import bls2017
from eic_jax.tools import bench


def analysis_macs(size: int, filters: int) -> list[int]:
  """Multiply-accumulates of the three analysis convolutions; synthesis mirrors them."""
  return [(size // 4)**2 * 81 * 3 * filters, (size // 8)**2 * 25 * filters**2,
          (size // 16)**2 * 25 * filters**2]


def test_train_step_flops_cover_all_convolutions_without_waste():
  patch, filters = 64, 128
  macs = analysis_macs(patch, filters)
  # Forward, input gradient and kernel gradient of all six layers, bar the image's gradient.
  convolution_flops = 2 * (6 * sum(macs) - macs[0])
  result = bench.bench_train_step(filters, repeats=1, batch_size=1, patch_size=patch)
  ratio = result["train_step_gflop"] * 1e9 / convolution_flops
  # Above 1.6, transposed convolutions would be multiplying zero taps again.
  assert 1.0 < ratio < 1.6
  assert result["train_gflop_per_s"] > 0


def test_the_encoders_step_skips_the_synthesis_kernel_gradients():
  patch, filters = 64, 128
  macs = analysis_macs(patch, filters)
  full, encoder = (bench.bench_train_step(filters, repeats=1, batch_size=1, patch_size=patch,
                                          trainable=trainable) for trainable in ("all", "encoder"))
  assert encoder["trainable"] == "encoder"
  # It still computes all six layers forward, their input gradients bar the image's, and the
  # analysis's kernel gradients.
  assert encoder["train_step_gflop"] * 1e9 > 2 * (5 * sum(macs) - macs[0])
  assert (full["train_step_gflop"] - encoder["train_step_gflop"]) * 1e9 > 2 * sum(macs)


def test_codec_floors_count_the_transforms_of_every_tile():
  codec = bench.load_codec(None)
  size = 256
  convolution_flops = 2 * sum(analysis_macs(size, codec.config.num_filters))
  analysis, synthesis, tiles = codec.compiled_transforms(size, size)
  assert tiles == 1
  for compiled in (analysis, synthesis):
    ratio = bench.gflop_of(compiled) * 1e9 / convolution_flops
    assert 1.0 < ratio < 1.4
  assert codec.compiled_transforms(3 * codec.max_tile * bls2017.DOWNSAMPLING, size)[2] > 1


def test_codec_measurements_for_the_hyperprior():
  codec = bench.load_codec(None, "bmshj2018")
  assert codec.architecture == "bmshj2018"
  image = bench.photograph(64, 96)
  assert codec.decompress(codec.compress(image)).shape == (64, 96, 3)


@pytest.mark.parametrize("model", ["bls2017", "bmshj2018"])
def test_transforms_and_loader_are_measured(model):
  transforms = bench.bench_transforms(repeats=2, num_filters=16, height=64, width=96,
                                      model=model)
  assert transforms["transforms_size"] == "96x64"
  assert transforms["analysis_ms"] > 0 and transforms["synthesis_ms"] > 0
  step = bench.bench_train_step(16, repeats=1, batch_size=1, patch_size=64, model=model)
  assert step["model"] == model and step["train_step_s"] > 0
  loader = bench.bench_loader(None, threads=2, batch_size=4, patch_size=64, batches=5)
  assert loader["loader_images"] == 8 and loader["loader_crops_per_s"] > 0


def test_the_coders_are_measured_side_by_side():
  rows = bench.bench_coders(1, ("bls2017-mse-0.0067",), height=64, width=96)
  assert [row["coder"] for row in rows] == coders.installed()
  for row in rows:
    assert min(row[key] for key in ("compress_ms", "decompress_ms", "entropy_encode_ms",
                                     "entropy_decode_ms")) > 0
    # A 64x96 image: a few bytes of flushing are a large share of few bits.
    assert -1 < row["streams_over_information_pct"] < 50
