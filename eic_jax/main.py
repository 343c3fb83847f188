"""Command line: python -m eic_jax.main --config=configs/default.py --workdir=DIR [--mode=...]."""

import logging as python_logging
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "train", ["train"], "What to do.")
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and the stored config.")
config_flags.DEFINE_config_file(
    "config", None, "Training configuration file; override fields with --config.FIELD=VALUE.",
    lock_config=True)


def _train() -> None:
  from eic_jax import train  # pylint: disable=import-outside-toplevel
  if FLAGS.config is None:
    raise app.UsageError("--mode=train needs --config")
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


class _QuietLibraries(python_logging.Filter):
  """Keeps the libraries' routine INFO records (each checkpoint write, backend probing) out of
  the training log; their warnings and errors still show."""

  _NOISY = ("/orbax/",)

  def filter(self, record) -> bool:
    return record.levelno >= python_logging.WARNING or not any(
        part in record.pathname for part in self._NOISY)


def main(argv) -> None:
  logging.get_absl_logger().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.workdir is None:
    raise app.UsageError("--workdir is required")
  try:
    {"train": _train}[FLAGS.mode]()
  except (ValueError, FileNotFoundError, FloatingPointError, OSError) as error:
    logging.error("%s", error)
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
