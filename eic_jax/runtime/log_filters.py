"""Keeps libraries' routine INFO records (Orbax logs every checkpoint operation in detail) out
of the training log and the tools' output; their warnings and errors still show, except
Orbax's notice that a shipped model's folder is opened read-only, which is intended."""

import logging

from absl import logging as absl_logging

_NOISY_PATHS = ("/orbax/",)


class _QuietLibraries(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    if not any(part in record.pathname for part in _NOISY_PATHS):
      return True
    if str(record.msg).startswith(("Given directory is read only",
                                   "CheckpointManagerOptions.read_only=True")):
      return False
    return record.levelno >= logging.WARNING


_FILTER = _QuietLibraries()


def quiet_libraries() -> None:
  absl_logging.get_absl_logger().addFilter(_FILTER)
