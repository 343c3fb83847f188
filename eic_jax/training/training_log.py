"""Training metrics: a JSON-lines file in the workdir, a console line per report, and TensorBoard
event files (clu's writer) where TensorFlow is installed.

WORKDIR/metrics.jsonl holds one object per report, {"step": …, "time": …, NAME: value, …}, and
is appended to when training resumes, after the records of steps past the checkpoint it resumes
from are dropped (a run killed after its last checkpoint logged steps that it trains again). It needs
nothing beyond the standard library, so a run trained without TensorFlow keeps its curves
(`experiments/plot.py --kind=training` reads this file, or the event files of older runs).
clu's own writers cannot serve here: importing clu.metric_writers imports TensorFlow.
"""

import datetime
import glob
import json
import logging
import math
import os
import sys
import time
from typing import Any, Iterator

import numpy as np
import tqdm

from eic_jax.runtime import atomic_files
from eic_jax.runtime import tensorflow_setup

METRICS_FILE = "metrics.jsonl"


def _format(value: float) -> str:
  return f"{value:.4g}" if math.isfinite(value) else str(value)


def _duration(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(seconds)))


class TrainingLog:
  """Writes a run's scalars; `files=False` (processes other than the first) only logs."""

  def __init__(self, workdir: str, num_train_steps: int, initial_step: int, files: bool = True):
    self._num_train_steps = num_train_steps
    # A progress bar with rate and ETA on a terminal; logs and files get the report lines.
    self._bar = tqdm.tqdm(total=num_train_steps, initial=initial_step, unit="step",
                          dynamic_ncols=True, leave=False,
                          disable=not (files and sys.stderr.isatty()))
    self._last = (initial_step, time.perf_counter())
    path = os.path.join(workdir, METRICS_FILE)
    if files and os.path.exists(path):
      _drop_records_after(path, initial_step)
    self._stream = open(path, "a", buffering=1) if files else None
    self._summary = None
    if files and tensorflow_setup.tensorflow_available():
      tensorflow_setup.tensorflow("TensorBoard event files")
      from clu import metric_writers  # pylint: disable=import-outside-toplevel
      self._summary = metric_writers.AsyncWriter(metric_writers.SummaryWriter(workdir))

  def advance(self, step: int) -> None:
    self._bar.update(step - self._bar.n)

  def write_hparams(self, hparams: dict[str, Any]) -> None:
    if self._summary is not None:
      self._summary.write_hparams(hparams)

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """Records `scalars` at `step`; training scalars also get steps per second on the console
    and in the records."""
    scalars = {name: float(value) for name, value in scalars.items()}
    now = time.perf_counter()
    message = ""
    if step > self._last[0] and any(name.startswith("train_") for name in scalars):
      rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
      self._last = (step, now)
      scalars["steps_per_sec"] = rate
      message = (f", {rate:.3g} steps/s, ETA "
                 f"{_duration((self._num_train_steps - step) / rate)}")
    logging.info("step %d/%d%s: %s", step, self._num_train_steps, message,
                 ", ".join(f"{name} {_format(value)}" for name, value in scalars.items()
                           if name != "steps_per_sec"))
    if self._stream is not None:
      self._stream.write(json.dumps({"step": int(step), "time": time.time(), **scalars}) + "\n")
    if self._summary is not None:
      self._summary.write_scalars(step, scalars)

  def close(self) -> None:
    self._bar.close()
    if self._stream is not None:
      self._stream.close()
    if self._summary is not None:
      self._summary.close()


def _drop_records_after(path: str, step: int) -> None:
  """Rewrites the metrics file without the records of steps after `step` (and torn lines)."""
  kept = [record for record in _records(path) if int(record.get("step", 0)) <= step]
  with atomic_files.atomic_write(path, "w") as stream:
    stream.writelines(json.dumps(record) + "\n" for record in kept)


def _records(path: str) -> Iterator[dict]:
  with open(path) as stream:
    for number, line in enumerate(stream, 1):
      if not line.strip():
        continue
      try:
        yield json.loads(line)
      except json.JSONDecodeError:
        # A run killed mid-write leaves a partial last line; nothing after it is lost.
        logging.warning("%s line %d is not JSON; skipped", path, number)


def read_scalars(workdir: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Scalar series {name: (steps, values)} of a workdir: metrics.jsonl when present, else the
  TensorBoard event files of runs that predate it (those need TensorFlow)."""
  path = os.path.join(workdir, METRICS_FILE)
  series: dict[str, dict[int, float]] = {}
  if os.path.exists(path):
    for record in _records(path):
      for name, value in record.items():
        if name not in ("step", "time") and isinstance(value, (int, float)):
          series.setdefault(name, {})[int(record["step"])] = float(value)
  else:
    series = _event_file_scalars(workdir)
  if not series:
    raise FileNotFoundError(f"{workdir} has no training metrics ({METRICS_FILE} or TensorBoard "
                            "event files)")
  return {name: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)]))
          for name, points in series.items()}


def _event_file_scalars(workdir: str) -> dict[str, dict[int, float]]:
  paths = sorted(glob.glob(os.path.join(workdir, "events.out.tfevents.*")))
  if not paths:
    return {}
  tf = tensorflow_setup.tensorflow(f"reading the TensorBoard event files of {workdir}")
  # summary_iterator is the reader TensorFlow still ships; its deprecation notice is noise here.
  tf.get_logger().setLevel("ERROR")
  series: dict[str, dict[int, float]] = {}
  for path in paths:
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.HasField("tensor"):
          array = tf.make_ndarray(value.tensor)
          if array.size != 1 or array.dtype.kind not in "fiu":
            continue  # text and hyperparameter summaries
          number = float(array.reshape(()))
        elif value.HasField("simple_value"):
          number = value.simple_value
        else:
          continue
        series.setdefault(value.tag, {})[event.step] = number
  return series
