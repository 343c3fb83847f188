"""Keeps libraries' routine INFO records (Orbax logs every checkpoint operation in detail) out
of the training log and the tools' output; their warnings and errors still show."""

import logging

from absl import logging as absl_logging

_NOISY_PATHS = ("/orbax/",)


class _QuietLibraries(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or not any(
        part in record.pathname for part in _NOISY_PATHS)


_FILTER = _QuietLibraries()


def quiet_libraries() -> None:
  absl_logging.get_absl_logger().addFilter(_FILTER)
