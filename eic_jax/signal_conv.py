"""Strided and transposed convolutions computed as stride-1 convolutions.

The analysis transform downsamples with strided convolutions and the synthesis transform
upsamples with transposed convolutions (Ballé et al. 2017, figure 1). The parameters keep the
paper's form, one k×k kernel per layer, but transposed convolutions are computed by rearranging
that kernel into an equivalent stride-1 convolution on the s×s output phases followed by
depth-to-space. The result is identical, and it avoids the input-dilated convolutions that
XLA:CPU computes and differentiates very slowly.

Alignment: output pixel i of a downsampling layer is centred on input pixel s·i, and output
pixel s·i of an upsampling layer is centred on input pixel i (zero padding outside).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax import reductions

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def depth_to_space(x: jax.Array, stride: int) -> jax.Array:
  n, h, w, c = x.shape
  c //= stride * stride
  x = x.reshape(n, h, w, stride, stride, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * stride, w * stride, c)


def _phase_taps(kernel_size: int, stride: int, upsample: bool) -> tuple[np.ndarray, int]:
  """Kernel tap used by (offset d, phase r) of the phase form; `kernel_size` marks a zero tap.

  Returns the tap table (num_offsets, stride) and the first offset.
  """
  centre = (kernel_size - 1) // 2
  sign = -1 if upsample else 1
  offsets = [d for d in range(-kernel_size, kernel_size + 1)
             if any(0 <= sign * stride * d + r + centre < kernel_size for r in range(stride))]
  taps = np.full((len(offsets), stride), kernel_size, dtype=np.int32)
  for i, d in enumerate(offsets):
    for r in range(stride):
      tap = sign * stride * d + r + centre
      if 0 <= tap < kernel_size:
        taps[i, r] = tap
  return taps, offsets[0]


def phase_kernel(kernel: jax.Array, stride: int, upsample: bool) -> tuple[jax.Array, tuple]:
  """Rearranges a (k, k, in, out) kernel into the stride-1 kernel of the phase form.

  Returns the kernel and the explicit padding of the stride-1 convolution.
  """
  size, _, cin, cout = kernel.shape
  taps, first = _phase_taps(size, stride, upsample)
  num = taps.shape[0]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  phased = padded[taps[:, :, None, None], taps[None, None, :, :]]  # (dy, ry, dx, rx, in, out)
  if upsample:
    phased = phased.transpose(0, 2, 4, 1, 3, 5).reshape(num, num, cin, stride * stride * cout)
  else:
    phased = phased.transpose(0, 2, 1, 3, 4, 5).reshape(num, num, stride * stride * cin, cout)
  padding = (-first, num - 1 + first)
  return phased, (padding, padding)


def _stride_one(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSIONS)


def _direct_down(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  centre = (kernel.shape[0] - 1) // 2
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((centre, centre),) * 2, dimension_numbers=_DIMENSIONS)


def _phase_up(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  if stride == 1:
    centre = (kernel.shape[0] - 1) // 2
    return _stride_one(x, kernel[::-1, ::-1], ((centre, centre),) * 2)
  phased, padding = phase_kernel(kernel, stride, upsample=True)
  return depth_to_space(_stride_one(x, phased, padding), stride)


def _swap_io(kernel: jax.Array) -> jax.Array:
  return kernel.transpose(0, 1, 3, 2)


# Each direction is the adjoint of the other (with input and output channels swapped), so both
# gradients are computed with the fast form of the opposite direction: strided convolutions
# run natively and transposed ones in phase form; neither needs an input-dilated convolution.


def _with_adjoint_gradient(forward, adjoint, doc: str):
  """`forward` whose input gradient is computed by `adjoint` on the channel-swapped kernel."""

  @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
  def convolution(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return forward(x, kernel, stride)

  def convolution_fwd(x, kernel, stride):
    return forward(x, kernel, stride), (x, kernel)

  def convolution_bwd(stride, residuals, g):
    x, kernel = residuals
    _, kernel_vjp = jax.vjp(lambda k: forward(x, k, stride), kernel)
    return adjoint(g, _swap_io(kernel), stride), kernel_vjp(g)[0]

  convolution.defvjp(convolution_fwd, convolution_bwd)
  convolution.__doc__ = doc
  return convolution


conv_down = _with_adjoint_gradient(
    _direct_down, _phase_up,
    "Strided 'same' correlation; height and width of `x` must be multiples of `stride`.")
conv_up = _with_adjoint_gradient(
    _phase_up, _direct_down,
    "Transposed 'same' convolution: output is `stride` times larger than `x`.")


@functools.lru_cache(maxsize=None)
def fourier_basis(size: int) -> np.ndarray:
  """An orthonormal real Fourier basis of size×size kernels, one column per basis function.

  Column j holds the cosine or sine of one spatial frequency; conjugate frequencies share a
  pair. Kernels are parameterised by their coefficients in this basis (as TensorFlow
  Compression's SignalConv2D does with its RDFT parameter), which lets Adam adapt its step to
  each frequency and speeds up training.
  """
  rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  seen, columns = set(), []
  for u in range(size):
    for v in range(size):
      if (u, v) in seen:
        continue
      conjugate = ((-u) % size, (-v) % size)
      seen.update({(u, v), conjugate})
      phase = 2.0 * np.pi * (u * rows + v * cols) / size
      waves = [np.cos(phase)] + ([np.sin(phase)] if conjugate != (u, v) else [])
      columns += [w.ravel() / np.linalg.norm(w) for w in waves]
  return np.stack(columns, axis=1).astype(np.float32)


def kernel_from_coefficients(coefficients: jax.Array) -> jax.Array:
  size = coefficients.shape[0]
  flat = coefficients.reshape(size * size, -1)
  return jnp.dot(jnp.asarray(fourier_basis(size)), flat).reshape(coefficients.shape)


def coefficients_from_kernel(kernel: jax.Array) -> jax.Array:
  size = kernel.shape[0]
  flat = kernel.reshape(size * size, -1)
  return jnp.dot(jnp.asarray(fourier_basis(size)).T, flat).reshape(kernel.shape)


def _fourier_init(key, shape, dtype=jnp.float32):
  return coefficients_from_kernel(nn.initializers.lecun_normal()(key, shape, dtype))


class SignalConv(nn.Module):
  """A k×k convolution layer that downsamples (analysis) or upsamples (synthesis) by `stride`."""

  features: int
  kernel_size: int
  stride: int
  upsample: bool = False
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    coefficients = self.param(
        "kernel_fourier", _fourier_init,
        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    kernel = kernel_from_coefficients(coefficients)
    conv = conv_up if self.upsample else conv_down
    y = conv(x, kernel.astype(x.dtype), self.stride)
    if self.use_bias:
      y = reductions.add_bias(
          y, self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype))
    return y
