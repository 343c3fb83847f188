import functools
import json
import os
import shutil
import subprocess
import sys

from flax.training import train_state
import jax
import numpy as np
import optax
import pytest
from PIL import Image

from eic_jax.layers.padding import extend_edges
from eic_jax.models.objective import Objective
from eic_jax.storage import checkpoints
from eic_jax.training import input_pipeline
from eic_jax.training import resume
from eic_jax.training import stages
from eic_jax.training import train
from eic_jax.training import training_log
from tests.conftest import ROOT, photo


def _run_main(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "eic_jax.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("quantization", train.QUANTIZATION_MODES)
def test_thirty_steps_lower_the_loss(smoke_config, quantization):
  state = train.create_train_state(smoke_config, jax.random.PRNGKey(0))
  batch = next(input_pipeline.train_batches(smoke_config.train_glob, 4, 64, seed=0))
  step = jax.jit(functools.partial(train.train_step, objective=Objective(smoke_config.lmbda),
                                   quantization=quantization))
  losses = []
  for i in range(30):
    state, outputs = step(state, batch, jax.random.PRNGKey(i))
    losses.append(float(outputs["loss"]))
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  assert int(state.step) == 30


def test_the_loops_compiled_step_reports_the_averages_of_its_steps(smoke_config):
  """The training loop keeps its running metrics on the device: after three steps they are the
  means of what train_step returns for the same steps and noise keys."""
  state = train.create_train_state(smoke_config, jax.random.PRNGKey(0))
  batch = next(input_pipeline.train_batches(smoke_config.train_glob, 4, 64, seed=0))
  options = {"objective": Objective(smoke_config.lmbda), "quantization": "mixed"}
  plain_step = functools.partial(train.train_step, **options)
  measured = jax.jit(functools.partial(train._train_and_measure, step_fn=plain_step))
  plain = jax.jit(plain_step)
  noise = jax.random.PRNGKey(7)
  metrics, looped, separate, outputs = train.Metrics.empty(), state, state, []
  for step in (1, 2, 3):
    looped, loss, metrics = measured(looped, batch, noise, np.int32(step), metrics)
    separate, output = plain(separate, batch, jax.random.fold_in(noise, step))
    np.testing.assert_allclose(float(loss), float(output["loss"]), rtol=1e-6)
    outputs.append(output)
  for name, value in metrics.compute().items():
    np.testing.assert_allclose(float(value), np.mean([float(o[name]) for o in outputs]),
                               rtol=1e-6)
  assert len({float(o["loss"]) for o in outputs}) == 3


def test_piecewise_schedule_drops_at_the_recorded_steps(smoke_config):
  smoke_config.learning_rate_schedule = "piecewise"
  smoke_config.num_train_steps = 1000
  smoke_config.learning_rate_boundaries = (0.5, 0.85)
  drops = train.learning_rate_drop_steps(smoke_config)
  assert drops == [500, 850]
  schedule = train.learning_rate_schedule(smoke_config)
  rate = smoke_config.learning_rate
  np.testing.assert_allclose([schedule(s) for s in (0, 499, 500, 849, 850, 999)],
                             [rate, rate, rate / 10, rate / 10, rate / 100, rate / 100],
                             rtol=1e-6)


def test_unknown_quantization_is_a_clear_error_before_training(smoke_config, tmp_path):
  smoke_config.quantization = "rounding"
  with pytest.raises(ValueError, match="Unknown quantization 'rounding'; use one of noise, mixed"):
    train.train_and_evaluate(smoke_config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def _flat(tree):
  return {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def test_restore_in_a_new_process_continues_with_equal_parameters(smoke_config, tmp_path):
  workdir = tmp_path / "run"
  common = ["--config=configs/smoke.py", f"--workdir={workdir}",
            f"--config.train_glob={smoke_config.train_glob}",
            f"--config.valid_glob={smoke_config.valid_glob}"]
  first = _run_main(*common, "--config.num_train_steps=6", "--config.checkpoint_every_steps=3")
  assert first.returncode == 0, first.stderr
  assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "6"]

  # A fresh state restored here equals what the first process saved at its end.
  config = checkpoints.load_config(str(workdir))
  manager = checkpoints.checkpoint_manager(str(workdir))
  fresh = train.create_train_state(config, jax.random.PRNGKey(123))
  restored = checkpoints.restore_state(manager, fresh)
  assert int(restored.step) == 6
  assert not np.allclose(_flat(fresh.params)["['analysis']['conv_0']['kernel_fourier']"],
                         _flat(restored.params)["['analysis']['conv_0']['kernel_fourier']"])

  second = _run_main(*common, "--config.num_train_steps=8", "--config.checkpoint_every_steps=3")
  assert second.returncode == 0, second.stderr
  assert "Resumed from step 6" in second.stderr
  manager = checkpoints.checkpoint_manager(str(workdir))
  continued = checkpoints.restore_state(manager, fresh)
  assert int(continued.step) == 8
  # The second run started from the saved parameters: one or two Adam steps move them little.
  before, after = _flat(restored.params), _flat(continued.params)
  for name in before:
    assert np.max(np.abs(before[name] - after[name])) < 0.05 + 0.05 * np.max(np.abs(before[name]))


def test_config_overrides_reach_the_model_and_the_workdir(smoke_config, tmp_path):
  workdir = tmp_path / "override"
  result = _run_main("--config=configs/smoke.py", f"--workdir={workdir}",
                     f"--config.train_glob={smoke_config.train_glob}", "--config.valid_glob=",
                     "--config.num_filters=6", "--config.lmbda=0.05",
                     "--config.num_train_steps=2")
  assert result.returncode == 0, result.stderr
  stored = json.loads((workdir / "config.json").read_text())
  assert stored["num_filters"] == 6 and stored["lmbda"] == 0.05
  config = checkpoints.load_config(str(workdir))
  restored = checkpoints.restore_state(checkpoints.checkpoint_manager(str(workdir)),
                                 train.create_train_state(config, jax.random.PRNGKey(0)))
  assert restored.params["analysis"]["conv_0"]["kernel_fourier"].shape == (9, 9, 3, 6)


def test_empty_glob_is_a_clear_error_naming_the_pattern(tmp_path):
  pattern = str(tmp_path / "nothing" / "*.png")
  result = _run_main("--config=configs/smoke.py", f"--workdir={tmp_path / 'w'}",
                     f"--config.train_glob={pattern}")
  assert result.returncode != 0
  assert f"No image files match the pattern '{pattern}'" in result.stderr
  assert "Traceback" not in result.stderr


def test_divergence_stops_training_with_a_clear_message(smoke_config, tmp_path):
  smoke_config.learning_rate = 1e30
  smoke_config.num_train_steps = 20
  with pytest.raises(FloatingPointError, match="Training diverged at step"):
    train.train_and_evaluate(smoke_config, str(tmp_path / "nan"))


def test_images_smaller_than_the_crop_are_skipped(photo_dir, tmp_path):
  for path in photo_dir.iterdir():
    shutil.copy(path, tmp_path)
  small = tmp_path / "small.png"
  Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(small)
  files = input_pipeline.list_files(str(tmp_path / "*"))
  kept = input_pipeline.large_enough(files, 64)
  assert len(kept) == 8 and str(small) not in kept
  with pytest.raises(ValueError, match="None of the 9 images is at least 200x200"):
    input_pipeline.large_enough(files, 200)
  batch = next(input_pipeline.train_batches(str(tmp_path / "*"), 3, 64, seed=1))
  assert batch.shape == (3, 64, 64, 3) and batch.dtype == np.uint8


def test_training_can_start_from_an_export(smoke_config, trained_workdir, tmp_path):
  exported, _, step = checkpoints.restore_export(str(trained_workdir))
  smoke_config.patch_size = 64
  smoke_config.init_from = str(trained_workdir)
  smoke_config.num_train_steps = step  # nothing left to train: the state is the export's
  state = train.train_and_evaluate(smoke_config, str(tmp_path / "continued"))
  assert int(state.step) == step
  for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(exported)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  schedule_steps = [leaf for leaf in jax.tree_util.tree_leaves(
      state.opt_state, is_leaf=lambda node: isinstance(node, optax.ScaleByScheduleState))
                    if isinstance(leaf, optax.ScaleByScheduleState)]
  assert [int(s.count) for s in schedule_steps] == [step]  # the schedule resumes, not restarts
  smoke_config.num_filters = 8
  with pytest.raises(ValueError, match="another shape"):
    train.train_and_evaluate(smoke_config, str(tmp_path / "mismatch"))


def test_stages_follow_resumes_with_other_flags_and_runs_started_from_an_export(
    smoke_config, tmp_path):
  smoke_config.valid_glob = ""
  smoke_config.num_train_steps = 2
  first, fork = str(tmp_path / "first"), str(tmp_path / "fork")
  train.train_and_evaluate(smoke_config, first)
  learning_rate, lmbda = smoke_config.learning_rate, smoke_config.lmbda
  smoke_config.learning_rate = learning_rate / 10
  smoke_config.num_train_steps = 3
  with pytest.raises(resume.ChangedConfigError, match=r"learning_rate: 0\.001 → 0\.0001"):
    train.train_and_evaluate(smoke_config, first)
  train.train_and_evaluate(smoke_config, first, allow_changes=True)
  smoke_config.init_from = first
  smoke_config.lmbda = 2 * lmbda
  smoke_config.num_train_steps = 5
  train.train_and_evaluate(smoke_config, fork)

  history = stages.history(fork, 5)
  assert [s["steps"] for s in history] == [[0, 2], [2, 3], [3, 5]]
  assert [s["learning_rate"] for s in history] == [learning_rate] + 2 * [learning_rate / 10]
  assert [s["lmbda"] for s in history] == [lmbda, lmbda, 2 * lmbda]
  assert stages.history(first, 2) == history[:1]

  # A restart with the same flags continues a stage; one that resumed from an earlier
  # checkpoint replaces the starts it went back past; a torn last line is skipped.
  config = checkpoints.load_config(fork)
  checkpoints.record_start(fork, 4, config)
  assert [s["steps"] for s in stages.history(fork, 6)] == [[0, 2], [2, 3], [3, 6]]
  config.learning_rate = 1e-5
  checkpoints.record_start(fork, 3, config)
  with open(os.path.join(fork, checkpoints.STARTS_FILE), "a") as stream:
    stream.write('{"step": 9, "con')
  history = stages.history(fork, 6)
  assert [s["steps"] for s in history] == [[0, 2], [2, 3], [3, 6]]
  assert history[-1]["learning_rate"] == 1e-5


def _after_a_full_step(config) -> tuple[train_state.TrainState, np.ndarray]:
  """A state whose optimiser would move every parameter (Adam's moments after a full step),
  and the step's batch."""
  state = train.create_train_state(config, jax.random.PRNGKey(0))
  batch = next(input_pipeline.train_batches(config.train_glob, 4, 64, seed=0))
  state, _ = jax.jit(functools.partial(train.train_step, objective=Objective(config.lmbda)))(
      state, batch, jax.random.PRNGKey(0))
  return state, batch


def _run_steps(step, state, inputs, count: int, measure: str
               ) -> tuple[train_state.TrainState, list[float]]:
  values = []
  for i in range(count):
    state, outputs = step(state, inputs, jax.random.PRNGKey(i))
    values.append(float(outputs[measure]))
  return state, values


def _assert_changed_alone(before, after, modules: tuple[str, ...]) -> None:
  """Every parameter of the subtrees `modules` changed, and no other parameter."""
  for name in before:
    same = [np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(before[name]),
                                                 jax.tree_util.tree_leaves(after[name]))]
    assert not any(same) if name in modules else all(same), name


@pytest.mark.parametrize("model", ["bls2017", "bmshj2018", "ms2020"])
def test_training_the_entropy_models_changes_them_alone_and_lowers_the_rate(smoke_config, model):
  """Even with an optimiser state that would move the transforms, only the entropy models
  change, and the rate of the fixed latents falls."""
  smoke_config.model = model
  modules = train.create_model(smoke_config).entropy_modules
  start, batch = _after_a_full_step(smoke_config)
  latents = np.stack(train.training_latents(train.create_model(smoke_config), start.params,
                                            [lambda image=image: image for image in batch]))
  assert latents.shape[:3] == (4, 4, 4)
  step = jax.jit(functools.partial(train.entropy_model_step, modules=modules, downsampling=16,
                                   quantization="mixed"))
  state, rates = _run_steps(step, start, latents, 40, "bpp")
  assert np.mean(rates[-5:]) < 0.95 * np.mean(rates[:5])
  _assert_changed_alone(start.params, state.params, modules)


@pytest.mark.parametrize("model", ["bls2017", "bmshj2018"])
def test_training_the_encoder_changes_it_alone_and_lowers_the_loss(smoke_config, model):
  """Even with an optimiser state that would move every parameter, steps for the encoder leave
  the decoder and the entropy models as they were, and still lower the loss (slowly, with the
  decoder an untrained one)."""
  smoke_config.model = model
  modules = train.create_model(smoke_config).encoder_modules
  start, batch = _after_a_full_step(smoke_config)
  step = jax.jit(functools.partial(train.train_step, objective=Objective(smoke_config.lmbda),
                                   quantization="mixed", modules=modules))
  state, losses = _run_steps(step, start, batch, 30, "loss")
  assert np.mean(losses[-5:]) < 0.998 * np.mean(losses[:5])
  _assert_changed_alone(start.params, state.params, modules)


def test_initial_parameters_are_flaxs_and_compiled_once_per_model(smoke_config):
  net = train.create_model(smoke_config)
  key = jax.random.PRNGKey(5)
  size = net.downsampling
  eager = net.init({"params": key, "noise": key}, np.zeros((1, size, size, 3), np.float32),
                   training=True)["params"]
  compiled = train.init_params(net, key)
  assert jax.tree_util.tree_structure(compiled) == jax.tree_util.tree_structure(eager)
  for a, b in zip(jax.tree_util.tree_leaves(compiled), jax.tree_util.tree_leaves(eager)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  compiled_init = train._compiled_init_params()  # pylint: disable=protected-access
  compilations = compiled_init._cache_size()  # pylint: disable=protected-access
  again = train.create_train_state(smoke_config, jax.random.PRNGKey(6)).params
  assert compiled_init._cache_size() == compilations  # pylint: disable=protected-access
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(again),
                                                      jax.tree_util.tree_leaves(compiled)))


