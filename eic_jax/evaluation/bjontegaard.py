"""Bjøntegaard delta rate and PSNR (Bjøntegaard 2001, VCEG-M33): the average difference
between two rate–distortion curves over the distortion (or rate) range where both exist.

Each curve is fitted with a cubic polynomial (a quadratic when it has only three points),
log-rate against PSNR for BD-rate and PSNR against log-rate for BD-PSNR, and the fits are
integrated over the overlapping interval.
"""

from typing import Sequence

import numpy as np


def _check(rate: Sequence[float], distortion: Sequence[float], name: str
           ) -> tuple[np.ndarray, np.ndarray]:
  rate = np.asarray(rate, np.float64)
  distortion = np.asarray(distortion, np.float64)
  keep = np.isfinite(rate) & np.isfinite(distortion) & (rate > 0)
  rate, distortion = rate[keep], distortion[keep]
  if len(rate) < 3:
    raise ValueError(f"{name} needs at least 3 rate points with finite values, got "
                     f"{len(rate)}")
  return rate, distortion


def _average_gap(x_a, y_a, x_b, y_b) -> float:
  """Mean of (fit_b − fit_a)(x) over the overlap of the x ranges, fits y = cubic(x)."""
  low = max(x_a.min(), x_b.min())
  high = min(x_a.max(), x_b.max())
  if low >= high:
    raise ValueError("the curves do not overlap")
  fit_a = np.polyint(np.polyfit(x_a, y_a, min(3, len(x_a) - 1)))
  fit_b = np.polyint(np.polyfit(x_b, y_b, min(3, len(x_b) - 1)))
  area_a = np.polyval(fit_a, high) - np.polyval(fit_a, low)
  area_b = np.polyval(fit_b, high) - np.polyval(fit_b, low)
  return (area_b - area_a) / (high - low)


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
  """Average rate difference of `test` against `anchor` at equal PSNR, in percent
  (negative: `test` needs fewer bits)."""
  rate_anchor, psnr_anchor = _check(rate_anchor, psnr_anchor, "the anchor curve")
  rate_test, psnr_test = _check(rate_test, psnr_test, "the test curve")
  gap = _average_gap(psnr_anchor, np.log(rate_anchor), psnr_test, np.log(rate_test))
  return float((np.exp(gap) - 1.0) * 100.0)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
  """Average PSNR difference (dB) of `test` against `anchor` at equal rate."""
  rate_anchor, psnr_anchor = _check(rate_anchor, psnr_anchor, "the anchor curve")
  rate_test, psnr_test = _check(rate_test, psnr_test, "the test curve")
  return float(_average_gap(np.log(rate_anchor), psnr_anchor, np.log(rate_test), psnr_test))
