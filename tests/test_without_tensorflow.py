"""Training, checkpoints and exports run without TensorFlow; the bits need it and say so.

Each command runs in a process where TensorFlow cannot be imported (None in sys.modules, as
importlib treats a missing package), so this also holds where TensorFlow is installed.
"""

import json
import subprocess
import sys

import pytest

from eic_jax.codec import codec as codec_lib
from eic_jax.storage import checkpoints
from eic_jax.training import training_log
from tests.conftest import ROOT

_WITHOUT_TENSORFLOW = (
    "import runpy, sys; "
    "sys.modules.update(tensorflow=None, tensorflow_compression_ops=None); "
    "sys.argv = ['eic_jax.main', *sys.argv[1:]]; "
    "runpy.run_module('eic_jax.main', run_name='__main__', alter_sys=True)")


def _main(*args, tensorflow=False):
  command = ([sys.executable, "-m", "eic_jax.main"] if tensorflow else
             [sys.executable, "-c", _WITHOUT_TENSORFLOW])
  return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)


def _train(workdir, photo_dir, steps):
  return _main("--config=configs/smoke.py", f"--workdir={workdir}",
               f"--config.train_glob={photo_dir / '*'}",
               f"--config.valid_glob={photo_dir / '*.png'}",
               f"--config.num_train_steps={steps}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, photo_dir):
  """A run trained for 10 steps, then resumed to 14, without TensorFlow."""
  workdir = tmp_path_factory.mktemp("without_tensorflow")
  first = _train(workdir, photo_dir, 10)
  assert first.returncode == 0, first.stderr
  second = _train(workdir, photo_dir, 14)
  assert second.returncode == 0, second.stderr
  assert "Resumed from step 10 " in second.stderr
  return workdir


def test_training_resumes_and_exports_parameters_without_coding_tables(workdir):
  assert not list(workdir.glob("events.out.tfevents.*"))
  params, tables, step = checkpoints.restore_export(str(workdir))
  assert step == 14 and tables is None
  assert set(params) >= {"analysis", "synthesis", "entropy_bottleneck"}


def test_metrics_are_json_lines_that_plots_read(workdir):
  lines = [json.loads(line) for line in (workdir / training_log.METRICS_FILE).read_text()
           .splitlines()]
  assert [r["step"] for r in lines if "train_loss" in r] == [5, 10, 14]
  assert [r["step"] for r in lines if "valid_loss" in r] == [10, 14]
  scalars = training_log.read_scalars(str(workdir))
  steps, losses = scalars["train_loss"]
  assert steps.tolist() == [5, 10, 14] and len(losses) == 3
  assert scalars["steps_per_sec"][1].min() > 0


def test_a_partial_last_line_is_skipped(tmp_path):
  (tmp_path / training_log.METRICS_FILE).write_text(
      '{"step": 1, "train_loss": 2.5}\n{"step": 2, "train_lo')
  steps, values = training_log.read_scalars(str(tmp_path))["train_loss"]
  assert steps.tolist() == [1] and values.tolist() == [2.5]


def test_plotting_the_training_curves_needs_no_tensorflow(workdir, tmp_path):
  output = tmp_path / "training.png"
  result = subprocess.run(
      [sys.executable, "-c",
       "import runpy, sys; sys.modules.update(tensorflow=None); "
       "sys.argv = ['plot', *sys.argv[1:]]; "
       "runpy.run_path('experiments/plot.py', run_name='__main__')",
       "--kind=training", f"--workdir={workdir}", f"--output={output}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  assert output.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("mode", ["compress", "decompress"])
def test_coding_without_the_range_coder_is_one_line_naming_the_install(workdir, tmp_path,
                                                                      photo_dir, mode):
  source = next(photo_dir.glob("*.png"))
  output = tmp_path / ("out.eic" if mode == "compress" else "out.png")
  result = _main(f"--mode={mode}", f"--workdir={workdir}", f"--input={source}",
                 f"--output={output}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f"error: --mode={mode} needs the range coder (TensorFlow 2.17 and "
      "tensorflow-compression-ops), which is not installed: pip install 'eic_jax[coding]' "
      "(in a checkout: pip install -e '.[coding]')"]
  assert not output.exists()


def test_library_modules_import_without_tensorflow():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys; sys.modules.update(tensorflow=None, tensorflow_compression_ops=None); "
       "import eic_jax.tools.bench, eic_jax.training.train, eic_jax.codec.codec, eic_jax.evaluation.plots, "
       "eic_jax.storage.checkpoints, eic_jax.training.input_pipeline, eic_jax.evaluation.evaluation, "
       "eic_jax.models.bmshj2018"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr


def test_decoding_does_not_import_the_training_loop():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys, eic_jax.codec.codec; "
       "print(sorted(m for m in sys.modules if m.startswith('eic_jax.training')))"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.stdout.strip() == "[]", result.stderr


def test_training_imports_no_tensorflow_until_it_writes_event_files():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys, eic_jax.main, eic_jax.training.train, eic_jax.codec.codec; "
       "print('tensorflow' in sys.modules)"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.stdout.strip() == "False", result.stderr


@pytest.mark.coding
def test_the_same_workdir_compresses_where_the_range_coder_is_installed(workdir, tmp_path,
                                                                       photo_dir):
  source = next(photo_dir.glob("*.png"))
  compressed, decoded = tmp_path / "photo.eic", tmp_path / "photo.png"
  result = _main("--mode=compress", f"--workdir={workdir}", f"--input={source}",
                 f"--output={compressed}", tensorflow=True)
  assert result.returncode == 0, result.stderr
  assert "export (step 14) has no coding tables" in result.stderr  # the command says it exports
  result = _main("--mode=decompress", f"--workdir={workdir}", f"--input={compressed}",
                 f"--output={decoded}", tensorflow=True)
  assert result.returncode == 0, result.stderr
  _, tables, step = checkpoints.restore_export(str(workdir))
  assert tables is not None and step == 14  # added to the export, same step
  codec = codec_lib.load_codec(str(workdir))
  assert codec.decompress(compressed.read_bytes()).shape == codec_lib.image_io.read_image(
      str(source)).shape
