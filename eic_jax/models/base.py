"""What every architecture provides to training, export, coding and evaluation.

A model is a Flax module with the methods below; nothing outside its own file knows which
architecture it is. The main transforms (`analyze`, `synthesize`) run tile by tile on large
images (see coding/tiling.py); everything after the analysis — side information, entropy
parameters, range coding — is composed by the model's own `encode_latents` and
`decode_latents` from the shared entropy models and the range coder.
"""

import dataclasses
import functools
from typing import Any, Callable, ClassVar, Protocol

import flax.linen as nn
import jax
import ml_collections
import numpy as np


class ModelFunctions(Protocol):
  """What a codec lends a model's coding methods."""

  tables: dict[str, Any]  # the export's coding tables, by entropy model

  def run(self, method: str, *args) -> np.ndarray:
    """The model's Flax method `method`, compiled, with the codec's parameters."""

  def run_float64(self, method: str, *args) -> np.ndarray:
    """`run` in float64: for values encoder and decoder must compute alike on any machine."""


@dataclasses.dataclass(frozen=True)
class EncodedLatents:
  streams: list[bytes]  # range-coded streams, in the order decode_latents reads them
  latents: np.ndarray  # the quantised latents (h, w, C) the decoder will synthesise
  indexes: np.ndarray  # the coding-table index of every coded element (see docs/bitstream.md)
  # Computes the model's information content of what was coded, −Σ log2 P: only when asked
  # (evaluation), not on every compress.
  information: Callable[[], float]

  @functools.cached_property
  def bits(self) -> float:
    return float(self.information())


class CompressionModel(nn.Module):
  """Images (N, H, W, 3) on the 0–255 scale → reconstruction and likelihoods."""

  # The analysis downsamples by this factor: images are padded to a multiple of it.
  downsampling: ClassVar[int] = 16
  # Latents of context a tile needs on each side for its core to equal the untiled transform.
  tile_margin: ClassVar[int] = 4
  # Parameter subtrees a decoder reads; with the coding tables they fingerprint the model.
  decoder_modules: ClassVar[tuple[str, ...]] = ("synthesis",)
  # How many range-coded streams encode_latents writes.
  num_streams: ClassVar[int] = 1
  # Parameter subtrees of the entropy models, all that `quantize` reads: what training with
  # config.trainable = "entropy_models" changes.
  entropy_modules: ClassVar[tuple[str, ...]] = ("entropy_bottleneck",)
  # Parameter subtrees only the encoder reads: what training with config.trainable = "encoder"
  # changes.
  encoder_modules: ClassVar[tuple[str, ...]] = ("analysis",)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> "CompressionModel":
    raise NotImplementedError

  @property
  def latent_channels(self) -> int:
    raise NotImplementedError

  def __call__(self, x: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(reconstruction, likelihoods of every quantised tensor by name). In training the
    rates see noisy latents; `straight_through`: the synthesis sees rounded ones."""
    height, width = x.shape[1:3]
    y_hat, likelihoods = self.quantize(self.analyze(x), training, straight_through)
    return self.synthesize(y_hat)[:, :height, :width, :], likelihoods

  def quantize(self, y: jax.Array, training: bool, straight_through: bool = False
               ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(the latents the synthesis sees, likelihoods of every quantised tensor by name) for
    latents (N, h, w, C); side information is computed and quantised here."""
    raise NotImplementedError

  def analyze(self, x: jax.Array, region: jax.Array | None = None) -> jax.Array:
    """Latents of images padded to a multiple of `downsampling`; with `region`, of one tile
    (see layers.padding.restrict)."""
    raise NotImplementedError

  def synthesize(self, y_hat: jax.Array, region: jax.Array | None = None) -> jax.Array:
    raise NotImplementedError

  def latent_bits(self, y_hat: jax.Array, context: jax.Array) -> jax.Array:
    """−log2 P of each element of quantised latents (N, h, w, C) given `context`, the
    per-position entropy parameters of `refinement_context` (latent refinement's rate)."""
    raise NotImplementedError

  @classmethod
  def build_coding_tables(cls, params: Any, config: ml_collections.ConfigDict
                          ) -> dict[str, Any]:
    """The integer coding tables of every entropy model (needs the range coder)."""
    raise NotImplementedError

  def refinement_context(self, functions: ModelFunctions, y: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, Any]:
    """For latent refinement of `y` (h, w, C): the per-position context (h, w, K) that
    `latent_bits` reads, the per-channel quantisation offsets (C,), and what
    `encode_latents` needs to code the refined latents with that same context."""
    raise NotImplementedError

  def encode_latents(self, functions: ModelFunctions, y: np.ndarray,
                     refined_from: Any = None) -> EncodedLatents:
    """Range-codes latents (h, w, C); `refined_from`: see refinement_context."""
    raise NotImplementedError

  def decode_latents(self, functions: ModelFunctions, streams: list[bytes],
                     shape: tuple[int, int, int], verify: Callable[[np.ndarray], None]
                     ) -> np.ndarray:
    """The quantised latents (h, w, C) from the streams of encode_latents. `verify` is called
    with the table indexes before the latents that use them are decoded; it raises
    BitstreamError when they are not the encoder's."""
    raise NotImplementedError


# Whole-grid computations of coding (side information, entropy parameters, information
# content) see their grids zero-padded to multiples of this many positions, so that images of
# many sizes share a few compiled shapes; what lies past the grid is masked or cropped.
GRID_BUCKET = 8


def pad_grid(array: np.ndarray, multiple: int = GRID_BUCKET) -> np.ndarray:
  """Zero-pads (h, w, …) at the bottom and right to multiples of `multiple`."""
  padding = [(0, -array.shape[0] % multiple), (0, -array.shape[1] % multiple)]
  return np.pad(array, padding + [(0, 0)] * (array.ndim - 2))


def channel_indexes(shape: tuple[int, ...]) -> np.ndarray:
  """Table index = channel: for entropy models with one table per channel."""
  return np.broadcast_to(np.arange(shape[-1], dtype=np.int32), shape)
