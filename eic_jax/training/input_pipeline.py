"""Training and validation images from file patterns or tensorflow-datasets splits.

Training: every image is decoded once with Pillow (by image_io's rules) and, with `cache`, kept
in memory as uint8; each batch takes one random `patch_size` crop from each of `batch_size`
images, every image once per epoch in a shuffled order, optionally mirrored left–right. Batch k
depends only on (seed, k), so a pool of threads prepares the next batches in any order and the
stream is the same for the same seed. Images smaller than the crop in either dimension are
skipped, and the log says which. Validation: centre crops read once into memory, so every
evaluation sees the same pixels.

Written here rather than with grain or tf.data: once the images are decoded a crop is an array
slice, which needs no pipeline framework, and the releases of grain that install beside
TensorFlow 2.17 (≤ 0.2.10, for its protobuf) and beside the newest JAX are not the same.
"""

import collections
import concurrent.futures
import functools
import glob
import io
import logging
import os
from typing import Callable, Iterator, Sequence

import jax
import numpy as np
from PIL import Image

from eic_jax.runtime import image_io
from eic_jax.training import parallel


def list_files(patterns: str) -> list[str]:
  """Expands comma-separated glob patterns into a sorted list of files."""
  files = set()
  for pattern in [p.strip() for p in patterns.split(",") if p.strip()]:
    files.update(f for f in glob.glob(os.path.expanduser(pattern), recursive=True)
                 if os.path.isfile(f))
  if not files:
    raise FileNotFoundError(f"No image files match the pattern {patterns!r}")
  return sorted(files)


def large_enough(files: Sequence[str], patch_size: int) -> list[str]:
  """The files at least `patch_size` in both dimensions; logs the ones skipped."""
  kept, skipped = [], []
  for path in files:
    height, width = image_io.image_size(path)
    (kept if min(height, width) >= patch_size else skipped).append(path)
  if skipped:
    logging.info("Skipping %d of %d images smaller than %dx%d: %s", len(skipped), len(files),
                 patch_size, patch_size, ", ".join(os.path.basename(f) for f in skipped[:10]))
  if not kept:
    raise ValueError(f"None of the {len(files)} images is at least {patch_size}x{patch_size}; "
                     "lower patch_size or add larger images")
  return kept


