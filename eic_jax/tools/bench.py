"""Benchmark: python -m eic_jax.tools.bench [--json] [--workdir=DIR], from the repository root.

Measures, after compilation (compile times are reported apart):
- training: milliseconds per step and images per second, 256x256 crops, N=128 and N=192, for
  each of --batch_sizes, and the same step of a plain TensorFlow implementation on the same
  machine (eic_jax.tools.tf_reference, batch 8);
- the compute floor of the step: its floating-point operations (XLA's cost analysis) over the
  rate of a large dense matrix product on the same machine, which no step can beat;
- the analysis and synthesis transforms of a 768x512 image, N=128, without entropy coding;
- coding a 768x512 photograph: compress and decompress milliseconds, the shares of compress
  time after the analysis and of decompress time before the synthesis (entropy parameters and
  coding: for ms2020, its slices), and the compute floors of analysis and synthesis; compress
  with the latents refined for the default number of steps;
- the entropy coders side by side: for each installed coder (coder/coders.py) and each
  architecture's shipped middle-rate model, a 768x512 photograph's compress and decompress
  milliseconds, the entropy coding alone both ways, and the bits over the information content;
- scaling: compress and decompress of 0.25 to 24 megapixel images, milliseconds per megapixel
  and peak resident memory, each size in a fresh process so its peak is its own.

Only the TensorFlow reference and TensorFlow Compression's coder need TensorFlow (the [coding]
extra); they are left out, with a note, where it is not installed.
Coding uses the model of --workdir when given (a trained model codes at a realistic rate), else
a freshly initialised one.
"""

import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import skimage.data

from configs import default as default_config
from eic_jax import models
from eic_jax.codec import codec as codec_lib
from eic_jax.codec import effort
from eic_jax.coder import coders
from eic_jax.models.objective import Objective
from eic_jax.runtime import compiler_options
from eic_jax.runtime import tensorflow_setup
from eic_jax.training import input_pipeline
from eic_jax.training import train

flags.DEFINE_bool("json", False, "Print one JSON object instead of tables.")
flags.DEFINE_integer("repeats", 10, "Timed repetitions of each measurement.")
flags.DEFINE_string("workdir", None, "A trained workdir for the coding measurements.")
flags.DEFINE_enum("model", models.DEFAULT, list(models.ARCHITECTURES),
                  "The architecture measured (freshly initialised; with --workdir, coding "
                  "uses the workdir's).")
flags.DEFINE_list("megapixels", ["0.25", "1", "4", "16", "24"], "Sizes of the scaling table.")
flags.DEFINE_list("batch_sizes", ["8"], "Batch sizes of the training table.")
flags.DEFINE_enum("trainable", "all", ["all", "encoder"], "What the training table's step "
                  "trains (config.trainable): every parameter, or the encoder alone.")
flags.DEFINE_list("efforts", ["1", "2"], "Encoder effort levels (codec/effort.py) whose "
                  "compress of a 768x512 photograph is timed.")
flags.DEFINE_bool("coding", True, "Also measure coding, the coders and scaling.")
flags.DEFINE_string("loader_glob", None, "Photographs for the loader's crops per second "
                    "(default: eight photographs inside scikit-image, 512x768).")
flags.DEFINE_bool("tf_reference", True, "Also time the TensorFlow reference training step.")
flags.DEFINE_float("scaling_child", None, "Internal: measure one size and print JSON.")
FLAGS = flags.FLAGS


