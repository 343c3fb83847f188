"""What every architecture provides to training, export, coding and evaluation.

An architecture is two things in one model file:
- a Flax module (`CompressionModel`): the traced computations — transforms, quantisation and
  likelihoods, and whatever its coding needs computed on a whole latent grid;
- a host-side latent codec (`LatentCodec`), made by the module's `latent_codec` with the
  compiled functions and the integer tables it needs: it turns latents into coded streams and
  back, in NumPy, with whichever entropy coder of coder/coders.py it is handed.

The codec (codec/) tiles the main transforms over large images and hands the latents to the
latent codec; nothing outside a model file knows which architecture it is, and nothing in a
model file calls back into the codec.
"""

import dataclasses
import functools
from typing import Any, Callable, ClassVar, Protocol

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from eic_jax.coder import tables as coding_tables
from eic_jax.coder.coders import Coder

# Whole-grid computations of coding (side information, entropy parameters, information
# content) see their grids zero-padded to multiples of this many positions, and tiles are sized
# in multiples of it (codec/tiling.py), so that images of many sizes share a few compiled
# shapes; what lies past the grid is masked or cropped.
SHAPE_BUCKET = 8


@dataclasses.dataclass(frozen=True)
class EncodedLatents:
  streams: list[bytes]  # coded streams, in the order LatentCodec.decode reads them
  latents: np.ndarray  # the quantised latents (h, w, C) the decoder will synthesise
  indexes: np.ndarray  # the coding-table index of every coded element (see docs/bitstream.md)
  # Computes the model's information content of what was coded, −Σ log2 P: only when asked
  # (evaluation), not on every compress.
  information: Callable[[], float]

  @functools.cached_property
  def bits(self) -> float:
    return float(self.information())


@dataclasses.dataclass(frozen=True)
class RefinementContext:
  """What latent refinement of latents y (h, w, C) needs from the entropy model: the
  per-position entropy parameters (h, w, K) that `CompressionModel.latent_bits` reads, the
  quantisation offsets, per channel (C,) or per latent (h, w, C), and what
  `LatentCodec.encode` needs to code the refined latents with those same parameters (its
  `refined_from`).

  `side`: side latents that refinement may optimise too, for the rate alone (they move no
  pixel): z as continuous values (h', w', N) whose rounding around `side_offsets` (per channel)
  gave `context`, for a model with a `side_rate` method; None where there are none, or where
  moving them would move the latents' quantisation points."""

  context: np.ndarray
  offsets: np.ndarray
  refined_from: Any = None
  side: np.ndarray | None = None
  side_offsets: np.ndarray | None = None


class LatentCodec(Protocol):
  """Host side of an architecture's coding: latents (h, w, C) ↔ coded streams."""

  num_streams: int

  def encode(self, y: np.ndarray, coder: Coder, refined_from: Any = None) -> EncodedLatents:
    """Codes latents with `coder`; `refined_from`: see RefinementContext."""

  def decode(self, streams: list[bytes], shape: tuple[int, int, int],
             verify: Callable[[np.ndarray], None], coder: Coder) -> np.ndarray:
    """The quantised latents from the streams that `encode` wrote with `coder`. `verify` is
    called with the table indexes before the latents that use them are decoded; it raises
    BitstreamError when they are not the encoder's."""

  def refinement_context(self, y: np.ndarray, side: np.ndarray | None = None
                         ) -> RefinementContext:
    """For latent refinement of `y`; with the side latents `side` (see RefinementContext)
    where given, else with those the model derives from `y`."""


class CompressionModel(nn.Module):
  """Images (N, H, W, 3) on the 0–255 scale → reconstruction and likelihoods."""

  # The analysis downsamples by this factor: images are padded to a multiple of it.
  downsampling: ClassVar[int] = 16
  # Latents of context a tile needs on each side for its core to equal the untiled transform.
  tile_margin: ClassVar[int] = 4
  # Parameter subtrees a decoder reads; with the coding tables they fingerprint the model.
  decoder_modules: ClassVar[tuple[str, ...]] = ("synthesis",)
  # Parameter subtrees of the entropy models, all that `quantize` reads: what training with
  # config.trainable = "entropy_models" changes.
  entropy_modules: ClassVar[tuple[str, ...]] = ("entropy_bottleneck",)
  # Parameter subtrees only the encoder reads: what training with config.trainable = "encoder"
  # changes.
  encoder_modules: ClassVar[tuple[str, ...]] = ("analysis",)
  # The integer tables of each entropy model, by name, in the order they are fingerprinted.
  table_types: ClassVar[dict[str, type[coding_tables.IntegerTables]]] = {}

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
    per-position entropy parameters of RefinementContext (latent refinement's rate)."""
    raise NotImplementedError

  @classmethod
  def build_coding_tables(cls, params: Any, config: ml_collections.ConfigDict
                          ) -> dict[str, coding_tables.IntegerTables]:
    """The integer coding tables of every entropy model."""
    raise NotImplementedError

  @classmethod
  def tables_from_arrays(cls, arrays: dict) -> dict[str, coding_tables.IntegerTables]:
    """The tables of `build_coding_tables` from their stored arrays. An export written before
    models had more than one entropy model stores its one table set flat."""
    if "lookup" in arrays and len(cls.table_types) == 1:
      arrays = {next(iter(cls.table_types)): arrays}
    if set(arrays) != set(cls.table_types):
      raise ValueError(f"the export's coding tables ({', '.join(sorted(arrays))}) are not "
                       f"those of {cls.__name__} ({', '.join(cls.table_types)})")
    return {name: kind.from_dict(arrays[name]) for name, kind in cls.table_types.items()}

  def latent_codec(self, params: Any, tables: dict[str, coding_tables.IntegerTables]
                   ) -> LatentCodec:
    """The host-side coder of this model's latents with these weights and tables."""
    raise NotImplementedError


def pad_grid(array: np.ndarray, multiple: int = SHAPE_BUCKET) -> np.ndarray:
  """Zero-pads (h, w, …) at the bottom and right to multiples of `multiple`."""
  padding = [(0, -array.shape[0] % multiple), (0, -array.shape[1] % multiple)]
  return np.pad(array, padding + [(0, 0)] * (array.ndim - 2))
