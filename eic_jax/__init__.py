"""eic_jax: end-to-end optimized image compression (Ballé, Laparra & Simoncelli 2017) in JAX."""

import logging
import os

# TensorFlow serves data pipelines, TensorBoard and range coding only; its start-up messages
# (CUDA plugin registration and the like) are noise here. Set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX logs at INFO every accelerator backend it does not find.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

__version__ = "0.1.0"
