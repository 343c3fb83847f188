"""The benchmark's compute floor counts the work a training step really does."""

from eic_jax import bench
from eic_jax import bls2017


def test_train_step_flops_cover_all_convolutions_without_waste():
  patch, filters = 64, 128
  # Multiply-accumulates of the analysis convolutions; synthesis mirrors them.
  analysis_macs = [(patch // 4)**2 * 81 * 3 * filters, (patch // 8)**2 * 25 * filters**2,
                   (patch // 16)**2 * 25 * filters**2]
  # Forward, input gradient and kernel gradient of all six layers, bar the image's gradient.
  convolution_flops = 2 * (6 * sum(analysis_macs) - analysis_macs[0])
  result = bench.bench_train_step(filters, repeats=1, batch_size=1, patch_size=patch)
  ratio = result["train_step_gflop"] * 1e9 / convolution_flops
  # Above 1.6, transposed convolutions would be multiplying zero taps again.
  assert 1.0 < ratio < 1.6
  assert result["train_gflop_per_s"] > 0



def test_codec_floors_count_the_transforms_of_every_tile():
  codec = bench.load_codec(None)
  size, filters = 256, codec.config.num_filters
  macs = [(size // 4)**2 * 81 * 3 * filters, (size // 8)**2 * 25 * filters**2,
          (size // 16)**2 * 25 * filters**2]
  analysis, synthesis, tiles = codec.compiled_transforms(size, size)
  assert tiles == 1
  for compiled in (analysis, synthesis):
    ratio = bench._cost_analysis(compiled)["flops"] / (2 * sum(macs))
    assert 1.0 < ratio < 1.4
  assert codec.compiled_transforms(3 * codec.max_tile * bls2017.DOWNSAMPLING, size)[2] > 1
