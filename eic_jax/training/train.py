"""Training: rate–distortion objective, jit-compiled steps, evaluation and the training loop."""

import concurrent.futures
import contextlib
import functools
import logging
import math
import time
from typing import Any

from clu import metrics
import flax
from flax import traverse_util
from flax.training import train_state
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from eic_jax import models
from eic_jax.codec import export
from eic_jax.layers.padding import extend_edges
from eic_jax.models.base import CompressionModel
from eic_jax.models.objective import Objective, bits_per_pixel
from eic_jax.runtime import compiler_options
from eic_jax.storage import checkpoints
from eic_jax.storage import shipped
from eic_jax.training import graceful_stop
from eic_jax.training import input_pipeline
from eic_jax.training import parallel
from eic_jax.training import resume
from eic_jax.training import training_log


@flax.struct.dataclass
class Metrics(metrics.Collection):
  """Averages of the rate–distortion measurements, over steps or validation images."""
  loss: metrics.Average.from_output("loss")
  bpp: metrics.Average.from_output("bpp")
  mse: metrics.Average.from_output("mse")
  psnr: metrics.Average.from_output("psnr")


@flax.struct.dataclass
class RateMetrics(metrics.Collection):
  """The average rate: what training the entropy models on fixed latents measures (its loss,
  not logged, is the rate alone, where a full step's is rate + λ·distortion)."""
  bpp: metrics.Average.from_output("bpp")


def create_model(config: ml_collections.ConfigDict) -> CompressionModel:
  return models.create(config)


def learning_rate_drop_steps(config: ml_collections.ConfigDict) -> list[int]:
  """Steps where the piecewise schedule multiplies the learning rate by 0.1: the boundaries
  are fractions of num_train_steps, counted from step 0."""
  return [int(f * config.num_train_steps) for f in config.learning_rate_boundaries]


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  if config.learning_rate_schedule == "constant":
    return optax.constant_schedule(config.learning_rate)
  if config.learning_rate_schedule == "cosine":
    return optax.cosine_decay_schedule(config.learning_rate, config.num_train_steps)
  if config.learning_rate_schedule == "piecewise":
    return optax.piecewise_constant_schedule(
        config.learning_rate, {step: 0.1 for step in learning_rate_drop_steps(config)})
  raise ValueError(f"Unknown learning_rate_schedule {config.learning_rate_schedule!r}; "
                   "use constant, cosine or piecewise")


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  return optax.adam(learning_rate_schedule(config))


def _init_params(model: CompressionModel, rng: jax.Array) -> Any:
  size = model.downsampling
  dummy = jnp.zeros((1, size, size, 3), jnp.float32)
  return model.init({"params": rng, "noise": rng}, dummy, training=True)["params"]


@functools.cache
def _compiled_init_params():
  # One computation, compiled once per process and model: run eagerly, Flax's init compiles each
  # of its ~150 operations on its own, seconds before a training process's first step.
  return jax.jit(_init_params, static_argnums=0, **compiler_options.jit_kwargs())


def init_params(model: CompressionModel, rng: jax.Array) -> Any:
  return _compiled_init_params()(model, rng)


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array
                       ) -> train_state.TrainState:
  model = create_model(config)
  return train_state.TrainState.create(
      apply_fn=model.apply, params=init_params(model, rng), tx=create_optimizer(config))


# How training stands in for rounding: "noise" gives rate and synthesis noisy latents (the
# paper); "mixed" gives the rate noisy latents and the synthesis rounded ones, straight through.
QUANTIZATION_MODES = ("noise", "mixed")


# What training changes: "all" parameters; "encoder" alone (the model's encoder_modules), the
# decoder and its entropy models fixed, so files written before decode the same; or
# "entropy_models" alone (the model's entropy_modules), on the latents of the training images
# under the fixed analysis.
TRAINABLE = ("all", "encoder", "entropy_models")
# Images extended to multiples of this many pixels share one compiled analysis.
_ANALYSIS_BUCKET = 128