@pytest.mark.parametrize("model", ["bls2017", "bmshj2018"])
def test_training_latents_are_those_of_the_image_alone(smoke_config, model):
  """Analysed in a larger shared shape, an image's cached latents equal the analysis of the
  image alone, extended by its edge pixels to the grid as the codec extends it."""
  smoke_config.model = model
  net = train.create_model(smoke_config)
  params = train.init_params(net, jax.random.PRNGKey(1))
  image = photo("astronaut", (100, 147))
  cached, = train.training_latents(net, params, [lambda: image])
  alone = net.apply({"params": params}, extend_edges(image, 16)[None].astype(np.float32),
                    method="analyze")[0]
  assert cached.shape == alone.shape == (7, 10, net.latent_channels)
  np.testing.assert_allclose(cached, alone, rtol=1e-5, atol=1e-5)


def test_training_the_entropy_models_from_the_command_line(trained_workdir, photo_dir, tmp_path):
  workdir = str(tmp_path / "entropy")
  exported, _, step = checkpoints.restore_export(str(trained_workdir))
  flags = ["--config=configs/smoke.py", f"--workdir={workdir}",
           f"--config.train_glob={photo_dir}/*", f"--config.init_from={trained_workdir}",
           "--config.trainable=entropy_models", f"--config.num_train_steps={step + 6}"]
  result = _run_main(*flags, "--config.patch_size=40")
  assert result.returncode != 0
  assert "patch_size (40) must be a multiple of 16" in result.stderr
  result = _run_main(*flags, "--config.patch_size=64")
  assert result.returncode == 0, result.stderr[-3000:]
  params, _, new_step = checkpoints.restore_export(workdir)
  assert new_step == step + 6
  assert checkpoints.load_config(workdir).trainable == "entropy_models"
  for name in ("analysis", "synthesis"):
    for a, b in zip(jax.tree_util.tree_leaves(params[name]),
                    jax.tree_util.tree_leaves(exported[name])):
      np.testing.assert_array_equal(a, b)
  assert not np.array_equal(params["entropy_bottleneck"]["density"]["matrix_0"],
                            exported["entropy_bottleneck"]["density"]["matrix_0"])
  assert stages.history(workdir, new_step)[-1]["trainable"] == "entropy_models"
  logged = training_log.read_scalars(workdir)
  assert "train_bpp" in logged
  assert "train_mse" not in logged and "train_loss" not in logged


