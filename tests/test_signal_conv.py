import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.layers import signal_conv

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
LAYERS = [(9, 4), (5, 2), (3, 1)]
# Few channels take the single phase convolution, many the per-group ones.
CHANNELS = pytest.mark.parametrize("in_channels,out_channels", [(3, 5), (17, 16)])


def _inputs(kernel_size, in_channels=3, out_channels=5, height=16, width=12):
  rng = np.random.default_rng(kernel_size)
  x = rng.normal(size=(2, height, width, in_channels)).astype(np.float32)
  kernel = rng.normal(size=(kernel_size, kernel_size, in_channels, out_channels)).astype(
      np.float32) / kernel_size
  return jnp.asarray(x), jnp.asarray(kernel)


def _reference_up(x, kernel, stride):
  """The transposed convolution by jax.lax.conv_transpose, centred like `conv_up`."""
  size = kernel.shape[0]
  centre = (size - 1) // 2
  padding = ((size - 1 - centre, stride - 1 + centre),) * 2
  return jax.lax.conv_transpose(x, kernel[::-1, ::-1], (stride, stride), padding,
                                dimension_numbers=DIMENSIONS)


def _reference_down(x, kernel, stride):
  centre = (kernel.shape[0] - 1) // 2
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((centre, centre),) * 2,
                                      dimension_numbers=DIMENSIONS)


@CHANNELS
@pytest.mark.parametrize("size,stride", LAYERS)
def test_transposed_convolution_equals_lax_conv_transpose(size, stride, in_channels,
                                                          out_channels):
  x, kernel = _inputs(size, in_channels, out_channels)
  ours = signal_conv.conv_up(x, kernel, stride)
  expected = _reference_up(x, kernel, stride)
  assert ours.shape == (2, 16 * stride, 12 * stride, out_channels)
  np.testing.assert_allclose(ours, expected, atol=1e-5, rtol=1e-5)


@CHANNELS
@pytest.mark.parametrize("size,stride", LAYERS)
def test_transposed_convolution_in_float64_equals_lax(size, stride, in_channels, out_channels):
  """float64 (the decoder's scales) takes products per kernel tap, not XLA's convolution."""
  from eic_jax.models import compiled  # pylint: disable=import-outside-toplevel
  x, kernel = _inputs(size, in_channels, out_channels)
  with compiled.float64():
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    ours = jax.jit(signal_conv.conv_up, static_argnums=2)(x, kernel, stride)
    expected = _reference_up(x, kernel, stride)
    assert ours.dtype == expected.dtype == jnp.float64
  np.testing.assert_allclose(ours, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("size,stride", LAYERS)
def test_strided_convolution_equals_lax(size, stride):
  x, kernel = _inputs(size)
  ours = signal_conv.conv_down(x, kernel, stride)
  assert ours.shape == (2, 16 // stride, 12 // stride, 5)
  np.testing.assert_allclose(ours, _reference_down(x, kernel, stride), atol=1e-5, rtol=1e-5)


@CHANNELS
@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("size,stride", LAYERS)
def test_gradients_equal_those_of_lax(direction, size, stride, in_channels, out_channels):
  x, kernel = _inputs(size, in_channels, out_channels)
  ours_fn = signal_conv.conv_up if direction == "up" else signal_conv.conv_down
  reference_fn = _reference_up if direction == "up" else _reference_down

  def objective(fn):
    return lambda x, k: jnp.sum(jnp.sin(fn(x, k, stride)))

  ours = jax.grad(objective(ours_fn), (0, 1))(x, kernel)
  expected = jax.grad(objective(reference_fn), (0, 1))(x, kernel)
  for a, b in zip(ours, expected):
    np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-4)


def test_downsampling_is_centred_on_the_sampled_pixel():
  x = jnp.zeros((1, 8, 8, 1)).at[0, 4, 2, 0].set(1.0)
  kernel = jnp.zeros((5, 5, 1, 1)).at[2, 2, 0, 0].set(1.0)
  y = signal_conv.conv_down(x, kernel, 2)
  assert float(y[0, 2, 1, 0]) == 1.0
  assert float(jnp.sum(y)) == 1.0


@pytest.mark.parametrize("size", [3, 5, 9])
def test_fourier_parameterisation_is_orthonormal_and_invertible(size):
  basis = signal_conv.fourier_basis(size)
  np.testing.assert_allclose(basis.T @ basis, np.eye(size * size), atol=1e-5)
  kernel = jnp.asarray(np.random.default_rng(0).normal(size=(size, size, 2, 3)), jnp.float32)
  np.testing.assert_allclose(
      signal_conv.kernel_from_coefficients(signal_conv.coefficients_from_kernel(kernel)), kernel,
      atol=1e-5)
  # The constant kernel is a single coefficient: the zero frequency.
  constant = signal_conv.coefficients_from_kernel(jnp.ones((size, size, 1, 1)))
  assert np.count_nonzero(np.abs(np.asarray(constant)) > 1e-4) == 1
