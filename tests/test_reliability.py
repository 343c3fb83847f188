import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from eic_jax.runtime import image_io
from eic_jax.storage import checkpoints
from eic_jax.training import train
from tests.conftest import ROOT, photo


@pytest.mark.parametrize("case", ["gray", "rgba", "palette", "sixteen_bit", "cmyk_jpeg",
                                  "one_pixel", "odd_size"])
def test_unusual_images_compress_correctly(codec, tmp_path, case):
  pixels = photo("coffee", (15, 17) if case == "odd_size" else (1, 1) if case == "one_pixel"
                 else (40, 48))
  image = Image.fromarray(pixels)
  image = {"gray": lambda: image.convert("L"), "rgba": lambda: image.convert("RGBA"),
           "palette": lambda: image.convert("P"),
           "sixteen_bit": lambda: Image.fromarray(
               (np.asarray(image.convert("L"), np.uint16) * 257)),
           "cmyk_jpeg": lambda: image.convert("CMYK")}.get(case, lambda: image)()
  path = tmp_path / ("image.jpg" if case == "cmyk_jpeg" else "image.png")
  image.save(path)
  rgb = image_io.read_image(str(path))
  assert rgb.dtype == np.uint8 and rgb.shape == pixels.shape
  decoded = codec.decompress(codec.compress(rgb))
  assert decoded.shape == pixels.shape


