"""Figures: rate–distortion curves, training curves, learned PMFs, reconstructions."""

import os
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from eic_jax.evaluation import rd_curves
from eic_jax.runtime import atomic_files
from eic_jax.training import training_log


def _save(figure, path: str) -> None:
  with atomic_files.atomic_write(path) as stream:
    figure.savefig(stream, format="png", dpi=120, bbox_inches="tight")
  plt.close(figure)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def _limits(values: Sequence[np.ndarray], margin: float = 0.05) -> tuple[float, float]:
  finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
  if not len(finite):
    return 0.0, 1.0
  low, high = float(finite.min()), float(finite.max())
  pad = margin * max(high - low, 1e-3)
  return low - pad, high + pad


def rd_figure(curves: Sequence[dict], path: str, title: str = "", focus: int = 1) -> None:
  """PSNR and MS-SSIM (dB) against bits per pixel. The first `focus` curves (the models the
  figure is about) are drawn on top, and the axes span their rates with a margin and the
  qualities every curve reaches there; each curve gets its own marker, published ones a dashed
  line."""
  figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
  rates = [rd_curves.values(c, "bpp") for c in curves[:focus] or curves]
  low, high = _limits([r for r in rates if len(r)], margin=0.2)
  x_range = (max(0.0, low), high)
  for axis, metric, label in ((left, "psnr-rgb", "PSNR (dB)"), (right, "ms-ssim-db",
                                                                  "MS-SSIM (dB)")):
    shown = []
    for index, curve in enumerate(curves):
      quality = rd_curves.values(curve, metric)
      if not len(quality):
        continue
      rate = rd_curves.values(curve, "bpp-ms-ssim") if metric == "ms-ssim-db" else []
      rate = rate if len(rate) else rd_curves.values(curve, "bpp")
      model = index < focus
      axis.plot(rate, quality, label=curve["name"], marker=_MARKERS[index % len(_MARKERS)],
                markersize=6 if model else 4, linewidth=2.2 if model else 1.2,
                linestyle="-" if "points" in curve else "--", zorder=3 if model else 2)
      inside = (rate >= x_range[0]) & (rate <= x_range[1])
      shown.append(quality[inside])
    axis.set_xlim(*x_range)
    axis.set_ylim(*_limits(shown))
    axis.set_xlabel("bits per pixel")
    axis.set_ylabel(label)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
  if title:
    figure.suptitle(title)
  _save(figure, path)


def training_figure(workdir: str, path: str) -> None:
  """bpp, MSE and loss against step, training and validation."""
  scalars = training_log.read_scalars(workdir)
  # Constrained layout keeps each axis's label clear of its tick labels (log-scale ticks like
  # 2×10² are wide).
  figure, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
  for axis, metric in zip(axes, ("bpp", "mse", "loss")):
    for split in ("train", "valid"):
      tag = f"{split}_{metric}"
      if tag in scalars:
        axis.plot(*scalars[tag], label=split, marker="o" if split == "valid" else None)
    axis.set_xlabel("step")
    axis.set_ylabel(metric)
    axis.set_yscale("log" if metric != "bpp" else "linear")
    axis.grid(alpha=0.3)
    axis.legend()
  figure.suptitle(os.path.basename(os.path.normpath(workdir)))
  _save(figure, path)


def pmf_figure(codec, path: str, channels: Sequence[int] | None = None) -> None:
  """The learned probability mass functions of some channels of the factorized density (the
  latents of bls2017, the side latents of bmshj2018) over their coding range, as the density
  gives them and as the integer coding tables quantise them."""
  tables = codec.tables["entropy_bottleneck"]
  cdf = tables.lookup[:, 1:].astype(np.float64) / 2.0**abs(tables.lookup[0, 0])
  table_pmf = np.diff(cdf, axis=1)
  if channels is None:
    entropy = -np.sum(np.where(table_pmf > 0, table_pmf * np.log2(table_pmf + 1e-300), 0), 1)
    channels = np.argsort(entropy)[::-1][:4].tolist()
  figure, axes = plt.subplots(1, len(channels), figsize=(4 * len(channels), 3.2),
                              squeeze=False)
  for axis, channel in zip(axes[0], channels):
    length = int(np.count_nonzero(table_pmf[channel])) - 1  # without the escape symbol
    symbols = np.arange(length) + tables.minima[channel]
    density = codec.symbol_probabilities(channel, symbols)
    axis.bar(symbols, table_pmf[channel, :length], width=0.8, alpha=0.5, label="coding table")
    axis.plot(symbols, density, "k.-", markersize=3, label="density")
    axis.set_title(f"channel {channel}")
    axis.set_xlabel("symbol (latent − median)")
    axis.legend(fontsize=7)
  axes[0, 0].set_ylabel("probability")
  _save(figure, path)


def side_by_side(original: np.ndarray, reconstruction: np.ndarray, path: str,
                 crop: tuple[int, int, int] | None = None, caption: str = "") -> None:
  """Original and reconstruction, full and a zoomed square crop (top, left, size)."""
  height, width = original.shape[:2]
  if crop is None:
    size = max(1, min(height, width, 128))
    crop = ((height - size) // 2, (width - size) // 2, size)
  top, left, size = crop
  figure, axes = plt.subplots(2, 2, figsize=(10, 9))
  for column, (image, name) in enumerate(((original, "original"),
                                          (reconstruction, "reconstruction"))):
    axes[0, column].imshow(image)
    axes[0, column].add_patch(plt.Rectangle((left - 0.5, top - 0.5), size, size, fill=False,
                                            edgecolor="yellow", linewidth=1.5))
    axes[0, column].set_title(name + (f" ({caption})" if caption and column else ""))
    axes[1, column].imshow(image[top:top + size, left:left + size], interpolation="nearest")
    axes[1, column].set_title(f"{name}, {size}x{size} crop")
  for axis in axes.ravel():
    axis.axis("off")
  _save(figure, path)
