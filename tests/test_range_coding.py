import warnings

import jax
import numpy as np
import pytest

from eic_jax.coder import coders
from eic_jax.coder import tables as coding_tables
from eic_jax.entropy_models import deep_factorized
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.models.bmshj2018 import BMSHJ2018
from eic_jax.storage import checkpoints, shipped
from tests.conftest import EVERY_CODER


@pytest.fixture(scope="module")
def tables():
  density = deep_factorized.DeepFactorized(channels=6).init(jax.random.PRNGKey(0))["params"]
  return entropy_bottleneck.build_tables(density)


def test_tables_are_valid_overflow_enabled_cdfs(tables):
  assert tables.lookup.dtype == np.int32 and tables.minima.dtype == np.int32
  assert np.all(tables.lookup[:, 0] == -coding_tables.PRECISION)
  cdf = tables.lookup[:, 1:]
  assert np.all(cdf[:, 0] == 0) and np.all(cdf[:, -1] == 2**coding_tables.PRECISION)
  assert np.all(np.diff(cdf, axis=1) >= 0)
  # Every regular symbol and the escape keep a nonzero probability.
  for row, length in enumerate(tables.lengths()):
    frequencies = tables.frequencies(row)
    assert len(frequencies) == length + 1 and np.all(frequencies >= 1)
    assert frequencies.sum() == 2**coding_tables.PRECISION


def _code_length(pmf, cdf):
  return float(-np.sum(pmf * np.log2(np.diff(cdf) / cdf[-1])))


@pytest.mark.parametrize("seed", range(5))
def test_quantised_cdfs_keep_every_symbol_and_lose_little(seed):
  rng = np.random.default_rng(seed)
  pmf = rng.dirichlet(np.full(rng.integers(3, 300), 0.3))
  pmf[rng.integers(len(pmf))] = 0.0  # a symbol the density gives no mass still codes
  cdf = coding_tables.quantized_cdf(pmf)
  assert cdf[0] == 0 and cdf[-1] == 2**16 and np.all(np.diff(cdf) >= 1)
  entropy = float(-np.sum(pmf[pmf > 0] * np.log2(pmf[pmf > 0])))
  assert _code_length(pmf, cdf) <= entropy + 0.01


@pytest.mark.tfc
@pytest.mark.parametrize("seed", range(5))
def test_quantised_cdfs_cost_no_more_than_tensorflow_compressions(seed):
  from eic_jax.runtime import tensorflow_setup  # pylint: disable=import-outside-toplevel
  _, tfc_ops = tensorflow_setup.coding_ops()
  rng = np.random.default_rng(seed)
  pmf = rng.dirichlet(np.full(rng.integers(3, 300), 0.3))
  theirs = tfc_ops.pmf_to_quantized_cdf(pmf.astype(np.float32), precision=16).numpy()
  assert _code_length(pmf, coding_tables.quantized_cdf(pmf)) <= _code_length(pmf, theirs) + 1e-6


@pytest.mark.parametrize("coder", EVERY_CODER)
def test_round_trip_is_exact_including_far_outliers(tables, coder):
  coder = coders.get(coder)
  rng = np.random.default_rng(0)
  symbols = np.round(rng.laplace(0, 8, (9, 11, 6))).astype(np.int32)
  symbols[0, 0] = [10**6, -(10**6), 2**30, -(2**30), 0, tables.minima[5] - 1]
  symbols[3, 4] = tables.minima  # the first symbol of each table
  data = coder.encode(symbols, tables)
  np.testing.assert_array_equal(coder.decode(data, tables, symbols.shape), symbols)


def test_constriction_codes_every_int32(tables):
  symbols = np.zeros((3, 6), np.int32)
  symbols[0] = [2**31 - 1, -(2**31), 2**31 - 2, -(2**31) + 1, 2**16, -(2**16)]
  symbols[1] = tables.minima - 1
  symbols[2] = tables.minima + tables.lengths()  # just past each table's last integer
  data = coders.CONSTRICTION.encode(symbols, tables)
  np.testing.assert_array_equal(coders.CONSTRICTION.decode(data, tables, symbols.shape), symbols)


@pytest.mark.parametrize("coder", EVERY_CODER)
def test_typical_latents_cost_about_their_information(tables, coder):
  density = deep_factorized.DeepFactorized(channels=6).init(jax.random.PRNGKey(0))["params"]
  rng = np.random.default_rng(1)
  symbols = np.round(rng.normal(0, 3, (32, 32, 6))).astype(np.int32)
  y_hat = (symbols + tables.medians).reshape(-1, 6).T
  bits = float(-np.sum(np.log2(deep_factorized.likelihood(density, y_hat))))
  coded = 8 * len(coders.get(coder).encode(symbols, tables))
  assert coded <= bits * 1.01 + 64


def test_tables_survive_a_round_trip_through_a_dict(tables):
  copy = entropy_bottleneck.FactorizedTables.from_dict(tables.as_dict())
  assert copy.to_bytes() == tables.to_bytes()


def test_tables_of_a_narrow_trained_density_rebuild_without_overflow():
  """A shipped scale hyperprior's z density has channels so narrow that their logits at the
  table's edge overflow exp in float32: the tables still rebuild, silently, over the same
  integers and with the probabilities of the stored ones (built by TensorFlow Compression's
  quantiser, to within a few units in 2^16)."""
  params, arrays, _ = checkpoints.restore_export(shipped.resolve("bmshj2018-mse-0.0067"))
  density = params["entropy_bottleneck"]["density"]
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    rebuilt = entropy_bottleneck.build_tables(density)
  stored = BMSHJ2018.tables_from_arrays(arrays)["entropy_bottleneck"]
  np.testing.assert_array_equal(rebuilt.minima, stored.minima)
  np.testing.assert_array_equal(rebuilt.lengths(), stored.lengths())
  assert np.abs(rebuilt.lookup.astype(np.int64) - stored.lookup).max() <= 4
