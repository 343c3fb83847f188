"""Run by test_parallel.py in a process that sees 8 host devices (XLA_FLAGS from the test).

  python tests/parallel_worker.py step OUT.npz       one train step on 8 and on 1 device
"""

import functools
import sys

import jax
import numpy as np

from configs import smoke
from eic_jax.models.objective import Objective
from eic_jax.training import parallel
from eic_jax.training import train


def one_step(devices):
  config = smoke.get_config()
  mesh = parallel.create_mesh(devices)
  replicated = parallel.replicated(mesh)
  state = jax.device_put(train.create_train_state(config, jax.random.PRNGKey(0)), replicated)
  batch = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
  step = jax.jit(functools.partial(train.train_step, objective=Objective(config.lmbda)),
                 in_shardings=(replicated, parallel.batch_sharding(mesh), replicated),
                 out_shardings=(replicated, replicated))
  state, _ = step(state, parallel.global_batch(batch, mesh), jax.random.PRNGKey(1))
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_leaves_with_path(state.params)}


if __name__ == "__main__":
  assert jax.device_count() == 8
  many, one = one_step(jax.devices()), one_step(jax.devices()[:1])
  np.savez(sys.argv[2], **{f"many{k}": v for k, v in many.items()},
           **{f"one{k}": v for k, v in one.items()})
