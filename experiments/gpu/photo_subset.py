"""Copies a random subset of training photographs that fits a size budget, optionally downscaled.

  python experiments/gpu/photo_subset.py --glob='../shared/data/train/*,../shared/data/bsds500/*' \\
      --output=data/train --max_bytes=30000000 [--short_side=320 --quality=92] [--seed=0]

For a GPU machine that receives the photographs with the code, under a transfer limit. The
photographs are taken in a random order (fixed by --seed) while they fit in --max_bytes. Without
--short_side each is copied byte for byte; with it, a photograph whose shorter side is longer is
downscaled to that side (Pillow's Lanczos filter) and stored as JPEG at --quality. Downscaling
also averages away sensor noise and earlier JPEG artefacts, as the training data of Ballé et al.
(2017) were prepared; at the same budget it gives more photographs of less detail each.
"""

import argparse
import glob
import io
import os
import random
import shutil
import sys

from PIL import Image

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".ppm", ".bmp", ".tif", ".tiff")


def _photos(patterns: str) -> list[str]:
  paths = set()
  for pattern in filter(None, patterns.split(",")):
    matches = [p for p in glob.glob(pattern) if p.lower().endswith(EXTENSIONS)]
    if not matches:
      raise ValueError(f"{pattern} matches no photograph")
    paths.update(matches)
  return sorted(paths)


def _downscaled(path: str, short_side: int, quality: int) -> bytes | None:
  """The JPEG bytes of the photograph downscaled to `short_side`, or None if it is not larger."""
  with Image.open(path) as image:
    width, height = image.size
    if min(width, height) <= short_side:
      return None
    scale = short_side / min(width, height)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    resized = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
  stream = io.BytesIO()
  resized.save(stream, format="JPEG", quality=quality)
  return stream.getvalue()


def subset(patterns: str, output: str, max_bytes: int, short_side: int | None = None,
           quality: int = 92, seed: int = 0) -> list[str]:
  """Writes the subset into the folder `output` (created; must hold no photographs yet) and
  returns the names written, in the order they were taken."""
  photos = _photos(patterns)
  if os.path.isdir(output) and _photos_in(output):
    raise ValueError(f"{output} already holds photographs; give an empty or new folder")
  os.makedirs(output, exist_ok=True)
  random.Random(seed).shuffle(photos)
  names, used = [], 0
  for index, path in enumerate(photos):
    data = _downscaled(path, short_side, quality) if short_side else None
    size = len(data) if data is not None else os.path.getsize(path)
    if used + size > max_bytes:
      continue
    stem, extension = os.path.splitext(os.path.basename(path))
    # Numbered: photographs of different folders may share a name.
    name = f"{index:05d}_{stem}{'.jpg' if data is not None else extension.lower()}"
    if data is None:
      shutil.copyfile(path, os.path.join(output, name))
    else:
      with open(os.path.join(output, name), "wb") as stream:
        stream.write(data)
    names.append(name)
    used += size
  return names


def _photos_in(folder: str) -> list[str]:
  return [n for n in os.listdir(folder) if n.lower().endswith(EXTENSIONS)]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--glob", required=True, help="Comma-separated patterns of photographs.")
  parser.add_argument("--output", required=True, help="The folder to write.")
  parser.add_argument("--max_bytes", type=int, required=True)
  parser.add_argument("--short_side", type=int, default=None)
  parser.add_argument("--quality", type=int, default=92)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.short_side is not None and args.short_side < 1:
    parser.error("--short_side must be positive")
  if not 1 <= args.quality <= 100:
    parser.error("--quality must lie in 1–100")
  try:
    names = subset(args.glob, args.output, args.max_bytes, args.short_side, args.quality,
                   args.seed)
  except (ValueError, OSError) as error:
    sys.exit(f"error: {error}")
  used = sum(os.path.getsize(os.path.join(args.output, n)) for n in names)
  print(f"{args.output}: {len(names)} photographs, {used} bytes")


if __name__ == "__main__":
  main()
