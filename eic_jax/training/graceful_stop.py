"""Stopping training on SIGINT (Ctrl-C) or SIGTERM (what preemptible machines, SLURM and
Kubernetes send) with the work kept: the current step finishes, a checkpoint and an export are
written, and training ends with StoppedBySignal. A second Ctrl-C stops at once."""

import logging
import signal
import threading

import jax
from jax.experimental import multihost_utils
import numpy as np

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StoppedBySignal(Exception):
  """Training stopped at `step` on `signum`, its checkpoint written; the same command resumes."""

  def __init__(self, signum: int, step: int, workdir: str):
    self.signum, self.step = signum, step
    super().__init__(f"stopped by {signal.Signals(signum).name} after step {step:,}: the "
                     f"checkpoint is saved in {workdir}; the same command resumes from it")


class GracefulStop:
  """A context in which SIGINT and SIGTERM ask training to stop after the current step.

  Handlers are installed only in the main thread (Python delivers signals there); elsewhere
  the signals keep their usual effect.
  """

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self) -> "GracefulStop":
    if threading.current_thread() is threading.main_thread():
      self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum: int, frame) -> None:
    del frame
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: now
    self.signum = self.signum or signum
    logging.warning("%s: stopping after this step with a checkpoint (Ctrl-C again to stop at "
                    "once)", signal.Signals(signum).name)

  def requested(self) -> bool:
    """Whether a stop was asked for, here or, on several hosts, in any process: they all stop
    at the same step."""
    asked = self.signum is not None
    if jax.process_count() > 1:
      everywhere = multihost_utils.process_allgather(np.array(asked))
      asked = bool(np.any(everywhere))
      if asked and self.signum is None:
        self.signum = signal.SIGTERM  # another host's
    return asked
