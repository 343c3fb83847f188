"""The rate–distortion objective (Ballé et al. 2017, section 2): rate + λ·distortion, with the
rate in bits per pixel and the distortion measured on the 0–255 scale.

config.distortion says what λ weighs:
- "mse": the mean squared error over pixels and channels (λ ≈ 0.0018–0.0483 for 0.1–1.5 bpp);
- "ms-ssim": 1 − MS-SSIM (Wang, Simoncelli & Bovik 2003; five scales, as the paper and its
  peers use it), which needs images of at least 176×176 pixels; λ ≈ 3–60 covers about
  0.15–0.8 bpp, the scale CompressAI's MS-SSIM models use.

Training, validation, evaluation and encode-time latent refinement all take it from here, so a
model is refined for what it was trained for.
"""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from eic_jax.ops import msssim

DISTORTIONS = ("mse", "ms-ssim")
# The smallest image side whose distortion each measure defines.
MIN_SIZES = {"mse": 1, "ms-ssim": msssim.MIN_SIZE}


def bits_per_pixel(likelihoods: dict[str, jax.Array], num_pixels: int) -> jax.Array:
  """Per image, −Σ log2 P of every quantised tensor together, divided by `num_pixels`."""
  return sum(jnp.sum(-jnp.log2(tensor), axis=tuple(range(1, tensor.ndim)))
             for tensor in likelihoods.values()) / num_pixels


def psnr(mse: jax.Array) -> jax.Array:
  return 10.0 * jnp.log10(255.0**2 / jnp.maximum(mse, 1e-10))


@dataclasses.dataclass(frozen=True)
class Objective:
  lmbda: float
  distortion_name: str = "mse"

  def __post_init__(self):
    if self.distortion_name not in DISTORTIONS:
      raise ValueError(f"Unknown distortion {self.distortion_name!r}; use one of "
                       f"{', '.join(DISTORTIONS)}")

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "Objective":
    return cls(config.lmbda, config.get("distortion", "mse"))

  def check_size(self, height: int, width: int, what: str) -> None:
    """Raises ValueError, one line, when images of this size have no such distortion."""
    minimum = MIN_SIZES[self.distortion_name]
    if min(height, width) < minimum:
      raise ValueError(f"{what} of {height}x{width} pixels is too small for the "
                       f"{self.distortion_name} distortion, which needs at least "
                       f"{minimum}x{minimum}")

  def distortion(self, x: jax.Array, x_hat: jax.Array, weights: jax.Array | None = None
                 ) -> jax.Array:
    """Per image (N, H, W, 3 → N): the distortion of `x_hat`, over the pixels where `weights`
    (N, H, W) is nonzero, weighted by it, when given (for MS-SSIM, whose windows span
    neighbouring pixels, the pixels outside are taken as perfectly reconstructed)."""
    if self.distortion_name == "ms-ssim":
      if weights is not None:
        x_hat = jnp.where(weights[..., None] > 0, x_hat, x)
      return 1.0 - msssim.ms_ssim(x, x_hat)
    squared = jnp.square(x - x_hat)
    if weights is None:
      return jnp.mean(squared, axis=(1, 2, 3))
    weights = weights[..., None]
    return (jnp.sum(jnp.where(weights > 0, squared * weights, 0.0), axis=(1, 2, 3))
            / jnp.maximum(3.0 * jnp.sum(weights, axis=(1, 2, 3)), 1e-10))

  def loss(self, bpp: jax.Array, distortion: jax.Array) -> jax.Array:
    return bpp + self.lmbda * distortion

  def measure(self, x: jax.Array, x_hat: jax.Array, likelihoods: dict[str, jax.Array]
              ) -> dict[str, jax.Array]:
    """Per image: bits per pixel of every quantised tensor together, MSE and PSNR (0–255
    scale), and the loss."""
    bpp = bits_per_pixel(likelihoods, x.shape[1] * x.shape[2])
    distortion = self.distortion(x, x_hat)
    mse = jnp.mean(jnp.square(x - x_hat), axis=(1, 2, 3))  # the same computation, for MSE
    return {"loss": self.loss(bpp, distortion), "bpp": bpp, "mse": mse, "psnr": psnr(mse)}
