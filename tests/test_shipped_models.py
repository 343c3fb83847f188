import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

import eic_jax
from eic_jax import checkpoints
from eic_jax import models
from eic_jax import pretrained
from eic_jax.evaluation import report
from tests.conftest import ROOT

SHIPPED = pretrained.list_models()


def test_every_architecture_ships_at_least_three_rate_points():
  rates = {}
  for name in SHIPPED:
    architecture = models.architecture(checkpoints.load_config(pretrained.resolve(name)))
    assert name.startswith(f"{architecture}-mse-")
    record = pretrained.record(name)
    rates.setdefault(architecture, []).append(record["reference_photo"]["bpp"])
    assert record["size_bytes"] < 20e6
  assert "bls2017" in rates
  for points in rates.values():
    assert len(points) >= 3 and len(set(np.round(points, 3))) == len(points)


@pytest.mark.coding
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_codes_the_reference_photo_at_its_rate(name):
  codec = eic_jax.load_codec(name)
  photo = skimage.data.coffee()
  data, reconstruction, metrics = report.measure(codec, photo)
  low, high = pretrained.record(name)["reference_photo"]["expected_bpp"]
  assert low <= metrics["bpp"] <= high
  assert reconstruction.shape == photo.shape and reconstruction.dtype == np.uint8
  assert metrics["psnr"] > 20.0


def test_unknown_model_names_the_shipped_ones():
  with pytest.raises(FileNotFoundError, match="neither a workdir nor a shipped model"):
    eic_jax.load_codec("no-such-model")


@pytest.mark.coding
def test_command_line_takes_a_shipped_model(tmp_path):
  source = tmp_path / "coffee.png"
  Image.fromarray(skimage.data.coffee()[:128, :160]).save(source)
  compressed, decoded = tmp_path / "c.eic", tmp_path / "d.png"
  for mode, source_path, target in (("compress", source, compressed),
                                    ("decompress", compressed, decoded)):
    result = subprocess.run(
        [sys.executable, "-m", "eic_jax.main", f"--mode={mode}", f"--model={SHIPPED[0]}",
         f"--input={source_path}", f"--output={target}"], cwd=ROOT, capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 0, result.stderr
  assert Image.open(decoded).size == (160, 128)
