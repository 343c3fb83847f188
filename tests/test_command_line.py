"""The command line fails before any work, in one line, and writes files others can read."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from eic_jax.runtime import atomic_files
from eic_jax.runtime import image_io
from tests.conftest import ROOT


def _main(*args):
  return subprocess.run([sys.executable, "-m", "eic_jax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def _one_line_error(result) -> str:
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
  return lines[0]


@pytest.mark.parametrize("mode,output,expected", [
    ("evaluate", "missing/model.json", "the folder {tmp}/missing does not exist"),
    ("evaluate", "", "{tmp} is a folder; name the file to write"),
    ("evaluate", "model.txt", "the output must end with .json"),
    ("compress", "photo.png", "the output must end with .eic"),
    ("decompress", "photo.jpg", "the output must end with .png or"),
])
def test_outputs_are_checked_before_any_input_is_read(tmp_path, mode, output, expected):
  # The input does not exist: the output's error must come first, with no temporary file named.
  message = _one_line_error(_main(f"--mode={mode}", "--model=bls2017-mse-0.0067",
                                  f"--input={tmp_path / 'nothing*.png'}",
                                  f"--output={tmp_path / output}"))
  assert expected.format(tmp=tmp_path) in message and ".tmp-" not in message
  assert list(tmp_path.iterdir()) == []


def test_a_misspelled_config_field_is_one_line_with_the_suggestion(tmp_path):
  message = _one_line_error(_main("--config=configs/smoke.py", f"--workdir={tmp_path / 'run'}",
                                  "--config.lamda=0.01"))
  assert message == ("error: the config has no field 'lamda'; Did you mean \"lmbda\" instead "
                     "of \"lamda\"?")
  assert not (tmp_path / "run").exists()


def test_a_training_run_without_data_leaves_no_workdir(tmp_path):
  message = _one_line_error(_main("--config=configs/smoke.py", f"--workdir={tmp_path / 'run'}",
                                  f"--config.train_glob={tmp_path / 'none' / '*.png'}"))
  assert "No image files match the pattern" in message
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_have_the_mode_of_a_plain_open(tmp_path, umask):
  previous = os.umask(umask)
  try:
    with atomic_files.atomic_write(str(tmp_path / "atomic.bin")) as stream:
      stream.write(b"data")
    with open(tmp_path / "plain.bin", "wb") as stream:
      stream.write(b"data")
  finally:
    os.umask(previous)
  mode = os.stat(tmp_path / "atomic.bin").st_mode & 0o777
  assert mode == os.stat(tmp_path / "plain.bin").st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("extension", sorted(image_io.LOSSLESS_FORMATS))
def test_decoded_images_are_written_losslessly_in_the_format_of_their_extension(tmp_path,
                                                                                extension):
  pixels = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
  path = tmp_path / f"image{extension}"
  image_io.write_image(str(path), pixels)
  with Image.open(path) as image:
    assert image.format == image_io.LOSSLESS_FORMATS[extension][0]
  np.testing.assert_array_equal(image_io.read_image(str(path)), pixels)


def test_lossy_extensions_are_refused(tmp_path):
  with pytest.raises(ValueError, match="choose one of these extensions"):
    image_io.write_image(str(tmp_path / "image.jpg"), np.zeros((4, 4, 3), np.uint8))
  assert list(tmp_path.iterdir()) == []


def _photos(tmp_path, photo_dir, broken=True):
  source = tmp_path / "in"
  source.mkdir()
  for path in sorted(photo_dir.glob("*.png"))[:2]:
    (source / path.name).write_bytes(path.read_bytes())
  if broken:
    (source / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
  return source


def test_a_folder_is_coded_in_one_process_and_a_bad_file_does_not_stop_it(tmp_path,
                                                                          photo_dir):
  source = _photos(tmp_path, photo_dir)
  (tmp_path / "eic").mkdir()
  (tmp_path / "png").mkdir()
  result = _main("--mode=compress", "--model=bls2017-mse-0.0067", f"--input={source / '*.png'}",
                 f"--output={tmp_path / 'eic'}")
  assert result.returncode == 1
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert errors == [f"error: {source / 'zz_broken.png'}: not a readable image (cannot identify "
                    f"image file '{source / 'zz_broken.png'}')", "error: 1 of 3 files failed"]
  names = sorted(p.name for p in (tmp_path / "eic").iterdir())
  assert names == [p.stem + ".eic" for p in sorted(source.glob("*.png"))[:2]]
  result = _main("--mode=decompress", "--model=bls2017-mse-0.0067",
                 f"--input={tmp_path / 'eic' / '*.eic'}", f"--output={tmp_path / 'png'}")
  assert result.returncode == 0, result.stderr
  for path in sorted(source.glob("*.png"))[:2]:
    decoded = image_io.read_image(str(tmp_path / "png" / path.name))
    assert decoded.shape == image_io.read_image(str(path)).shape


def test_several_inputs_need_a_folder_and_distinct_names(tmp_path, photo_dir):
  source = _photos(tmp_path, photo_dir, broken=False)
  message = _one_line_error(_main("--mode=compress", "--model=bls2017-mse-0.0067",
                                  f"--input={source / '*.png'}",
                                  f"--output={tmp_path / 'one.eic'}"))
  assert "--input matches 2 files; give an existing folder as --output" in message
  other = tmp_path / "other"
  other.mkdir()
  first = sorted(source.glob("*.png"))[0]
  (other / first.name).write_bytes(first.read_bytes())
  (tmp_path / "out").mkdir()
  message = _one_line_error(_main("--mode=compress", "--model=bls2017-mse-0.0067",
                                  f"--input={source / '*.png'},{other / '*.png'}",
                                  f"--output={tmp_path / 'out'}"))
  assert f"several inputs would be written to {tmp_path / 'out' / first.stem}.eic" in message
  assert list((tmp_path / "out").iterdir()) == []


def test_long_work_reports_progress_with_rate_and_sensible_precision(photo_dir, tmp_path):
  workdir = tmp_path / "run"
  result = _main("--config=configs/smoke.py", f"--workdir={workdir}",
                 f"--config.train_glob={photo_dir}/*", "--config.num_train_steps=10")
  assert result.returncode == 0, result.stderr
  reports = [line for line in result.stderr.splitlines() if "step 10/10" in line]
  assert reports and ", ETA 0:00:00: train_loss " in reports[0] and " steps/s" in reports[0]
  values = re.findall(r"train_\w+ ([-+.\de]+)", reports[0])
  # Four significant digits at most, not the floats' full precision.
  assert len(values) == 4 and all(len(re.sub(r"[-+.]|e.*", "", v).lstrip("0")) <= 4
                                  for v in values)
  result = _main("--mode=evaluate", "--baseline=webp", f"--input={photo_dir}/*.png",
                 f"--output={tmp_path / 'webp.json'}")
  assert result.returncode == 0, result.stderr
  # One bar over the images, each coded at the whole sweep, counting images with a rate.
  assert "webp at 21 qualities" in result.stderr
  assert "/4 [" in result.stderr and "image/s" in result.stderr
