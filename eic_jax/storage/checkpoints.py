"""What a workdir holds: the stored config, Orbax training checkpoints and the export.

WORKDIR/config.json           the configuration of the run's latest start
WORKDIR/starts.jsonl          each start's first step and configuration (see training/stages.py)
WORKDIR/checkpoints/<step>/   training state (parameters, optimiser state, step)
WORKDIR/export/<step>/        inference only: parameters and the integer coding tables
WORKDIR/metrics.jsonl         training and validation scalars (see training_log.py)

The coding tables are opaque arrays here: the models build them and read them back
(codec/export.py).
An export of versions that built the tables only where TensorFlow was installed may hold the
parameters alone (codec/export.py adds the tables). Nothing here writes unless asked to:
reading a workdir or a shipped model changes nothing.
"""

import json
import logging
import os
import shutil
import tempfile
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from eic_jax.runtime import atomic_files
from eic_jax.runtime import log_filters

# Also for notebooks and scripts that never go through main.
log_filters.quiet_libraries()

CONFIG_FILE = "config.json"
STARTS_FILE = "starts.jsonl"
CHECKPOINT_DIR = "checkpoints"
EXPORT_DIR = "export"


CORRUPTED_DIR = "corrupted_checkpoints"


def ensure_writable(workdir: str) -> None:
  """Creates `workdir` and checks that files can be written there, before any work starts."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as error:
    raise ValueError(f"workdir {workdir} is not writable: {error.strerror or error}") from error


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  os.makedirs(workdir, exist_ok=True)
  with atomic_files.atomic_write(os.path.join(workdir, CONFIG_FILE), "w") as stream:
    stream.write(config.to_json_best_effort(indent=2, sort_keys=True))


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{workdir} has no {CONFIG_FILE}: it is not a training workdir")
  with open(path) as stream:
    return ml_collections.ConfigDict(json.load(stream))


def record_start(workdir: str, step: int, config: ml_collections.ConfigDict) -> None:
  """Appends that training (re)starts at `step` with `config`: config.json keeps only the
  latest, and a run resumed with other flags has stages that a shipped model's record lists."""
  line = json.dumps({"step": step, "config": json.loads(config.to_json_best_effort())})
  with open(os.path.join(workdir, STARTS_FILE), "a") as stream:
    stream.write(line + "\n")


def load_starts(workdir: str) -> list[tuple[int, ml_collections.ConfigDict]]:
  """(first step, configuration) of each start that still leads to the latest step, in order:
  a start that resumed from an earlier checkpoint drops the starts at or after its step. Empty
  for a workdir written before starts were recorded."""
  path = os.path.join(workdir, STARTS_FILE)
  if not os.path.exists(path):
    return []
  starts = []
  with open(path) as stream:
    for number, line in enumerate(stream, 1):
      try:
        entry = json.loads(line)
        step, config = int(entry["step"]), ml_collections.ConfigDict(entry["config"])
      except (ValueError, KeyError, TypeError):
        # A process killed while appending leaves a torn line; the other starts still count.
        logging.warning("Skipping line %d of %s: not a recorded start", number, path)
        continue
      while starts and starts[-1][0] >= step:
        starts.pop()
      starts.append((step, config))
  return starts


_ITEMS = {CHECKPOINT_DIR: ("state",), EXPORT_DIR: ("params", "coding_tables")}


def _manager(workdir: str, folder: str, max_to_keep: int | None, read_only: bool = False
             ) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), folder),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                           read_only=read_only),
      item_handlers={item: ocp.StandardCheckpointHandler() for item in _ITEMS[folder]})


def checkpoint_manager(workdir: str, max_to_keep: int | None = None) -> ocp.CheckpointManager:
  return _manager(workdir, CHECKPOINT_DIR, max_to_keep)


def save_state(manager: ocp.CheckpointManager, step: int, state: Any) -> None:
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))


def restore_state(manager: ocp.CheckpointManager, target: Any, step: int | None = None) -> Any:
  """Restores the training state saved at `step` (default: latest) into the structure of
  `target`."""
  step = manager.latest_step() if step is None else step
  return manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target))).state


def restore_params(manager: ocp.CheckpointManager) -> tuple[Any, int]:
  """The parameters and step of the latest training checkpoint, read without the training
  code (the optimiser state comes back as plain arrays and is dropped)."""
  step = manager.latest_step()
  metadata = manager.item_metadata(step)["state"]
  state = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(_zeros_like_metadata(metadata)))).state
  return state["params"], int(state["step"])


