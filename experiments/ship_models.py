"""Ships trained workdirs as the package's models and measures them.

  python experiments/ship_models.py --workdirs=runs/lmbda_0.0035,runs/lmbda_0.0067,runs/lmbda_0.013 \\
      --eval_glob='../shared/data/valid/*.png' --results=experiments/results

For each workdir: an inference-only copy in eic_jax/pretrained/<architecture>-<objective>-<λ>/
(objective: mse or msssim, from config.distortion; parameters
in float16 unless --weights_dtype=float32) with its training record (steps, data, last
validation scores, size, the rate it gives the reference photo that the tests check, and the
fingerprints of the weights shipped under that name before, so that their files can be named).
The record's `stages` lists step ranges with their λ, batch, crop, schedule and data, back
through every resume with other flags and every run or shipped model it started from
(--config.init_from); see eic_jax/training/stages.py. Then the rate–distortion evaluation of
all shipped models, one curve per architecture, with JPEG and WebP on --eval_glob:
<architecture>.json, jpeg.json, webp.json, rd.png and bd_rates.txt in --results; with
--refine_steps, also <architecture>_refined.json, the same models with each image's latents
refined before coding (see eic_jax/codec/latent_refinement.py). Each shipped model's
MODEL_CARD.md is written from its training.json and its Set14 point in --results;
--cards_only rewrites the cards of the models already shipped, and nothing else.
"""

import os
import subprocess

from absl import app
from absl import flags

import skimage.data

from eic_jax import models
from eic_jax.codec import codec as codec_lib
from eic_jax.codec import latent_refinement
from eic_jax.evaluation import compare
from eic_jax.evaluation import evaluation
from eic_jax.evaluation import plots
from eic_jax.evaluation import rd_curves
from eic_jax.evaluation import report
from eic_jax.runtime import atomic_files
from eic_jax.runtime import log_filters
from eic_jax.storage import checkpoints
from eic_jax.storage import shipped
from eic_jax.training import input_pipeline
from eic_jax.training import stages
from eic_jax.training import training_log

FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "Trained workdirs, one per λ.")
flags.DEFINE_string("eval_glob", "../shared/data/valid/*.png", "Images for the RD evaluation.")
flags.DEFINE_string("eval_name", "Set14", "The name of the --eval_glob image set, for titles.")
flags.DEFINE_string("results", "experiments/results", "Folder for the RD results.")
flags.DEFINE_integer("refine_steps", latent_refinement.DEFAULT_STEPS,
                     "Evaluate the shipped models a second time with each image's latents "
                     "refined for this many steps (0: skip).")
flags.DEFINE_enum("weights_dtype", "float16", ["float16", "float32"],
                  "How the shipped parameters are stored. float16 halves a model's size; on "
                  "Set14 it changed the mean PSNR by 0.0014 dB (bls2017 λ = 0.0067) and "
                  "0.0001 dB (bmshj2018 at 6,000 steps), the rate by less than 0.01 %.")
flags.DEFINE_bool("cards_only", False, "Only rewrite every shipped model's MODEL_CARD.md from "
                  "its training.json and the --results curves.")
CARD_FILE = "MODEL_CARD.md"

def reference_photo():
  """The photograph whose rate the tests check for every shipped model."""
  return skimage.data.coffee()


def shipped_name(config) -> str:
  """<architecture>-<objective>-<λ>: the name says what the model was optimised for."""
  objective = {"mse": "mse", "ms-ssim": "msssim"}[config.get("distortion", "mse")]
  return f"{models.architecture(config)}-{objective}-{config.lmbda}"


def _training_record(workdir: str, config) -> dict:
  scalars = training_log.read_scalars(workdir)
  last = {tag: float(values[-1]) for tag, (_, values) in scalars.items()
          if tag.startswith("valid_")}
  steps = {tag: int(steps[-1]) for tag, (steps, _) in scalars.items() if tag.startswith("valid_")}
  final_step = checkpoints.latest_step(workdir, checkpoints.EXPORT_DIR)
  return {"architecture": models.architecture(config), "lmbda": config.lmbda,
          "distortion": config.get("distortion", "mse"),
          "num_filters": config.num_filters,
          **({"num_latent_filters": config.num_latent_filters}
             if models.architecture(config) == "bmshj2018" else {}),
          "steps": final_step,
          "batch_size": config.batch_size, "patch_size": config.patch_size,
          "learning_rate": config.learning_rate,
          "stages": stages.history(workdir, final_step),
          "train_glob": config.train_glob, "valid_glob": config.valid_glob,
          "last_validation": {"step": max(steps.values(), default=None), **last}}


