"""Shipped models: trained models inside the package, usable without training.

Each is a folder eic_jax/pretrained/<name>/ laid out like a workdir without training checkpoints:
config.json, export/<step>/ (parameters and integer coding tables, an Orbax checkpoint) and
training.json (how it was trained and how it scored, and the fingerprints of the weights it
shipped with before, so that files they wrote can be named).
"""

import json
import os
import pathlib

MODELS_DIR = pathlib.Path(__file__).parents[1] / "pretrained"
RECORD_FILE = "training.json"


def list_models() -> list[str]:
  """Names of the shipped models."""
  if not MODELS_DIR.is_dir():
    return []
  return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "config.json").is_file())


def record(name: str) -> dict:
  """The training record of a shipped model."""
  with open(MODELS_DIR / name / RECORD_FILE) as stream:
    return json.load(stream)


def resolve(name_or_workdir: str) -> str:
  """The directory of a workdir path or of a shipped model's name."""
  if os.path.isdir(name_or_workdir):
    return name_or_workdir
  if name_or_workdir in list_models():
    return str(MODELS_DIR / name_or_workdir)
  shipped = ", ".join(list_models()) or "none"
  raise FileNotFoundError(f"{name_or_workdir!r} is neither a workdir nor a shipped model "
                          f"(shipped: {shipped})")


def find_release(fingerprint: str) -> tuple[str, dict] | None:
  """(name, release) of the shipped weights, current or earlier, with this fingerprint (hex):
  release = {"step", "fingerprint", "commit"} from the model's training record, the commit
  that shipped those weights."""
  for name in list_models():
    for release in record(name).get("releases", []):
      if release["fingerprint"] == fingerprint:
        return name, release
  return None