def _median_seconds(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def reset_peak_rss() -> None:
  """Restarts the peak-memory count; Linux carries it over from the parent across fork/exec."""
  try:
    with open("/proc/self/clear_refs", "w") as stream:
      stream.write("5")
  except OSError:
    pass


def peak_rss_mb() -> float:
  try:
    with open("/proc/self/status") as stream:
      for line in stream:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024.0
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _config(model: str, num_filters: int = 128):
  config = default_config.get_config()
  config.model = model
  config.num_filters = num_filters
  return config


def bench_train_step(num_filters: int, repeats: int, batch_size: int = 8,
                     patch_size: int = 256, model: str = models.DEFAULT,
                     trainable: str = "all") -> dict:
  config = _config(model, num_filters)
  state = train.create_train_state(config, jax.random.PRNGKey(0))
  batch = jax.device_put(np.random.default_rng(0).integers(
      0, 256, (batch_size, patch_size, patch_size, 3), dtype=np.uint8))
  modules = train.create_model(config).encoder_modules if trainable == "encoder" else None
  step = jax.jit(functools.partial(train.train_step, objective=Objective.from_config(config),
                                   modules=modules),
                 **compiler_options.jit_kwargs())
  rng = jax.random.PRNGKey(1)
  start = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - start
  seconds = _median_seconds(lambda: compiled(state, batch, rng), repeats)
  gflop = gflop_of(compiled)
  return {"model": model, "trainable": trainable, "num_filters": num_filters,
          "batch_size": batch_size, "train_step_s": seconds,
          "train_images_per_s": batch_size / seconds, "train_compile_s": compile_s,
          "train_step_gflop": gflop, "train_gflop_per_s": gflop / seconds}


def bench_transforms(repeats: int, num_filters: int = 128, height: int = 512,
                     width: int = 768, model: str = models.DEFAULT) -> dict:
  """Analysis and synthesis of one height x width image, compiled, without entropy coding."""
  network = train.create_model(_config(model, num_filters))
  params = train.init_params(network, jax.random.PRNGKey(0))
  image = jax.device_put(photograph(height, width).astype(np.float32)[None])
  options = compiler_options.jit_kwargs()
  analyze = jax.jit(lambda p, x: network.apply({"params": p}, x, method="analyze"), **options)
  synthesize = jax.jit(lambda p, y: network.apply({"params": p}, jnp.round(y),
                                                  method="synthesize"), **options)
  start = time.perf_counter()
  latents = jax.block_until_ready(analyze(params, image))
  jax.block_until_ready(synthesize(params, latents))
  compile_s = time.perf_counter() - start
  return {"transforms_size": f"{width}x{height}",
          "analysis_ms": 1e3 * _median_seconds(lambda: analyze(params, image), repeats),
          "synthesis_ms": 1e3 * _median_seconds(lambda: synthesize(params, latents), repeats),
          "transforms_compile_s": compile_s}


def bench_loader(patterns: str | None, threads: int, batch_size: int = 32,
                 patch_size: int = 256, batches: int = 200) -> dict:
  """Random 256x256 crops per second of the training loader from decoded images, with
  `threads` threads, and the seconds its first decoding of the images took."""
  start = time.perf_counter()
  if patterns:
    loaders = input_pipeline.image_loaders(patterns, patch_size)
  else:
    loaders = [lambda name=name: np.asarray(Image.fromarray(getattr(skimage.data, name)())
                                            .convert("RGB").resize((768, 512)))
               for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                            "retina", "immunohistochemistry", "page")]
  crops = input_pipeline.RandomCrops(loaders, batch_size, patch_size, seed=0, flips=True,
                                     threads=threads)
  decode_s = time.perf_counter() - start
  iterator = iter(crops)
  next(iterator)
  start = time.perf_counter()
  for _ in range(batches):
    next(iterator)
  return {"loader_threads": threads, "loader_images": len(loaders),
          "loader_decode_s": decode_s,
          "loader_crops_per_s": batches * batch_size / (time.perf_counter() - start)}


def gflop_of(compiled) -> float:
  """Floating-point operations of a compiled computation, by XLA's cost analysis, in GFLOP."""
  analysis = compiled.cost_analysis()
  return (analysis[0] if isinstance(analysis, list) else analysis)["flops"] / 1e9


def bench_matmul(repeats: int, size: int = 2048) -> float:
  """GFLOP/s of a float32 size x size matrix product: what this machine's cores sustain."""
  matrix = jax.random.normal(jax.random.PRNGKey(0), (size, size))
  product = jax.jit(lambda a: a @ a)
  jax.block_until_ready(product(matrix))
  return 2 * size**3 / _median_seconds(lambda: product(matrix), repeats) / 1e9


