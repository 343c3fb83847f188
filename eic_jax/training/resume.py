"""Resuming a workdir: what may change from the configuration it was trained with.

A workdir resumes from its latest checkpoint with the configuration it stored. Fields that only
say how long and how visibly to train may change freely on resume; every other one changes what
is trained (data, model, objective, optimisation), so a resume that changes them is refused,
with the list of differences, unless asked for: a run trained in stages (a lower learning rate,
larger crops) records each stage in starts.jsonl (see stages.py).
"""

import json
import logging

import ml_collections

# Fields a resume may change without asking.
FREE_ON_RESUME = ("num_train_steps", "time_limit_s", "log_every_steps", "eval_every_steps",
                  "checkpoint_every_steps", "max_checkpoints_to_keep", "cache_images",
                  "init_from")


class ChangedConfigError(ValueError):
  """A resume would change what is trained; the message lists the differences."""


def _plain(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def differences(stored: ml_collections.ConfigDict, config: ml_collections.ConfigDict
                ) -> dict[str, tuple]:
  """{field: (stored value, new value)} for the fields that differ; a field the stored
  configuration lacks (added to the project since) is not a difference."""
  before, after = _plain(stored), _plain(config)
  return {name: (before[name], after.get(name)) for name in sorted(before)
          if name in after and before[name] != after[name]}


def check(stored: ml_collections.ConfigDict, config: ml_collections.ConfigDict, workdir: str,
          allow_changes: bool = False) -> None:
  """Logs every difference between the stored and the new configuration of `workdir`, and
  raises ChangedConfigError for those that change what is trained unless `allow_changes`."""
  changed = differences(stored, config)
  if not changed:
    return
  listed = "; ".join(f"{name}: {old!r} → {new!r}" for name, (old, new) in changed.items())
  guarded = [name for name in changed if name not in FREE_ON_RESUME]
  if guarded and not allow_changes:
    raise ChangedConfigError(
        f"resuming {workdir} with a configuration that changes what is trained ({listed}). "
        f"Resume without those changes (--workdir={workdir} alone uses the stored one), start "
        f"a new workdir from it (--config.init_from={workdir}), or train on in stages with "
        "--allow_changes")
  logging.info("Resuming %s with changes: %s", workdir, listed)
