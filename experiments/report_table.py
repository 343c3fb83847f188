"""Prints the codec's table for one image: sizes, MSE, PSNR, MS-SSIM, MS-SSIM (dB),
information content and actual bits per pixel.

  python experiments/report_table.py --workdir=runs/mine --input=photo.png
"""

import os
import pathlib
import sys

from absl import app
from absl import flags

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from eic_jax.coding import codec as codec_lib  # noqa: E402
from eic_jax import log_filters  # noqa: E402
from eic_jax import image_io  # noqa: E402
from eic_jax.evaluation import report  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A training workdir.")
flags.DEFINE_string("input", None, "An image file.")
flags.mark_flags_as_required(["workdir", "input"])


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  codec = codec_lib.load_codec(FLAGS.workdir)
  _, _, metrics = report.measure(codec, image_io.read_image(FLAGS.input))
  print(report.format_report(metrics, os.path.getsize(FLAGS.input)))


if __name__ == "__main__":
  app.run(main)
