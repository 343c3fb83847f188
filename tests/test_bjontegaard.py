import numpy as np
import pytest

from eic_jax.evaluation import bjontegaard

RATE = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
PSNR = np.array([26.0, 29.0, 31.5, 34.5, 38.0])


def test_a_curve_against_itself_is_zero():
  assert bjontegaard.bd_rate(RATE, PSNR, RATE, PSNR) == pytest.approx(0.0, abs=1e-9)
  assert bjontegaard.bd_psnr(RATE, PSNR, RATE, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_same_quality_at_half_the_rate_is_minus_fifty_percent():
  assert bjontegaard.bd_rate(RATE, PSNR, RATE / 2, PSNR) == pytest.approx(-50.0, abs=1e-6)
  assert bjontegaard.bd_rate(RATE / 2, PSNR, RATE, PSNR) == pytest.approx(100.0, abs=1e-6)


def test_one_decibel_better_everywhere():
  assert bjontegaard.bd_psnr(RATE, PSNR, RATE, PSNR + 1.0) == pytest.approx(1.0, abs=1e-9)
  assert bjontegaard.bd_rate(RATE, PSNR, RATE, PSNR + 1.0) < 0


def test_unusable_curves_are_explained():
  with pytest.raises(ValueError, match="at least 3 rate points"):
    bjontegaard.bd_rate(RATE[:2], PSNR[:2], RATE, PSNR)


def test_three_points_use_a_quadratic_fit():
  assert bjontegaard.bd_rate(RATE, PSNR, RATE[1:4] / 2, PSNR[1:4]) == pytest.approx(-50.0,
                                                                                     abs=0.5)
  with pytest.raises(ValueError, match="do not overlap"):
    bjontegaard.bd_rate(RATE, PSNR, RATE, PSNR + 20.0)
