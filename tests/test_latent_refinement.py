import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eic_jax.codec import codec as codec_lib
from eic_jax.codec import effort
from eic_jax.codec import latent_refinement
from eic_jax.entropy_models import quantization
from tests.conftest import photo

OFFSETS = jnp.array([0.3, -0.2])


def test_annealed_rounding_lies_between_the_neighbouring_points_and_hardens_as_it_cools():
  y = jax.random.uniform(jax.random.PRNGKey(0), (500, 2), minval=-4.0, maxval=4.0)
  below = jnp.floor(y - OFFSETS) + OFFSETS
  warm = latent_refinement.annealed_rounding(y, OFFSETS, 0.5, jax.random.PRNGKey(1))
  assert np.all(warm >= below) and np.all(warm <= below + 1)
  assert np.mean(np.abs(warm - jnp.round(warm - OFFSETS) - OFFSETS) > 0.01) > 0.5
  cold = latent_refinement.annealed_rounding(y, OFFSETS, 1e-3, jax.random.PRNGKey(1))
  clear = np.abs(y - below - 0.5) > 0.05  # not within a hair of a midpoint
  np.testing.assert_allclose(cold[clear], quantization.round_around(y, OFFSETS)[clear],
                             atol=1e-3)
  gradient = jax.grad(lambda v: jnp.sum(latent_refinement.annealed_rounding(
      v, OFFSETS, 0.5, jax.random.PRNGKey(1))))(y)
  assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)


def test_temperature_anneals_from_its_start_to_its_floor():
  steps = 100
  values = np.asarray(latent_refinement.temperature(jnp.arange(steps), steps))
  assert values[0] == pytest.approx(latent_refinement.INITIAL_TEMPERATURE)
  assert np.all(np.diff(values) <= 0)
  assert values[-1] == pytest.approx(latent_refinement.MIN_TEMPERATURE)


def test_refinement_finds_the_quantised_optimum_and_keeps_fixed_latents():
  target = quantization.round_around(
      jax.random.normal(jax.random.PRNGKey(2), (6, 5, 2)) * 3, OFFSETS)
  loss = lambda y_hat: jnp.sum((y_hat - target)**2)
  y = target + jax.random.uniform(jax.random.PRNGKey(3), target.shape, minval=-3.0, maxval=3.0)
  variable = jnp.ones((6, 5), bool).at[0].set(False)
  fixed = jnp.full(target.shape, 7.0)
  refined = latent_refinement.refine(loss, y, fixed, variable, OFFSETS, jax.random.PRNGKey(4),
                                     steps=200, learning_rate=0.1)
  np.testing.assert_array_equal(refined[0], fixed[0])
  np.testing.assert_allclose(quantization.round_around(refined[1:], OFFSETS), target[1:])


def test_refinement_never_raises_the_loss_of_the_rounded_latents():
  y = jnp.zeros((4, 4, 2)) + OFFSETS
  # Already optimal when rounded; a large step size throws the iterates far away.
  loss = lambda y_hat: jnp.sum(jnp.abs(y_hat - OFFSETS))
  refined = latent_refinement.refine(loss, y, y, jnp.ones((4, 4), bool), OFFSETS,
                                     jax.random.PRNGKey(0), steps=3, learning_rate=10.0)
  np.testing.assert_array_equal(refined, y)


def test_refinement_reports_its_progress_tile_by_tile(codec):
  refining = codec_lib.Codec(codec.config, codec.params, codec.tables, refine_steps=120,
                             max_tile=12)
  calls = []
  refining.refine_progress = lambda done, total: calls.append((done, total))
  data = refining.compress(photo("astronaut", (200, 100)))
  tiles = len(refining._plan(200, 100)[0].starts) * len(refining._plan(200, 100)[1].starts)
  total = tiles * 120
  # Three chunks per tile (50, 50, 20 steps), each reported when it is done.
  assert [done for done, _ in calls] == [
      tile * 120 + done for tile in range(tiles) for done in (50, 100, 120)]
  assert {t for _, t in calls} == {total}
  refining.refine_progress = None
  assert refining.compress(photo("astronaut", (200, 100))) == data


@pytest.mark.parametrize("steps", [-1, 2.5, True, "10"])
def test_bad_step_counts_are_refused(trained_workdir, steps):
  with pytest.raises(ValueError, match="refine_steps must be a non-negative integer"):
    codec_lib.load_codec(str(trained_workdir), refine_steps=steps)


