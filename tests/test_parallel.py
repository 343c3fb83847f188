import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from eic_jax.storage import checkpoints
from eic_jax.training import parallel
from eic_jax.training import train
from tests.conftest import ROOT

# XLA:CPU's thunk runtime deadlocks now and then (4 runs in 12 on 2 cores) when 8 host devices
# meet in the train step's all-reduce; its classic runtime does not (0 in 12).
EIGHT_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8 "
                                           "--xla_cpu_use_thunk_runtime=false"}


def test_one_step_on_eight_devices_equals_one_device(tmp_path):
  output = tmp_path / "params.npz"
  result = subprocess.run([sys.executable, "tests/parallel_worker.py", "step", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=EIGHT_DEVICES)
  assert result.returncode == 0, result.stderr
  params = np.load(output)
  names = [k[len("many"):] for k in params if k.startswith("many")]
  assert names
  for name in names:
    many, one = params["many" + name], params["one" + name]
    # Relative error of each parameter tensor (an element with a near-zero Adam denominator may
    # differ by a few ulps of the tensor's scale, never of the tensor as a whole).
    assert np.linalg.norm(many - one) <= 1e-5 * np.linalg.norm(one), name


def _train_on_eight(smoke_config, workdir, *extra):
  return subprocess.run(
      [sys.executable, "-m", "eic_jax.main", "--config=configs/smoke.py", f"--workdir={workdir}",
       f"--config.train_glob={smoke_config.train_glob}", "--config.valid_glob=", *extra],
      cwd=ROOT, capture_output=True, text=True, timeout=300, env=EIGHT_DEVICES)


def test_checkpoint_from_eight_devices_restores_on_one(smoke_config, tmp_path):
  workdir = tmp_path / "eight"
  result = _train_on_eight(smoke_config, workdir, "--config.batch_size=8",
                           "--config.num_train_steps=3", "--config.checkpoint_every_steps=3")
  assert result.returncode == 0, result.stderr
  assert jax.device_count() == 1
  config = checkpoints.load_config(str(workdir))
  fresh = train.create_train_state(config, jax.random.PRNGKey(7))
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    restored = checkpoints.restore_state(manager, fresh)
  assert int(restored.step) == 3
  exported, _, step = checkpoints.restore_export(str(workdir))
  assert step == 3
  for a, b in zip(jax.tree_util.tree_leaves(restored.params), jax.tree_util.tree_leaves(exported)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_batch_size_must_divide_over_the_devices(smoke_config, tmp_path):
  result = _train_on_eight(smoke_config, tmp_path / "odd", "--config.batch_size=6")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "batch_size 6 is not divisible by the 8 devices" in result.stderr


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_process_file_shards_are_disjoint_and_complete(count):
  files = [f"image_{i}.png" for i in range(11)]
  shards = [parallel.shard(files, index, count) for index in range(count)]
  assert sorted(sum(shards, [])) == sorted(files)
  assert sum(len(s) for s in shards) == len(files)
  assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
