"""Strided and transposed convolutions computed as stride-1 convolutions.

The analysis transform downsamples with strided convolutions and the synthesis transform
upsamples with transposed convolutions (Ballé et al. 2017, figure 1). The parameters keep the
paper's form, one k×k kernel per layer, but transposed convolutions are computed by rearranging
that kernel into stride-1 convolutions that produce the s×s output phases, which are then
interleaved (depth-to-space). The result is identical, and it avoids the input-dilated convolutions that
XLA:CPU computes and differentiates very slowly.

Alignment: output pixel i of a downsampling layer is centred on input pixel s·i, and output
pixel s·i of an upsampling layer is centred on input pixel i (zero padding outside).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from eic_jax.layers import reductions

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


# Below this many output channels the per-group convolutions get too narrow to run at full
# speed, and one convolution over all phases (multiplying some zero taps) is faster.
_MIN_CHANNELS_PER_GROUP = 16


def _phase_groups(kernel_size: int, stride: int, channels: int
                  ) -> list[tuple[int, int, list[int]]]:
  """The output phases of a transposed convolution, grouped by the input offsets they read.

  Output pixel s·i + r reads input pixels i + d through kernel tap c + r − s·d (c: the centre),
  for every d where that tap exists; phases with the same range of d form one group, or all
  phases one group over the union of ranges when `channels` is small. Returns (first offset,
  last offset, phases) per group, in phase order.
  """
  centre = (kernel_size - 1) // 2
  groups = []
  for r in range(stride):
    first = -((kernel_size - 1 - centre - r) // stride)
    last = (centre + r) // stride
    if groups and groups[-1][:2] == (first, last):
      groups[-1][2].append(r)
    else:
      groups.append((first, last, [r]))
  if channels < _MIN_CHANNELS_PER_GROUP:
    groups = [(min(g[0] for g in groups), max(g[1] for g in groups), list(range(stride)))]
  return groups


def _group_taps(kernel_size: int, stride: int, first: int, last: int,
                phases: list[int]) -> np.ndarray:
  """Kernel tap per (offset, phase) of a group; `kernel_size` stands for a zero tap."""
  centre = (kernel_size - 1) // 2
  taps = np.array([[centre + r - stride * d for r in phases] for d in range(first, last + 1)])
  return np.where((taps >= 0) & (taps < kernel_size), taps, kernel_size)


def _stride_one(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  if x.dtype == jnp.float64:
    return _stride_one_by_taps(x, kernel, padding)
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSIONS)


def _stride_one_by_taps(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """The same correlation as a sum of one matrix product per kernel tap.

  For float64, which the decoder's entropy parameters need (models/bmshj2018.py, ms2020.py):
  XLA:CPU computes float64 convolutions as a plain loop nest, about ten times slower than this
  (a 5×5, 128→128 layer on a 32×48 grid: 490 against 44 ms on 2 cores; ms2020's slice networks
  on a 768×512 image: 5.0 against 0.55 s), and only one shifted input is alive at a time.
  """
  (top, bottom), (left, right) = padding
  x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  height, width = x.shape[1] - kernel.shape[0] + 1, x.shape[2] - kernel.shape[1] + 1
  total = None
  for i in range(kernel.shape[0]):
    for j in range(kernel.shape[1]):
      term = x[:, i:i + height, j:j + width, :] @ kernel[i, j]
      total = term if total is None else total + term
  return total


def _direct_down(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  centre = (kernel.shape[0] - 1) // 2
  if stride == 1:
    return _stride_one(x, kernel, ((centre, centre),) * 2)
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((centre, centre),) * 2, dimension_numbers=_DIMENSIONS)


def _phase_up(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
  if stride == 1:
    centre = (kernel.shape[0] - 1) // 2
    return _stride_one(x, kernel[::-1, ::-1], ((centre, centre),) * 2)
  # One stride-1 convolution per group of phases (pairs of row and column groups), each with
  # only the taps its phases use: a single convolution over all phases would multiply by the
  # zero taps of a kernel padded to a multiple of the stride (1.44x the work at 5x5/2).
  n, h, w, cin = x.shape
  size, cout = kernel.shape[0], kernel.shape[-1]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  groups = _phase_groups(size, stride, cout)
  rows = []
  for first_y, last_y, phases_y in groups:
    columns = []
    for first_x, last_x, phases_x in groups:
      taps_y = _group_taps(size, stride, first_y, last_y, phases_y)
      taps_x = _group_taps(size, stride, first_x, last_x, phases_x)
      group_kernel = padded[taps_y[:, :, None, None], taps_x[None, None, :, :]]
      # (dy, ry, dx, rx, in, out) -> (dy, dx, in, ry·rx·out)
      group_kernel = group_kernel.transpose(0, 2, 4, 1, 3, 5).reshape(
          len(taps_y), len(taps_x), cin, len(phases_y) * len(phases_x) * cout)
      phases = _stride_one(x, group_kernel, ((-first_y, last_y), (-first_x, last_x)))
      columns.append(phases.reshape(n, h, w, len(phases_y), len(phases_x), cout))
    rows.append(jnp.concatenate(columns, axis=4))
  phases = jnp.concatenate(rows, axis=3)  # (n, h, w, ry, rx, out)
  return phases.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * stride, w * stride, cout)


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
  # A layer that starts at zero, e.g. the last of a residual branch that should first change
  # nothing.
  zero_init: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    coefficients = self.param(
        "kernel_fourier", nn.initializers.zeros if self.zero_init else _fourier_init,
        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    kernel = kernel_from_coefficients(coefficients)
    conv = conv_up if self.upsample else conv_down
    y = conv(x, kernel.astype(x.dtype), self.stride)
    if self.use_bias:
      y = reductions.add_bias(
          y, self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype))
    return y
