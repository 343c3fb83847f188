"""The training loader: deterministic random crops, every image once per epoch, flips, caching."""

import numpy as np
import pytest
from PIL import Image

from eic_jax.training import input_pipeline


@pytest.fixture(scope="module")
def numbered_dir(tmp_path_factory):
  """Six flat 40x48 images, image i filled with 10·(i + 1), and a gradient so flips show."""
  directory = tmp_path_factory.mktemp("numbered")
  for i in range(6):
    image = np.full((40, 48, 3), 10 * (i + 1), np.uint8)
    image[:, :, 1] = np.arange(48, dtype=np.uint8)[None, :]
    Image.fromarray(image).save(directory / f"{i}.png")
  return directory


def _batches(pattern, count, **options):
  batches = input_pipeline.train_batches(pattern, **options)
  return [next(batches) for _ in range(count)]


def test_the_same_seed_gives_the_same_batches_and_another_seed_others(photo_dir):
  options = {"batch_size": 3, "patch_size": 32}
  first = _batches(str(photo_dir / "*"), 5, seed=7, **options)
  again = _batches(str(photo_dir / "*"), 5, seed=7, **options)
  other = _batches(str(photo_dir / "*"), 5, seed=8, **options)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(first, other))
  assert first[0].shape == (3, 32, 32, 3) and first[0].dtype == np.uint8


def test_every_image_once_per_epoch_in_a_new_order_each_epoch(numbered_dir):
  batches = _batches(str(numbered_dir / "*.png"), 4, batch_size=3, patch_size=40, seed=0)
  labels = [int(crop[0, 0, 0]) // 10 - 1 for batch in batches for crop in batch]
  epochs = [labels[0:6], labels[6:12]]
  for epoch in epochs:
    assert sorted(epoch) == list(range(6))
  assert epochs[0] != epochs[1]


def test_crops_lie_inside_the_image_and_vary(numbered_dir):
  batches = _batches(str(numbered_dir / "*.png"), 6, batch_size=2, patch_size=16, seed=3)
  offsets = {int(crop[0, 0, 1]) for batch in batches for crop in batch}
  assert len(offsets) > 3 and max(offsets) <= 48 - 16
  for batch in batches:
    for crop in batch:  # the gradient runs left to right, one level per column
      np.testing.assert_array_equal(np.diff(crop[0, :, 1].astype(int)), 1)


def test_flips_mirror_about_half_of_the_crops(numbered_dir):
  batches = _batches(str(numbered_dir / "*.png"), 20, batch_size=2, patch_size=16, seed=1,
                     flips=True)
  directions = [int(np.sign(np.diff(crop[0, :, 1].astype(int))).mean())
                for batch in batches for crop in batch]
  assert set(directions) == {-1, 1}
  assert 10 <= directions.count(-1) <= 30


def test_uncached_decoding_gives_the_cached_batches(photo_dir):
  options = {"batch_size": 2, "patch_size": 48, "seed": 5}
  cached = _batches(str(photo_dir / "*"), 4, cache=True, **options)
  uncached = _batches(str(photo_dir / "*"), 4, cache=False, **options)
  for a, b in zip(cached, uncached):
    np.testing.assert_array_equal(a, b)


def test_a_broken_image_is_an_error_naming_it(tmp_path, photo_dir):
  for path in sorted(photo_dir.glob("*.png"))[:2]:
    (tmp_path / path.name).write_bytes(path.read_bytes())
  (tmp_path / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
  with pytest.raises(ValueError, match="zz.png: not a readable image"):
    next(input_pipeline.train_batches(str(tmp_path / "*.png"), 2, 32, seed=0))


def test_tfds_specs_load_a_split_of_tensorflow_datasets():
  """`tfds:NAME:SPLIT` through tensorflow-datasets (its mock data: no download), where it is
  installed (the [tfds] extra); without it, the spec names the install command."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError:
    with pytest.raises(ValueError, match=r"needs tensorflow-datasets, with TensorFlow: "
                       r"pip install 'eic_jax\[coding,tfds\]'"):
      input_pipeline.image_loaders("tfds:clic:train", 8)
    pytest.skip("tensorflow-datasets is not installed (the [tfds] extra)")
  import io  # pylint: disable=import-outside-toplevel
  with tfds.testing.mock_data(num_examples=6):
    encoded = [example["image"] for example in tfds.as_numpy(tfds.load(
        "clic", split="validation", decoders={"image": tfds.decode.SkipDecoding()}))]
    expected = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in encoded]
    patch = sorted(min(image.shape[:2]) for image in expected)[3]  # leaves the smallest out
    loaders = input_pipeline.image_loaders("tfds:clic:validation", patch)
    kept = [image for image in expected if min(image.shape[:2]) >= patch]
    assert len(loaders) == len(kept) and 0 < len(kept) < len(expected)
    for loader, image in zip(loaders, kept):
      np.testing.assert_array_equal(loader(), image)
    batch = next(iter(input_pipeline.RandomCrops(loaders, 3, patch, seed=0)))
    assert batch.shape == (3, patch, patch, 3) and batch.dtype == np.uint8
    with pytest.raises(ValueError, match="has no image of at least"):
      input_pipeline.image_loaders("tfds:clic:validation", 10_000)
