"""BD-rate and BD-PSNR of one curve against others, printed as a table."""

import math

from eic_jax import bjontegaard
from eic_jax import rd_curves

PUBLISHED_ANCHORS = ("balle-2017-iclr-opt-mse",)


def rows(test: dict, anchors: list[dict]) -> list[tuple[str, float, float, str]]:
  """(anchor name, BD-rate %, BD-PSNR dB, note) of `test` against each anchor."""
  rate = rd_curves.values(test, "bpp")
  psnr = rd_curves.values(test, "psnr-rgb")
  table = []
  for anchor in anchors:
    try:
      args = (rd_curves.values(anchor, "bpp"), rd_curves.values(anchor, "psnr-rgb"), rate, psnr)
      table.append((anchor["name"], bjontegaard.bd_rate(*args), bjontegaard.bd_psnr(*args),
                    anchor.get("note", "")))
    except ValueError as error:
      table.append((anchor["name"], math.nan, math.nan, f"n/a: {error}"))
  return table


def format_table(test: dict, anchors: list[dict]) -> str:
  lines = [f"{test['name']} against each anchor (negative BD-rate: fewer bits at equal PSNR)",
           f"{'anchor':<34} {'BD-rate (%)':>12} {'BD-PSNR (dB)':>13}  note"]
  for name, rate, psnr, note in rows(test, anchors):
    lines.append(f"{name:<34} {rate:>12.2f} {psnr:>13.3f}  {note}")
  return "\n".join(lines)


def published_anchors() -> list[dict]:
  curves = rd_curves.published("kodak")
  anchors = []
  for key in PUBLISHED_ANCHORS:
    anchor = dict(curves[key])
    anchor["note"] = "published on Kodak, not these images: indicative only"
    anchors.append(anchor)
  return anchors