@pytest.mark.parametrize("case", ["not_image", "truncated_png", "truncated_jpeg", "too_large"])
def test_unreadable_images_name_the_file_and_reason(tmp_path, case):
  path = tmp_path / ("input.jpg" if case == "truncated_jpeg" else "input.png")
  full = tmp_path / "full.png"
  if case == "not_image":
    path.write_bytes(b"just some text")
  else:
    Image.fromarray(photo("coffee", (64, 64))).save(
        full, format="JPEG" if case == "truncated_jpeg" else "PNG")
    data = full.read_bytes()
    path.write_bytes(data if case == "too_large" else data[:len(data) // 2])
  with pytest.raises(image_io.ImageReadError) as error:
    image_io.read_image(str(path), max_pixels=1000 if case == "too_large" else None)
  message = str(error.value)
  assert message.startswith(str(path))
  reason = {"not_image": "not a readable image", "truncated_png": "not a readable image",
            "truncated_jpeg": "not a readable image", "too_large": "more than the limit"}[case]
  assert reason in message


def _train_command(workdir, smoke_config, steps, every):
  return [sys.executable, "-m", "eic_jax.main", "--config=configs/smoke.py",
          f"--workdir={workdir}", f"--config.train_glob={smoke_config.train_glob}",
          "--config.valid_glob=", f"--config.num_train_steps={steps}",
          f"--config.checkpoint_every_steps={every}", "--config.log_every_steps=1000"]


def test_kill_9_then_rerun_resumes_from_the_last_complete_checkpoint(smoke_config, tmp_path):
  workdir = tmp_path / "killed"
  process = subprocess.Popen(_train_command(workdir, smoke_config, 100000, 4), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while time.time() < deadline:
    steps = [int(p) for p in os.listdir(workdir / "checkpoints") if p.isdigit()] if (
        workdir / "checkpoints").exists() else []
    if steps and max(steps) >= 12:
      break
    time.sleep(0.2)
  process.send_signal(signal.SIGKILL)
  process.wait()
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    complete = manager.latest_step()
  assert complete is not None and complete >= 12
  result = subprocess.run(_train_command(workdir, smoke_config, complete + 12, 4), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  # At least the last checkpoint complete at the kill (one being written may have completed).
  resumed = int(result.stderr.split("Resumed from step ")[1].split()[0])
  assert resumed >= complete and resumed % 4 == 0
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == complete + 12


def test_a_corrupted_latest_checkpoint_falls_back_with_a_warning(smoke_config, tmp_path):
  workdir = tmp_path / "corrupt"
  first = subprocess.run(_train_command(workdir, smoke_config, 6, 3), cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr
  for root, _, names in os.walk(workdir / "checkpoints" / "6"):
    for name in names:
      with open(os.path.join(root, name), "r+b") as stream:
        stream.write(b"\xde\xad" * 64)
  second = subprocess.run(_train_command(workdir, smoke_config, 8, 3), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr
  assert "Checkpoint 6" in second.stderr and "cannot be restored" in second.stderr
  assert "Resumed from step 3 " in second.stderr
  assert (workdir / "corrupted_checkpoints" / "6").is_dir()
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == 8


def test_nan_keeps_the_last_good_checkpoint(smoke_config, tmp_path, monkeypatch):
  real_step = train.train_step

  def poisoned_step(state, batch, rng, **options):
    # From step 5 on, the loss reads NaN, as after a divergence.
    state, outputs = real_step(state, batch, rng, **options)
    outputs["loss"] = jnp.where(state.step >= 5, jnp.nan, outputs["loss"])
    return state, outputs

  monkeypatch.setattr(train, "train_step", poisoned_step)
  smoke_config.num_train_steps = 50
  smoke_config.checkpoint_every_steps = 2
  workdir = tmp_path / "nan"
  with pytest.raises(FloatingPointError, match="Training diverged at step 5: the loss is nan"):
    train.train_and_evaluate(smoke_config, str(workdir))
  config = checkpoints.load_config(str(workdir))
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == 4
    state = checkpoints.restore_state(manager,
                                      train.create_train_state(config, jax.random.PRNGKey(0)))
  for leaf in jax.tree_util.tree_leaves(state.params):
    assert np.all(np.isfinite(leaf))


def test_unwritable_workdir_fails_before_training(smoke_config, tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(ValueError, match=f"workdir {blocker}/run is not writable"):
    train.train_and_evaluate(smoke_config, str(blocker / "run"))


def test_failed_evaluation_leaves_no_results_file(trained_workdir, photo_dir, tmp_path):
  broken = tmp_path / "images"
  broken.mkdir()
  for path in sorted(photo_dir.glob("*.png"))[:2]:
    (broken / path.name).write_bytes(path.read_bytes())
  (broken / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
  output = tmp_path / "results.json"
  result = subprocess.run(
      [sys.executable, "-m", "eic_jax.main", "--mode=evaluate", f"--workdir={trained_workdir}",
       f"--input={broken / '*.png'}", f"--output={output}"], cwd=ROOT, capture_output=True,
      text=True, timeout=300)
  assert result.returncode != 0 and "zz_broken.png: not a readable image" in result.stderr
  assert not output.exists()
  assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


def test_indexes_recomputed_from_saved_side_latents_match_and_a_changed_one_is_counted(
    hyperprior_workdir, photo_dir, tmp_path):
  """experiments/index_robustness.py's check for another machine (a GPU without the range
  coder): the z written beside the encoder's indexes give the same indexes here, and one
  index changed in the file is reported."""
  script = str(ROOT / "experiments" / "index_robustness.py")
  latents = tmp_path / "latents"
  common = [sys.executable, script, f"--workdir={hyperprior_workdir}"]
  written = subprocess.run([*common, f"--images={photo_dir}/*_0.png", f"--latents_out={latents}"],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert written.returncode == 0, written.stderr[-2000:]
  saved = sorted(latents.glob("*.npz"))
  assert len(saved) == 4

  def compare() -> str:
    result = subprocess.run([*common, f"--latents_in={latents}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]

  total = sum(np.load(path)["indexes"].size for path in saved)
  assert compare().startswith(f"4 files, {total:,} indexes: 0 differ from the encoder's")
  arrays = dict(np.load(saved[0]))
  arrays["indexes"].flat[0] = (arrays["indexes"].flat[0] + 1) % 64
  np.savez_compressed(saved[0], **arrays)
  assert compare().startswith(f"4 files, {total:,} indexes: 1 differ from the encoder's")
