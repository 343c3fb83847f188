"""Packs a workdir's export into one file (or parts), and unpacks it into a workdir elsewhere.

  python experiments/gpu/pack_export.py --workdir=runs/gpu/lmbda_0.0067 --output=lmbda_0.0067.tar.xz \\
      [--max_bytes=60000000] [--part_bytes=16000000] [--weights_dtype=float16]
  python experiments/gpu/pack_export.py --unpack=lmbda_0.0067.tar.xz --workdir=runs/lmbda_0.0067

The file holds what compression and shipping need: config.json, the latest export (parameters,
and coding tables if it has them) and metrics.jsonl, but no training checkpoints. Packing fails,
writing nothing, when the file would exceed --max_bytes. With --part_bytes, a pack larger than
that is written as parts OUTPUT.1of2, OUTPUT.2of2 … of at most that size each (for transfers
that limit the size of a file: a scale-hyperprior export is about 19 MB packed);
--weights_dtype=float16 stores the parameters in half the bytes, as the shipped models are
(experiments/ship_models.py), rounded as the export of a shipped model is. --unpack takes
OUTPUT either way and names any part that is missing. The unpacked workdir compresses,
decompresses, ships (experiments/ship_models.py) and continues training with
--config.init_from=WORKDIR; an export that has no coding tables (packed by earlier versions)
gets them from the first codec built from it.
"""

import argparse
import glob
import io
import os
import re
import sys
import tarfile
import tempfile

import numpy as np

from eic_jax.codec import export as export_lib
from eic_jax.runtime import atomic_files
from eic_jax.storage import checkpoints
from eic_jax.training import training_log


def _part_paths(output: str, count: int) -> list[str]:
  return [f"{output}.{index}of{count}" for index in range(1, count + 1)]


def pack(workdir: str, output: str, max_bytes: int | None = None,
         part_bytes: int | None = None, weights_dtype: str | None = None) -> list[str]:
  """Writes the pack of `workdir` to `output`, or to parts of at most `part_bytes` each when it
  is larger, with the parameters stored in `weights_dtype` (None: as exported); returns the
  paths written."""
  step = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  if step is None:
    raise ValueError(f"{workdir} has no export to pack")
  if part_bytes is not None and part_bytes < 1:
    raise ValueError(f"--part_bytes must be positive, not {part_bytes}")
  export = os.path.join(checkpoints.EXPORT_DIR, str(step))
  members = {checkpoints.CONFIG_FILE: os.path.join(workdir, checkpoints.CONFIG_FILE),
             export: os.path.join(workdir, export)}
  if os.path.exists(os.path.join(workdir, training_log.METRICS_FILE)):
    members[training_log.METRICS_FILE] = os.path.join(workdir, training_log.METRICS_FILE)
  with tempfile.TemporaryDirectory() as staging:
    if weights_dtype is not None:
      params, _, _ = checkpoints.restore_export(workdir)
      export_lib.save(staging, params, step, checkpoints.load_config(workdir),
                      np.dtype(weights_dtype))
      members[export] = os.path.join(staging, export)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
      for name, path in members.items():
        archive.add(path, arcname=name)
  data = buffer.getvalue()
  if max_bytes is not None and len(data) > max_bytes:
    raise ValueError(f"the pack of {workdir} takes {len(data)} bytes, more than --max_bytes="
                     f"{max_bytes}")
  if part_bytes is None or len(data) <= part_bytes:
    pieces = {output: data}
  else:
    count = -(-len(data) // part_bytes)
    pieces = {path: data[index * part_bytes:(index + 1) * part_bytes]
              for index, path in enumerate(_part_paths(output, count))}
  written = []
  try:
    for path, piece in pieces.items():
      with atomic_files.atomic_write(path) as stream:
        stream.write(piece)
      written.append(path)
  except BaseException:
    for path in written:
      os.unlink(path)
    raise
  return written


def _read_pack(path: str) -> bytes:
  """The bytes of the pack `path`, joined from its parts where it was split."""
  if os.path.exists(path):
    with open(path, "rb") as stream:
      return stream.read()
  counts = set()
  for part in glob.glob(glob.escape(path) + ".*of*"):
    match = re.fullmatch(re.escape(path) + r"\.(\d+)of(\d+)", part)
    if match:
      counts.add(int(match.group(2)))
  if not counts:
    raise ValueError(f"{path}: no such pack, nor parts {path}.1of<N> …")
  if len(counts) > 1:
    raise ValueError(f"{path}: parts of several packs lie there (of {sorted(counts)}); keep one")
  parts = _part_paths(path, counts.pop())
  missing = [part for part in parts if not os.path.exists(part)]
  if missing:
    raise ValueError(f"{path}: part {', '.join(missing)} is missing")
  data = b""
  for part in parts:
    with open(part, "rb") as stream:
      data += stream.read()
  return data


def unpack(path: str, workdir: str) -> int:
  """Extracts a pack (or its parts) into `workdir`, which must not hold an export yet; returns
  its step."""
  if checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR) is not None:
    raise ValueError(f"{workdir} already has an export; unpack into a new workdir")
  with tarfile.open(fileobj=io.BytesIO(_read_pack(path)), mode="r:*") as archive:
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
  parser.add_argument("--max_bytes", type=int, default=None,
                      help="Fail, writing nothing, if the pack is larger.")
  parser.add_argument("--part_bytes", type=int, default=None,
                      help="Split a larger pack into parts OUTPUT.1ofN … of at most this size.")
  parser.add_argument("--weights_dtype", choices=["float16"], default=None,
                      help="Store the parameters in this type (default: as exported).")
  args = parser.parse_args(argv)
  if bool(args.output) == bool(args.unpack):
    parser.error("give either --output (pack) or --unpack")
  try:
    if args.unpack:
      step = unpack(args.unpack, args.workdir)
      print(f"{args.workdir}: export of step {step}")
    else:
      for path in pack(args.workdir, args.output, args.max_bytes, args.part_bytes,
                       args.weights_dtype):
        print(f"{path}: {os.path.getsize(path)} bytes")
  except (ValueError, OSError, tarfile.TarError) as error:
    sys.exit(f"error: {error}")


if __name__ == "__main__":
  main()
