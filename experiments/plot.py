"""Figures from results and workdirs.

  python experiments/plot.py --kind=rd --input=model.json,jpeg.json,webp.json --published --output=rd.png
  python experiments/plot.py --kind=training --workdir=runs/mine --output=training.png
  python experiments/plot.py --kind=pmf --workdir=runs/mine --channels=0,5,9 --output=pmf.png
  python experiments/plot.py --kind=reconstruction --workdir=runs/mine --input=photo.png --output=side.png
"""

from absl import app
from absl import flags

from eic_jax.codec import codec as codec_lib
from eic_jax.evaluation import plots
from eic_jax.evaluation import rd_curves
from eic_jax.runtime import image_io
from eic_jax.runtime import log_filters

FLAGS = flags.FLAGS
flags.DEFINE_enum("kind", None, ["rd", "training", "pmf", "reconstruction"], "Which figure.")
flags.DEFINE_string("input", None, "rd: comma-separated results JSON; reconstruction: an image.")
flags.DEFINE_string("workdir", None, "training, pmf, reconstruction: a training workdir.")
flags.DEFINE_string("output", None, "The PNG to write.")
flags.DEFINE_bool("published", False, "rd: add the published Kodak curves of Ballé 2017, JPEG "
                  "and WebP.")
flags.DEFINE_string("title", "", "rd: the figure's title, e.g. the image set and its count.")
flags.DEFINE_integer("focus", 1, "rd: the first this many --input curves are the models: drawn "
                     "on top, with the axes fitted to their rates.")
flags.DEFINE_list("channels", None, "pmf: channels to show (default: the four widest).")
flags.mark_flags_as_required(["kind", "output"])


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  if FLAGS.kind == "rd":
    curves = [rd_curves.load(p) for p in (FLAGS.input or "").split(",") if p]
    if FLAGS.published:
      published = rd_curves.published("kodak")
      curves += [dict(published[k], name=published[k]["name"] + " (Kodak)")
                 for k in ("balle-2017-iclr-opt-mse", "jpeg420", "webp")]
    plots.rd_figure(curves, FLAGS.output, title=FLAGS.title, focus=FLAGS.focus)
  elif FLAGS.kind == "training":
    plots.training_figure(FLAGS.workdir, FLAGS.output)
  else:
    codec = codec_lib.load_codec(FLAGS.workdir)
    if FLAGS.kind == "pmf":
      channels = [int(c) for c in FLAGS.channels] if FLAGS.channels else None
      plots.pmf_figure(codec, FLAGS.output, channels)
    else:
      original = image_io.read_image(FLAGS.input)
      data = codec.compress(original)
      rate = 8 * len(data) / (original.shape[0] * original.shape[1])
      plots.side_by_side(original, codec.decompress(data), FLAGS.output,
                         caption=f"{rate:.3f} bpp")


if __name__ == "__main__":
  app.run(main)
