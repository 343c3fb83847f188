"""Fuzzes decompress with seeded mutations of real files and prints the totals.

  python experiments/fuzz_decompress.py --workdir=runs/demo --iterations=10000

Exits non-zero if any input crashed, returned something other than a uint8 image, took longer
than --time_limit_s, or memory grew by more than --max_growth_mb.
"""

import json
import resource
import sys

from absl import app
from absl import flags

import skimage.data

from eic_jax.codec import codec as codec_lib
from eic_jax.runtime import log_filters
from eic_jax.tools import fuzzing

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A trained workdir.")
flags.DEFINE_string("coder", None, "The entropy coder that writes the seed files (coder/coders.py; "
                    "default: the first installed).")
flags.DEFINE_integer("iterations", 10000, "Number of mutated inputs.")
flags.DEFINE_integer("seed", 0, "Mutation seed.")
flags.DEFINE_integer("max_pixels", 2**20, "Decoder limit on image size, checked from the header.")
flags.DEFINE_float("time_limit_s", 2.0, "Slowest acceptable input.")
flags.DEFINE_float("max_growth_mb", 512.0, "Largest acceptable growth of peak memory.")
flags.mark_flag_as_required("workdir")


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  codec = codec_lib.load_codec(FLAGS.workdir, max_pixels=FLAGS.max_pixels, coder=FLAGS.coder)
  photo = skimage.data.astronaut()
  files = [codec.compress(photo[:h, :w]) for h, w in ((1, 1), (17, 30), (64, 64), (200, 150),
                                                      (512, 512))]
  codec.decompress(files[-1])
  before = _peak_mb()
  result = fuzzing.run(codec.decompress, files, FLAGS.iterations, FLAGS.seed,
                       FLAGS.time_limit_s)
  growth = _peak_mb() - before
  summary = {k: v for k, v in result.items() if k != "failures"}
  summary.update({"failures": len(result["failures"]), "peak_memory_growth_mb": growth})
  print(json.dumps(summary, indent=2))
  for failure in result["failures"][:20]:
    print(failure)
  if result["failures"] or growth > FLAGS.max_growth_mb:
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
