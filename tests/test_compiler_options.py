import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.layers import signal_conv
from eic_jax.runtime import compiler_options


@pytest.fixture
def fresh_probe():
  compiler_options.jit_kwargs.cache_clear()
  yield
  compiler_options.jit_kwargs.cache_clear()


def test_gradients_compiled_with_the_options_equal_the_default_ones(fresh_probe):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 16, 16, 8)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(5, 5, 8, 16)) / 5, jnp.float32)

  def objective(x, kernel):
    return jnp.sum(jnp.sin(signal_conv.conv_up(signal_conv.conv_down(x, kernel, 2),
                                               kernel.transpose(0, 1, 3, 2), 2)))

  gradients = jax.grad(objective, (0, 1))
  tuned = jax.jit(gradients, **compiler_options.jit_kwargs())(x, kernel)
  for a, b in zip(tuned, jax.jit(gradients)(x, kernel)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_options_this_xla_rejects_are_left_out(fresh_probe, monkeypatch):
  monkeypatch.setattr(compiler_options, "_CPU_OPTIONS", {"xla_cpu_no_such_option": "1"})
  assert compiler_options.jit_kwargs() == {}


def test_a_cpu_backend_that_knows_the_options_gets_them(fresh_probe):
  try:
    jax.jit(lambda x: x, compiler_options=compiler_options._CPU_OPTIONS).lower(  # pylint: disable=protected-access
        np.float32(0)).compile()
  except jax.errors.JaxRuntimeError:
    pytest.skip("this XLA does not know the options")
  assert compiler_options.jit_kwargs() == {"compiler_options": compiler_options._CPU_OPTIONS}  # pylint: disable=protected-access