def bench_tf_reference(repeats: int) -> dict:
  """The TensorFlow reference step, in a child process so the two runtimes never share threads."""
  result = subprocess.run([sys.executable, "-m", "eic_jax.tools.tf_reference", f"--repeats={repeats}"],
                          capture_output=True, text=True, check=True)
  return json.loads(result.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as stream:
      for line in stream:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def photograph(height: int, width: int) -> np.ndarray:
  """A photograph shipped with scikit-image, resized to height x width."""
  photo = Image.fromarray(skimage.data.astronaut())
  return np.asarray(photo.resize((width, height), Image.BICUBIC))


def load_codec(workdir: str | None, model: str = models.DEFAULT) -> codec_lib.Codec:
  if workdir:
    return codec_lib.load_codec(workdir)
  config = _config(model)
  network = train.create_model(config)
  params = train.init_params(network, jax.random.PRNGKey(0))
  return codec_lib.Codec(config, params, network.build_coding_tables(params, config))


def bench_codec(codec: codec_lib.Codec, repeats: int, matmul_gflop_per_s: float,
                efforts: list[int]) -> dict:
  """768x512: compress, decompress, the entropy coder's share of compress time, the compute
  floors of the two transforms, and compress at the encoder `efforts`."""
  image = photograph(512, 768)
  start = time.perf_counter()
  data = codec.compress(image)
  codec.decompress(data)
  first_s = time.perf_counter() - start
  # After the first call, whose compilation the floors' own compile would otherwise hide.
  analysis, synthesis, tiles = codec.compiled_transforms(*image.shape[:2])
  floor_ms = {f"{name}_floor_ms": 1e3 * tiles * gflop_of(compiled) / matmul_gflop_per_s
              for name, compiled in (("encode", analysis), ("decode", synthesis))}
  latents = codec.latents(image)
  encode_s = _median_seconds(lambda: codec.compress(image), repeats)
  decode_s = _median_seconds(lambda: codec.decompress(data), repeats)
  # Everything after the analysis: side information, entropy parameters, entropy coding.
  encoded = codec.latent_codec.encode(latents, codec.coder)
  entropy_s = _median_seconds(lambda: codec.latent_codec.encode(latents, codec.coder), repeats)
  # Everything before the synthesis (for ms2020: the slice-by-slice decoding).
  entropy_decode_s = _median_seconds(lambda: codec.latent_codec.decode(
      encoded.streams, latents.shape, lambda indexes: None, codec.coder), repeats)
  return {"encode_ms": 1e3 * encode_s, "decode_ms": 1e3 * decode_s,
          "entropy_coding_share": entropy_s / encode_s,
          "entropy_decoding_share": entropy_decode_s / decode_s,
          "codec_compile_s": first_s - encode_s - decode_s,
          "codec_bpp": 8 * len(data) / (image.shape[0] * image.shape[1]), **floor_ms,
          **bench_efforts(codec, efforts, image)}


def bench_efforts(codec: codec_lib.Codec, efforts: list[int], image: np.ndarray) -> dict:
  """Seconds of a compress of `image` at each encoder effort level, after its compilation."""
  seconds = {}
  for level in efforts:
    refining = codec_lib.Codec(codec.config, codec.params, codec.tables,
                               refine_steps=effort.effort_steps(level))
    refining.compress(image)  # compiles
    seconds[f"encode_effort_{level}_s"] = _median_seconds(lambda: refining.compress(image), 1)
  return seconds


# The shipped models the coders are compared with: each architecture's middle rate.
CODER_MODELS = ("bls2017-mse-0.0067", "bmshj2018-mse-0.0067")


def bench_coders(repeats: int, shipped_models: tuple[str, ...] = CODER_MODELS,
                 height: int = 512, width: int = 768) -> list[dict]:
  """Each installed coder with each shipped model on a photograph: compress and decompress,
  the entropy coding alone (after the analysis; before the synthesis), and the streams' bits
  over the model's information content."""
  image = photograph(height, width)
  rows = []
  for model in shipped_models:
    for name in coders.installed():
      codec = codec_lib.load_codec(model, coder=name)
      data, encoded = codec.compress_with_latents(image)  # compiles
      codec.decompress(data)
      latents = codec.latents(image)
      shape = codec.latent_shape(*image.shape[:2])
      rows.append({
          "model": model, "coder": name,
          "compress_ms": 1e3 * _median_seconds(lambda: codec.compress(image), repeats),
          "decompress_ms": 1e3 * _median_seconds(lambda: codec.decompress(data), repeats),
          "entropy_encode_ms": 1e3 * _median_seconds(
              lambda: codec.latent_codec.encode(latents, codec.coder), repeats),
          "entropy_decode_ms": 1e3 * _median_seconds(
              lambda: codec.latent_codec.decode(encoded.streams, shape, lambda _: None,
                                                codec.coder), repeats),
          "bpp": 8 * len(data) / image[..., 0].size,
          "streams_over_information_pct": 100 * (8 * sum(map(len, encoded.streams))
                                                 / encoded.bits - 1)})
  return rows


def measure_size(codec: codec_lib.Codec, megapixels: float) -> dict:
  width = int(round((megapixels * 1e6 * 1.5) ** 0.5))
  height = int(round(width / 1.5))
  image = photograph(height, width)
  start = time.perf_counter()
  data = codec.compress(image)
  first_compress_s = time.perf_counter() - start
  start = time.perf_counter()
  codec.decompress(data)
  first_decompress_s = time.perf_counter() - start
  compress_s = _median_seconds(lambda: codec.compress(image), 2)
  decompress_s = _median_seconds(lambda: codec.decompress(data), 2)
  actual = height * width / 1e6
  return {"megapixels": actual, "height": height, "width": width,
          "compress_ms_per_mp": 1e3 * compress_s / actual,
          "decompress_ms_per_mp": 1e3 * decompress_s / actual,
          "compile_s": max(0.0, first_compress_s - compress_s) + max(
              0.0, first_decompress_s - decompress_s),
          "bpp": 8 * len(data) / (height * width), "peak_rss_mb": peak_rss_mb()}


def bench_scaling(megapixels: list[str], workdir: str | None, model: str) -> list[dict]:
  rows = []
  for size in megapixels:
    command = [sys.executable, "-m", "eic_jax.tools.bench", f"--scaling_child={size}",
               f"--model={model}"]
    if workdir:
      command.append(f"--workdir={workdir}")
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
  return rows


def _print_table(rows: list[dict]) -> None:
  keys = list(rows[0])
  print("  ".join(f"{k:>20}" for k in keys))
  for row in rows:
    print("  ".join(f"{row[k]:>20.4g}" if isinstance(row[k], float) else f"{row[k]:>20}"
                    for k in keys))


def main(argv) -> None:
  del argv
  if FLAGS.scaling_child is not None:
    reset_peak_rss()
    print(json.dumps(measure_size(load_codec(FLAGS.workdir, FLAGS.model), FLAGS.scaling_child)))
    return
  results = {"date": time.strftime("%Y-%m-%d"), "backend": jax.default_backend(),
             "device": jax.devices()[0].device_kind, "cpu": cpu_model(),
             "cpu_cores": len(os.sched_getaffinity(0)), "machine": platform.machine(),
             "jax": jax.__version__,
             "compiler_options": " ".join(
                 f"{k}={v}" for k, v in
                 compiler_options.jit_kwargs().get("compiler_options", {}).items()) or "none",
             "model": FLAGS.workdir or f"{FLAGS.model}, freshly initialised, N=128"}
  notes = []
  training = [bench_train_step(n, FLAGS.repeats, int(b), model=FLAGS.model,
                               trainable=FLAGS.trainable)
              for n in (128, 192) for b in FLAGS.batch_sizes]
  results["matmul_gflop_per_s"] = bench_matmul(FLAGS.repeats)
  results["train_step_floor_s"] = training[0]["train_step_gflop"] / results[
      "matmul_gflop_per_s"]
  # The TensorFlow reference is the bls2017 model's full step.
  reference_model = FLAGS.tf_reference and FLAGS.model == "bls2017"
  compare_reference = reference_model and FLAGS.trainable == "all"
  if compare_reference and tensorflow_setup.tensorflow_available():
    reference = bench_tf_reference(FLAGS.repeats)
    results["tf_reference_step_s"] = reference["tf_reference_step_s"]
    eight = [row for row in training if row["batch_size"] == 8 and row["num_filters"] == 128]
    if eight:
      results["train_speedup_vs_tf_reference"] = (reference["tf_reference_step_s"]
                                                  / eight[0]["train_step_s"])
  elif compare_reference:
    notes.append("TensorFlow reference left out: TensorFlow is not installed")
  if reference_model and not compare_reference:
    notes.append("TensorFlow reference left out: it times the full step, not the encoder's")
  results.update(bench_transforms(FLAGS.repeats, model=FLAGS.model))
  cores = len(os.sched_getaffinity(0))
  loader = [bench_loader(FLAGS.loader_glob, threads) for threads in sorted({1, cores})]
  scaling, coder_rows = [], []
  if FLAGS.coding:
    results.update(bench_codec(load_codec(FLAGS.workdir, FLAGS.model), FLAGS.repeats,
                               results["matmul_gflop_per_s"], list(map(int, FLAGS.efforts))))
    results["peak_rss_mb"] = peak_rss_mb()
    coder_rows = bench_coders(FLAGS.repeats)
    if not coders.TFC.available():
      notes.append("TensorFlow Compression's coder left out: not installed "
                   f"({coders.TFC.install})")
    scaling = bench_scaling(FLAGS.megapixels, FLAGS.workdir, FLAGS.model)
  if FLAGS.json:
    print(json.dumps({**results, "training": training, "loader": loader, "coders": coder_rows,
                      "scaling": scaling, "notes": notes}))
    return
  width = max(len(k) for k in results)
  for name, value in results.items():
    print(f"{name:<{width}}  {value:.4g}" if isinstance(value, float) else
          f"{name:<{width}}  {value}")
  print()
  _print_table(training)
  print()
  _print_table(loader)
  if coder_rows:
    print()
    _print_table(coder_rows)
  if scaling:
    print()
    _print_table(scaling)
  for note in notes:
    print(f"note: {note}")


if __name__ == "__main__":
  app.run(main)
