"""Image codec from a trained model: load_codec, compress and decompress.

The codec reads a workdir's export (parameters and integer coding tables; see checkpoints.py).
Training writes the export at its end; `load_codec` brings it up to date on first use: it
exports the latest training checkpoint when that is newer (e.g. after an interrupted run), and
adds the coding tables to an export written where the range coder was not installed.
"""

import hashlib
import json
import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from eic_jax import atomic_files
from eic_jax import bitstream
from eic_jax import checkpoints
from eic_jax import entropy_bottleneck
from eic_jax import image_io
from eic_jax import latent_refinement
from eic_jax import models
from eic_jax import range_coding
from eic_jax import tensorflow_setup
from eic_jax import tiling
from eic_jax import train
from eic_jax.bls2017 import BLS2017, DOWNSAMPLING

# Default limit on decoded image size (pixels), checked before anything is allocated.
DEFAULT_MAX_PIXELS = 2**28


class Codec:
  """Compresses uint8 RGB images to bytes and back with one trained model."""

  def __init__(self, config, params: Any, tables: range_coding.CodingTables,
               max_pixels: int = DEFAULT_MAX_PIXELS, max_tile: int = tiling.MAX_TILE,
               refine_steps: int = 0):
    """`refine_steps`: optimise each image's latents for that many steps before coding them
    (see latent_refinement.py); 0 codes the analysis transform's latents as they are."""
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
      raise ValueError(f"refine_steps must be a non-negative integer, got {refine_steps!r}")
    self.config = config
    self.params = params
    self.tables = tables
    self.max_pixels = max_pixels
    self.max_tile = max_tile
    self.refine_steps = refine_steps
    self.model = train.create_model(config)
    self._medians = jnp.asarray(tables.medians)
    # One compilation per tile shape; tiles come in a few bucketed sizes (see tiling.py).
    self._analyze = jax.jit(self._analyze_tile)
    self._synthesize = jax.jit(self._synthesize_tile)
    self._refine = jax.jit(self._refine_tile)
    self._log2_likelihoods = jax.jit(self._log2_likelihoods_fn)
    self.fingerprint = _fingerprint(tables, params["synthesis"])

  def _analyze_tile(self, params, pixels, region):
    return self.model.apply({"params": params}, pixels[None].astype(jnp.float32), region,
                            method=BLS2017.analyze)[0]

  def _synthesize_tile(self, params, y_hat, region):
    x_hat = self.model.apply({"params": params}, y_hat[None], region, method=BLS2017.synthesize)
    return jnp.round(jnp.clip(x_hat[0], 0.0, 255.0)).astype(jnp.uint8)

  def _refine_tile(self, params, y, in_signal, variable, pixels, inside, region, key):
    """The latents of one tile window refined where `variable`, for the rate of those latents
    and the squared error of the pixels `inside`, weighted by the model's λ. Elsewhere the
    decoder sees them rounded, and zero outside the signal (`in_signal`)."""
    density = params["entropy_bottleneck"]["density"]
    pixels = pixels.astype(jnp.float32)
    fixed = jnp.where(in_signal, entropy_bottleneck.round_around(y, self._medians), 0.0)

    def loss(y_hat):
      x_hat = self.model.apply({"params": params}, y_hat[None], region,
                               method=BLS2017.synthesize)[0]
      squared_error = jnp.where(inside[..., None], (jnp.clip(x_hat, 0.0, 255.0) - pixels)**2,
                                0.0)
      bits = -jnp.where(variable[..., None],
                        jnp.log2(entropy_bottleneck.likelihoods(density, y_hat)), 0.0)
      # bpp + λ·MSE over the tile's own pixels, as in training.
      return (jnp.sum(bits) + self.config.lmbda * jnp.sum(squared_error) / 3.0) / jnp.maximum(
          jnp.sum(inside), 1)

    return latent_refinement.refine(loss, y, fixed, variable, self._medians, key,
                                    self.refine_steps)

  def _log2_likelihoods_fn(self, params, flat_symbols, count):
    y_hat = flat_symbols.astype(jnp.float32) + self._medians
    density = params["entropy_bottleneck"]["density"]
    log2 = jnp.log2(entropy_bottleneck.likelihoods(density, y_hat))
    valid = jnp.arange(flat_symbols.shape[0]) < count
    return jnp.sum(jnp.where(valid[:, None], log2, 0.0))

  def _plan(self, height: int, width: int) -> tuple[tiling.AxisTiles, tiling.AxisTiles]:
    return (tiling.plan_axis(-(-height // DOWNSAMPLING), self.max_tile),
            tiling.plan_axis(-(-width // DOWNSAMPLING), self.max_tile))

  def compiled_transforms(self, height: int, width: int):
    """(analysis, synthesis, tile count) for an image of this size: the compiled per-tile
    transforms, whose cost_analysis() XLA fills with their floating-point work."""
    rows, cols = self._plan(height, width)
    region = jax.ShapeDtypeStruct((4,), jnp.int32)
    pixels = jax.ShapeDtypeStruct((DOWNSAMPLING * rows.size, DOWNSAMPLING * cols.size, 3),
                                  jnp.uint8)
    latents = jax.ShapeDtypeStruct((rows.size, cols.size, self.tables.minima.shape[0]),
                                   jnp.float32)
    return (self._analyze.lower(self.params, pixels, region).compile(),
            self._synthesize.lower(self.params, latents, region).compile(),
            len(rows.starts) * len(cols.starts))

  def latents(self, image: np.ndarray) -> np.ndarray:
    """Integer latents (⌈H/16⌉, ⌈W/16⌉, N) of a uint8 image, computed tile by tile."""
    image = as_rgb(image)
    height, width = image.shape[:2]
    if height * width > self.max_pixels:
      raise ValueError(f"{width}x{height} image has more than the limit of {self.max_pixels} "
                       "pixels")
    rows, cols = self._plan(height, width)
    scale = DOWNSAMPLING
    # The analysis sees the image extended to a multiple of 16 by repeating its edge pixels:
    # zeros there would be a hard edge that costs bits and, in a small image, drags its
    # colours. The decoder crops them away, whatever they were.
    extended = np.pad(image, ((0, -height % scale), (0, -width % scale), (0, 0)), mode="edge")
    padded = _pad_for_tiles(extended, rows, cols, scale)
    y = np.empty((rows.length, cols.length, self.tables.minima.shape[0]), np.float32)
    for top, left, tile_height, tile_width in tiling.windows(rows, cols):
      window = padded[scale * top:scale * (top + rows.size),
                      scale * left:scale * (left + cols.size)]
      region = np.array([scale * (top - rows.margin), scale * (left - cols.margin),
                         scale * rows.length, scale * cols.length], np.int32)
      tile = self._analyze(self.params, window, region)
      y[top:top + tile_height, left:left + tile_width] = np.asarray(
          tile[rows.margin:rows.margin + tile_height, cols.margin:cols.margin + tile_width])
    if self.refine_steps:
      y = self._refined(y, padded, rows, cols, height, width)
    return np.round(y - self.tables.medians).astype(np.int32)

  def _refined(self, y: np.ndarray, padded_image: np.ndarray, rows: tiling.AxisTiles,
               cols: tiling.AxisTiles, height: int, width: int) -> np.ndarray:
    """`y` refined tile by tile: each tile's core latents for the rate of the core and the
    distortion of the core's pixels, with the latents around it as already coded (tiles
    refined earlier) or as the analysis gave them (later ones)."""
    scale = DOWNSAMPLING
    y = _pad_for_tiles(y, rows, cols, 1)
    in_signal = _pad_for_tiles(np.ones((rows.length, cols.length, 1), bool), rows, cols, 1)
    key = jax.random.PRNGKey(0)  # the same file for the same image, every time
    for index, (top, left, tile_height, tile_width) in enumerate(tiling.windows(rows, cols)):
      latent_window = np.s_[top:top + rows.size, left:left + cols.size]
      pixel_window = np.s_[scale * top:scale * (top + rows.size),
                           scale * left:scale * (left + cols.size)]
      core = np.s_[rows.margin:rows.margin + tile_height, cols.margin:cols.margin + tile_width]
      variable = np.zeros((rows.size, cols.size), bool)
      variable[core] = True
      pixel_rows = scale * (top - rows.margin) + np.arange(scale * rows.size)
      pixel_cols = scale * (left - cols.margin) + np.arange(scale * cols.size)
      inside = (np.repeat(np.repeat(variable, scale, 0), scale, 1)
                & (pixel_rows < height)[:, None] & (pixel_cols < width)[None, :])
      region = np.array([top - rows.margin, left - cols.margin, rows.length, cols.length],
                        np.int32)
      refined = self._refine(self.params, y[latent_window], in_signal[latent_window], variable,
                             padded_image[pixel_window], inside, region,
                             jax.random.fold_in(key, index))
      y[latent_window][core] = np.asarray(refined)[core]
    return y[rows.margin:rows.margin + rows.length, cols.margin:cols.margin + cols.length]

  def information_bits(self, symbols: np.ndarray) -> float:
    """The model's information content of integer latents: −Σ log2 P(symbol)."""
    flat = symbols.reshape(-1, symbols.shape[-1])
    # Padded to a power of two so that all images share a few compiled shapes.
    padded = np.zeros((1 << max(0, (len(flat) - 1).bit_length()), flat.shape[1]), np.int32)
    padded[:len(flat)] = flat
    return float(-self._log2_likelihoods(self.params, padded, len(flat)))

  def symbol_probabilities(self, channel: int, symbols: np.ndarray) -> np.ndarray:
    """The density's probability of integer `symbols` (relative to the median) in `channel`."""
    density = jax.tree_util.tree_map(lambda a: a[channel:channel + 1],
                                     self.params["entropy_bottleneck"]["density"])
    centres = jnp.asarray(symbols, jnp.float32)[None] + self.tables.medians[channel]
    return np.asarray(entropy_bottleneck.likelihoods(density, centres.T).T[0])

  def reconstruct(self, symbols: np.ndarray, height: int, width: int) -> np.ndarray:
    """The uint8 image (height, width, 3) decoded from integer latents, tile by tile."""
    rows, cols = self._plan(height, width)
    y_hat = _pad_for_tiles(symbols.astype(np.float32) + self.tables.medians, rows, cols, 1)
    scale = DOWNSAMPLING
    image = np.empty((scale * rows.length, scale * cols.length, 3), np.uint8)
    for top, left, tile_height, tile_width in tiling.windows(rows, cols):
      window = y_hat[top:top + rows.size, left:left + cols.size]
      region = np.array([top - rows.margin, left - cols.margin, rows.length, cols.length],
                        np.int32)
      tile = self._synthesize(self.params, window, region)
      image[scale * top:scale * (top + tile_height), scale * left:scale * (left + tile_width)] = (
          np.asarray(tile[scale * rows.margin:scale * (rows.margin + tile_height),
                          scale * cols.margin:scale * (cols.margin + tile_width)]))
    return image[:height, :width]

  def compress(self, image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) → .eic bytes. Other uint8 layouts are converted by image_io's rules."""
    return self.compress_with_latents(image)[0]

  def compress_with_latents(self, image: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The .eic bytes and the integer latents they code, from one analysis."""
    image = as_rgb(image)
    symbols = self.latents(image)
    payload = range_coding.encode(symbols, self.tables)
    header = bitstream.Header(self.fingerprint, image.shape[0], image.shape[1])
    return bitstream.pack(header, payload), symbols

  def decompress(self, data: bytes) -> np.ndarray:
    """.eic bytes → uint8 (H, W, 3); raises bitstream.BitstreamError for any bad input."""
    header, payload = bitstream.unpack(data, self.fingerprint, self.max_pixels)
    shape = (-(-header.height // DOWNSAMPLING), -(-header.width // DOWNSAMPLING),
             self.tables.minima.shape[0])
    symbols = range_coding.decode(payload, self.tables, shape)
    return self.reconstruct(symbols, header.height, header.width)


def _pad_for_tiles(array: np.ndarray, rows: tiling.AxisTiles, cols: tiling.AxisTiles,
                   scale: int) -> np.ndarray:
  """Zero-pads (H, W, C) so that every tile window (in units of `scale` positions) lies inside:
  the margin before, and after up to the end of the last window."""
  def padding(axis: tiling.AxisTiles, length: int) -> tuple[int, int]:
    end = scale * (axis.starts[-1] + axis.size)  # in padded coordinates
    return scale * axis.margin, end - scale * axis.margin - length
  return np.pad(array, (padding(rows, array.shape[0]), padding(cols, array.shape[1]), (0, 0)))


def as_rgb(image: np.ndarray) -> np.ndarray:
  """Validates a uint8 image and converts (H, W), (H, W, 1) and (H, W, 4) to (H, W, 3)."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"expected a uint8 image, got {image.dtype}")
  if image.ndim == 3 and image.shape[2] == 1:
    image = image[:, :, 0]
  if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
    raise ValueError(f"expected an image of shape (H, W, 3), got {image.shape}")
  if min(image.shape[:2]) < 1:
    raise ValueError(f"empty image of shape {image.shape}")
  if image.ndim == 3 and image.shape[2] == 3:
    return image
  return image_io.to_rgb(Image.fromarray(image))


def _fingerprint(tables: range_coding.CodingTables, synthesis_params: Any) -> bytes:
  digest = hashlib.sha256(tables.to_bytes())
  for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(synthesis_params),
                           key=lambda item: jax.tree_util.keystr(item[0])):
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
  return digest.digest()[:bitstream.FINGERPRINT_SIZE]


def export(workdir: str) -> tuple[Any, range_coding.CodingTables | None, int]:
  """Exports the latest training checkpoint of `workdir`: parameters and, where the range coder
  is installed, coding tables. Returns them with the step."""
  config = checkpoints.load_config(workdir)
  with checkpoints.checkpoint_manager(workdir) as manager:
    if manager.latest_step() is None:
      raise FileNotFoundError(f"{workdir} has no checkpoint to export")
    state = checkpoints.restore_state(
        manager, train.create_train_state(config, jax.random.PRNGKey(0)))
  tables = checkpoints.save_export(workdir, state.params, int(state.step), config.tail_mass)
  return state.params, tables, int(state.step)


def load_codec(workdir: str, max_pixels: int = DEFAULT_MAX_PIXELS, refine_steps: int = 0
               ) -> Codec:
  """Restores a codec from a training workdir or a shipped model's name (see list_models),
  bringing the export up to date first (see the module's docstring). `refine_steps`: see
  Codec."""
  workdir = models.resolve(workdir)
  config = checkpoints.load_config(workdir)
  trained = checkpoints.latest_step(workdir)
  exported = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  if trained is not None and (exported is None or trained > exported):
    tensorflow_setup.require_coding(f"a codec for {workdir}")
    params, tables, _ = export(workdir)
  else:
    params, tables, step = checkpoints.restore_export(workdir)
    if tables is None:
      tensorflow_setup.require_coding(f"building the coding tables of {workdir}")
      tables = checkpoints.save_export(workdir, params, step, config.tail_mass)
  return Codec(config, params, tables, max_pixels, refine_steps=refine_steps)


def ship(workdir: str, destination: str, record: dict) -> dict:
  """Writes an inference-only copy of a workdir (config, latest export, and `record` with the
  copy's size in bytes added, as training.json) to `destination`, replacing it whole. Returns
  the record written."""
  load_codec(workdir)  # exports the latest checkpoint if the export is older
  step = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  parent = os.path.dirname(os.path.abspath(destination))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(dir=parent, prefix=".tmp-")
  os.chmod(staging, atomic_files.default_mode(directory=True))
  try:
    shutil.copy(os.path.join(workdir, checkpoints.CONFIG_FILE), staging)
    shutil.copytree(os.path.join(workdir, checkpoints.EXPORT_DIR, str(step)),
                    os.path.join(staging, checkpoints.EXPORT_DIR, str(step)))
    size = sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(staging) for name in names)
    record = {**record, "size_bytes": size}
    with open(os.path.join(staging, models.RECORD_FILE), "w") as stream:
      json.dump(record, stream, indent=2)
    if os.path.exists(destination):
      shutil.rmtree(destination)
    os.replace(staging, destination)
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging)
  return record
