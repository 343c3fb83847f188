"""Image codec from a trained model: load_codec, compress and decompress.

The codec reads a workdir's export (parameters and integer coding tables; see export.py) and
writes nothing there. It knows images, tiles and files; what is coded after the analysis
transform, and how, is the model's latent codec (see models/base.py), so it serves every
architecture.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from eic_jax import models
from eic_jax.codec import effort as effort_lib
from eic_jax.codec import export as export_lib
from eic_jax.codec import latent_refinement
from eic_jax.codec import tiling
from eic_jax.coder import bitstream
from eic_jax.coder import coders
from eic_jax.coder.tables import IntegerTables
from eic_jax.entropy_models import entropy_bottleneck
from eic_jax.entropy_models.quantization import round_around
from eic_jax.layers.padding import extend_edges
from eic_jax.models.base import EncodedLatents
from eic_jax.models.base import pad_grid
from eic_jax.models.base import RefinementContext
from eic_jax.models.objective import Objective
from eic_jax.runtime import atomic_files
from eic_jax.runtime import compiler_options
from eic_jax.runtime import image_io
from eic_jax.storage import checkpoints
from eic_jax.storage import shipped


class Codec:
  """Compresses uint8 RGB images to bytes and back with one trained model."""

  def __init__(self, config: ml_collections.ConfigDict, params: Any,
               tables: dict[str, IntegerTables], max_pixels: int = bitstream.DEFAULT_MAX_PIXELS,
               max_tile: int = tiling.MAX_TILE, refine_steps: int = 0, name: str = "",
               step: int = 0, coder: str | None = None):
    """`refine_steps`: optimise each image's latents for that many steps before coding them
    (see latent_refinement.py); 0 codes the analysis transform's latents as they are.
    `name` and `step` identify the weights in the files this codec writes. `coder`: the
    entropy coder that writes them (coder/coders.py; None: the preferred one installed);
    files are read with the coder they name."""
    if isinstance(refine_steps, bool) or not isinstance(refine_steps, int) or refine_steps < 0:
      raise ValueError(f"refine_steps must be a non-negative integer, got {refine_steps!r}")
    self.config = config
    self.params = params
    self.tables = tables
    self.max_pixels = max_pixels
    self.max_tile = max_tile
    self.refine_steps = refine_steps
    self.coder = coders.get(coder)
    self.architecture = models.architecture(config)
    self.model = models.create(config)
    self.objective = Objective.from_config(config)
    self.latent_codec = self.model.latent_codec(params, tables)
    self.name = name
    self.step = step
    # One compilation per tile shape; tiles come in a few bucketed sizes (see tiling.py).
    options = compiler_options.jit_kwargs()
    self._analyze = jax.jit(self._analyze_tile, **options)
    self._synthesize = jax.jit(self._synthesize_tile, **options)
    self._refine_chunk = jax.jit(self._refine_advance, static_argnames="count", **options)
    self._refine_end = jax.jit(self._refine_finish, **options)
    self._refine_side = jax.jit(self._refine_side_latents, **options)
    # Called with (steps done, steps in all) as latent refinement advances, e.g. by a progress
    # bar; None: silent.
    self.refine_progress = None
    self.fingerprint = _fingerprint(tables, params, self.model.decoder_modules)

  def _analyze_tile(self, params, pixels, region):
    return self.model.apply({"params": params}, pixels[None].astype(jnp.float32), region,
                            method="analyze")[0]

  def _synthesize_tile(self, params, y_hat, region):
    x_hat = self.model.apply({"params": params}, y_hat[None], region, method="synthesize")
    return jnp.round(jnp.clip(x_hat[0], 0.0, 255.0)).astype(jnp.uint8)

  def _tile_problem(self, params, y, context, offsets, in_signal, variable, pixels, inside,
                    region, key) -> latent_refinement.Problem:
    """The refinement of one tile window's latents where `variable`, for the rate of those
    latents (given the model's per-position `context`) and the squared error of the pixels
    `inside`, weighted by the model's λ. Elsewhere the decoder sees them rounded around
    `offsets`, and zero outside the signal (`in_signal`)."""
    pixels = pixels.astype(jnp.float32)
    fixed = jnp.where(in_signal, round_around(y, offsets), 0.0)

    def loss(y_hat):
      x_hat = self.model.apply({"params": params}, y_hat[None], region, method="synthesize")
      bits = jnp.where(variable[..., None],
                       self.model.apply({"params": params}, y_hat[None], context[None],
                                        method="latent_bits")[0], 0.0)
      # The model's own objective over the tile's own pixels, as in training.
      bpp = jnp.sum(bits) / jnp.maximum(jnp.sum(inside), 1)
      distortion = self.objective.distortion(pixels[None], jnp.clip(x_hat, 0.0, 255.0),
                                             inside[None].astype(jnp.float32))
      return self.objective.loss(bpp, distortion[0])

    return latent_refinement.Problem(loss, fixed, variable, offsets, key, self.refine_steps)

  def _refine_advance(self, params, carry, first, tile, count):
    return latent_refinement.advance(self._tile_problem(params, *tile), carry, first, count)

  def _refine_finish(self, params, refined, tile):
    return latent_refinement.finish(self._tile_problem(params, *tile), refined, tile[0])

  def _refine_side_latents(self, params, z, offsets, y_hat, extent, side_extent, key):
    """Side latents z refined for the rate of themselves and of the quantised latents y_hat
    whose scales they predict; both grids zero-padded past their `side_extent` and `extent`."""
    variable = ((jnp.arange(z.shape[0]) < side_extent[0])[:, None]
                & (jnp.arange(z.shape[1]) < side_extent[1])[None, :])

    def loss(z_hat):
      bits = self.model.apply({"params": params}, z_hat[None], y_hat[None], extent,
                              method="side_rate")[0]
      return bits / (extent[0] * extent[1])

    return latent_refinement.refine(loss, z, z, variable, offsets, key,
                                    latent_refinement.SIDE_STEPS,
                                    latent_refinement.SIDE_LEARNING_RATE)

  def _side_refined(self, y: np.ndarray, refinement: RefinementContext) -> RefinementContext:
    """The context after refining its side latents for the rate of latents `y` as they will
    be coded (rounded around the context's offsets)."""
    side = refinement.side
    y_hat = np.asarray(round_around(y, refinement.offsets), np.float32)
    z = self._refine_side(self.params, pad_grid(side), refinement.side_offsets,
                          pad_grid(y_hat), np.array(y.shape[:2], np.int32),
                          np.array(side.shape[:2], np.int32), jax.random.PRNGKey(1))
    return self.latent_codec.refinement_context(
        y, side=np.asarray(z)[:side.shape[0], :side.shape[1]])

  def _plan(self, height: int, width: int) -> tuple[tiling.AxisTiles, tiling.AxisTiles]:
    scale, margin = self.model.downsampling, self.model.tile_margin
    return (tiling.plan_axis(-(-height // scale), self.max_tile, margin),
            tiling.plan_axis(-(-width // scale), self.max_tile, margin))

  def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
    scale = self.model.downsampling
    return (-(-height // scale), -(-width // scale), self.model.latent_channels)

  def compiled_transforms(self, height: int, width: int):
    """(analysis, synthesis, tile count) for an image of this size: the compiled per-tile
    transforms, whose cost_analysis() XLA fills with their floating-point work."""
    rows, cols = self._plan(height, width)
    scale = self.model.downsampling
    region = jax.ShapeDtypeStruct((4,), jnp.int32)
    pixels = jax.ShapeDtypeStruct((scale * rows.size, scale * cols.size, 3), jnp.uint8)
    latents = jax.ShapeDtypeStruct((rows.size, cols.size, self.model.latent_channels),
                                   jnp.float32)
    return (self._analyze.lower(self.params, pixels, region).compile(),
            self._synthesize.lower(self.params, latents, region).compile(),
            len(rows.starts) * len(cols.starts))

  def latents(self, image: np.ndarray) -> np.ndarray:
    """The analysis transform's latents (⌈H/16⌉, ⌈W/16⌉, C) of a uint8 image, tile by tile."""
    return self._analysis(as_rgb(image))[0]

  def _analysis(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(latents, the image padded for tiles)."""
    height, width = image.shape[:2]
    if height * width > self.max_pixels:
      raise ValueError(f"{width}x{height} image has more than the limit of {self.max_pixels} "
                       "pixels")
    rows, cols = self._plan(height, width)
    scale = self.model.downsampling
    # The decoder crops the extension away, whatever it was.
    extended = extend_edges(image, scale)
    padded = _pad_for_tiles(extended, rows, cols, scale)
    y = np.empty(self.latent_shape(height, width), np.float32)
    for top, left, tile_height, tile_width in tiling.windows(rows, cols):
      window = padded[scale * top:scale * (top + rows.size),
                      scale * left:scale * (left + cols.size)]
      region = np.array([scale * (top - rows.margin), scale * (left - cols.margin),
                         scale * rows.length, scale * cols.length], np.int32)
      tile = self._analyze(self.params, window, region)
      y[top:top + tile_height, left:left + tile_width] = np.asarray(
          tile[rows.margin:rows.margin + tile_height, cols.margin:cols.margin + tile_width])
    return y, padded

  def encode(self, image: np.ndarray) -> EncodedLatents:
    """The coded latents of a uint8 image: analysis, refinement if asked, the model's coding."""
    image = as_rgb(image)
    y, padded = self._analysis(image)
    if not self.refine_steps:
      return self.latent_codec.encode(y, self.coder)
    self.objective.check_size(*image.shape[:2], "an image refined")
    refinement = self.latent_codec.refinement_context(y)
    rows, cols = self._plan(*image.shape[:2])
    y = self._refined(y, refinement.context, refinement.offsets, padded, rows, cols,
                      *image.shape[:2])
    # Then the side latents, where the model offers them, for the rate of the refined latents
    # (on three Set14 photos with bmshj2018-mse-0.0067: 0–1.2 % fewer bits; refining them
    # before the latents too gained no more).
    if refinement.side is not None:
      refinement = self._side_refined(y, refinement)
    return self.latent_codec.encode(y, self.coder, refinement.refined_from)

  def _refined(self, y: np.ndarray, context: np.ndarray, offsets: np.ndarray,
               padded_image: np.ndarray, rows: tiling.AxisTiles, cols: tiling.AxisTiles,
               height: int, width: int) -> np.ndarray:
    """`y` refined tile by tile: each tile's core latents for the rate of the core and the
    distortion of the core's pixels, with the latents around it as already coded (tiles
    refined earlier) or as the analysis gave them (later ones)."""
    scale = self.model.downsampling
    # Per channel or per latent (a model whose means move the quantisation points).
    offsets = _pad_for_tiles(np.broadcast_to(offsets, y.shape).astype(np.float32), rows, cols, 1)
    y = _pad_for_tiles(y, rows, cols, 1)
    context = _pad_for_tiles(context, rows, cols, 1)
    in_signal = _pad_for_tiles(np.ones((rows.length, cols.length, 1), bool), rows, cols, 1)
    key = jax.random.PRNGKey(0)  # the same file for the same image, every time
    windows = list(tiling.windows(rows, cols))
    total = len(windows) * self.refine_steps
    for index, (top, left, tile_height, tile_width) in enumerate(windows):
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
      tile = (y[latent_window], context[latent_window], offsets[latent_window],
              in_signal[latent_window],
              variable, padded_image[pixel_window], inside, region,
              jax.random.fold_in(key, index))
      carry = latent_refinement.start(jnp.asarray(tile[0]))
      for first in range(0, self.refine_steps, latent_refinement.CHUNK_STEPS):
        count = min(latent_refinement.CHUNK_STEPS, self.refine_steps - first)
        carry = self._refine_chunk(self.params, carry, first, tile, count=count)
        if self.refine_progress is not None:
          jax.block_until_ready(carry)
          self.refine_progress(index * self.refine_steps + first + count, total)
      refined = self._refine_end(self.params, carry[0], tile)
      y[latent_window][core] = np.asarray(refined)[core]
    return y[rows.margin:rows.margin + rows.length, cols.margin:cols.margin + cols.length]

  def symbol_probabilities(self, channel: int, symbols: np.ndarray) -> np.ndarray:
    """The factorized density's probability of integer `symbols` (relative to the median) in
    `channel` (bls2017's latents; bmshj2018's side latents)."""
    density = jax.tree_util.tree_map(lambda a: a[channel:channel + 1],
                                     self.params["entropy_bottleneck"]["density"])
    medians = self.tables["entropy_bottleneck"].medians
    centres = jnp.asarray(symbols, jnp.float32)[None] + medians[channel]
    return np.asarray(entropy_bottleneck.likelihoods(density, centres.T).T[0])

  def reconstruct(self, y_hat: np.ndarray, height: int, width: int) -> np.ndarray:
    """The uint8 image (height, width, 3) decoded from quantised latents, tile by tile."""
    rows, cols = self._plan(height, width)
    y_hat = _pad_for_tiles(np.asarray(y_hat, np.float32), rows, cols, 1)
    scale = self.model.downsampling
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

  def compress_with_latents(self, image: np.ndarray) -> tuple[bytes, EncodedLatents]:
    """The .eic bytes and what they code, from one analysis."""
    image = as_rgb(image)
    encoded = self.encode(image)
    header = bitstream.Header(self.fingerprint, image.shape[0], image.shape[1],
                              architecture=self.architecture, model=self.name, step=self.step,
                              index_checksum=bitstream.index_checksum(encoded.indexes),
                              coder=self.coder.name)
    data = bitstream.pack(header, encoded.streams)
    if image.size < len(data):
      # A tiny image, whose pixels may take fewer bytes than its coded latents: then the file
      # holds them, losslessly.
      raw = bitstream.pack_raw(dataclasses.replace(header, index_checksum=None), image)
      data = min(data, raw, key=len)
    return data, encoded

  def decompress(self, data: bytes) -> np.ndarray:
    """.eic bytes → uint8 (H, W, 3); raises bitstream.BitstreamError for any bad input, and
    MissingDependencyError for a file whose coder is not installed."""
    header, streams = bitstream.unpack(data)
    bitstream.check_size(header, self.max_pixels)
    if header.raw:  # pixels, which need no model
      return bitstream.raw_pixels(header, streams)
    self._check_model(header)
    if len(streams) != self.latent_codec.num_streams:
      raise bitstream.BitstreamError(
          f"corrupted file: {len(streams)} streams where {self.architecture} writes "
          f"{self.latent_codec.num_streams}")

    def verify(indexes: np.ndarray) -> None:
      if (header.index_checksum is not None
          and bitstream.index_checksum(indexes) != header.index_checksum):
        raise bitstream.BitstreamError(
            "this decoder's entropy model differs from the encoder's: the coding-table indexes "
            "it computed do not match the file's checksum. The hyper-synthesis gave different "
            "floating-point scales here than where the file was written (another CPU, "
            "backend or library version); decode where it was encoded, or re-encode. See "
            "docs/bitstream.md.")

    if header.coder not in coders.CODERS:
      raise bitstream.BitstreamError(
          f"the file names the entropy coder {header.coder!r}, which this eic_jax does not know "
          f"(it knows {', '.join(coders.CODERS)})")
    coder = coders.get(header.coder)
    shape = self.latent_shape(header.height, header.width)
    y_hat = self.latent_codec.decode(streams, shape, verify, coder)
    return self.reconstruct(y_hat, header.height, header.width)

  def _check_model(self, header: bitstream.Header) -> None:
    if header.fingerprint == self.fingerprint:
      # The weights decide the architecture: a file naming another one with these weights'
      # fingerprint was altered behind a recomputed CRC.
      if header.architecture != self.architecture:
        raise bitstream.BitstreamError(
            f"the header names the architecture {header.architecture!r} with the fingerprint "
            f"of this {self.architecture} model: the file is damaged")
      return
    this = _describe(self.architecture, self.name, self.step, self.fingerprint)
    name, architecture, step = header.model, header.architecture, header.step
    written = ""
    # The shipped releases know the commit that holds earlier weights, and for version-1 files
    # (no name or step in the file) also which model and step wrote them.
    release = shipped.find_release(header.fingerprint.hex())
    if release:
      if header.version == 1:
        name, step = release[0], release[1]["step"]
      if release[1].get("commit"):
        written = f", the weights shipped in commit {release[1]['commit']}"
    written = (_describe(architecture, name, step, header.fingerprint) + written if name else
               f"a model with fingerprint {header.fingerprint.hex()}")
    if name and name == self.name and architecture == self.architecture:
      raise bitstream.BitstreamError(
          f"compressed with earlier weights of {name}: the file was written by {written}; "
          f"this copy is {this}. Decode it with the weights that wrote it (docs/usage.md: \"Files "
          "from earlier weights\")")
    raise bitstream.BitstreamError(
        f"compressed with a different model: the file was written by {written}; this is {this}")


def _describe(architecture: str, name: str, step: int, fingerprint: bytes) -> str:
  label = f"{name} ({architecture}, " if name else f"a {architecture} model ("
  return f"{label}training step {step:,}, fingerprint {fingerprint.hex()})"


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


def _fingerprint(tables: dict[str, IntegerTables], params: Any,
                 decoder_modules: tuple[str, ...]) -> bytes:
  """What a decoder depends on: the integer coding tables and the parameters it reads."""
  digest = hashlib.sha256(b"".join(table.to_bytes() for table in tables.values()))
  for module in decoder_modules:
    for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(params[module]),
                             key=lambda item: jax.tree_util.keystr(item[0])):
      digest.update(jax.tree_util.keystr(path).encode())
      digest.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
  return digest.digest()[:bitstream.FINGERPRINT_SIZE]


def load_codec(workdir: str, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS, refine_steps: int = 0,
               coder: str | None = None, effort: int | None = None) -> Codec:
  """Restores a codec from a training workdir or a shipped model's name (see list_models);
  reads only. An export older than the workdir's training, or without coding tables, raises
  StaleExportError naming the command that updates it (export.py). `refine_steps`, `coder`:
  see Codec; `effort`: an encoder effort level instead of `refine_steps`
  (effort.py)."""
  if effort is not None:
    if refine_steps:
      raise ValueError("give an effort or refinement steps, not both")
    refine_steps = effort_lib.effort_steps(effort)
  workdir = shipped.resolve(workdir)
  config = checkpoints.load_config(workdir)
  reason = export_lib.pending(workdir)
  if reason is not None:
    raise export_lib.StaleExportError(f"{workdir}: {reason}; bring it up to date with "
                                      f"{export_lib.command(workdir)}")
  params, arrays, step = checkpoints.restore_export(workdir)
  return Codec(config, params, export_lib.tables_from_arrays(arrays, config), max_pixels,
               refine_steps=refine_steps, coder=coder,
               name=os.path.basename(os.path.normpath(os.path.abspath(workdir))), step=step)


def ship(workdir: str, destination: str, describe: Callable[[Codec], dict],
         weights_dtype: Any = None) -> dict:
  """Writes an inference-only copy of a workdir to `destination`, replacing it whole: config,
  latest export (parameters stored in `weights_dtype`, e.g. np.float16; as trained if None) and
  as training.json the record `describe` gives for the shipped codec (the copy's weights, named
  after `destination`), with the copy's size in bytes added. Returns the record written."""
  export_lib.update(workdir)
  trained = load_codec(workdir)
  parent = os.path.dirname(os.path.abspath(destination))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(dir=parent, prefix=".tmp-")
  os.chmod(staging, atomic_files.default_mode(directory=True))
  try:
    shutil.copy(os.path.join(workdir, checkpoints.CONFIG_FILE), staging)
    if weights_dtype is None:
      shutil.copytree(os.path.join(workdir, checkpoints.EXPORT_DIR, str(trained.step)),
                      os.path.join(staging, checkpoints.EXPORT_DIR, str(trained.step)))
      params, tables = trained.params, trained.tables
    else:
      tables = export_lib.save(staging, trained.params, trained.step, trained.config,
                               weights_dtype)
      params = checkpoints.rounded_params(trained.params, weights_dtype)
    copy = Codec(trained.config, params, tables,
                    name=os.path.basename(os.path.normpath(os.path.abspath(destination))),
                    step=trained.step)
    record = describe(copy)
    record["weights_dtype"] = str(np.dtype(weights_dtype or np.float32))
    record["size_bytes"] = sum(os.path.getsize(os.path.join(folder, name))
                               for folder, _, names in os.walk(staging) for name in names)
    with open(os.path.join(staging, shipped.RECORD_FILE), "w") as stream:
      json.dump(record, stream, indent=2)
    if os.path.exists(destination):
      shutil.rmtree(destination)
    os.replace(staging, destination)
  finally:
    if os.path.exists(staging):
      shutil.rmtree(staging)
  return record
