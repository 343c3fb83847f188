"""The entropy bottleneck: quantisation of the latents and their rate under a learned density,
and the integer coding tables of that density.

Latents are quantised around each channel's median (quantization.py). The median and the tails (the quantiles at tail_mass / 2 and 1 − tail_mass / 2) are
solved from the density itself by bisection on its monotone cumulative, so they are exact for
every checkpoint, with no auxiliary parameters that would lag behind the density.
"""

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.entropy_models import deep_factorized
from eic_jax.entropy_models.quantization import quantize

# Bisection bracket; enough iterations to reach float32 resolution from it.
_SEARCH_RANGE = 2.0**16
_BISECTIONS = 64


def _solve_cumulative_logit(density: dict, targets: jax.Array) -> jax.Array:
  """x (channels, len(targets)) with logits_cumulative(x) = targets, per channel."""
  channels = jax.tree_util.tree_leaves(density)[0].shape[0]
  shape = (channels, targets.shape[0])

  def bisect(_, bracket):
    low, high = bracket
    middle = 0.5 * (low + high)
    below = deep_factorized.logits_cumulative(density, middle) < targets
    return jnp.where(below, middle, low), jnp.where(below, high, middle)

  low, high = jax.lax.fori_loop(
      0, _BISECTIONS, bisect,
      (jnp.full(shape, -_SEARCH_RANGE), jnp.full(shape, _SEARCH_RANGE)))
  return 0.5 * (low + high)


def quantiles(density: dict, tail_mass: float = coding_tables.DEFAULT_TAIL_MASS) -> jax.Array:
  """Per channel (channels, 3): the lower tail, the median and the upper tail."""
  edge = float(np.log(2.0 / tail_mass - 1.0))
  targets = jnp.array([-edge, 0.0, edge], jnp.float32)
  return _solve_cumulative_logit(jax.lax.stop_gradient(density), targets)


def medians(density: dict) -> jax.Array:
  zero = jnp.zeros((1,), jnp.float32)
  return _solve_cumulative_logit(jax.lax.stop_gradient(density), zero)[:, 0]


def likelihoods(density: dict, y: jax.Array) -> jax.Array:
  """Probability of each element of the quantised latents `y` (…, channels)."""
  channels = y.shape[-1]
  flat = y.reshape(-1, channels).T
  return deep_factorized.likelihood(density, flat).T.reshape(y.shape)


class EntropyBottleneck(nn.Module):
  """Quantises latents (…, channels) and returns them with their likelihoods."""

  channels: int
  hidden: Sequence[int] = (3, 3, 3)
  init_scale: float = 10.0

  @nn.compact
  def __call__(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """(latents for the synthesis, likelihoods for the rate); see quantization.quantize."""
    density = deep_factorized.DeepFactorized(
        self.channels, self.hidden, self.init_scale, name="density")()
    y_hat, measured = quantize(y, medians(density), training, straight_through,
                               self.make_rng("noise") if training else None)
    return y_hat, likelihoods(density, measured)

  def bits(self, y_hat: jax.Array) -> jax.Array:
    """−log2 P of each element of quantised latents (…, channels)."""
    return -jnp.log2(likelihoods(self.variables["params"]["density"], y_hat))


@dataclasses.dataclass(frozen=True)
class FactorizedTables(coding_tables.IntegerTables):
  """One table per channel; latents are coded as integers relative to `medians` (float32, per
  channel)."""

  medians: np.ndarray


def _sigmoid(logits: np.ndarray) -> np.ndarray:
  """1 / (1 + exp(−logits)) in float64, without overflow: a narrow density's logits at its
  table's rounded-out edges can pass what exp takes in float32 (88) and float64 (709)."""
  return np.exp(-np.logaddexp(0.0, -np.asarray(logits, np.float64)))


def build_tables(density: dict, tail_mass: float = coding_tables.DEFAULT_TAIL_MASS,
                 precision: int = coding_tables.PRECISION) -> FactorizedTables:
  """Quantised CDF tables for every channel of a deep factorized density, each over the
  integers between its tails."""
  density = jax.tree_util.tree_map(jnp.asarray, density)
  bounds = np.asarray(quantiles(density, tail_mass))
  centre = bounds[:, 1].astype(np.float32)
  minima = np.floor(bounds[:, 0] - centre).astype(np.int32)
  maxima = np.ceil(bounds[:, 2] - centre).astype(np.int32)
  lengths = maxima - minima + 1
  coding_tables.check_length(int(lengths.max()), "A channel's density", precision)
  samples = (np.arange(lengths.max())[None, :] + minima[:, None]).astype(np.float32)
  centres = jnp.asarray(samples + centre[:, None])
  pmf = np.asarray(deep_factorized.likelihood(density, centres), np.float64)
  lower = np.asarray(deep_factorized.logits_cumulative(density, centres[:, :1] - 0.5))[:, 0]
  upper = np.asarray(deep_factorized.logits_cumulative(
      density, jnp.asarray((maxima + centre + 0.5)[:, None], jnp.float32)))[:, 0]
  tails = _sigmoid(lower) + _sigmoid(-upper)
  lookup = coding_tables.lookup_rows([pmf[c, :n] for c, n in enumerate(lengths)], tails,
                                   precision)
  return FactorizedTables(lookup=lookup, minima=minima, medians=centre)
