"""The daily loop on the command line: stopping and resuming training, and decoding files with
nothing but the file."""

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

from eic_jax.storage import checkpoints
from tests.conftest import ROOT, photo

# absl's default record prefix: `I1207 12:24:38.307873 140185092795264 file.py:74] `.
ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]", re.MULTILINE)


def _main(*args, env=None, timeout=300):
  return subprocess.run([sys.executable, "-m", "eic_jax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=env)


def _train_args(workdir, smoke_config, steps):
  return ["--config=configs/smoke.py", f"--workdir={workdir}",
          f"--config.train_glob={smoke_config.train_glob}", "--config.valid_glob=",
          f"--config.num_train_steps={steps}", "--config.checkpoint_every_steps=1000000",
          "--config.log_every_steps=5"]


def _logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as stream:
    return [json.loads(line)["step"] for line in stream if line.strip().endswith("}")]


def _stop_at_a_random_step(workdir, smoke_config, signum):
  """Trains in a subprocess and sends `signum` once it has logged a random number of reports."""
  process = subprocess.Popen([sys.executable, "-m", "eic_jax.main",
                              *_train_args(workdir, smoke_config, 10**6)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  reports = random.Random().randint(1, 6)
  deadline = time.time() + 240
  while time.time() < deadline and len(_logged_steps(workdir)) < reports:
    time.sleep(0.05)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=120)
  return process.returncode, stderr


def test_sigterm_keeps_a_checkpoint_at_the_step_it_stopped_and_the_rerun_goes_on(
    smoke_config, tmp_path):
  workdir = tmp_path / "preempted"
  returncode, stderr = _stop_at_a_random_step(workdir, smoke_config, signal.SIGTERM)
  assert returncode == 128 + signal.SIGTERM, stderr
  stopped = int(re.search(r"stopped by SIGTERM after step ([\d,]+)", stderr)[1].replace(",", ""))
  assert "Traceback" not in stderr and not ABSL_PREFIX.search(stderr)
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == stopped > 0
  assert checkpoints.latest_step(str(workdir), checkpoints.EXPORT_DIR) == stopped
  # The workdir alone resumes, with its stored configuration and a new step count.
  result = _main(f"--workdir={workdir}", f"--config.num_train_steps={stopped + 7}")
  assert result.returncode == 0, result.stderr
  assert f"Resumed from step {stopped} " in result.stderr
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == stopped + 7
  counts = collections.Counter(_logged_steps(workdir))
  assert max(counts.values()) == 1 and max(counts) == stopped + 7


def test_ctrl_c_stops_training_the_same_way(smoke_config, tmp_path):
  workdir = tmp_path / "interrupted"
  returncode, stderr = _stop_at_a_random_step(workdir, smoke_config, signal.SIGINT)
  assert returncode == 128 + signal.SIGINT, stderr
  assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
  stopped = int(re.search(r"stopped by SIGINT after step ([\d,]+)", stderr)[1].replace(",", ""))
  with checkpoints.checkpoint_manager(str(workdir)) as manager:
    assert manager.latest_step() == stopped


def test_a_resume_that_changes_what_is_trained_is_refused_with_the_differences(
    smoke_config, photo_dir, tmp_path):
  workdir = tmp_path / "resumed"
  first = _main(*_train_args(workdir, smoke_config, 4))
  assert first.returncode == 0, first.stderr
  changed = _main(f"--workdir={workdir}", "--config.num_train_steps=6",
                  f"--config.train_glob={photo_dir / '*.png'}", "--config.lmbda=0.5")
  assert changed.returncode == 1
  (line,) = changed.stderr.strip().splitlines()
  assert f"resuming {workdir} with a configuration that changes what is trained" in line
  assert f"train_glob: '{smoke_config.train_glob}' → '{photo_dir / '*.png'}'" in line
  assert "lmbda: 0.01 → 0.5" in line and "--allow_changes" in line
  assert checkpoints.load_config(str(workdir)).num_train_steps == 4  # nothing was written
  allowed = _main(f"--workdir={workdir}", "--config.num_train_steps=6", "--config.lmbda=0.5",
                  "--allow_changes")
  assert allowed.returncode == 0, allowed.stderr
  assert checkpoints.load_config(str(workdir)).lmbda == 0.5


def test_help_is_printed_to_stdout_with_success():
  result = _main("--help")
  assert result.returncode == 0 and "--mode" in result.stdout and not result.stderr


def test_decompress_needs_only_the_file(tmp_path, trained_workdir):
  env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
  source = tmp_path / "photo.png"
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(photo("coffee", (64, 96))).save(source)
  for flag, name in (("--model=bmshj2018-mse-0.0067", "shipped"),
                     (f"--workdir={trained_workdir}", "workdir")):
    compressed, decoded = tmp_path / f"{name}.eic", tmp_path / f"{name}.png"
    result = _main("--mode=compress", flag, f"--input={source}", f"--output={compressed}",
                   env=env)
    assert result.returncode == 0, result.stderr
    result = _main("--mode=decompress", f"--input={compressed}", f"--output={decoded}",
                   env=env)
    assert result.returncode == 0, result.stderr
    assert decoded.exists()
  # A workdir this machine never compressed with must be named.
  result = _main("--mode=decompress", f"--input={tmp_path / 'workdir.eic'}",
                 f"--output={tmp_path / 'again.png'}",
                 env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "other")})
  assert result.returncode == 1 and "give --workdir" in result.stderr
  result = _main("--mode=decompress", "--model=bls2017-mse-0.0067",
                 f"--workdir={trained_workdir}", f"--input={tmp_path / 'workdir.eic'}",
                 f"--output={tmp_path / 'again.png'}")
  assert result.returncode == 1 and "not both" in result.stderr


def test_ctrl_c_during_compress_says_one_line_and_leaves_no_file(tmp_path):
  source, target = tmp_path / "photo.png", tmp_path / "photo.eic"
  from PIL import Image  # pylint: disable=import-outside-toplevel
  Image.fromarray(photo("astronaut")).save(source)
  process = subprocess.Popen(
      [sys.executable, "-m", "eic_jax.main", "--mode=compress", "--model=bls2017-mse-0.0067",
       f"--input={source}", f"--output={target}", "--refine_steps=100000"], cwd=ROOT,
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  time.sleep(15)  # into the refinement, whatever the machine's speed
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signal.SIGINT
  lines = [line for line in stderr.splitlines() if "refining" not in line and line.strip()]
  assert lines == ["interrupted: --mode=compress stopped; no partial output is left"], stderr
  assert os.listdir(tmp_path) == ["photo.png"]


def test_a_workdir_without_an_export_says_when_its_first_checkpoint_comes(tmp_path):
  workdir = tmp_path / "young"
  workdir.mkdir()
  (workdir / "config.json").write_text(json.dumps({"checkpoint_every_steps": 1000}))
  (workdir / "metrics.jsonl").write_text(json.dumps({"step": 200, "time": 0,
                                                     "train_loss": 1.0,
                                                     "steps_per_sec": 2.0}) + "\n")
  result = _main("--mode=compress", f"--workdir={workdir}", "--input=x.png",
                 f"--output={tmp_path / 'x.eic'}")
  assert result.returncode == 1
  assert ("has no export yet: training writes its first checkpoint at step 1,000; step 200 "
          "was reported at 2 steps/s, so about 7 min after that report") in result.stderr
