"""How robust a hyperprior's scale indexes are: encode once, decode under other settings.

  python experiments/index_robustness.py --workdir=runs/bmshj2018 --images='../shared/data/valid/*.png'

For bmshj2018 and ms2020 (whose slices' means and scales also depend on the slices decoded
before them). The float32 comparison, the boundary margins and --latents_out/--latents_in
recompute scales from z alone: bmshj2018 only.

The images are compressed in this process; each setting (thread counts, XLA:CPU flags, tile
sizes) decodes every file in a fresh process and reports how many scale indexes differ from the
encoder's, whether the decoder caught it, and whether the pixels are the same. Also prints how
close the encoder's scales come to the scale table's boundaries, the margin that decides how
much floating-point noise an index survives.

To compare with another machine or backend (a GPU, say) without compressing there,
`--latents_out=DIR` writes every file's side latents z and the encoder's indexes to DIR; on the
other machine

  python experiments/index_robustness.py --workdir=... --latents_in=DIR

recomputes the indexes from those z (the decoder's path, hyper-synthesis in float64 and in
float32) and counts the ones that differ from the encoder's.
"""

import glob
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import jax
import numpy as np

from eic_jax.codec import codec as codec_lib
from eic_jax.coder import bitstream
from eic_jax.coder import coders
from eic_jax.entropy_models import gaussian_conditional
from eic_jax.models import bmshj2018
from eic_jax.models import compiled
from eic_jax.runtime import compilation_cache
from eic_jax.runtime import image_io
from eic_jax.runtime import log_filters

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained bmshj2018 or ms2020 workdir or shipped model.")
flags.DEFINE_string("images", None, "Glob of the photographs to code.")
flags.DEFINE_string("latents_out", None, "Write each file's z and indexes here, for "
                    "--latents_in on another machine, instead of decoding under this "
                    "machine's settings.")
flags.DEFINE_string("latents_in", None, "Compare the indexes this machine computes from the z "
                    "in this folder with the encoder's (no images or files needed).")
flags.DEFINE_string("child", None, "Internal: decode the files in this folder and print JSON.")
flags.DEFINE_integer("max_tile", 0, "Internal: the child's tile size (0: the default).")
flags.DEFINE_string("cache", "", "Internal: the child's compilation cache folder ('': none).")

# (name, environment overrides, max_tile, compilation cache: "" none, "fresh" a new folder
# (compiles and writes it), "reuse" the same folder again (loads what "fresh" wrote))
SETTINGS = [
    ("same settings, new process", {}, 0, ""),
    ("compilation cache, first use (compiles)", {}, 0, "fresh"),
    ("compilation cache, loaded executables", {}, 0, "reuse"),
    ("one thread (taskset, Eigen single-threaded)",
     {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
      "TASKSET": "0"}, 0, ""),
    ("XLA:CPU fast math", {"XLA_FLAGS": "--xla_cpu_enable_fast_math=true"}, 0, ""),
    ("XLA:CPU 128-bit vectors", {"XLA_FLAGS": "--xla_cpu_prefer_vector_width=128"}, 0, ""),
    ("tiles of 12 latents", {}, 12, ""),
]


def _indexes(codec: codec_lib.Codec, data: bytes) -> np.ndarray:
  """The table indexes this process's decoder computes for a file."""
  header, streams = bitstream.unpack(data)
  found = []
  codec.latent_codec.decode(streams, codec.latent_shape(header.height, header.width),
                            found.append, coders.get(header.coder))
  return found[0]


def _side_latents(codec: codec_lib.Codec, data: bytes) -> tuple[np.ndarray, tuple[int, ...]]:
  """A file's decoded z and the shape of its latents y."""
  header, streams = bitstream.unpack(data)
  shape = codec.latent_shape(header.height, header.width)
  z = coders.get(header.coder).decode(streams[0], codec.tables["entropy_bottleneck"],
                                      bmshj2018.side_shape(shape, codec.model.num_filters))
  return z, shape


def _float32_indexes_of(codec: codec_lib.Codec, z: np.ndarray, shape: tuple[int, ...]
                        ) -> np.ndarray:
  """The y indexes a decoder would compute from float32 scales (the codec uses float64)."""
  z_hat = (z + codec.tables["entropy_bottleneck"].medians).astype(np.float32)
  scales = compiled.method(codec.model, codec.params, "predict_scales")(
      z_hat[None])[0][:shape[0], :shape[1]]
  table = codec.tables["gaussian_conditional"].scales
  return np.searchsorted(table[:-1], scales, side="left")


def _float32_indexes(codec: codec_lib.Codec, data: bytes) -> np.ndarray:
  return _float32_indexes_of(codec, *_side_latents(codec, data))


def _compare_latents(codec: codec_lib.Codec, folder: str) -> None:
  """Recomputes the indexes of every z in `folder` on this machine (see the module's
  docstring) and prints how many differ from the encoder's."""
  print(f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind}), jax {jax.__version__}, "
        f"numpy {np.__version__}")
  total = differing = differing32 = 0
  paths = sorted(pathlib.Path(folder).glob("*.npz"))
  if not paths:
    raise app.UsageError(f"{folder} holds no .npz files written by --latents_out")
  for path in paths:
    saved = np.load(path)
    shape = tuple(int(n) for n in saved["latent_shape"])
    _, scales = codec.latent_codec.latent_scales(saved["z"], shape)
    indexes = gaussian_conditional.scale_indexes(scales, codec.latent_codec.latent_tables)
    total += indexes.size
    differing += int(np.sum(indexes != saved["indexes"]))
    differing32 += int(np.sum(_float32_indexes_of(codec, saved["z"], shape) != saved["indexes"]))
  print(f"{len(paths)} files, {total:,} indexes: {differing:,} differ from the encoder's "
        f"({differing32:,} if the scales are computed in float32)")


