"""Rate–distortion curves in CompressAI's results layout, and the published reference curves.

A curve is {"name", "description", "results": {"bpp": [...], "psnr-rgb": [...],
"ms-ssim-rgb": [...], ...}}, one entry per rate point, so curves from both tools plot together.
"""

import json
import math
import os
import pathlib

import numpy as np

REFERENCE_DIR = pathlib.Path(__file__).parent / "reference"


def load(path: str) -> dict:
  try:
    with open(path) as stream:
      curve = json.load(stream)
  except FileNotFoundError as error:
    raise FileNotFoundError(f"{path}: no such results file") from error
  except json.JSONDecodeError as error:
    raise ValueError(f"{path}: not a JSON results file ({error})") from error
  if "results" not in curve or "bpp" not in curve["results"]:
    raise ValueError(f"{path}: not in CompressAI's results layout (needs results.bpp)")
  return curve


def _json_safe(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  return value


def dumps(curve: dict) -> str:
  """JSON text; NaN and infinities (e.g. MS-SSIM of tiny images) become null."""
  return json.dumps(_json_safe(curve), indent=2)


def values(curve: dict, key: str) -> np.ndarray:
  """A results column as floats, null → NaN; 'ms-ssim-db' is derived from 'ms-ssim-rgb'."""
  results = curve["results"]
  if key == "ms-ssim-db" and key not in results and "ms-ssim-rgb" in results:
    ms_ssim = values(curve, "ms-ssim-rgb")
    with np.errstate(divide="ignore"):
      return -10.0 * np.log10(1.0 - ms_ssim)
  return np.array([np.nan if v is None else v for v in results.get(key, [])], np.float64)


def _read_table(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  rows = [line.split(",") for line in path.read_text().splitlines()
          if line.strip() and not line.startswith("#")]
  table = np.array(rows, np.float64)
  return table[:, 0], table[:, 1]


def _title(path: pathlib.Path) -> str:
  first = path.read_text().splitlines()[0]
  return first.split('"')[1] if '"' in first else path.stem


def published(dataset: str = "kodak") -> dict[str, dict]:
  """Published curves by file stem ('balle-2017-iclr-opt-mse', 'jpeg420', 'webp', …).

  Their "results" hold bpp, psnr-rgb, ms-ssim-rgb and ms-ssim-db where published (the rates of
  the two metrics' tables can differ, so MS-SSIM carries its own: bpp-ms-ssim).
  """
  folder = REFERENCE_DIR / dataset
  curves = {}
  for path in sorted((folder / "PSNR_sRGB_RGB").glob("*.txt")):
    rate, psnr = _read_table(path)
    curves[path.stem] = {"name": _title(path), "description": f"published, {dataset}",
                         "results": {"bpp": rate.tolist(), "psnr-rgb": psnr.tolist()}}
  for path in sorted((folder / "MS-SSIM_sRGB_RGB").glob("*.txt")):
    rate, ms_ssim = _read_table(path)
    entry = curves.setdefault(path.stem, {"name": _title(path),
                                          "description": f"published, {dataset}",
                                          "results": {}})
    entry["results"]["bpp-ms-ssim"] = rate.tolist()
    entry["results"]["ms-ssim-rgb"] = ms_ssim.tolist()
    entry["results"]["ms-ssim-db"] = (-10.0 * np.log10(1.0 - ms_ssim)).tolist()
  for path in sorted(folder.glob("*.json")):
    curve = load(str(path))
    curves[os.path.splitext(path.name)[0]] = curve
  return curves
