"""The GPU run book's scripts: training per λ for a wall-clock budget, and packing exports."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from eic_jax import checkpoints
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "experiments" / "gpu"))
import pack_export  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory, photo_dir):
  """Two λ from scratch, side by side, in a 30-second budget."""
  runs = tmp_path_factory.mktemp("gpu_runs")
  result = subprocess.run(
      [sys.executable, "experiments/gpu/train_lambdas.py", "--budget_s=30", "--overhead_s=8",
       f"--runs={runs}", "--lmbdas=0.01,0.02", "--init_from=", "--concurrent",
       "--config=configs/smoke.py", f"--train_glob={photo_dir / '*'}",
       f"--valid_glob={photo_dir / '*.png'}", "--", "--config.log_every_steps=2"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr
  return runs, json.loads(result.stdout)


def test_each_lambda_trains_within_the_budget_with_its_drop_recorded(budget_run):
  runs, summary = budget_run
  # Start-ups vary with the load, which phase 2 can only estimate from phase 1.
  assert summary["wall_s"] < 30 + 30 and summary["concurrent"]
  for lmbda in ("0.01", "0.02"):
    workdir = runs / f"lmbda_{lmbda}"
    config = checkpoints.load_config(str(workdir))
    assert config.lmbda == float(lmbda) and config.learning_rate_schedule == "piecewise"
    step = checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR)
    assert step == summary["runs"][lmbda]["step"] and step > 4
    drop = int(config.learning_rate_boundaries[0] * config.num_train_steps)
    assert 0 < drop < step <= config.num_train_steps


def test_a_pack_restores_elsewhere_and_respects_its_size_limit(budget_run, tmp_path):
  workdir = budget_run[0] / "lmbda_0.01"
  with pytest.raises(ValueError, match="more than --max_bytes=1000"):
    pack_export.pack(str(workdir), str(tmp_path / "small.tar.xz"), max_bytes=1000)
  assert list(tmp_path.iterdir()) == []
  size = pack_export.pack(str(workdir), str(tmp_path / "run.tar.xz"), max_bytes=16_000_000)
  assert size == (tmp_path / "run.tar.xz").stat().st_size
  assert pack_export.unpack(str(tmp_path / "run.tar.xz"), str(tmp_path / "copy")) == (
      checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR))
  assert not (tmp_path / "copy" / checkpoints.CHECKPOINT_DIR).exists()
  original, _, _ = checkpoints.restore_export(str(workdir))
  copy, _, _ = checkpoints.restore_export(str(tmp_path / "copy"))
  assert jax.tree_util.tree_structure(original) == jax.tree_util.tree_structure(copy)
  for a, b in zip(jax.tree_util.tree_leaves(original), jax.tree_util.tree_leaves(copy)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="already has an export"):
    pack_export.unpack(str(tmp_path / "run.tar.xz"), str(tmp_path / "copy"))
