"""Trains one workdir per λ from one config, evaluates them all with JPEG and WebP on the same
images, and draws one rate–distortion figure.

  python experiments/lambda_sweep.py --config=configs/sweep.py --workdir=runs/sweep \\
      --config.train_glob='photos/*.png' --eval_glob='kodak/*.png'

Writes WORKDIR/lmbda_<λ>/ (a training workdir each; a rerun resumes them),
WORKDIR/{model,jpeg,webp}.json and WORKDIR/rd.png. --config.lmbdas=0.002,0.01 overrides the list.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from eic_jax.codec import codec as codec_lib
from eic_jax.evaluation import compare
from eic_jax.evaluation import evaluation
from eic_jax.evaluation import plots
from eic_jax.evaluation import rd_curves
from eic_jax.runtime import atomic_files
from eic_jax.runtime import log_filters
from eic_jax.training import input_pipeline
from eic_jax.training import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "A config with a list of λ in `lmbdas`.")
flags.DEFINE_string("workdir", None, "Folder for the per-λ workdirs and the results.")
flags.DEFINE_string("eval_glob", None, "Images to evaluate on (default: the config's "
                    "valid_glob).")
flags.mark_flags_as_required(["config", "workdir"])


def _write_json(path: str, curve: dict) -> None:
  with atomic_files.atomic_write(path, "w") as stream:
    stream.write(rd_curves.dumps(curve))


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  config = FLAGS.config
  if not config.get("lmbdas"):
    raise app.UsageError("the config needs a non-empty list `lmbdas`")
  workdirs = []
  for lmbda in config.lmbdas:
    run_config = config.copy_and_resolve_references()
    run_config.lmbda = float(lmbda)
    workdir = os.path.join(FLAGS.workdir, f"lmbda_{lmbda}")
    train.train_and_evaluate(run_config, workdir)
    workdirs.append(workdir)

  files = input_pipeline.list_files(FLAGS.eval_glob or config.valid_glob)
  model = evaluation.evaluate_codecs([codec_lib.load_codec(w) for w in workdirs],
                                     [f"lmbda={lmbda}" for lmbda in config.lmbdas], files)
  baselines = [evaluation.evaluate_baseline(name, files) for name in ("jpeg", "webp")]
  for name, curve in zip(("model", "jpeg", "webp"), [model] + baselines):
    _write_json(os.path.join(FLAGS.workdir, f"{name}.json"), curve)
  plots.rd_figure([model] + baselines, os.path.join(FLAGS.workdir, "rd.png"),
                  title=f"{len(files)} images")
  print(compare.format_table(model, baselines))


if __name__ == "__main__":
  app.run(main)
