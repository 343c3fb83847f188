"""The stages of a model's training: which configuration trained which steps.

A run resumed with other flags (a lower learning rate, larger crops), or started from another
run's export (`--config.init_from`, e.g. a neighbouring λ), was trained in stages; a shipped
model's record lists them all, back to step 0 of the first run, from each workdir's recorded
starts (checkpoints.load_starts) and the records of shipped models.
"""

import os

import ml_collections

from eic_jax.storage import checkpoints
from eic_jax.storage import shipped
from eic_jax.training import train

# Configs and records written before `quantization` existed name none: they trained with noise.
QUANTIZATION_BEFORE_THE_OPTION = "noise"

_KEYS = ("lmbda", "batch_size", "patch_size", "learning_rate", "learning_rate_schedule",
         "learning_rate_boundaries", "train_glob")


def stage(first_step: int, last_step: int, config: ml_collections.ConfigDict) -> dict:
  """What trained steps first_step to last_step: λ, batch, crop, schedule and data."""
  summary = {"steps": [first_step, last_step], **{key: config.get(key) for key in _KEYS},
             "quantization": config.get("quantization", QUANTIZATION_BEFORE_THE_OPTION),
             "trainable": config.get("trainable", "all")}
  if config.get("learning_rate_schedule") == "piecewise":
    summary["learning_rate_drops_at"] = train.learning_rate_drop_steps(config)
  return summary


def _shipped_stages(name: str) -> list[dict]:
  record = shipped.record(name)
  if record.get("stages"):
    # Stages recorded before they named their data trained on the record's train_glob.
    return [{"quantization": QUANTIZATION_BEFORE_THE_OPTION, "train_glob": record["train_glob"],
             "trainable": "all", **recorded} for recorded in record["stages"]]
  return [stage(0, record["steps"], checkpoints.load_config(shipped.resolve(name)))]


def _stages_before(config: ml_collections.ConfigDict, step: int | None) -> list[dict]:
  """The stages of the export a run started from (`config.init_from`) at `step`; None: the
  step is not recorded, and a workdir's latest export is taken for it."""
  source = config.get("init_from")
  if not source:
    return []
  if os.path.isdir(source):
    if step is None:
      step = checkpoints.latest_step(source, checkpoints.EXPORT_DIR)
    return [] if step is None else history(source, step)
  if source in shipped.list_models():
    return _shipped_stages(source)
  return []  # the source is gone: what trained it is not known here


def history(workdir: str, last_step: int) -> list[dict]:
  """The stages that trained `workdir`'s parameters up to `last_step`, starting with those of
  the model it started from; consecutive starts with the same settings form one stage."""
  starts = checkpoints.load_starts(workdir)
  if not starts:  # written before starts were recorded: its config.json is all there is
    config = checkpoints.load_config(workdir)
    earlier = _stages_before(config, None)
    starts = [(earlier[-1]["steps"][1] if earlier else 0, config)]
  else:
    earlier = _stages_before(starts[0][1], starts[0][0])
  stages = earlier  # built afresh for this call, so extending it in place is safe
  ends = [step for step, _ in starts[1:]] + [last_step]
  for (first, config), end in zip(starts, ends):
    if first >= last_step:
      break
    current = stage(first, min(end, last_step), config)
    if stages and {**stages[-1], "steps": None} == {**current, "steps": None}:
      stages[-1]["steps"][1] = current["steps"][1]
    else:
      stages.append(current)
  return stages
