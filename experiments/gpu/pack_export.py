"""Packs a workdir's export into one file, and unpacks it into a workdir elsewhere.

  python experiments/gpu/pack_export.py --workdir=runs/gpu/lmbda_0.0067 --output=lmbda_0.0067.tar.xz \\
      [--max_bytes=16000000]
  python experiments/gpu/pack_export.py --unpack=lmbda_0.0067.tar.xz --workdir=runs/lmbda_0.0067

The file holds what compression and shipping need: config.json, the latest export (parameters,
and coding tables if it has them) and metrics.jsonl, but no training checkpoints. Packing fails,
writing nothing, when the file would exceed --max_bytes. The unpacked workdir compresses,
decompresses, ships (experiments/ship_models.py) and continues training with
--config.init_from=WORKDIR; where the range coder is installed, the first codec adds the coding
tables to an export that has none.
"""

import argparse
import os
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from eic_jax import atomic_files  # noqa: E402
from eic_jax import checkpoints  # noqa: E402
from eic_jax.training import training_log  # noqa: E402


def pack(workdir: str, output: str, max_bytes: int | None = None) -> int:
  """Writes the pack of `workdir` to `output`; returns its size in bytes."""
  step = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  if step is None:
    raise ValueError(f"{workdir} has no export to pack")
  members = [checkpoints.CONFIG_FILE, os.path.join(checkpoints.EXPORT_DIR, str(step))]
  if os.path.exists(os.path.join(workdir, training_log.METRICS_FILE)):
    members.append(training_log.METRICS_FILE)
  with atomic_files.atomic_write(output) as stream:
    with tarfile.open(fileobj=stream, mode="w:xz") as archive:
      for member in members:
        archive.add(os.path.join(workdir, member), arcname=member)
    size = stream.tell()
    if max_bytes is not None and size > max_bytes:
      raise ValueError(f"the pack of {workdir} takes {size} bytes, more than --max_bytes="
                       f"{max_bytes}")
  return size


def unpack(path: str, workdir: str) -> int:
  """Extracts a pack into `workdir`, which must not hold an export yet; returns its step."""
  if checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR) is not None:
    raise ValueError(f"{workdir} already has an export; unpack into a new workdir")
  with tarfile.open(path, "r:*") as archive:
    archive.extractall(workdir, filter="data")
  step = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  if step is None:
    raise ValueError(f"{path} holds no export")
  return step


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--output", help="The pack to write.")
  parser.add_argument("--unpack", help="A pack to extract into --workdir.")
  parser.add_argument("--max_bytes", type=int, default=None)
  args = parser.parse_args(argv)
  if bool(args.output) == bool(args.unpack):
    parser.error("give either --output (pack) or --unpack")
  try:
    if args.unpack:
      step = unpack(args.unpack, args.workdir)
      print(f"{args.workdir}: export of step {step}")
    else:
      size = pack(args.workdir, args.output, args.max_bytes)
      print(f"{args.output}: {size} bytes")
  except (ValueError, OSError, tarfile.TarError) as error:
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  main()
