"""A model's Flax methods compiled on fixed parameters, for its host-side latent codec."""

from typing import Any, Callable

import jax
import numpy as np

from eic_jax.runtime import compiler_options


def float64():
  """A context in which JAX computes in float64 (the switch moved in JAX 0.6)."""
  if hasattr(jax, "enable_x64"):
    return jax.enable_x64(True)
  from jax.experimental import enable_x64  # pylint: disable=import-outside-toplevel
  return enable_x64()


# A method of the model by name, or a function called with the bound model first (e.g. a method
# with some arguments fixed by functools.partial).
Method = str | Callable[..., Any]


def _jitted(model: Any, name: Method) -> Callable:
  return jax.jit(lambda weights, *inputs: model.apply({"params": weights}, *inputs, method=name),
                 **compiler_options.jit_kwargs())


def method(model: Any, params: Any, name: Method) -> Callable[..., np.ndarray]:
  """`model.name(*inputs)` with `params`, compiled once per input shape, returning NumPy."""
  compiled = _jitted(model, name)
  return lambda *inputs: np.asarray(compiled(params, *inputs))


def method_float64(model: Any, params: Any, name: Method) -> Callable[..., np.ndarray]:
  """`method` in float64, parameters and inputs included: for what encoder and decoder must
  compute alike on any machine (float32 results differ in their last bits between CPUs, thread
  counts and even between a fresh compilation and a cached one)."""
  compiled = _jitted(model, name)
  params64 = []  # cast on first use

  def run(*inputs) -> np.ndarray:
    with float64():
      if not params64:
        params64.append(jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params))
      return np.asarray(compiled(params64[0], *(np.asarray(a, np.float64) for a in inputs)))

  return run
