import numpy as np
import pytest
from PIL import Image

from eic_jax.runtime import atomic_files
from eic_jax.runtime import image_io
from tests.conftest import photo


def _saved(tmp_path, image, name, **kwargs):
  path = tmp_path / name
  image.save(path, **kwargs)
  return path


def test_rgb_png_and_jpeg_read_unchanged_as_uint8(tmp_path):
  pixels = photo("coffee", (30, 40))
  assert np.array_equal(image_io.read_image(_saved(tmp_path, Image.fromarray(pixels), "a.png")),
                        pixels)
  jpeg = image_io.read_image(_saved(tmp_path, Image.fromarray(pixels), "a.jpg"))
  assert jpeg.shape == (30, 40, 3) and jpeg.dtype == np.uint8


def test_conversion_rules(tmp_path):
  gray = photo("camera", (20, 30))
  out = image_io.read_image(_saved(tmp_path, Image.fromarray(gray), "g.png"))
  assert np.array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))

  rgba = np.zeros((4, 4, 4), np.uint8)
  rgba[..., 0] = 200
  rgba[:2, :, 3] = 255  # top half opaque red, bottom transparent
  out = image_io.read_image(_saved(tmp_path, Image.fromarray(rgba, "RGBA"), "t.png"))
  assert np.array_equal(out[0, 0], [200, 0, 0]) and np.array_equal(out[3, 0], [255, 255, 255])

  sixteen = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
  out = image_io.read_image(_saved(tmp_path, Image.fromarray(sixteen), "s.png"))
  assert np.array_equal(out[..., 0], np.round(sixteen * 255.0 / 65535).astype(np.uint8))

  palette = Image.fromarray(photo("coffee", (10, 10))).convert("P")
  out = image_io.read_image(_saved(tmp_path, palette, "p.png"))
  assert np.array_equal(out, np.asarray(palette.convert("RGB")))

  cmyk = Image.fromarray(photo("coffee", (10, 10))).convert("CMYK")
  assert image_io.read_image(_saved(tmp_path, cmyk, "c.jpg")).shape == (10, 10, 3)


def test_unreadable_and_oversized_images_name_the_file(tmp_path):
  text = tmp_path / "x.png"
  text.write_text("not an image")
  with pytest.raises(image_io.ImageReadError, match=f"{text}: not a readable image"):
    image_io.read_image(text)
  full = _saved(tmp_path, Image.fromarray(photo("coffee", (64, 64))), "full.png")
  truncated = tmp_path / "truncated.png"
  truncated.write_bytes(full.read_bytes()[:200])
  with pytest.raises(image_io.ImageReadError, match="truncated.png"):
    image_io.read_image(truncated)
  with pytest.raises(image_io.ImageReadError, match="more than the limit of 100"):
    image_io.read_image(full, max_pixels=100)
  with pytest.raises(image_io.ImageReadError, match="no such file"):
    image_io.read_image(tmp_path / "missing.png")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
  target = tmp_path / "out.bin"
  with pytest.raises(RuntimeError):
    with atomic_files.atomic_write(str(target)) as stream:
      stream.write(b"partial")
      raise RuntimeError("interrupted")
  assert list(tmp_path.iterdir()) == []
