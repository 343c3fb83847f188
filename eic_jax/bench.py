"""Benchmark: python -m eic_jax.bench [--json], from the repository root.

Times, after compilation: one training step (batch 8, 256x256, N=128 by default) and the
compression and decompression of a 768x512 photograph. Prints a table, or one JSON object with
--json.
"""

import functools
import json
import os
import platform
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np
from PIL import Image
import skimage.data

from configs import default as default_config
from eic_jax import codec as codec_lib
from eic_jax import range_coding
from eic_jax import train

flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
flags.DEFINE_integer("repeats", 10, "Timed repetitions of each measurement.")
flags.DEFINE_integer("batch_size", 8, "Training batch size.")
flags.DEFINE_integer("patch_size", 256, "Training crop size.")
flags.DEFINE_integer("num_filters", 128, "Model width N.")
FLAGS = flags.FLAGS


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def bench_train_step(num_filters: int, batch_size: int, patch_size: int, repeats: int) -> dict:
  config = default_config.get_config()
  config.num_filters = num_filters
  state = train.create_train_state(config, jax.random.PRNGKey(0))
  batch = np.random.default_rng(0).integers(0, 256, (batch_size, patch_size, patch_size, 3),
                                            dtype=np.uint8)
  step = jax.jit(functools.partial(train.train_step, lmbda=config.lmbda))
  rng = jax.random.PRNGKey(1)
  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  seconds = _median_seconds(lambda: compiled(state, batch, rng), repeats)
  return {"train_step_s": seconds, "train_images_per_s": batch_size / seconds,
          "train_compile_s": compile_s}


def benchmark_image(height: int = 512, width: int = 768) -> np.ndarray:
  """A photograph shipped with scikit-image, resized to height x width."""
  photo = Image.fromarray(skimage.data.astronaut())
  return np.asarray(photo.resize((width, height), Image.BICUBIC))


def bench_codec(num_filters: int, repeats: int) -> dict:
  """Compress and decompress times of a 768x512 image with a freshly initialised model."""
  config = default_config.get_config()
  config.num_filters = num_filters
  params = train.init_params(train.create_model(config), jax.random.PRNGKey(0))
  tables = range_coding.build_tables(params["entropy_bottleneck"]["density"], config.tail_mass)
  codec = codec_lib.Codec(config, params, tables)
  image = benchmark_image()
  data = codec.compress(image)
  codec.decompress(data)
  return {"encode_ms": 1e3 * _median_seconds(lambda: codec.compress(image), repeats),
          "decode_ms": 1e3 * _median_seconds(lambda: codec.decompress(data), repeats),
          "codec_bpp": 8 * len(data) / (image.shape[0] * image.shape[1])}


def main(argv) -> None:
  del argv
  results = {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind,
             "cpu_cores": len(os.sched_getaffinity(0)), "machine": platform.machine(),
             "batch_size": FLAGS.batch_size,
             "patch_size": FLAGS.patch_size, "num_filters": FLAGS.num_filters}
  results.update(bench_train_step(FLAGS.num_filters, FLAGS.batch_size, FLAGS.patch_size,
                                  FLAGS.repeats))
  results.update(bench_codec(FLAGS.num_filters, FLAGS.repeats))
  if FLAGS.json:
    print(json.dumps(results))
  else:
    width = max(len(k) for k in results)
    for name, value in results.items():
      print(f"{name:<{width}}  {value:.4g}" if isinstance(value, float) else
            f"{name:<{width}}  {value}")


if __name__ == "__main__":
  app.run(main)
