"""Which workdir wrote a file: the weights' fingerprint → the workdir's path, remembered when a
workdir compresses, so that its files decompress without naming it again.

One small JSON file in the user's cache ($XDG_CACHE_HOME/eic_jax/workdirs.json, by default
~/.cache/eic_jax/): a hint, never a requirement — a missing, unreadable or stale entry only
means the workdir must be named.
"""

import contextlib
import json
import os

from eic_jax.runtime import atomic_files

# Entries kept, the most recent first: enough for anyone's workdirs, small to rewrite.
MAX_ENTRIES = 256


def _path() -> str:
  cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(cache, "eic_jax", "workdirs.json")


def _entries() -> dict[str, str]:
  with contextlib.suppress(OSError, ValueError):
    with open(_path()) as stream:
      entries = json.load(stream)
    if isinstance(entries, dict):
      return {str(k): str(v) for k, v in entries.items()}
  return {}


def remember(fingerprint: str, workdir: str) -> None:
  """Notes that the weights with this fingerprint (hex) are `workdir`'s; a cache that cannot
  be written is skipped silently (it only saves typing)."""
  workdir = os.path.abspath(workdir)
  entries = _entries()
  if entries.get(fingerprint) == workdir:
    return
  entries = {fingerprint: workdir, **{k: v for k, v in entries.items() if k != fingerprint}}
  with contextlib.suppress(OSError):
    os.makedirs(os.path.dirname(_path()), exist_ok=True)
    with atomic_files.atomic_write(_path(), "w") as stream:
      json.dump(dict(list(entries.items())[:MAX_ENTRIES]), stream, indent=1)


def find(fingerprint: str) -> str | None:
  """The workdir remembered for this fingerprint (hex) if it still exists."""
  workdir = _entries().get(fingerprint)
  return workdir if workdir and os.path.isdir(workdir) else None
