"""Bjøntegaard deltas of one curve against others, printed as a table: over the curves' mean
rate and quality, and image by image where both were evaluated on the same files. Quality is
PSNR or MS-SSIM in decibels (−10·log10(1 − MS-SSIM))."""

import math
from typing import NamedTuple

import numpy as np

from eic_jax.evaluation import bjontegaard
from eic_jax.evaluation import rd_curves

# The published curve every comparison gets unless told otherwise.
DEFAULT_PUBLISHED = ("balle-2017-iclr-opt-mse",)
KODAK_FILES = frozenset(f"kodim{i:02d}.png" for i in range(1, 25))


class Metric(NamedTuple):
  results_key: str  # column of a curve's "results"
  image_key: str  # key of one image's measurements in "per_image"
  label: str
  # Published tables can list a metric at rates of its own; curves without them use "bpp".
  rates_key: str = "bpp"


METRICS = {"psnr": Metric("psnr-rgb", "psnr", "PSNR"),
           "ms-ssim-db": Metric("ms-ssim-db", "ms_ssim_db", "MS-SSIM", "bpp-ms-ssim")}


def _metric(name: str) -> Metric:
  if name not in METRICS:
    raise ValueError(f"Unknown metric {name!r}; use one of {', '.join(METRICS)}")
  return METRICS[name]


def _rates(curve: dict, metric: Metric) -> np.ndarray:
  key = metric.rates_key if metric.rates_key in curve["results"] else "bpp"
  return rd_curves.values(curve, key)


def _deltas(anchor_rate, anchor_quality, test_rate, test_quality
            ) -> tuple[float, float, str]:
  """(BD-rate %, BD-quality dB, "") or (NaN, NaN, why) when the curves cannot be compared."""
  args = (anchor_rate, anchor_quality, test_rate, test_quality)
  try:
    return bjontegaard.bd_rate(*args), bjontegaard.bd_psnr(*args), ""
  except ValueError as error:
    return math.nan, math.nan, f"n/a: {error}"


def rows(test: dict, anchors: list[dict], metric: str = "psnr"
         ) -> list[tuple[str, float, float, str]]:
  """(anchor name, BD-rate %, BD-quality dB, note) of `test` against each anchor."""
  measure = _metric(metric)
  table = []
  for anchor in anchors:
    bd_rate, bd_quality, problem = _deltas(
        _rates(anchor, measure), rd_curves.values(anchor, measure.results_key),
        _rates(test, measure), rd_curves.values(test, measure.results_key))
    table.append((anchor["name"], bd_rate, bd_quality, problem or anchor.get("note", "")))
  return table


def _per_image_curves(curve: dict, metric: str) -> dict[str, tuple[list[float], list[float]]]:
  """File name → (bpp per rate point, quality per rate point), from an evaluation's per_image;
  a missing quality (MS-SSIM of a small image) is NaN."""
  key = _metric(metric).image_key
  curves = {}
  for point in curve.get("per_image", []):
    for image in point:
      rates, qualities = curves.setdefault(image["file"], ([], []))
      rates.append(image["bpp"])
      qualities.append(math.nan if image.get(key) is None else image[key])
  return curves


def per_image_rows(test: dict, anchor: dict, metric: str = "psnr"
                   ) -> list[tuple[str, float, float, str]]:
  """(file, BD-rate %, BD-quality dB, note) of `test` against `anchor` for each image both
  evaluated: averages over images hide the images where a codec does far worse or better."""
  anchor_curves = _per_image_curves(anchor, metric)
  return [(name, *_deltas(*anchor_curves[name], *test_curve))
          for name, test_curve in _per_image_curves(test, metric).items()
          if name in anchor_curves]


def _format_per_image(test: dict, anchors: list[dict], metric: str) -> list[str]:
  columns = [(anchor["name"], per_image_rows(test, anchor, metric)) for anchor in anchors]
  columns = [(name, rows_) for name, rows_ in columns if rows_]
  if not columns:
    return []
  files = [row[0] for row in columns[0][1]]
  by_file = [{row[0]: row[1:] for row in rows_} for _, rows_ in columns]
  header = "".join(f"  {name[:22]:>22}" for name, _ in columns)
  lines = ["", f"Image by image, BD-rate % / BD-{_metric(metric).label} dB against each anchor "
           "evaluated on the same files", f"{'image':<24}{header}"]

  def cell(deltas) -> str:
    if deltas is None or math.isnan(deltas[0]):
      return f"  {'n/a':>22}"
    return f"  {f'{deltas[0]:+.1f} / {deltas[1]:+.2f}':>22}"

  for file in files:
    lines.append(f"{file[:24]:<24}" + "".join(cell(column.get(file)) for column in by_file))
  for label, reduce in (("mean", np.mean), ("median", np.median)):
    summary = ""
    for column in by_file:
      finite = np.array([d[:2] for d in column.values() if not math.isnan(d[0])])
      summary += cell(tuple(reduce(finite, axis=0)) if len(finite) else None)
    lines.append(f"{label:<24}{summary}")
  return lines


def format_table(test: dict, anchors: list[dict], metric: str = "psnr") -> str:
  label = _metric(metric).label
  lines = [f"{test['name']} against each anchor in {label} (negative BD-rate: fewer bits at "
           f"equal {label})",
           f"{'anchor':<34} {'BD-rate (%)':>12} {f'BD-{label} (dB)':>16}  note"]
  for name, rate, quality, note in rows(test, anchors, metric):
    lines.append(f"{name:<34} {rate:>12.2f} {quality:>16.3f}  {note}")
  return "\n".join(lines + _format_per_image(test, anchors, metric))


def kodak_note(test: dict | None) -> str:
  """How the images of `test` relate to the Kodak set the published curves were measured on."""
  files = {m["file"] for point in (test or {}).get("per_image", []) for m in point}
  if files == KODAK_FILES:
    return "published on Kodak, the same 24 images"
  kodak = files & KODAK_FILES
  if kodak and kodak == files:
    return f"published on all 24 Kodak images; these are {len(kodak)} of them"
  return "published on Kodak, not these images: indicative only"


def published_anchors(test: dict | None = None, keys=DEFAULT_PUBLISHED) -> list[dict]:
  """The published Kodak curves named by `keys` (file stems in eic_jax/evaluation/reference/kodak), each
  with a note on how `test`'s images relate to Kodak."""
  curves = rd_curves.published("kodak")
  unknown = [key for key in keys if key not in curves]
  if unknown:
    raise ValueError(f"no published curve {', '.join(map(repr, unknown))}; the published "
                     f"curves are {', '.join(sorted(curves))}")
  note = kodak_note(test)
  return [dict(curves[key], note=note) for key in keys]
