"""Measuring one image through a codec for real: sizes, rate, distortion and timings."""

import math
import time

import numpy as np

from eic_jax.ops import msssim


def distortion(original: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
  """MSE and PSNR on the 0–255 scale; MS-SSIM and its dB form where the image is large enough."""
  difference = original.astype(np.float64) - reconstruction.astype(np.float64)
  mse = float(np.mean(difference**2))
  scores = {"mse": mse, "psnr": 10 * math.log10(255.0**2 / mse) if mse > 0 else math.inf}
  if min(original.shape[:2]) >= msssim.MIN_SIZE:
    value = float(msssim.ms_ssim(original[None], reconstruction[None])[0])
    scores["ms_ssim"] = value
    scores["ms_ssim_db"] = float(msssim.to_decibels(value)) if value < 1 else math.inf
  else:
    scores["ms_ssim"] = scores["ms_ssim_db"] = math.nan
  return scores


def measure(codec, image: np.ndarray) -> tuple[bytes, np.ndarray, dict[str, float]]:
  """Compresses and decompresses `image`; returns the file, the reconstruction and metrics."""
  start = time.perf_counter()
  data, encoded = codec.compress_with_latents(image)
  encode_s = time.perf_counter() - start
  start = time.perf_counter()
  reconstruction = codec.decompress(data)
  decode_s = time.perf_counter() - start
  metrics = coding_metrics(image, data, reconstruction, encode_s, decode_s)
  metrics["information_bpp"] = encoded.bits / (image.shape[0] * image.shape[1])
  return data, reconstruction, metrics


def coding_metrics(image: np.ndarray, data: bytes, reconstruction: np.ndarray, encode_s: float,
                   decode_s: float) -> dict[str, float]:
  """Size, rate, timings and distortion of one coded image, for any codec."""
  metrics = {"height": image.shape[0], "width": image.shape[1], "compressed_bytes": len(data),
             "bpp": 8.0 * len(data) / (image.shape[0] * image.shape[1]),
             "encode_s": encode_s, "decode_s": decode_s}
  metrics.update(distortion(image, reconstruction))
  return metrics


def format_report(metrics: dict[str, float], original_bytes: int | None = None) -> str:
  """The table printed by `compress --verbose`."""
  rows = []
  if original_bytes is not None:
    rows.append(("Original size", f"{original_bytes} bytes ({metrics['width']}x"
                 f"{metrics['height']} pixels)"))
  rows += [
      ("Compressed file size", f"{metrics['compressed_bytes']} bytes"),
      ("Mean squared error", f"{metrics['mse']:.4f}"),
      ("PSNR (dB)", f"{metrics['psnr']:.2f}"),
      ("Multiscale SSIM", _or_na(metrics["ms_ssim"], "{:.4f}")),
      ("Multiscale SSIM (dB)", _or_na(metrics["ms_ssim_db"], "{:.2f}")),
      ("Information content in bpp", f"{metrics['information_bpp']:.4f}"),
      ("Actual bits per pixel", f"{metrics['bpp']:.4f}"),
  ]
  width = max(len(name) for name, _ in rows)
  return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in rows)


def _or_na(value: float, pattern: str) -> str:
  if math.isnan(value):
    return f"n/a (needs at least {msssim.MIN_SIZE}x{msssim.MIN_SIZE} pixels)"
  return pattern.format(value)