def test_an_ms_ssim_model_trains_on_crops_large_enough_and_refuses_smaller_ones(smoke_config,
                                                                                 tmp_path):
  smoke_config.distortion = "ms-ssim"
  smoke_config.lmbda = 10.0
  smoke_config.valid_glob = ""
  with pytest.raises(ValueError, match="a training crop of 32x32 pixels is too small"):
    train.train_and_evaluate(smoke_config, str(tmp_path / "small"))
  assert not (tmp_path / "small").exists()
  for name in ("astronaut", "coffee"):  # photographs larger than the crops
    Image.fromarray(photo(name, (200, 220))).save(tmp_path / f"{name}.png")
  smoke_config.train_glob = str(tmp_path / "*.png")
  smoke_config.patch_size = 176
  smoke_config.num_train_steps = 4
  smoke_config.log_every_steps = 2
  train.train_and_evaluate(smoke_config, str(tmp_path / "msssim"))
  _, losses = training_log.read_scalars(str(tmp_path / "msssim"))["train_loss"]
  assert np.all(np.isfinite(losses)) and len(losses) == 2


def test_a_partial_last_line_of_the_metrics_is_skipped(tmp_path):
  (tmp_path / training_log.METRICS_FILE).write_text(
      '{"step": 1, "train_loss": 2.5}\n{"step": 2, "train_lo')
  steps, values = training_log.read_scalars(str(tmp_path))["train_loss"]
  assert steps.tolist() == [1] and values.tolist() == [2.5]