def test_cli_refines_for_compress_and_evaluate_and_refuses_bad_counts_and_efforts(
    trained_workdir, photo_dir, tmp_path):
  from tests.test_codec import _cli  # pylint: disable=import-outside-toplevel
  from eic_jax.runtime import image_io  # pylint: disable=import-outside-toplevel
  source = sorted(photo_dir.glob("*.png"))[0]
  output = tmp_path / "refined.eic"
  # The same command writes the same file. Both compile afresh: XLA:CPU's cached executables can
  # differ from fresh compilations in the last bits of float32, which ten gradient steps carry
  # into the latents (and an in-process encoder is no reference for the same reason).
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={output}", "--refine_steps=10", "--compilation_cache=")
  assert result.returncode == 0, result.stderr
  assert f"refining {source.name}" in result.stderr and "/10 " in result.stderr
  again = tmp_path / "again.eic"
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={again}", "--refine_steps=10", "--compilation_cache=")
  assert result.returncode == 0, result.stderr
  assert output.read_bytes() == again.read_bytes()
  image = image_io.read_image(str(source))
  plain = codec_lib.load_codec(str(trained_workdir))
  assert plain.decompress(output.read_bytes()).shape == image.shape
  curve_path = tmp_path / "rd.json"
  result = _cli("--mode=evaluate", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={curve_path}", "--effort=1")
  assert result.returncode == 0, result.stderr
  assert f"latents refined for {effort.EFFORT_STEPS[1]} steps" in curve_path.read_text()
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={tmp_path / 'never.eic'}", "--refine_steps=-3")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "error: refine_steps must be a non-negative integer, got -3" in result.stderr
  assert not (tmp_path / "never.eic").exists()
  result = _cli("--mode=compress", f"--workdir={trained_workdir}", f"--input={source}",
                f"--output={tmp_path / 'never.eic'}", "--effort=9")
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "error: effort must be an integer from 0 to 5, got 9" in result.stderr
  assert not (tmp_path / "never.eic").exists()


def test_refinement_lowers_the_models_own_objective_for_ms_ssim(codec):
  from eic_jax.models.objective import Objective  # pylint: disable=import-outside-toplevel
  config = codec.config.copy_and_resolve_references()
  config.distortion, config.lmbda = "ms-ssim", 30.0
  plain = codec_lib.Codec(config, codec.params, codec.tables)
  refined = codec_lib.Codec(config, codec.params, codec.tables, refine_steps=40)
  image = photo("astronaut", (192, 192))
  objective = Objective.from_config(config)

  def loss(data):
    reconstruction = plain.decompress(data)
    distortion = objective.distortion(image[None].astype(np.float32),
                                      reconstruction[None].astype(np.float32))[0]
    return 8 * len(data) / image[:, :, 0].size + config.lmbda * float(distortion)

  assert loss(refined.compress(image)) < loss(plain.compress(image))
  with pytest.raises(ValueError, match="an image refined of 100x192 pixels is too small"):
    refined.compress(image[:100])


def test_effort_zero_is_the_plain_encoder_and_levels_name_their_steps(trained_workdir):
  image = photo("coffee", (64, 96))
  plain = codec_lib.load_codec(str(trained_workdir))
  assert codec_lib.load_codec(str(trained_workdir), effort=0).compress(image) == (
      plain.compress(image))
  assert [codec_lib.load_codec(str(trained_workdir), effort=level).refine_steps
          for level in range(len(effort.EFFORT_STEPS))] == list(effort.EFFORT_STEPS)
  assert effort.EFFORT_STEPS == tuple(sorted(set(effort.EFFORT_STEPS)))
  with pytest.raises(ValueError, match="effort must be an integer from 0 to 5, got 6"):
    codec_lib.load_codec(str(trained_workdir), effort=6)
  with pytest.raises(ValueError, match="give an effort or refinement steps, not both"):
    codec_lib.load_codec(str(trained_workdir), effort=1, refine_steps=10)


def test_side_latents_refined_for_the_latents_lower_their_rate(hyperprior_codec):
  image = photo("coffee", (96, 128))
  y = hyperprior_codec.latents(image)
  latent_codec = hyperprior_codec.latent_codec
  analysed = latent_codec.refinement_context(y)
  refined = hyperprior_codec._side_refined(y, analysed)  # pylint: disable=protected-access
  assert not np.array_equal(refined.refined_from, analysed.refined_from)
  coder = hyperprior_codec.coder
  assert (latent_codec.encode(y, coder, refined.refined_from).bits
          < latent_codec.encode(y, coder, analysed.refined_from).bits)
