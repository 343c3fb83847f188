"""Shared fixtures: small photographs that ship with scikit-image, written as PNG and JPEG."""

import importlib.util
import os
import pathlib
import shutil
import types

import filelock
import numpy as np
import pytest
import skimage.data
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from eic_jax.coder import coders  # noqa: E402  (after the log level)
from eic_jax.runtime import compilation_cache  # noqa: E402

# Tests that code with each coder take `coder` from these; TensorFlow Compression's is marked.
EVERY_CODER = [pytest.param(name, marks=pytest.mark.tfc) if name == coders.TFC.name else name
               for name in coders.CODERS]


def load_script(path: str) -> types.ModuleType:
  """A script of the repository (e.g. experiments/gpu/pack_export.py), imported as a module."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, ROOT / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def pytest_collection_modifyitems(config, items):
  """Tests marked `tfc` need the [coding] extra (TensorFlow and its Compression range coder);
  where it is not installed they are skipped with the reason in the summary (pytest -rs)."""
  del config
  if coders.TFC.available():
    return
  skip = pytest.mark.skip(reason="needs the [coding] extra: TensorFlow 2.17 and TensorFlow "
                          "Compression's range coder (Python <= 3.12)")
  for item in items:
    if "tfc" in item.keywords:
      item.add_marker(skip)


def photo(name: str = "astronaut", size: tuple[int, int] | None = None) -> np.ndarray:
  """A uint8 RGB photograph from scikit-image, optionally cropped to (height, width)."""
  image = getattr(skimage.data, name)()
  if size is not None:
    image = image[:size[0], :size[1]]
  return np.ascontiguousarray(image)


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> pathlib.Path:
  """Eight 96x128 crops of four photographs, half PNG and half JPEG."""
  directory = tmp_path_factory.mktemp("photos")
  for name in ("astronaut", "chelsea", "coffee", "rocket"):
    image = getattr(skimage.data, name)()
    for i, (top, left) in enumerate(((0, 0), (150, 200))):
      crop = image[top:top + 96, left:left + 128]
      extension = "png" if i == 0 else "jpg"
      Image.fromarray(crop).save(directory / f"{name}_{i}.{extension}")
  return directory


@pytest.fixture
def smoke_config(photo_dir):
  from configs import smoke  # pylint: disable=import-outside-toplevel
  config = smoke.get_config()
  config.train_glob = str(photo_dir / "*")
  config.valid_glob = str(photo_dir / "*.png")
  return config


def _run_directory(tmp_path_factory) -> pathlib.Path:
  """A directory of this test run that every pytest-xdist worker shares (its own otherwise)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def shared_compilation_cache(tmp_path_factory):
  """JAX's persistent compilation cache, shared by the workers of this run and empty at its
  start: a tiny model's training step or a transform compiled by one worker loads in the others
  (about a quarter of the suite's time). Commands the tests start keep their own
  (--compilation_cache)."""
  compilation_cache.enable(str(_run_directory(tmp_path_factory) / "jax-cache"))


def train_tiny(workdir: pathlib.Path, photo_dir: pathlib.Path, model: str) -> pathlib.Path:
  """A tiny model of architecture `model` trained briefly (about 10 s), with its export."""
  from configs import smoke  # pylint: disable=import-outside-toplevel
  from eic_jax.training import train  # pylint: disable=import-outside-toplevel
  config = smoke.get_config()
  config.model = model
  config.train_glob = str(photo_dir / "*")
  config.valid_glob = ""
  config.patch_size = 64
  config.num_train_steps = 60
  config.checkpoint_every_steps = 60
  config.log_every_steps = 60
  train.train_and_evaluate(config, str(workdir))
  return workdir


def trained_once(tmp_path_factory, photo_dir: pathlib.Path, model: str) -> pathlib.Path:
  """`train_tiny`'s workdir, trained by the first worker of the run that asks for it and read
  by the others. Tests read it and copy it to change it."""
  directory = _run_directory(tmp_path_factory)
  workdir = directory / f"trained-{model}"
  with filelock.FileLock(str(directory / f"trained-{model}.lock")):
    if not (workdir / "complete").exists():
      shutil.rmtree(workdir, ignore_errors=True)
      train_tiny(workdir, photo_dir, model)
      (workdir / "complete").touch()
  return workdir


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory, photo_dir) -> pathlib.Path:
  return trained_once(tmp_path_factory, photo_dir, "bls2017")


@pytest.fixture(scope="session")
def hyperprior_workdir(tmp_path_factory, photo_dir) -> pathlib.Path:
  return trained_once(tmp_path_factory, photo_dir, "bmshj2018")


@pytest.fixture(scope="session")
def channel_conditional_workdir(tmp_path_factory, photo_dir) -> pathlib.Path:
  return trained_once(tmp_path_factory, photo_dir, "ms2020")


@pytest.fixture(scope="session")
def codec(trained_workdir):
  from eic_jax.codec import codec as codec_lib  # pylint: disable=import-outside-toplevel
  return codec_lib.load_codec(str(trained_workdir))


@pytest.fixture(scope="session")
def hyperprior_codec(hyperprior_workdir):
  from eic_jax.codec import codec as codec_lib  # pylint: disable=import-outside-toplevel
  return codec_lib.load_codec(str(hyperprior_workdir))
