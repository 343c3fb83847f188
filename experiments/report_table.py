"""Prints the codec's table for one image: sizes, MSE, PSNR, MS-SSIM, MS-SSIM (dB),
information content and actual bits per pixel.

  python experiments/report_table.py --workdir=runs/mine --input=photo.png
"""

import os

from absl import app
from absl import flags

from eic_jax.codec import codec as codec_lib
from eic_jax.evaluation import report
from eic_jax.runtime import image_io
from eic_jax.runtime import log_filters

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
