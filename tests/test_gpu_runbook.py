"""The GPU run book's scripts: training per λ for a wall-clock budget, and packing exports.

They run on a GPU machine's stack, the newest JAX without TensorFlow: `make test` tests them in
its newest environment, not again in the [coding] one.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from eic_jax.coder import coders
from eic_jax.storage import checkpoints
from tests.conftest import ROOT, load_script

pytestmark = pytest.mark.skipif(coders.TFC.available(), reason="the GPU run book's scripts are "
                                "tested where TensorFlow is not installed, as on a GPU machine")

pack_export = load_script("experiments/gpu/pack_export.py")
photo_subset = load_script("experiments/gpu/photo_subset.py")
train_lambdas = load_script("experiments/gpu/train_lambdas.py")


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
  # How long it took depends on the machine's load: the benchmark's business, not a test's.
  assert summary["concurrent"]
  for lmbda in ("0.01", "0.02"):
    workdir = runs / f"lmbda_{lmbda}"
    config = checkpoints.load_config(str(workdir))
    assert config.lmbda == float(lmbda) and config.learning_rate_schedule == "piecewise"
    step = checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR)
    assert step == summary["runs"][lmbda]["step"]
    drop = int(config.learning_rate_boundaries[0] * config.num_train_steps)
    assert 0 < drop < step <= config.num_train_steps


@pytest.mark.parametrize("init_from, expected", [
    ("shipped", "bls2017-mse-0.0067"), ("", ""), ("inits/lmbda_{lmbda}", "inits/lmbda_0.0067"),
    ("runs/one", "runs/one")])
def test_each_lambda_starts_from_its_own_init(init_from, expected):
  args = train_lambdas._arguments(["--budget_s=60", "--train_glob=x", f"--init_from={init_from}"])
  command = train_lambdas._command(args, "0.0067", "w", 10.0, [])
  assert f"--config.init_from={expected}" in command


def test_a_pack_restores_elsewhere_and_respects_its_size_limit(budget_run, tmp_path):
  workdir = budget_run[0] / "lmbda_0.01"
  with pytest.raises(ValueError, match="more than --max_bytes=1000"):
    pack_export.pack(str(workdir), str(tmp_path / "small.tar.xz"), max_bytes=1000)
  assert list(tmp_path.iterdir()) == []
  assert pack_export.pack(str(workdir), str(tmp_path / "run.tar.xz"), max_bytes=16_000_000,
                          part_bytes=16_000_000) == [str(tmp_path / "run.tar.xz")]
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


def test_a_pack_split_into_parts_restores_and_names_a_missing_part(budget_run, tmp_path):
  workdir = budget_run[0] / "lmbda_0.02"
  whole = tmp_path / "whole.tar.xz"
  pack_export.pack(str(workdir), str(whole))
  size = whole.stat().st_size
  part_bytes = size // 3 + 1
  parts = pack_export.pack(str(workdir), str(tmp_path / "run.tar.xz"), part_bytes=part_bytes)
  assert [p.rsplit(".", 1)[1] for p in parts] == ["1of3", "2of3", "3of3"]
  assert not (tmp_path / "run.tar.xz").exists()
  assert b"".join(open(p, "rb").read() for p in parts) == whole.read_bytes()
  assert all(os.path.getsize(p) <= part_bytes for p in parts)
  assert pack_export.unpack(str(tmp_path / "run.tar.xz"), str(tmp_path / "copy")) == (
      checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR))
  os.rename(parts[1], tmp_path / "aside")
  with pytest.raises(ValueError, match=r"run\.tar\.xz\.2of3 is missing"):
    pack_export.unpack(str(tmp_path / "run.tar.xz"), str(tmp_path / "other"))
  with pytest.raises(ValueError, match="no such pack"):
    pack_export.unpack(str(tmp_path / "absent.tar.xz"), str(tmp_path / "other"))


def test_a_float16_pack_is_smaller_and_restores_the_rounded_parameters(budget_run, tmp_path):
  workdir = budget_run[0] / "lmbda_0.01"
  [whole] = pack_export.pack(str(workdir), str(tmp_path / "whole.tar.xz"))
  [half] = pack_export.pack(str(workdir), str(tmp_path / "half.tar.xz"), weights_dtype="float16")
  assert os.path.getsize(half) < 0.75 * os.path.getsize(whole)
  assert pack_export.unpack(half, str(tmp_path / "copy")) == (
      checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR))
  original, _, _ = checkpoints.restore_export(str(workdir))
  copy, _, _ = checkpoints.restore_export(str(tmp_path / "copy"))
  rounded = checkpoints.rounded_params(original, np.float16)
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(original),
                                                       jax.tree_util.tree_leaves(rounded)))
  for a, b in zip(jax.tree_util.tree_leaves(rounded), jax.tree_util.tree_leaves(copy)):
    np.testing.assert_array_equal(a, b)
  assert (tmp_path / "copy" / checkpoints.CONFIG_FILE).read_text() == (
      workdir / checkpoints.CONFIG_FILE).read_text()


def test_a_photo_subset_fits_its_budget_is_seeded_and_downscales(photo_dir, tmp_path):
  patterns = f"{photo_dir / '*.png'},{photo_dir / '*.jpg'}"
  sizes = sorted(os.path.getsize(p) for p in photo_dir.iterdir())
  budget = sum(sizes[:3]) + 1  # room for three to seven of the eight copies
  names = photo_subset.subset(patterns, str(tmp_path / "a"), budget)
  assert 3 <= len(names) < 8
  assert sum(os.path.getsize(tmp_path / "a" / n) for n in names) <= budget
  for name in names:  # copied byte for byte without --short_side
    original = photo_dir / name.split("_", 1)[1]
    assert (tmp_path / "a" / name).read_bytes() == original.read_bytes()
  assert photo_subset.subset(patterns, str(tmp_path / "b"), budget) == names
  assert photo_subset.subset(patterns, str(tmp_path / "c"), budget, seed=1) != names

  small = photo_subset.subset(patterns, str(tmp_path / "d"), 10**9, short_side=48, quality=90)
  assert len(small) == 8 and all(n.endswith(".jpg") for n in small)
  for name in small:
    with Image.open(tmp_path / "d" / name) as image:  # 96×128 → 48×64
      assert image.format == "JPEG" and image.size == (64, 48)
  kept = photo_subset.subset(patterns, str(tmp_path / "e"), 10**9, short_side=96)
  assert all((tmp_path / "e" / n).read_bytes() == (photo_dir / n.split("_", 1)[1]).read_bytes()
             for n in kept)

  with pytest.raises(ValueError, match="already holds photographs"):
    photo_subset.subset(patterns, str(tmp_path / "a"), budget)
  with pytest.raises(ValueError, match="matches no photograph"):
    photo_subset.subset(str(tmp_path / "none" / "*.png"), str(tmp_path / "f"), budget)
