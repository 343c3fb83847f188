"""JAX's persistent compilation cache, so later processes reuse compiled transforms."""

import os

import jax

DEFAULT_DIRECTORY = os.path.join("~", ".cache", "eic_jax", "jax")


def enable(directory: str = DEFAULT_DIRECTORY) -> None:
  """Caches every compiled computation in `directory` (created if needed)."""
  directory = os.path.expanduser(directory)
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  # The codec's computations compile in about a second each; cache them all.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
