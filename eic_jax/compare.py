"""BD-rate and BD-PSNR of one curve against others, printed as a table: over the curves'
mean rate and PSNR, and image by image where both were evaluated on the same files."""

import math

import numpy as np

from eic_jax import bjontegaard
from eic_jax import rd_curves

PUBLISHED_ANCHORS = ("balle-2017-iclr-opt-mse",)


def _deltas(anchor_rate, anchor_psnr, test_rate, test_psnr) -> tuple[float, float, str]:
  """(BD-rate %, BD-PSNR dB, "") or (NaN, NaN, why) when the curves cannot be compared."""
  args = (anchor_rate, anchor_psnr, test_rate, test_psnr)
  try:
    return bjontegaard.bd_rate(*args), bjontegaard.bd_psnr(*args), ""
  except ValueError as error:
    return math.nan, math.nan, f"n/a: {error}"


def rows(test: dict, anchors: list[dict]) -> list[tuple[str, float, float, str]]:
  """(anchor name, BD-rate %, BD-PSNR dB, note) of `test` against each anchor."""
  rate = rd_curves.values(test, "bpp")
  psnr = rd_curves.values(test, "psnr-rgb")
  table = []
  for anchor in anchors:
    bd_rate, bd_psnr, problem = _deltas(rd_curves.values(anchor, "bpp"),
                                        rd_curves.values(anchor, "psnr-rgb"), rate, psnr)
    table.append((anchor["name"], bd_rate, bd_psnr, problem or anchor.get("note", "")))
  return table


def _per_image_curves(curve: dict) -> dict[str, tuple[list[float], list[float]]]:
  """File name → (bpp per rate point, PSNR per rate point), from an evaluation's per_image."""
  curves = {}
  for point in curve.get("per_image", []):
    for image in point:
      rates, psnrs = curves.setdefault(image["file"], ([], []))
      rates.append(image["bpp"])
      psnrs.append(image["psnr"])
  return curves


def per_image_rows(test: dict, anchor: dict) -> list[tuple[str, float, float, str]]:
  """(file, BD-rate %, BD-PSNR dB, note) of `test` against `anchor` for each image both
  evaluated: averages over images hide the images where a codec does far worse or better."""
  anchor_curves = _per_image_curves(anchor)
  return [(name, *_deltas(*anchor_curves[name], *test_curve))
          for name, test_curve in _per_image_curves(test).items() if name in anchor_curves]


def _format_per_image(test: dict, anchors: list[dict]) -> list[str]:
  columns = [(anchor["name"], per_image_rows(test, anchor)) for anchor in anchors]
  columns = [(name, rows_) for name, rows_ in columns if rows_]
  if not columns:
    return []
  files = [row[0] for row in columns[0][1]]
  by_file = [{row[0]: row[1:] for row in rows_} for _, rows_ in columns]
  header = "".join(f"  {name[:22]:>22}" for name, _ in columns)
  lines = ["", "Image by image, BD-rate % / BD-PSNR dB against each anchor evaluated on the "
           "same files", f"{'image':<24}{header}"]

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


def format_table(test: dict, anchors: list[dict]) -> str:
  lines = [f"{test['name']} against each anchor (negative BD-rate: fewer bits at equal PSNR)",
           f"{'anchor':<34} {'BD-rate (%)':>12} {'BD-PSNR (dB)':>13}  note"]
  for name, rate, psnr, note in rows(test, anchors):
    lines.append(f"{name:<34} {rate:>12.2f} {psnr:>13.3f}  {note}")
  return "\n".join(lines + _format_per_image(test, anchors))


def published_anchors() -> list[dict]:
  curves = rd_curves.published("kodak")
  anchors = []
  for key in PUBLISHED_ANCHORS:
    anchor = dict(curves[key])
    anchor["note"] = "published on Kodak, not these images: indicative only"
    anchors.append(anchor)
  return anchors