def _child(folder: str) -> None:
  if FLAGS.cache:
    compilation_cache.enable(FLAGS.cache)
  codec = codec_lib.load_codec(FLAGS.workdir)
  if FLAGS.max_tile:
    codec = codec_lib.Codec(codec.config, codec.params, codec.tables, max_tile=FLAGS.max_tile,
                            name=codec.name, step=codec.step)
  rows = []
  for path in sorted(pathlib.Path(folder).glob("*.eic")):
    data = path.read_bytes()
    expected = np.load(path.with_suffix(".npz"))
    differing = int(np.sum(_indexes(codec, data) != expected["indexes"]))
    differing32 = (int(np.sum(_float32_indexes(codec, data) != expected["indexes32"]))
                   if _scales_from_z(codec) else None)
    try:
      decoded = codec.decompress(data)
      outcome = ("same pixels" if np.array_equal(decoded, expected["decoded"]) else
                 f"pixels differ by up to {np.max(np.abs(decoded - expected['decoded'].astype(int)))}")
    except bitstream.BitstreamError as error:
      outcome = f"BitstreamError: {str(error)[:60]}"
    rows.append({"image": path.stem, "differing_indexes": differing,
                 "differing_float32_indexes": differing32, "outcome": outcome})
  print(json.dumps(rows))


def _scales_from_z(codec: codec_lib.Codec) -> bool:
  """Whether the model's scales follow from z alone (bmshj2018; not ms2020's slices)."""
  return codec.architecture == "bmshj2018"


def _boundary_margins(codec: codec_lib.Codec, scales: np.ndarray) -> np.ndarray:
  """Relative distance of every y scale to the nearest boundary of the scale table."""
  boundaries = codec.tables["gaussian_conditional"].scales[:-1]
  scales = np.maximum(scales.ravel(), 1e-30)
  nearest = np.min(np.abs(np.log(scales[:, None]) - np.log(boundaries[None, :])), axis=1)
  return nearest


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  if FLAGS.child:
    _child(FLAGS.child)
    return
  codec = codec_lib.load_codec(FLAGS.workdir)
  if codec.architecture not in ("bmshj2018", "ms2020"):
    raise app.UsageError(f"{FLAGS.workdir} is a {codec.architecture} model: its indexes are "
                         "channel numbers, which cannot differ")
  if (FLAGS.latents_in or FLAGS.latents_out) and not _scales_from_z(codec):
    raise app.UsageError("--latents_in and --latents_out recompute scales from z alone: "
                         "bmshj2018 models only")
  if FLAGS.latents_in:
    _compare_latents(codec, FLAGS.latents_in)
    return
  folder = tempfile.mkdtemp(prefix="index-robustness-")
  margins = []
  paths = sorted(glob.glob(FLAGS.images))
  for path in paths:
    image = image_io.read_image(path)
    data = codec.compress(image)
    name = pathlib.Path(path).stem
    (pathlib.Path(folder) / f"{name}.eic").write_bytes(data)
    z, shape = _side_latents(codec, data)
    if not _scales_from_z(codec):
      np.savez(pathlib.Path(folder) / f"{name}.npz", indexes=_indexes(codec, data),
               decoded=codec.decompress(data))
      continue
    np.savez(pathlib.Path(folder) / f"{name}.npz", indexes=_indexes(codec, data),
             indexes32=_float32_indexes_of(codec, z, shape), decoded=codec.decompress(data))
    _, scales = codec.latent_codec.latent_scales(z, shape)
    margins.append(_boundary_margins(codec, scales))
    if FLAGS.latents_out:
      os.makedirs(FLAGS.latents_out, exist_ok=True)
      np.savez_compressed(pathlib.Path(FLAGS.latents_out) / f"{name}.npz", z=z,
                          latent_shape=np.array(shape),
                          indexes=gaussian_conditional.scale_indexes(
                              scales, codec.latent_codec.latent_tables).astype(np.uint8))
  if margins:
    margins = np.concatenate(margins)
    print(f"{len(paths)} images, {margins.size:,} scales of y")
    for threshold in (1e-7, 1e-6, 1e-5, 1e-4):
      print(f"  scales within a relative {threshold:g} of a table boundary: "
            f"{int(np.sum(margins < threshold)):,} ({100 * np.mean(margins < threshold):.4f} %)")
  if FLAGS.latents_out:
    return
  cache = os.path.join(folder, "compilation-cache")
  for name, environment, max_tile, cache_use in SETTINGS:
    env = {**os.environ, **{k: v for k, v in environment.items() if k != "TASKSET"}}
    command = [sys.executable, __file__, f"--workdir={FLAGS.workdir}", f"--child={folder}",
               f"--max_tile={max_tile}", f"--cache={cache if cache_use else ''}"]
    if "TASKSET" in environment:
      command = ["taskset", "-c", environment["TASKSET"], *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
      print(f"{name}: failed to run ({result.stderr.strip().splitlines()[-1]})")
      continue
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    differing = sum(row["differing_indexes"] for row in rows)
    in_float32 = ("" if not _scales_from_z(codec) else
                  f" ({sum(row['differing_float32_indexes'] for row in rows)} if computed in "
                  "float32)")
    outcomes = sorted({row["outcome"] for row in rows})
    print(f"{name}: {differing} differing indexes{in_float32} over {len(rows)} files; "
          f"{'; '.join(outcomes)}")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdir")
  app.run(main)
