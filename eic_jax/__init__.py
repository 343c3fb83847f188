"""eic_jax: end-to-end optimized image compression (Ballé, Laparra & Simoncelli 2017) in JAX.

  eic_jax.list_models()                        # the shipped models' names
  codec = eic_jax.load_codec("runs/mine")      # a training workdir, or a shipped model's name
  data = codec.compress(image)                 # uint8 (H, W, 3) → bytes
  image = codec.decompress(data)               # bytes → uint8 (H, W, 3)
  eic_jax.load_codec(name, refine_steps=500)   # optimises each image's latents: fewer bits
  eic_jax.load_codec(name, coder="constriction")  # the entropy coder that writes (coder/coders.py)

The package's layers, top to bottom (docs/architecture.md): main, tools, evaluation, training,
codec, models, entropy_models, coder, layers, ops, storage, runtime.
"""

import importlib
import logging
import os

# TensorFlow serves data pipelines, TensorBoard and its range coder only; its start-up messages
# (CUDA plugin registration and the like) are noise here. Set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX logs at INFO every accelerator backend it does not find.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

__version__ = "0.1.0"

# Importing the codec starts JAX, so these are loaded on first use.
_LAZY = {"load_codec": "eic_jax.codec.codec", "Codec": "eic_jax.codec.codec",
         "list_models": "eic_jax.storage.shipped", "StaleExportError": "eic_jax.codec.export",
         "BitstreamError": "eic_jax.coder.bitstream", "ImageReadError": "eic_jax.runtime.image_io"}


def __getattr__(name: str):
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  raise AttributeError(f"module 'eic_jax' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_LAZY))
