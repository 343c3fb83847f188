"""TensorFlow, imported only where it is needed: TensorFlow Compression's range coder
(tensorflow-compression-ops, coder/tfc_range_coder.py), TensorBoard event files and
tensorflow-datasets.

Everything else (model, training, checkpoints, the transforms, coding with constriction) runs
without it, on any current JAX. When TensorFlow is imported, JAX keeps the accelerators:
TensorFlow is kept off every GPU and TPU.
"""

import functools
import importlib.util
import sys
from types import ModuleType

CODING_INSTALL = "pip install 'eic_jax[coding]' (in a checkout: pip install -e '.[coding]')"


class MissingDependencyError(ImportError):
  """An optional dependency is not installed; the message names the install command."""


def tensorflow_available() -> bool:
  """Whether TensorFlow can be imported, without importing it."""
  return importlib.util.find_spec("tensorflow") is not None


def coding_available() -> bool:
  """Whether TensorFlow Compression's range coder (TensorFlow and tensorflow-compression-ops) is
  installed."""
  return (tensorflow_available()
          and importlib.util.find_spec("tensorflow_compression_ops") is not None)


# TensorFlow 2.17 imports Keras's optimizers eagerly (to register them for SavedModels), about
# 1.5 s of its 4–5 s import on 2 cores; nothing here uses Keras. A None entry makes that import
# fail, which TensorFlow catches; it is removed again, so that Keras still imports on request.
_SKIPPED_EAGER_IMPORT = "keras.src.optimizers"


@functools.cache
def _import_tensorflow() -> ModuleType:
  skip = _SKIPPED_EAGER_IMPORT not in sys.modules
  if skip:
    sys.modules[_SKIPPED_EAGER_IMPORT] = None
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
  finally:
    if skip and sys.modules.get(_SKIPPED_EAGER_IMPORT, 0) is None:
      del sys.modules[_SKIPPED_EAGER_IMPORT]
  tf.config.set_visible_devices([], "GPU")
  try:
    tf.config.set_visible_devices([], "TPU")
  except (ValueError, RuntimeError):
    pass
  return tf


def tensorflow(purpose: str = "this") -> ModuleType:
  """The TensorFlow module, kept off the accelerators; `purpose` names what needs it."""
  try:
    return _import_tensorflow()
  except ImportError as error:
    raise MissingDependencyError(
        f"{purpose} needs TensorFlow, which is not installed: {CODING_INSTALL}") from error


@functools.cache
def coding_ops() -> tuple[ModuleType, ModuleType]:
  """(tensorflow, tensorflow_compression_ops), or MissingDependencyError; looked up once, not
  on every encode and decode."""
  if not coding_available():
    raise MissingDependencyError(
        "TensorFlow Compression's range coder (TensorFlow 2.17 and tensorflow-compression-ops) "
        f"is not installed: {CODING_INSTALL}")
  tf = tensorflow("TensorFlow Compression's range coder")
  import tensorflow_compression_ops as tfc_ops  # pylint: disable=import-outside-toplevel
  return tf, tfc_ops
