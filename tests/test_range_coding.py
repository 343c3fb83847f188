import warnings

import jax
import numpy as np
import pytest

from eic_jax.coder import range_coder
from eic_jax.entropy_models import deep_factorized
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.models.bmshj2018 import BMSHJ2018
from eic_jax.storage import checkpoints, shipped


@pytest.fixture(scope="module")
def tables():
  density = deep_factorized.DeepFactorized(channels=6).init(jax.random.PRNGKey(0))["params"]
  return entropy_bottleneck.build_tables(density)


@pytest.mark.coding
def test_tables_are_valid_overflow_enabled_cdfs(tables):
  assert tables.lookup.dtype == np.int32 and tables.minima.dtype == np.int32
  assert np.all(tables.lookup[:, 0] == -range_coder.PRECISION)
  cdf = tables.lookup[:, 1:]
  assert np.all(cdf[:, 0] == 0) and np.all(cdf[:, -1] == 2**range_coder.PRECISION)
  assert np.all(np.diff(cdf, axis=1) >= 0)
  # Every regular symbol and the escape keep a nonzero probability.
  for row, minimum in zip(cdf, tables.minima):
    used = np.flatnonzero(np.diff(row))
    assert used[0] == 0 and np.all(np.diff(used) == 1)


@pytest.mark.coding
def test_round_trip_is_exact_including_far_outliers(tables):
  rng = np.random.default_rng(0)
  symbols = np.round(rng.laplace(0, 8, (9, 11, 6))).astype(np.int32)
  symbols[0, 0] = [10**6, -(10**6), 2**30, -(2**30), 0, tables.minima[5] - 1]
  symbols[3, 4] = tables.minima  # the first symbol of each table
  data = range_coder.encode(symbols, tables)
  np.testing.assert_array_equal(range_coder.decode(data, tables, symbols.shape), symbols)


@pytest.mark.coding
def test_typical_latents_cost_about_their_information(tables):
  density = deep_factorized.DeepFactorized(channels=6).init(jax.random.PRNGKey(0))["params"]
  rng = np.random.default_rng(1)
  symbols = np.round(rng.normal(0, 3, (32, 32, 6))).astype(np.int32)
  y_hat = (symbols + tables.medians).reshape(-1, 6).T
  bits = float(-np.sum(np.log2(deep_factorized.likelihood(density, y_hat))))
  coded = 8 * len(range_coder.encode(symbols, tables))
  assert coded <= bits * 1.01 + 64


@pytest.mark.coding
def test_tables_survive_a_round_trip_through_a_dict(tables):
  copy = entropy_bottleneck.FactorizedTables.from_dict(tables.as_dict())
  assert copy.to_bytes() == tables.to_bytes()


@pytest.mark.coding
def test_tables_of_a_narrow_trained_density_rebuild_exactly_without_overflow():
  """A shipped scale hyperprior's z density has channels so narrow that their logits at the
  table's edge overflow exp in float32: the tables still rebuild, bit for bit, silently."""
  params, arrays, _ = checkpoints.restore_export(shipped.resolve("bmshj2018-mse-0.0067"))
  density = params["entropy_bottleneck"]["density"]
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    rebuilt = entropy_bottleneck.build_tables(density)
  stored = BMSHJ2018.tables_from_arrays(arrays)["entropy_bottleneck"]
  assert rebuilt.to_bytes() == stored.to_bytes()
