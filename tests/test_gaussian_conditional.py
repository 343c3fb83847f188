import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.coder import coders
from eic_jax.coder import tables as coding_tables
from eic_jax.coder.errors import CodingError
from eic_jax.entropy_models import gaussian_conditional
from tests.conftest import EVERY_CODER


def _closed_form(value: float, scale: float) -> float:
  """P(value − ½ < Y ≤ value + ½), Y ~ N(0, scale²), from math.erf."""
  cdf = lambda x: 0.5 * (1.0 + math.erf(x / (scale * math.sqrt(2.0))))
  return cdf(value + 0.5) - cdf(value - 0.5)


@pytest.mark.parametrize("scale", [0.11, 0.5, 3.0, 40.0])
def test_likelihoods_match_the_closed_form(scale):
  values = np.array([-7.0, -2.5, -1.0, -0.2, 0.0, 0.3, 1.0, 4.0], np.float32)
  got = np.asarray(gaussian_conditional.likelihoods(jnp.asarray(values), jnp.float32(scale)))
  expected = np.maximum([_closed_form(float(v), scale) for v in values],
                        gaussian_conditional.LIKELIHOOD_BOUND)
  np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-7)


def test_far_tails_keep_their_precision_and_scales_are_bounded():
  # 1 − Φ would cancel to 0 here; the symmetric form keeps the tail's probability.
  tail = float(gaussian_conditional.likelihoods(jnp.float32(5.0), jnp.float32(1.0)))
  assert tail == pytest.approx(_closed_form(5.0, 1.0), rel=1e-3)
  below = gaussian_conditional.likelihoods(jnp.float32(0.0), jnp.float32(1e-4))
  at = gaussian_conditional.likelihoods(jnp.float32(0.0), jnp.float32(0.11))
  assert float(below) == float(at)
  gradient = jax.grad(lambda y: gaussian_conditional.likelihoods(y, jnp.float32(2.0)))(0.7)
  assert float(gradient) < 0


def test_scale_table_and_indexes():
  table = gaussian_conditional.scale_table()
  assert len(table) == 64 and table[0] == pytest.approx(0.11) and table[-1] == pytest.approx(256)
  assert np.all(np.diff(np.log(table)) == pytest.approx(np.log(256 / 0.11) / 63, rel=1e-4))
  scales = np.asarray([0.0, 0.11, 0.1101, table[10], table[10] * 1.0001, 1e6], np.float32)
  tables = gaussian_conditional.GaussianTables(lookup=np.zeros((64, 3), np.int32),
                                               minima=np.zeros(64, np.int32), scales=table)
  indexes = gaussian_conditional.scale_indexes(scales, tables)
  np.testing.assert_array_equal(indexes, [0, 0, 1, 10, 11, 63])
  # Every element is coded with a table at least as wide as its scale.
  assert np.all(table[indexes[:-1]] >= np.asarray(scales[:-1]) - 1e-6)


@pytest.fixture(scope="module")
def tables():
  return gaussian_conditional.build_tables(gaussian_conditional.scale_table())


def test_tables_are_cdfs_that_sum_to_the_precision(tables):
  assert tables.lookup.shape[0] == 64 and np.all(tables.lookup[:, 0] == -coding_tables.PRECISION)
  total = 2**coding_tables.PRECISION
  for row, minimum in zip(tables.lookup[:, 1:], tables.minima):
    length = 2 * -minimum + 1
    cdf = row[:length + 2]  # leading zero, regular symbols, escape
    assert cdf[0] == 0 and cdf[-1] == total and np.all(np.diff(cdf) > 0)
    assert np.all(row[length + 2:] == total)
  # Wider scales cover more integers; the narrowest keeps its escape and its two neighbours.
  assert np.all(np.diff(tables.minima) <= 0) and tables.minima[0] == -1


@pytest.mark.parametrize("coder", EVERY_CODER)
def test_round_trip_with_an_index_per_element(tables, coder):
  coder = coders.get(coder)
  rng = np.random.default_rng(0)
  table = gaussian_conditional.scale_table()
  indexes = rng.integers(0, 64, (12, 9, 5)).astype(np.int32)
  symbols = np.round(rng.normal(0, table[indexes])).astype(np.int32)
  symbols[0, 0, :3] = [10**6, -(2**30), 0]  # escapes
  data = coder.encode(symbols, tables, indexes)
  np.testing.assert_array_equal(coder.decode(data, tables, symbols.shape, indexes), symbols)
  bits = -np.sum(np.log2(np.asarray(gaussian_conditional.likelihoods(
      jnp.asarray(symbols[1:], jnp.float32), jnp.asarray(table[indexes[1:]])))))
  assert 8 * len(coder.encode(symbols[1:], tables, indexes[1:])) <= bits * 1.02 + 64


@pytest.mark.parametrize("coder", EVERY_CODER)
def test_streams_cut_inside_an_escape_are_rejected_not_decoded_for_ever(tables, coder):
  """TensorFlow Compression's coder reads an escaped value's Elias gamma prefix until a 1 bit,
  and zeros past the end of the data: without the decoder's guard bytes, a stream cut there
  never returns."""
  coder = coders.get(coder)
  import threading  # pylint: disable=import-outside-toplevel
  indexes = np.zeros((64,), np.int32)  # the narrowest table: large values are escapes
  symbols = np.full((64,), 2**20, np.int32)
  data = coder.encode(symbols, tables, indexes)
  outcomes = []

  def decode_every_cut():
    for end in range(len(data)):
      try:
        coder.decode(data[:end], tables, symbols.shape, indexes)
        outcomes.append("decoded")
      except CodingError:
        outcomes.append("rejected")

  worker = threading.Thread(target=decode_every_cut, daemon=True)
  worker.start()
  worker.join(60)
  assert not worker.is_alive(), f"a cut stream did not return ({len(outcomes)} of {len(data)})"
  assert outcomes == ["rejected"] * len(data)
