"""Exports: a workdir's parameters with the integer coding tables its codec reads.

Training writes one at its end. Loading a codec only reads (codec.load_codec): a workdir whose
newest training checkpoint is newer than its export (an interrupted run), or whose export lacks
the coding tables (written by versions that built them only where TensorFlow was installed), is
brought up to date by `export` — on the command line `--mode=export`, which the codec commands
also run by themselves when they find an export out of date, and say so.
"""

import logging
from typing import Any

import ml_collections

from eic_jax import models
from eic_jax.coder.tables import IntegerTables
from eic_jax.storage import checkpoints


class StaleExportError(ValueError):
  """A workdir's export is missing or older than its training; the message names the step
  that brings it up to date."""


def command(workdir: str) -> str:
  return f"python -m eic_jax.main --mode=export --workdir={workdir}"


def coding_tables(params: Any, config: ml_collections.ConfigDict
                  ) -> dict[str, IntegerTables]:
  """The integer coding tables of the model `config` names, with these parameters."""
  return models.ARCHITECTURES[models.architecture(config)].build_coding_tables(params, config)


def tables_from_arrays(arrays: dict, config: ml_collections.ConfigDict
                       ) -> dict[str, IntegerTables]:
  return models.ARCHITECTURES[models.architecture(config)].tables_from_arrays(arrays)


def save(workdir: str, params: Any, step: int, config: ml_collections.ConfigDict,
         weights_dtype: Any = None) -> dict[str, IntegerTables]:
  """Writes the export of `params` at `step` with their coding tables, and returns the tables.
  `weights_dtype` (e.g. np.float16): see checkpoints.save_export; the tables are built from the
  rounded parameters."""
  if weights_dtype is not None:
    params = checkpoints.rounded_params(params, weights_dtype)
  tables = coding_tables(params, config)
  checkpoints.save_export(workdir, params, step,
                          {name: table.as_dict() for name, table in tables.items()},
                          weights_dtype)
  return tables


def pending(workdir: str) -> str | None:
  """Why the export of `workdir` is out of date, or None when it is up to date (or there is
  nothing to export yet)."""
  trained = checkpoints.latest_step(workdir)
  exported, has_tables = checkpoints.latest_export(workdir)
  if trained is not None and (exported is None or trained > exported):
    return (f"its newest training checkpoint (step {trained:,}) is newer than its export"
            + ("" if exported is None else f" (step {exported:,})"))
  if exported is not None and not has_tables:
    return f"its export (step {exported:,}) has no coding tables"
  return None


def export(workdir: str) -> int:
  """Exports the latest training checkpoint of `workdir` (or adds the coding tables to its
  export) and returns the step."""
  config = checkpoints.load_config(workdir)
  if checkpoints.latest_step(workdir) is not None:
    with checkpoints.checkpoint_manager(workdir) as manager:
      params, step = checkpoints.restore_params(manager)
  else:
    params, _, step = checkpoints.restore_export(workdir)
  save(workdir, params, step, config)
  return step


def update(workdir: str) -> bool:
  """Exports `workdir` when its export is out of date, saying why in the log; whether it did."""
  reason = pending(workdir)
  if reason is None:
    return False
  logging.warning("Exporting %s: %s", workdir, reason)
  export(workdir)
  return True