def _decode_bytes(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as image:
    image.load()
    return image_io.to_rgb(image)


def _tfds_images(spec: str, patch_size: int) -> list[bytes]:
  """The encoded images, at least `patch_size` in both dimensions, of a tensorflow-datasets
  split named 'tfds:NAME[:SPLIT]', read once; they are decoded like files."""
  _, name, *split = spec.split(":")
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ValueError(f"{spec!r} needs tensorflow-datasets, with TensorFlow: pip install "
                     f"'eic_jax[coding,tfds]' (in a checkout: pip install -e '.[coding,tfds]')"
                     ) from error
  dataset = tfds.load(name, split=split[0] if split else "train",
                      decoders={"image": tfds.decode.SkipDecoding()})
  encoded = []
  for example in tfds.as_numpy(dataset):
    with Image.open(io.BytesIO(example["image"])) as image:
      if min(image.size) >= patch_size:
        encoded.append(example["image"])
  if not encoded:
    raise ValueError(f"{spec!r} has no image of at least {patch_size}x{patch_size}")
  return encoded


def _loaders(patterns: str, patch_size: int) -> list[Callable[[], np.ndarray]]:
  """Every image of at least `patch_size`, each as a function that decodes it to uint8
  (H, W, 3)."""
  if patterns.startswith("tfds:"):
    return [lambda data=data: _decode_bytes(data) for data in _tfds_images(patterns, patch_size)]
  return [lambda path=path: image_io.read_image(path)
          for path in large_enough(list_files(patterns), patch_size)]


def image_loaders(patterns: str, patch_size: int) -> list[Callable[[], np.ndarray]]:
  """This process's share of the images of at least `patch_size`: disjoint when several
  processes train together."""
  loaders = parallel.shard(_loaders(patterns, patch_size))
  if not loaders:
    raise ValueError(f"{patterns!r} has fewer usable images than the {jax.process_count()} "
                     "processes")
  return loaders


_PIXEL = np.dtype((np.void, 3))


def _pixels(image: np.ndarray) -> np.ndarray:
  """(H, W) view of a uint8 (H, W, 3) array whose pixels are contiguous."""
  return image.view(_PIXEL)[..., 0]


def default_threads() -> int:
  """Threads that decode images: one per core, at most 8."""
  return min(8, os.cpu_count() or 1)


class RandomCrops:
  """Batches of random crops (batch_size, patch_size, patch_size, 3) uint8 from `loaders`, or
  (batch_size, patch_size, patch_size, …) of other arrays (latents): batch k is a function of
  (seed, k) alone."""

  def __init__(self, loaders: Sequence[Callable[[], np.ndarray]], batch_size: int,
               patch_size: int, seed: int, cache: bool = True, flips: bool = False,
               threads: int | None = None):
    self._threads = threads or default_threads()
    self._loaders = loaders
    self._batch_size = batch_size
    self._patch_size = patch_size
    self._seed = seed
    self._flips = flips
    self._images = None
    if cache:
      with concurrent.futures.ThreadPoolExecutor(self._threads) as pool:
        self._images = list(pool.map(lambda load: np.ascontiguousarray(load()), loaders))
      logging.info("Decoded %d training images (%.0f MB)", len(self._images),
                   sum(image.nbytes for image in self._images) / 1e6)
    # The threads share an epoch's order; a few epochs are in use at a time.
    self._order = functools.lru_cache(maxsize=4)(self._shuffled)

  def _shuffled(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self._seed, 0, epoch]).permutation(len(self._loaders))

  def indices(self, k: int) -> list[int]:
    """The images of batch k: positions k·B … (k+1)·B − 1 of the epochs' shuffled orders."""
    count = len(self._loaders)
    positions = range(k * self._batch_size, (k + 1) * self._batch_size)
    return [int(self._order(p // count)[p % count]) for p in positions]

  def batch(self, k: int) -> np.ndarray:
    rng = np.random.default_rng([self._seed, 1, k])
    size = self._patch_size
    out = None
    for slot, index in enumerate(self.indices(k)):
      image = (self._images[index] if self._images is not None else
               np.ascontiguousarray(self._loaders[index]()))
      if out is None:
        out = np.empty((self._batch_size, size, size) + image.shape[2:], image.dtype)
      top = rng.integers(0, image.shape[0] - size + 1)
      left = rng.integers(0, image.shape[1] - size + 1)
      if image.dtype == np.uint8 and image.shape[2:] == (3,):
        # Pixels as 3-byte items: NumPy copies a mirrored row of them 3x faster than a
        # mirrored (width, 3) uint8 row, which it copies byte by byte.
        image, target = _pixels(image), _pixels(out[slot])
      else:
        target = out[slot]
      crop = image[top:top + size, left:left + size]
      target[...] = crop[:, ::-1] if self._flips and rng.random() < 0.5 else crop
    return out

  def __iter__(self) -> Iterator[np.ndarray]:
    """Batches 0, 1, 2, … without end, prepared ahead by a thread pool."""
    with concurrent.futures.ThreadPoolExecutor(self._threads) as pool:
      ahead = collections.deque(pool.submit(self.batch, k) for k in range(2 * self._threads))
      k = len(ahead)
      while True:
        batch = ahead.popleft().result()
        ahead.append(pool.submit(self.batch, k))
        k += 1
        yield batch


def train_batches(patterns: str, batch_size: int, patch_size: int, seed: int,
                  cache: bool = True, flips: bool = False) -> Iterator[np.ndarray]:
  """An endless iterator of uint8 batches (batch_size, patch_size, patch_size, 3); batch_size
  is this process's share of the global batch."""
  return iter(RandomCrops(image_loaders(patterns, patch_size), batch_size, patch_size, seed,
                          cache=cache, flips=flips))


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  top = (image.shape[0] - size) // 2
  left = (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


def validation_images(patterns: str, patch_size: int, limit: int | None = None) -> np.ndarray:
  """Centre crops (n, patch_size, patch_size, 3) uint8 of at most `limit` images."""
  loaders = _loaders(patterns, patch_size)
  return np.stack([centre_crop(load(), patch_size) for load in loaders[:limit]])