def restore_latest_good(manager: ocp.CheckpointManager, target: Any) -> Any | None:
  """The newest checkpoint that restores, or None when there is none.

  A checkpoint that fails to restore (damaged files) is moved to WORKDIR/corrupted_checkpoints
  with a warning, and the previous one is tried.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      return restore_state(manager, target, step)
    except Exception as error:  # pylint: disable=broad-except
      # Orbax and TensorStore raise many types for damaged files; none of them is recoverable.
      quarantine = os.path.join(os.path.dirname(manager.directory), CORRUPTED_DIR, str(step))
      logging.warning("Checkpoint %d in %s cannot be restored (%s: %s); moved it to %s and "
                      "trying the previous one", step, manager.directory, type(error).__name__,
                      str(error).splitlines()[0] if str(error) else "", quarantine)
      os.makedirs(os.path.dirname(quarantine), exist_ok=True)
      shutil.move(os.path.join(manager.directory, str(step)), quarantine)
      manager.reload()
  return None


def latest_step(workdir: str, folder: str = CHECKPOINT_DIR) -> int | None:
  """The newest complete step in WORKDIR/folder; None when there is none. Writes nothing, so it
  also reads shipped models inside an installed package."""
  if not os.path.isdir(os.path.join(workdir, folder)):
    return None
  with _manager(workdir, folder, None, read_only=True) as manager:
    return manager.latest_step()


def _floats_as(params: Any, dtype: Any) -> Any:
  """`params` with every floating-point leaf cast to `dtype`."""
  return jax.tree_util.tree_map(
      lambda leaf: (np.asarray(leaf).astype(dtype)
                    if np.issubdtype(np.asarray(leaf).dtype, np.floating) else leaf),
      jax.device_get(params))


def rounded_params(params: Any, dtype: Any) -> Any:
  """`params` with every floating-point leaf rounded to `dtype` and held in float32 again: the
  values an export stored in `dtype` restores."""
  return _floats_as(_floats_as(params, dtype), np.float32)


def save_export(workdir: str, params: Any, step: int, tables: dict,
                weights_dtype: Any = None) -> None:
  """Writes the inference-only export: `params` and the coding tables' arrays.

  `weights_dtype` (e.g. np.float16) stores the floating-point parameters in that type, to halve
  a shipped model's size (build the tables from `rounded_params`, the values a restore gives)."""
  params = jax.device_get(params)
  stored = params if weights_dtype is None else _floats_as(params, weights_dtype)
  items = {"params": ocp.args.StandardSave(stored),
           "coding_tables": ocp.args.StandardSave(tables)}
  with _manager(workdir, EXPORT_DIR, 1) as manager:
    if step in manager.all_steps():
      manager.delete(step)  # an export of the same step, written before the tables existed
    manager.save(step, args=ocp.args.Composite(**items), force=True)
    manager.wait_until_finished()
  logging.info("Exported step %d with coding tables to %s", step,
               os.path.join(workdir, EXPORT_DIR))


def _zeros_like_metadata(metadata: Any) -> Any:
  return jax.tree_util.tree_map(lambda m: np.zeros(m.shape, m.dtype), metadata)


def latest_export(workdir: str) -> tuple[int | None, bool]:
  """(step of the latest export or None, whether it holds coding tables), from its metadata
  alone, with one look at the export folder."""
  if not os.path.isdir(os.path.join(workdir, EXPORT_DIR)):
    return None, False
  with _manager(workdir, EXPORT_DIR, None, read_only=True) as manager:
    step = manager.latest_step()
    tables = step is not None and manager.item_metadata(step).get("coding_tables") is not None
    return step, tables


def restore_export(workdir: str) -> tuple[Any, dict | None, int]:
  """Parameters (in float32, whatever type they are stored in), the coding tables' arrays (None
  in an export written without them, see above) and step of the latest export."""
  step = latest_step(workdir, EXPORT_DIR)
  if step is None:
    raise FileNotFoundError(f"{workdir} has no export")
  with _manager(workdir, EXPORT_DIR, None, read_only=True) as manager:
    metadata = manager.item_metadata(step)
    items = {name: ocp.args.StandardRestore(_zeros_like_metadata(metadata[name]))
             for name in _ITEMS[EXPORT_DIR] if metadata.get(name) is not None}
    restored = manager.restore(step, args=ocp.args.Composite(**items))
  return _floats_as(restored["params"], np.float32), restored.get("coding_tables"), step
