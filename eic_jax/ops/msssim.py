"""Multi-scale structural similarity (Wang, Simoncelli & Bovik 2003), as in
tf.image.ssim_multiscale: 5 scales, 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03.
Differentiable: the evaluation's measure and the MS-SSIM objective's (models/objective.py).
"""

import jax
import jax.numpy as jnp
import numpy as np

POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11
FILTER_SIGMA = 1.5
# Each of the 5 scales needs at least one full window after 4 halvings.
MIN_SIZE = FILTER_SIZE * 2 ** (len(POWER_FACTORS) - 1)
# Terms at or below this count as zero (their power's gradient would be unbounded).
_TINY = 1e-12


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
  """The normalised 1-D Gaussian; the 2-D window is its outer product with itself."""
  coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  window = np.exp(-0.5 * coords**2 / sigma**2)
  return (window / window.sum()).astype(np.float32)


def _filter(x: jax.Array) -> jax.Array:
  """Valid-mode Gaussian filtering of (N, C, H, W), separably, as weighted sums of shifted
  slices. On a CPU, XLA's depthwise convolution took 14 times longer; the same sums with the
  3 channels innermost (NHWC) 4 times longer (rows of pixels innermost vectorise); and without
  the barrier XLA fuses the two 11-tap passes into one 121-tap sum."""
  window = _gaussian_window(FILTER_SIZE, FILTER_SIGMA)
  height, width = x.shape[2] - FILTER_SIZE + 1, x.shape[3] - FILTER_SIZE + 1
  x = sum(float(w) * x[:, :, i:i + height] for i, w in enumerate(window))
  x = jax.lax.optimization_barrier(x)
  return sum(float(w) * x[:, :, :, j:j + width] for j, w in enumerate(window))


def _ssim_terms(x: jax.Array, y: jax.Array, max_val: float) -> tuple[jax.Array, jax.Array]:
  """Per image and channel: SSIM and the contrast-structure term, averaged over positions."""
  c1 = (0.01 * max_val) ** 2
  c2 = (0.03 * max_val) ** 2
  # One filtering of the four signals, stacked and written out first: otherwise their
  # products are recomputed for every tap.
  signals = jax.lax.optimization_barrier(jnp.concatenate([x, y, x * y, x**2 + y**2], axis=1))
  mean_x, mean_y, cross, squares = jnp.split(_filter(signals), 4, axis=1)
  products = 2.0 * mean_x * mean_y
  luminance = (products + c1) / (mean_x**2 + mean_y**2 + c1)
  cs = (2.0 * cross - products + c2) / (squares - (mean_x**2 + mean_y**2) + c2)
  return jnp.mean(luminance * cs, axis=(2, 3)), jnp.mean(cs, axis=(2, 3))


def _halve(x: jax.Array) -> jax.Array:
  """2×2 average pooling of (N, C, H, W) after mirroring one row/column onto odd sizes."""
  height, width = x.shape[2:]
  x = jnp.pad(x, ((0, 0), (0, 0), (0, height % 2), (0, width % 2)), mode="symmetric")
  n, c, h, w = x.shape
  return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


@jax.jit
def _ms_ssim(x: jax.Array, y: jax.Array, max_val: float) -> jax.Array:
  x, y = jnp.moveaxis(x, -1, 1), jnp.moveaxis(y, -1, 1)
  factors = []
  for scale in range(len(POWER_FACTORS)):
    if scale:
      x, y = _halve(x), _halve(y)
    ssim, cs = _ssim_terms(x, y, max_val)
    factors.append(ssim if scale == len(POWER_FACTORS) - 1 else cs)
  stacked = jnp.stack(factors, axis=-1)
  return jnp.mean(jnp.prod(_positive_power(stacked, jnp.asarray(POWER_FACTORS)), axis=-1),
                  axis=-1)


def _positive_power(value: jax.Array, power: jax.Array) -> jax.Array:
  """max(value, 0) ** power (TensorFlow's relu, then the power), with a finite gradient where
  value ≤ 0: there the plain power's derivative is infinite, which made the first steps of
  training (noisy reconstructions, negative contrast terms) produce NaN."""
  positive = value > _TINY
  return jnp.where(positive, jnp.where(positive, value, 1.0) ** power, 0.0)


def ms_ssim(x: jax.Array, y: jax.Array, max_val: float = 255.0) -> jax.Array:
  """MS-SSIM per image of (N, H, W, C) batches; H and W must be at least `MIN_SIZE`."""
  if min(x.shape[1:3]) < MIN_SIZE:
    raise ValueError(f"MS-SSIM needs images of at least {MIN_SIZE}x{MIN_SIZE}, got "
                     f"{x.shape[1]}x{x.shape[2]}")
  return _ms_ssim(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), max_val)


def to_decibels(value: jax.Array) -> jax.Array:
  """−10·log10(1 − MS-SSIM), the scale on which the paper plots it."""
  return -10.0 * jnp.log10(1.0 - value)
