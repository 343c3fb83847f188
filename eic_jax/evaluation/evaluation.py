"""Rate–distortion evaluation of trained models and of JPEG / WebP on the same images.

Every image is compressed and decompressed for real; the results are curves in CompressAI's
layout (see rd_curves.py) with the per-image measurements kept alongside.
"""

import concurrent.futures
import io
import os
import time
from typing import Callable, Sequence

import numpy as np
from PIL import Image
import tqdm

from eic_jax.evaluation import report
from eic_jax.runtime import image_io

# Quality sweeps for the baselines.
JPEG_QUALITIES = tuple(range(5, 96, 5))
WEBP_QUALITIES = tuple(range(0, 101, 5))
_MEANS = {"bpp": "bpp", "information-bpp": "information_bpp", "psnr-rgb": "psnr", "mse": "mse",
          "ms-ssim-rgb": "ms_ssim", "ms-ssim-db": "ms_ssim_db", "encoding_time": "encode_s",
          "decoding_time": "decode_s"}


def _measure_all(measure: Callable, files: Sequence[str], label: str) -> list[dict]:
  measurements = []
  for path in tqdm.tqdm(files, desc=label, unit="image", leave=False):
    image = image_io.read_image(path)
    _, _, metrics = measure(image)
    measurements.append({"file": os.path.basename(path), **metrics})
  return measurements


def _curve(name: str, description: str, points: Sequence[str],
           per_point: Sequence[list[dict]]) -> dict:
  results = {key: [] for key in _MEANS}
  for measurements in per_point:
    for key, metric in _MEANS.items():
      column = np.array([m.get(metric, np.nan) for m in measurements], np.float64)
      finite = column[np.isfinite(column)]
      results[key].append(float(finite.mean()) if len(finite) else float("nan"))
  results = {key: column for key, column in results.items()
             if not np.all(np.isnan(column))}
  return {"name": name, "description": description, "points": list(points),
          "results": results, "per_image": [list(m) for m in per_point]}


def evaluate_codecs(codecs: Sequence, labels: Sequence[str], files: Sequence[str],
                    name: str | None = None) -> dict:
  """One curve, one rate point per codec (e.g. one per λ); named after their architectures
  unless `name` is given."""
  if name is None:
    name = "eic_jax " + "+".join(sorted({codec.architecture for codec in codecs}))
  per_point = [_measure_all(lambda image, c=codec: report.measure(c, image), files,
                            f"{label} ({i + 1}/{len(codecs)})")
               for i, (codec, label) in enumerate(zip(codecs, labels))]
  order = np.argsort([np.mean([m["bpp"] for m in point]) for point in per_point])
  description = (f"{len(files)} images, real bitstreams of "
                 f"{'/'.join(sorted({codec.coder.name for codec in codecs}))}")
  refine_steps = sorted({codec.refine_steps for codec in codecs})
  if refine_steps != [0]:
    description += f", latents refined for {'/'.join(map(str, refine_steps))} steps"
  return _curve(name, description, [labels[i] for i in order], [per_point[i] for i in order])


def pillow_code(image: np.ndarray, codec: str, quality: int) -> tuple[bytes, np.ndarray, float,
                                                                      float]:
  """Pillow's JPEG (4:2:0, optimised Huffman tables) or WebP (method 6): the file, its decoding
  and the seconds each took."""
  options = ({"format": "JPEG", "quality": quality, "subsampling": 2, "optimize": True}
             if codec == "jpeg" else {"format": "WEBP", "quality": quality, "method": 6})
  buffer = io.BytesIO()
  start = time.perf_counter()
  Image.fromarray(image).save(buffer, **options)
  encode_s = time.perf_counter() - start
  data = buffer.getvalue()
  start = time.perf_counter()
  reconstruction = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
  return data, reconstruction, encode_s, time.perf_counter() - start


def evaluate_baseline(codec: str, files: Sequence[str],
                      qualities: Sequence[int] | None = None) -> dict:
  """A JPEG ('jpeg') or WebP ('webp') curve over a quality sweep. Each image is read once and
  its qualities encoded on all cores at once (Pillow releases the GIL while it encodes)."""
  if codec not in ("jpeg", "webp"):
    raise ValueError(f"unknown baseline {codec!r}; use jpeg or webp")
  qualities = qualities or (JPEG_QUALITIES if codec == "jpeg" else WEBP_QUALITIES)
  per_point = [[] for _ in qualities]
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
    for path in tqdm.tqdm(files, desc=f"{codec} at {len(qualities)} qualities", unit="image",
                          leave=False):
      image = image_io.read_image(path)
      coded = pool.map(lambda quality: pillow_code(image, codec, quality), qualities)
      for measurements, (data, reconstruction, encode_s, decode_s) in zip(per_point, coded):
        metrics = report.coding_metrics(image, data, reconstruction, encode_s, decode_s)
        measurements.append({"file": os.path.basename(path), **metrics})
  name = "JPEG (4:2:0)" if codec == "jpeg" else "WebP"
  return _curve(name, f"Pillow {Image.__version__}, {len(files)} images",
                [f"quality={q}" for q in qualities], per_point)
