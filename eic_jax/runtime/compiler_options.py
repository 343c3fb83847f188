"""XLA compiler options for this project's computations, where the installed XLA knows them."""

import functools

import jax
import numpy as np

# Newer XLA:CPU hands convolutions to YNNPACK fusions, which compute the kernel gradients of
# this project's 5×5 layers several times slower than XLA's own convolutions: a stride-2,
# 128→128 layer on 8×128×128 inputs took 1.8–2.2 s against 0.34 s (2-core AMD EPYC, AVX2,
# jax 0.10.2, 2026-12-01), and its forward pass 323 against 238 ms. The option is experimental
# and older XLA rejects it by name, so it is tried once before it is used.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}


@functools.cache
def jit_kwargs() -> dict:
  """Keyword arguments for jax.jit: the options above on a CPU backend that accepts them,
  otherwise none."""
  if jax.default_backend() != "cpu":
    return {}
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(np.float32(0)).compile()
  except jax.errors.JaxRuntimeError:
    return {}
  return {"compiler_options": dict(_CPU_OPTIONS)}
