"""Training and validation images from file patterns.

Training: tf.data decodes each image once (optionally caching the decoded images in memory),
takes random `patch_size` crops, shuffles and batches them. Images smaller than the crop in
either dimension are skipped, and the log says which. Validation: centre crops read once into
memory, so every evaluation sees the same pixels.
"""

import glob
import logging
import os
from typing import Sequence

import jax
import numpy as np

from eic_jax import image_io
from eic_jax import parallel
from eic_jax.tensorflow_setup import tf


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


def _decode(path: tf.Tensor) -> tf.Tensor:
  return tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.uint8,
                            expand_animations=False)


def _tfds_images(spec: str, patch_size: int) -> tf.data.Dataset:
  """Images of a tensorflow-datasets split named 'tfds:NAME[:SPLIT]', smaller ones dropped."""
  _, name, *split = spec.split(":")
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ValueError(f"{spec!r} needs tensorflow-datasets: pip install tensorflow-datasets"
                     ) from error
  dataset = tfds.load(name, split=split[0] if split else "train", shuffle_files=True)
  return dataset.map(lambda example: example["image"]).filter(
      lambda image: tf.reduce_min(tf.shape(image)[:2]) >= patch_size)


def _images(patterns: str, patch_size: int) -> tuple[tf.data.Dataset, int]:
  """This process's decoded uint8 images of at least `patch_size` (a disjoint share of the
  files when several processes train together), and a shuffle buffer size for them."""
  if patterns.startswith("tfds:"):
    dataset = _tfds_images(patterns, patch_size)
    return dataset.shard(jax.process_count(), jax.process_index()), 64
  files = parallel.shard(large_enough(list_files(patterns), patch_size))
  if not files:
    raise ValueError(f"{patterns!r} has fewer usable images than the {jax.process_count()} "
                     "processes")
  dataset = tf.data.Dataset.from_tensor_slices(files).map(
      _decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset, len(files)


def train_dataset(patterns: str, batch_size: int, patch_size: int, seed: int,
                  cache: bool = True) -> tf.data.Dataset:
  """An endless dataset of uint8 batches (batch_size, patch_size, patch_size, 3); batch_size
  is this process's share of the global batch."""
  dataset, shuffle_buffer = _images(patterns, patch_size)
  if cache:
    dataset = dataset.cache()
  dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  crop_seeds = tf.data.Dataset.random(seed=seed).batch(2)
  dataset = tf.data.Dataset.zip((dataset, crop_seeds)).map(
      lambda image, crop_seed: tf.image.stateless_random_crop(
          image, (patch_size, patch_size, 3), crop_seed),
      num_parallel_calls=tf.data.AUTOTUNE)
  return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  top = (image.shape[0] - size) // 2
  left = (image.shape[1] - size) // 2
  return image[top:top + size, left:left + size]


def validation_images(patterns: str, patch_size: int, limit: int | None = None) -> np.ndarray:
  """Centre crops (n, patch_size, patch_size, 3) uint8 of at most `limit` images."""
  if patterns.startswith("tfds:"):
    images = _tfds_images(patterns, patch_size).take(limit or -1).as_numpy_iterator()
  else:
    images = (image_io.read_image(f)
              for f in large_enough(list_files(patterns), patch_size)[:limit])
  return np.stack([centre_crop(image, patch_size) for image in images])
