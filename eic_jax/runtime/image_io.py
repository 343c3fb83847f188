"""Reading any image Pillow opens as 8-bit RGB, and writing files atomically.

Conversion rules, applied in this order:
1. EXIF orientation is applied, so pixels are in display order.
2. 16- and 32-bit integer samples are scaled to 8 bits (0..65535 → 0..255, rounded);
   floating-point samples are taken as 0..1 and scaled to 0..255.
3. Palette images are expanded; an alpha channel (RGBA, LA, palette transparency) is
   composited over white.
4. Grayscale is replicated into three channels; CMYK, YCbCr and other modes are converted to
   RGB by Pillow.
"""

import os

import numpy as np
from PIL import features, Image, ImageOps

from eic_jax.runtime import atomic_files

# Pillow's decompression-bomb guard is replaced by the caller's explicit pixel limit.
Image.MAX_IMAGE_PIXELS = None


class ImageReadError(ValueError):
  """An input image cannot be read; the message names the file and the reason."""


def _to_8bit(image: Image.Image) -> Image.Image:
  if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
    samples = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or samples.max(initial=0) <= 65535 else 2.0**32 - 1
    return Image.fromarray(np.clip(np.round(samples * 255.0 / top), 0, 255).astype(np.uint8), "L")
  if image.mode == "F":
    samples = np.asarray(image, dtype=np.float64)
    return Image.fromarray(np.clip(np.round(samples * 255.0), 0, 255).astype(np.uint8), "L")
  return image


def to_rgb(image: Image.Image) -> np.ndarray:
  """Converts a Pillow image to a uint8 array (H, W, 3) by the module's rules."""
  image = _to_8bit(ImageOps.exif_transpose(image))
  if image.mode == "P":
    image = image.convert("RGBA" if "transparency" in image.info else "RGB")
  if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    image = Image.alpha_composite(background, rgba)
  return np.asarray(image.convert("RGB"), dtype=np.uint8)


def image_size(path: str) -> tuple[int, int]:
  """(height, width) from the file header, without decoding the pixels."""
  try:
    with Image.open(path) as image:
      width, height = image.size
  except (OSError, SyntaxError, ValueError) as error:
    raise ImageReadError(f"{path}: not a readable image ({error})") from error
  return height, width


def read_image(path: str, max_pixels: int | None = None) -> np.ndarray:
  """Reads an image file as uint8 RGB (H, W, 3); `max_pixels` is checked before decoding."""
  try:
    with Image.open(path) as image:
      width, height = image.size
      if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(
            f"{path}: {width}x{height} has {width * height} pixels, more than the limit of "
            f"{max_pixels}")
      image.load()
      return to_rgb(image)
  except ImageReadError:
    raise
  except FileNotFoundError as error:
    raise ImageReadError(f"{path}: no such file") from error
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
    raise ImageReadError(f"{path}: not a readable image ({error})") from error


def _lossless_formats() -> dict[str, tuple[str, dict]]:
  formats = {".png": ("PNG", {}), ".tif": ("TIFF", {}), ".tiff": ("TIFF", {})}
  if features.check("webp"):
    formats[".webp"] = ("WEBP", {"lossless": True, "quality": 100, "exact": True})
  return formats


# Decoded images are written losslessly, in the format their extension names.
LOSSLESS_FORMATS = _lossless_formats()


def write_image(path: str, pixels: np.ndarray) -> None:
  """Writes a uint8 (H, W, 3) array atomically, as PNG, lossless WebP or TIFF by the extension
  of `path`; other extensions are refused (a lossy format would change the decoded pixels)."""
  extension = os.path.splitext(path)[1].lower()
  if extension not in LOSSLESS_FORMATS:
    raise ValueError(f"{path}: decoded images are written as {', '.join(LOSSLESS_FORMATS)} "
                     "(lossless); choose one of these extensions")
  name, options = LOSSLESS_FORMATS[extension]
  with atomic_files.atomic_write(path) as stream:
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(stream, format=name, **options)