def check_trainable(config: ml_collections.ConfigDict, model: CompressionModel) -> None:
  if config.trainable not in TRAINABLE:
    raise ValueError(f"Unknown trainable {config.trainable!r}; use one of {', '.join(TRAINABLE)}")
  if config.trainable == "entropy_models" and config.patch_size % model.downsampling:
    raise ValueError(f"trainable = 'entropy_models' crops latents: patch_size "
                     f"({config.patch_size}) must be a multiple of {model.downsampling}")


def training_latents(model: CompressionModel, params: Any,
                     loaders: list, threads: int | None = None) -> list[np.ndarray]:
  """The latents (h, w, C) of every training image, computed once, as the codec computes them:
  from the image extended by its edge pixels to the analysis's grid (layers.padding)."""
  size = model.downsampling
  analyze = jax.jit(lambda image, region: model.apply(
      {"params": params}, image[None].astype(jnp.float32), region, method="analyze")[0],
      **compiler_options.jit_kwargs())

  def latents(load) -> np.ndarray:
    extended = extend_edges(load(), size)
    height, width = extended.shape[:2]
    padded = np.pad(extended, ((0, -height % _ANALYSIS_BUCKET), (0, -width % _ANALYSIS_BUCKET),
                               (0, 0)))
    region = np.array([0, 0, height, width], np.int32)
    return np.asarray(analyze(padded, region)[:height // size, :width // size])

  start = time.monotonic()
  # Threads decode the next images while the analysis runs.
  threads = threads or input_pipeline.default_threads()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    result = list(pool.map(latents, loaders))
  logging.info("Computed the latents of %d training images in %.0f s (%.0f MB)", len(result),
               time.monotonic() - start, sum(y.nbytes for y in result) / 1e6)
  return result


def check_quantization(quantization: str) -> None:
  if quantization not in QUANTIZATION_MODES:
    raise ValueError(f"Unknown quantization {quantization!r}; use one of "
                     f"{', '.join(QUANTIZATION_MODES)}")


def train_step(state: train_state.TrainState, batch: jax.Array, rng: jax.Array,
               objective: Objective, quantization: str = "noise",
               modules: tuple[str, ...] | None = None
               ) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimiser step on the rate–distortion objective, quantisation replaced as
  `quantization` says, for every parameter or, given `modules`, for those parameter subtrees
  alone."""
  check_quantization(quantization)
  x = batch.astype(jnp.float32)

  def loss_fn(trainable):
    x_hat, likelihoods = state.apply_fn({"params": {**state.params, **trainable}}, x,
                                        training=True, straight_through=quantization == "mixed",
                                        rngs={"noise": rng})
    outputs = jax.tree_util.tree_map(jnp.mean, objective.measure(x, x_hat, likelihoods))
    return outputs["loss"], outputs

  trainable = state.params if modules is None else {name: state.params[name] for name in modules}
  grads, outputs = jax.grad(loss_fn, has_aux=True)(trainable)
  return _apply_gradients(state, grads, modules), outputs


def _apply_gradients(state: train_state.TrainState, grads: Any, modules: tuple[str, ...] | None
                     ) -> train_state.TrainState:
  """The optimiser's step with `grads`, which cover the parameter subtrees `modules` (None: all
  of them); every other parameter is returned unchanged, whatever the optimiser's state."""
  if modules is None:
    return state.apply_gradients(grads=grads)
  grads = {name: grads[name] if name in grads else jax.tree_util.tree_map(jnp.zeros_like, value)
           for name, value in state.params.items()}
  updated = state.apply_gradients(grads=grads)
  params = {name: updated.params[name] if name in modules else value
            for name, value in state.params.items()}
  return updated.replace(params=params)


def entropy_model_step(state: train_state.TrainState, latents: jax.Array, rng: jax.Array,
                       modules: tuple[str, ...], downsampling: int, quantization: str = "noise"
                       ) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
  """One optimiser step on the rate of fixed latents (N, h, w, C), for the parameter subtrees
  `modules` (the model's entropy models) alone. With the analysis and synthesis fixed the
  distortion is too, so the rate is the whole objective (rounding offsets that follow a
  density's medians move with it, as in full training, where their gradient is not taken
  either)."""
  check_quantization(quantization)
  num_pixels = latents.shape[1] * latents.shape[2] * downsampling**2

  def loss_fn(trainable):
    _, likelihoods = state.apply_fn({"params": {**state.params, **trainable}}, latents,
                                    training=True, straight_through=quantization == "mixed",
                                    rngs={"noise": rng}, method="quantize")
    bpp = jnp.mean(bits_per_pixel(likelihoods, num_pixels))
    return bpp, {"loss": bpp, "bpp": bpp}

  grads, outputs = jax.grad(loss_fn, has_aux=True)({name: state.params[name] for name in modules})
  return _apply_gradients(state, grads, modules), outputs


def _train_and_measure(state: train_state.TrainState, batch: jax.Array, noise_rng: jax.Array,
                       step: jax.Array, running: metrics.Collection, step_fn
                       ) -> tuple[train_state.TrainState, jax.Array, metrics.Collection]:
  """The training loop's compiled step: `step_fn` (train_step or entropy_model_step with their
  settings) with the step's noise key and the running metrics computed on the device. Built
  eagerly on the host, the metrics took some twenty small dispatches a step, longer than a
  whole step on a GPU."""
  state, outputs = step_fn(state, batch, jax.random.fold_in(noise_rng, step))
  return state, outputs["loss"], running.merge(type(running).single_from_model_output(**outputs))


def eval_step(apply_fn, params: Any, batch: jax.Array, objective: Objective
              ) -> dict[str, jax.Array]:
  """Per-image metrics with rounded latents and the reconstruction clipped and rounded to 8 bits,
  as a decoder would output it."""
  x = batch.astype(jnp.float32)
  x_hat, likelihoods = apply_fn({"params": params}, x, training=False)
  return objective.measure(x, jnp.round(jnp.clip(x_hat, 0.0, 255.0)), likelihoods)


def evaluate(eval_fn, params: Any, images: np.ndarray, batch_size: int) -> dict[str, float]:
  collected = None
  for start in range(0, len(images), batch_size):
    update = Metrics.single_from_model_output(
        **eval_fn(params, images[start:start + batch_size]))
    collected = update if collected is None else collected.merge(update)
  return {name: float(value) for name, value in collected.compute().items()}


def start_from_export(state: train_state.TrainState, init_from: str,
                      architecture: str) -> train_state.TrainState:
  """`state` with the parameters and step of an export (a workdir or a shipped model's name)
  and a fresh optimiser state: training continues from a model whose checkpoints are gone.

  An export of another architecture grows this one (e.g. ms2020 from bmshj2018): the
  parameters with the same name and shape are copied, the others keep their initial values.
  """
  source = shipped.resolve(init_from)
  params, _, step = checkpoints.restore_export(source)
  source_architecture = models.architecture(checkpoints.load_config(source))
  source_leaves = traverse_util.flatten_dict(params)
  target_leaves = traverse_util.flatten_dict(state.params)
  same = {path for path, value in source_leaves.items()
          if path in target_leaves and np.shape(value) == np.shape(target_leaves[path])}
  if source_architecture == architecture:
    if same != set(source_leaves) or same != set(target_leaves):
      raise ValueError(f"{init_from} holds a model of another shape than this config's")
  elif not same:
    raise ValueError(f"{init_from} ({source_architecture}) shares no parameters with this "
                     f"{architecture} model")
  else:
    logging.info("Growing %s from %s (%s): %d of its %d parameter arrays copied, the rest "
                 "initialised", architecture, init_from, source_architecture, len(same),
                 len(target_leaves))
  params = traverse_util.unflatten_dict(
      {path: jnp.asarray(source_leaves[path]) if path in same else value
       for path, value in target_leaves.items()})
  logging.info("Starting from the export of %s at step %d with a fresh optimiser", init_from,
               step)
  return state.replace(step=step, params=params,
                       opt_state=schedule_at_step(state.tx.init(params), step))


def schedule_at_step(opt_state: Any, step: int) -> Any:
  """`opt_state` with its learning-rate schedule moved to `step`, so schedule boundaries stay
  fractions of `num_train_steps` after a restart; Adam's moments and bias correction stay fresh."""
  def move(node):
    if isinstance(node, optax.ScaleByScheduleState):
      return node._replace(count=jnp.full_like(node.count, step))
    return node
  return jax.tree_util.tree_map(move, opt_state,
                                is_leaf=lambda node: isinstance(node, optax.ScaleByScheduleState))


def _check_finite(step_and_loss: tuple[int, jax.Array] | None, manager) -> None:
  if step_and_loss is None:
    return
  step, loss = step_and_loss
  loss = float(loss)
  if not math.isfinite(loss):
    raise FloatingPointError(
        f"Training diverged at step {step}: the loss is {loss}. The last good checkpoint "
        f"(step {manager.latest_step()}) is kept in {manager.directory}; lower "
        "learning_rate or lmbda and run again.")


def _past(deadline: float) -> bool:
  """Whether `deadline` (time.monotonic) has passed, as process 0 sees it: every process stops
  at the same step."""
  if deadline == math.inf:
    return False
  past = time.monotonic() > deadline
  if jax.process_count() > 1:
    past = bool(multihost_utils.broadcast_one_to_all(np.array(past)))
  return past


def _periodic(step: int, every: int, last_step: int) -> bool:
  return step == last_step or (every > 0 and step % every == 0)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       allow_changes: bool = False) -> train_state.TrainState:
  """Trains in `workdir`, resuming from its latest checkpoint, and returns the final state.

  A resume whose `config` changes what is trained is refused unless `allow_changes` (see
  resume.py). Data-parallel over every device (see parallel.py); `config.batch_size` is the
  global batch. At the end, the final parameters are exported for compression with their
  coding tables (see codec/export.py). SIGINT or SIGTERM
  stops after the current step with a checkpoint and an export, raising
  graceful_stop.StoppedBySignal.
  """
  check_quantization(config.quantization)
  model = create_model(config)
  check_trainable(config, model)
  objective = Objective.from_config(config)
  if config.trainable != "entropy_models":  # which trains on the rate alone
    objective.check_size(config.patch_size, config.patch_size, "a training crop")
  if config.valid_glob:
    objective.check_size(config.valid_patch_size, config.valid_patch_size, "a validation crop")
  # The data is found and read before anything is written, so a bad pattern leaves no workdir.
  loaders = input_pipeline.image_loaders(config.train_glob, config.patch_size)
  valid_images = (input_pipeline.validation_images(
      config.valid_glob, config.valid_patch_size, config.num_valid_images)
                  if config.valid_glob else None)
  if checkpoints.latest_step(workdir) is not None:
    resume.check(checkpoints.load_config(workdir), config, workdir, allow_changes)
  checkpoints.ensure_writable(workdir)
  logging.info("Training %s in %s on %d images; decoding them first", models.architecture(config),
               workdir, len(loaders))
  mesh = parallel.create_mesh()
  local_batch_size = parallel.local_batch_size(config.batch_size, mesh)
  replicated = parallel.replicated(mesh)
  checkpoints.save_config(config, workdir)
  rng = jax.random.PRNGKey(config.seed)
  init_rng, noise_rng = jax.random.split(rng)
  state = jax.device_put(create_train_state(config, init_rng), replicated)
  manager = checkpoints.checkpoint_manager(workdir, config.max_checkpoints_to_keep)
  writer = None
  stack = contextlib.ExitStack()
  try:
    restored = checkpoints.restore_latest_good(manager, state)
    if restored is not None:
      state = restored
      logging.info("Resumed from step %d in %s", int(state.step), manager.directory)
    elif config.get("init_from"):
      state = jax.device_put(start_from_export(state, config.init_from,
                                                   models.architecture(config)), replicated)
    initial_step = int(state.step)
    if initial_step >= config.num_train_steps:
      logging.info("Already trained for %d steps", initial_step)
      return state
    if jax.process_index() == 0:
      checkpoints.record_start(workdir, initial_step, config)

    seed = config.seed + initial_step * jax.process_count() + jax.process_index()
    if config.trainable == "entropy_models":
      latents = training_latents(model, state.params, loaders)
      batches = iter(input_pipeline.RandomCrops(
          [lambda y=y: y for y in latents], local_batch_size,
          config.patch_size // model.downsampling, seed, cache=False))  # already in memory
      step = functools.partial(entropy_model_step, modules=model.entropy_modules,
                               downsampling=model.downsampling,
                               quantization=config.quantization)
      no_metrics = RateMetrics.empty()
    else:
      batches = iter(input_pipeline.RandomCrops(
          loaders, local_batch_size, config.patch_size, seed, cache=config.cache_images,
          flips=config.random_flips))
      step = functools.partial(
          train_step, objective=objective, quantization=config.quantization,
          modules=model.encoder_modules if config.trainable == "encoder" else None)
      no_metrics = Metrics.empty()
    # No buffer donation: an asynchronous checkpoint may still be reading the previous state
    # (on CPU its host copy can alias the device buffer).
    step_fn = jax.jit(functools.partial(_train_and_measure, step_fn=step),
                      in_shardings=(replicated, parallel.batch_sharding(mesh), replicated,
                                    replicated, replicated),
                      out_shardings=(replicated, replicated, replicated),
                      **compiler_options.jit_kwargs())
    eval_fn = jax.jit(functools.partial(eval_step, state.apply_fn, objective=objective),
                      **compiler_options.jit_kwargs())
    writer = training_log.TrainingLog(workdir, config.num_train_steps, initial_step,
                                      files=jax.process_index() == 0)
    writer.write_hparams({k: v for k, v in config.items() if isinstance(v, (int, float, str))})

    no_metrics = jax.device_put(no_metrics, replicated)
    train_metrics = no_metrics
    unchecked = None  # (step, loss) not yet read back
    deadline = time.monotonic() + config.time_limit_s if config.time_limit_s > 0 else math.inf
    logging.info("Compiling the training step, then training from step %d to %d (a report "
                 "every %d steps)", initial_step, config.num_train_steps,
                 config.log_every_steps)
    started = time.monotonic()
    stop = stack.enter_context(graceful_stop.GracefulStop())
    for step in range(initial_step + 1, config.num_train_steps + 1):
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        batch = parallel.global_batch(next(batches), mesh)
        state, loss, train_metrics = step_fn(state, batch, noise_rng, np.int32(step),
                                             train_metrics)
      # The previous step's loss is read while this one runs, so the accelerator never waits
      # for the host; a state is checked before it is saved or reported.
      if step == initial_step + 1:
        jax.block_until_ready(loss)
        logging.info("Step %d done %.1f s after compiling began", step,
                     time.monotonic() - started)
      _check_finite(unchecked, manager)
      unchecked = (step, loss)
      writer.advance(step)
      last_step = config.num_train_steps
      if _past(deadline):
        last_step = step
        logging.info("Stopping at step %d: the time limit of %g s is reached", step,
                     config.time_limit_s)
      if stop.requested():
        last_step = step
      log = _periodic(step, config.log_every_steps, last_step)
      evaluate_now = valid_images is not None and _periodic(step, config.eval_every_steps,
                                                            last_step)
      save = _periodic(step, config.checkpoint_every_steps, last_step)
      if log or evaluate_now or save:
        _check_finite(unchecked, manager)
        unchecked = None
      if log:
        writer.write_scalars(step, {f"train_{name}": value for name, value
                                    in train_metrics.compute().items()})
        train_metrics = no_metrics
      if evaluate_now:
        scores = evaluate(eval_fn, state.params, valid_images, config.batch_size)
        writer.write_scalars(step, {f"valid_{name}": value for name, value in scores.items()})
      if save:
        checkpoints.save_state(manager, step, state)
      if step == last_step:
        break
    export.save(workdir, parallel.to_host(state.params), int(state.step), config)
    if stop.signum is not None:
      raise graceful_stop.StoppedBySignal(stop.signum, int(state.step), workdir)
    return state
  finally:
    stack.close()
    manager.wait_until_finished()
    manager.close()
    if writer is not None:
      writer.close()
