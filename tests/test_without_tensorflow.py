"""Training, checkpoints, exports and coding run without TensorFlow, with constriction's coder;
only TensorFlow Compression's coder needs it, and says so.

Each command runs in a process where TensorFlow cannot be imported (None in sys.modules, as
importlib treats a missing package), so this holds where TensorFlow is installed; where it is
not, the whole suite runs without it, and this module is skipped.
"""

import json
import subprocess
import sys

import pytest

from eic_jax.codec import codec as codec_lib
from eic_jax.coder import bitstream
from eic_jax.coder import coders
from eic_jax.storage import checkpoints
from eic_jax.training import training_log
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not coders.TFC.available(), reason="TensorFlow is not "
                                "installed: every test runs without it")

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


def test_training_resumes_and_exports_parameters_with_coding_tables(workdir):
  assert not list(workdir.glob("events.out.tfevents.*"))
  params, tables, step = checkpoints.restore_export(str(workdir))
  assert step == 14 and set(tables) == {"entropy_bottleneck"}
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


def test_files_are_written_and_read_with_constriction(workdir, tmp_path, photo_dir):
  source = next(photo_dir.glob("*.png"))
  compressed, decoded = tmp_path / "photo.eic", tmp_path / "photo.png"
  result = _main("--mode=compress", f"--workdir={workdir}", f"--input={source}",
                 f"--output={compressed}")
  assert result.returncode == 0, result.stderr
  assert bitstream.unpack(compressed.read_bytes())[0].coder == "constriction"
  result = _main("--mode=decompress", f"--input={compressed}", f"--output={decoded}")
  assert result.returncode == 0, result.stderr
  assert decoded.read_bytes().startswith(b"\x89PNG")


_TFC_MISSING = ("error: coding with tfc needs TensorFlow Compression's range coder (tfc), which "
                "is not installed: pip install 'eic_jax[coding]' (in a checkout: pip install -e "
                "'.[coding]')")


def test_asking_for_tensorflow_compressions_coder_is_one_line_naming_the_install(
    workdir, tmp_path, photo_dir):
  source = next(photo_dir.glob("*.png"))
  output = tmp_path / "out.eic"
  result = _main("--mode=compress", "--coder=tfc", f"--workdir={workdir}", f"--input={source}",
                 f"--output={output}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [_TFC_MISSING]
  assert not output.exists()


def test_a_file_of_tensorflow_compressions_coder_names_the_install_where_it_is_missing(
    workdir, tmp_path, photo_dir):
  source = next(photo_dir.glob("*.png"))
  compressed, decoded = tmp_path / "photo.eic", tmp_path / "photo.png"
  result = _main("--mode=compress", "--coder=tfc", f"--workdir={workdir}", f"--input={source}",
                 f"--output={compressed}", tensorflow=True)
  assert result.returncode == 0, result.stderr
  result = _main("--mode=decompress", f"--input={compressed}", f"--output={decoded}")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [_TFC_MISSING]
  assert not decoded.exists()


def test_library_modules_import_without_tensorflow():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys; sys.modules.update(tensorflow=None, tensorflow_compression_ops=None); "
       "import eic_jax.tools.bench, eic_jax.training.train, eic_jax.codec.codec, eic_jax.evaluation.plots, "
       "eic_jax.storage.checkpoints, eic_jax.training.input_pipeline, eic_jax.evaluation.evaluation, "
       "eic_jax.models.bmshj2018"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr


def test_training_imports_no_tensorflow_until_it_writes_event_files():
  result = subprocess.run(
      [sys.executable, "-c",
       "import sys, eic_jax.main, eic_jax.training.train, eic_jax.codec.codec; "
       "print('tensorflow' in sys.modules)"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.stdout.strip() == "False", result.stderr


def test_the_same_workdir_codes_with_tensorflow_compression_where_it_is_installed(
    workdir, tmp_path, photo_dir):
  source = next(photo_dir.glob("*.png"))
  compressed, decoded = tmp_path / "photo.eic", tmp_path / "photo.png"
  result = _main("--mode=compress", f"--workdir={workdir}", f"--input={source}",
                 f"--output={compressed}", tensorflow=True)
  assert result.returncode == 0, result.stderr
  assert bitstream.unpack(compressed.read_bytes())[0].coder == "tfc"  # the preferred coder
  result = _main("--mode=decompress", f"--workdir={workdir}", f"--input={compressed}",
                 f"--output={decoded}", tensorflow=True)
  assert result.returncode == 0, result.stderr
  codec = codec_lib.load_codec(str(workdir))
  assert codec.decompress(compressed.read_bytes()).shape == codec_lib.image_io.read_image(
      str(source)).shape