def _releases(name: str, codec: codec_lib.Codec) -> list[dict]:
  """This shipment's weights, then those shipped under `name` before, each with the commit
  that shipped it (the last commit of the shipped record, for the one being replaced)."""
  earlier = []
  if name in shipped.list_models():
    path = shipped.MODELS_DIR / name / shipped.RECORD_FILE
    shipped_in = subprocess.run(["git", "log", "-1", "--format=%h", "--", str(path)],
                                capture_output=True, text=True).stdout.strip() or None
    earlier = [{**release, "commit": release.get("commit") or shipped_in}
               for release in shipped.record(name).get("releases", [])]
  current = {"step": codec.step, "fingerprint": codec.fingerprint.hex(), "commit": None}
  return [current] + [r for r in earlier if r["fingerprint"] != current["fingerprint"]]


def _evaluate(names: list[str], files: list[str], architecture: str, refine_steps: int = 0):
  label = f"eic_jax {architecture} (shipped" + (
      f", {refine_steps}-step latent refinement)" if refine_steps else ")")
  return evaluation.evaluate_codecs(
      [codec_lib.load_codec(n, refine_steps=refine_steps) for n in names], names, files,
      name=label)


def _stage_rows(stages_: list[dict], lmbda: float) -> list[str]:
  rows = ["| steps | λ | trainable | quantisation | crop | batch | learning rate | photographs |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for stage in stages_:
    first, last = stage["steps"]
    schedule = stage.get("learning_rate_schedule", "constant")
    rate = f"{stage['learning_rate']:g}" + ("" if schedule == "constant" else f" ({schedule})")
    globs = stage.get("train_glob", "")
    rows.append(f"| {first:,}–{last:,} | {stage.get('lmbda', lmbda):g} | "
                f"{stage.get('trainable', 'all')} | {stage.get('quantization', 'noise')} | "
                f"{stage['patch_size']} | "
                f"{stage['batch_size']} | {rate} | `{globs}` |")
  return rows


def model_card(name: str, record: dict, results: str) -> str:
  """MODEL_CARD.md of a shipped model: what it is, how it scored and how it was trained, all
  from its training record and the Set14 curve of its architecture in `results`."""
  # Records of the first shipments name neither the architecture nor the storage type.
  config = checkpoints.load_config(shipped.resolve(name))
  architecture = models.architecture(config)
  distortion = {"mse": "MSE", "ms-ssim": "(1 − MS-SSIM)"}[config.get("distortion", "mse")]
  width = f"N = {record['num_filters']}" + (
      f", M = {record['num_latent_filters']}" if "num_latent_filters" in record else "")
  lines = [f"# {name}", "",
           f"A `{architecture}` model ({width}) trained for rate + λ·{distortion} at λ = "
           f"{record['lmbda']:g}: {record['steps']:,} steps, stored as "
           f"{record.get('weights_dtype', 'float32')} ({record['size_bytes'] / 1e6:.1f} MB). This card is "
           f"generated from `training.json` by `experiments/ship_models.py`.", "",
           "```python", "import eic_jax", f'codec = eic_jax.load_codec("{name}")', "```", "",
           "## Scores", ""]
  curve_path = os.path.join(results, architecture + (
      "" if config.get("distortion", "mse") == "mse" else "_msssim") + ".json")
  if os.path.exists(curve_path):
    curve = rd_curves.load(curve_path)
    if name in curve.get("points", []):
      point = curve["points"].index(name)
      values = curve["results"]
      lines += [f"Set14 ({curve.get('description', '')}, `{curve_path}`): "
                f"{values['bpp'][point]:.4f} bpp, {values['psnr-rgb'][point]:.2f} dB PSNR, "
                f"{values['ms-ssim-db'][point]:.2f} dB MS-SSIM.", ""]
  validation = record.get("last_validation", {})
  if validation.get("step") is not None:
    lines += [f"Last validation in training (step {validation['step']:,}, centre crops of "
              f"`{record['valid_glob']}`): {validation['valid_bpp']:.4f} bpp, "
              f"{validation['valid_psnr']:.2f} dB PSNR.", ""]
  photo = record["reference_photo"]
  lines += [f"Reference photograph (`{photo['image']}`, checked by the tests): "
            f"{photo['bpp']:.4f} bpp, {photo['psnr']:.2f} dB.", "",
            "## Training", "", *_stage_rows(record["stages"], record["lmbda"]), "",
            "## Releases", "",
            "Files written by earlier weights name them; decode them at the commit that shipped "
            "them (docs/usage.md, \"Files from earlier weights\").", "",
            "| step | fingerprint | shipped in |", "| --- | --- | --- |"]
  lines += [f"| {r['step']:,} | `{r['fingerprint']}` | {r['commit'] or 'this version'} |"
            for r in record.get("releases", [])]
  return "\n".join(lines) + "\n"


def write_model_cards() -> None:
  for name in shipped.list_models():
    card = model_card(name, shipped.record(name), FLAGS.results)
    with atomic_files.atomic_write(str(shipped.MODELS_DIR / name / CARD_FILE), "w") as stream:
      stream.write(card)


def main(argv) -> None:
  del argv
  log_filters.quiet_libraries()
  if FLAGS.cards_only:
    write_model_cards()
    return
  if not FLAGS.workdirs:
    raise app.UsageError("--workdirs is required (or --cards_only)")
  for workdir in FLAGS.workdirs:
    config = checkpoints.load_config(workdir)
    name = shipped_name(config)

    def describe(codec, workdir=workdir, config=config, name=name):
      _, _, metrics = report.measure(codec, reference_photo())
      return {**_training_record(workdir, config), "releases": _releases(name, codec),
              "reference_photo": {"image": "skimage.data.coffee()", "bpp": metrics["bpp"],
                                  "psnr": metrics["psnr"],
                                  "expected_bpp": [0.8 * metrics["bpp"], 1.25 * metrics["bpp"]]}}

    record = codec_lib.ship(workdir, str(shipped.MODELS_DIR / name), describe,
                            None if FLAGS.weights_dtype == "float32" else FLAGS.weights_dtype)
    photo = record["reference_photo"]
    print(f"{name}: step {record['steps']}, {record['size_bytes'] / 1e6:.1f} MB "
          f"({record['weights_dtype']}), coffee {photo['bpp']:.3f} bpp {photo['psnr']:.2f} dB")

  files = input_pipeline.list_files(FLAGS.eval_glob)
  by_architecture = {}
  for name in shipped.list_models():
    config = checkpoints.load_config(shipped.resolve(name))
    # One curve per architecture and objective: bls2017, bls2017_msssim, …
    curve = models.architecture(config) + (
        "" if config.get("distortion", "mse") == "mse" else "_msssim")
    by_architecture.setdefault(curve, []).append(name)
  curves = {architecture: _evaluate(names, files, architecture)
            for architecture, names in sorted(by_architecture.items())}
  if FLAGS.refine_steps:
    curves.update({f"{architecture}_refined": _evaluate(names, files, architecture,
                                                        FLAGS.refine_steps)
                   for architecture, names in sorted(by_architecture.items())})
  model_keys = list(curves)
  curves["jpeg"] = evaluation.evaluate_baseline("jpeg", files)
  curves["webp"] = evaluation.evaluate_baseline("webp", files)
  os.makedirs(FLAGS.results, exist_ok=True)
  for key, curve in curves.items():
    with atomic_files.atomic_write(os.path.join(FLAGS.results, f"{key}.json"), "w") as stream:
      stream.write(rd_curves.dumps(curve))
  published = rd_curves.published("kodak")
  plots.rd_figure([*(curves[key] for key in model_keys), curves["jpeg"], curves["webp"],
                   *(dict(published[key], name=published[key]["name"] + " (Kodak)")
                     for key in ("balle-2017-iclr-opt-mse", "balle-2018-iclr-opt-mse"))],
                  os.path.join(FLAGS.results, "rd.png"),
                  title=f"{FLAGS.eval_name}, {len(files)} images", focus=len(model_keys))
  tables = []
  plain = sorted(by_architecture)
  for key in model_keys:
    anchors = [curves[other] for other in plain if other != key and not key.startswith(other)]
    if key.endswith("_refined"):
      anchors.insert(0, curves[key[:-len("_refined")]])
    anchors += [curves["jpeg"], curves["webp"]] + compare.published_anchors(curves[key])
    tables += [compare.format_table(curves[key], anchors, metric) for metric in compare.METRICS]
  table = "\n\n".join(tables)
  with atomic_files.atomic_write(os.path.join(FLAGS.results, "bd_rates.txt"), "w") as stream:
    stream.write(table + "\n")
  print(table)
  write_model_cards()


if __name__ == "__main__":
  app.run(main)
