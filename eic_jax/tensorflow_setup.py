"""Imports TensorFlow for data pipelines, TensorBoard and range coding only.

JAX owns the accelerators: TensorFlow is kept off every GPU and TPU. Import this module before
anything that imports TensorFlow (clu's metric writers do).
"""

import tensorflow as tf

tf.config.set_visible_devices([], "GPU")
try:
  tf.config.set_visible_devices([], "TPU")
except (ValueError, RuntimeError):
  pass

__all__ = ["tf"]
