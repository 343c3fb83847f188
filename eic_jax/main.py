"""Command line.

  python -m eic_jax.main --config=configs/default.py --workdir=DIR            # train
  python -m eic_jax.main --workdir=DIR                          # resume with the stored config
  python -m eic_jax.main --mode=compress --workdir=DIR --input=IMAGE --output=FILE.eic [--verbose]
  python -m eic_jax.main --mode=compress --model=NAME ...    # a shipped model (list_models())
  python -m eic_jax.main --mode=compress ... --effort=2  # refine the latents first (0-5)
  python -m eic_jax.main --mode=compress ... --coder=constriction  # the entropy coder that writes
  python -m eic_jax.main --mode=decompress --input=FILE.eic --output=IMAGE.png  # the file names its model
  python -m eic_jax.main --mode=export --workdir=DIR    # the latest checkpoint, for the codec
  python -m eic_jax.main --mode=compress --model=NAME --input='photos/*.jpg' --output=FOLDER
  python -m eic_jax.main --mode=evaluate --workdir=DIR[,DIR...] --input='GLOB' --output=rd.json
  python -m eic_jax.main --mode=evaluate --baseline=jpeg|webp --input='GLOB' --output=jpeg.json
  python -m eic_jax.main --mode=compare --input=rd.json --reference=jpeg.json,webp.json
      [--metric=ms-ssim-db] [--published=balle-2017-iclr-opt-mse,bpg444,...]
"""

import ast
import logging as python_logging
import os
import signal
import sys
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tqdm

# Each mode imports what it needs when it runs (a compress need not load the training code).
# pylint: disable=import-outside-toplevel
from eic_jax.codec import effort
from eic_jax.coder import coders
from eic_jax.evaluation import compare
from eic_jax.runtime import atomic_files
from eic_jax.runtime import compilation_cache
from eic_jax.runtime import image_io
from eic_jax.runtime import log_filters
from eic_jax.runtime import tensorflow_setup
from eic_jax.storage import checkpoints
from eic_jax.storage import shipped
from eic_jax.storage import workdir_index

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "train",
                  ["train", "export", "compress", "decompress", "evaluate", "compare"],
                  "What to do. export: write the latest checkpoint of --workdir as the export "
                  "the codec reads (compress, decompress and evaluate do it when it is due).")
flags.DEFINE_string("workdir", None, "Training directory: checkpoints, logs, stored config. "
                    "evaluate: several, comma-separated, give one curve.")
flags.DEFINE_string("model", None, "compress, decompress, evaluate: a shipped model's name in "
                    "place of --workdir (evaluate: several, comma-separated). decompress needs "
                    "neither for files of a shipped model or of a workdir this machine has "
                    "compressed with.")
flags.DEFINE_string("input", None, "compress: an image file; decompress: an .eic file (either: "
                    "comma-separated glob patterns, with a folder as --output); evaluate: "
                    "comma-separated glob patterns; compare: a results JSON.")
flags.DEFINE_string("output", None, "compress: the .eic file, or an existing folder for "
                    "<name>.eic files; decompress: the image to write (.png, .webp or .tif, "
                    "lossless), or an existing folder for <name>.png files; evaluate: the "
                    "results JSON.")
flags.DEFINE_enum("baseline", None, ["jpeg", "webp"], "evaluate: a Pillow codec instead of "
                  "a model, over a quality sweep.")
flags.DEFINE_string("name", None, "evaluate: the curve's name in the results.")
flags.DEFINE_string("reference", "", "compare: comma-separated results JSON files to compare "
                    "against.")
flags.DEFINE_list("published", list(compare.DEFAULT_PUBLISHED), "compare: published Kodak "
                  "curves to compare against too, by file stem in eic_jax/evaluation/reference/kodak "
                  "(e.g. balle-2018-iclr-opt-mse, bpg444; an unknown name lists them all); "
                  "empty for none.")
flags.DEFINE_enum("metric", "psnr", list(compare.METRICS), "compare: the quality measure of "
                  "the Bjøntegaard deltas (MS-SSIM in dB: −10·log10(1 − MS-SSIM)).")
flags.DEFINE_integer("refine_steps", 0, "compress, evaluate: optimise each image's latents for "
                     "this many steps before coding them: slower encoding, a lower rate–"
                     "distortion loss, the same decoder (see eic_jax/codec/latent_refinement.py; "
                     "500 gives most of the gain).")
flags.DEFINE_integer("effort", None, "compress, evaluate: encoder effort, 0 (the plain encoder) "
                     f"to {len(effort.EFFORT_STEPS) - 1}: latent refinement of "
                     f"{'/'.join(map(str, effort.EFFORT_STEPS))} steps; instead of "
                     "--refine_steps (docs/refinement.md).")
flags.DEFINE_enum("coder", None, list(coders.CODERS), "compress, evaluate: the entropy coder "
                  "that writes the files (default: the first installed of "
                  f"{', '.join(coders.CODERS)}); files are read with the coder they name.")
flags.DEFINE_bool("verbose", False, "compress: decode again and print sizes, distortion and rate.")
flags.DEFINE_bool("distributed", False, "train: start JAX's distributed runtime, detecting the "
                  "cluster (TPU pod, SLURM, Open MPI) unless the three flags below are given.")
flags.DEFINE_string("coordinator_address", None, "train: host:port of process 0, for "
                    "multi-host training.")
flags.DEFINE_integer("num_processes", None, "train: number of processes, for multi-host.")
flags.DEFINE_integer("process_id", None, "train: this process's index, for multi-host.")
flags.DEFINE_string("compilation_cache", "~/.cache/eic_jax/jax",
                    "JAX's persistent compilation cache directory; empty to disable.")
flags.DEFINE_integer("max_pixels", None, "Largest image accepted, in pixels (default: 2^28).")
flags.DEFINE_bool("allow_changes", False, "train: resume a workdir with a configuration that "
                  "changes what is trained (data, model, λ, optimisation), as a new stage.")
config_flags.DEFINE_config_file(
    "config", None, "Training configuration file; override fields with --config.FIELD=VALUE.",
    lock_config=True)


def _required(*names: str) -> None:
  missing = [f"--{name}" for name in names if getattr(FLAGS, name) is None]
  if missing:
    raise ValueError(f"--mode={FLAGS.mode} needs {' and '.join(missing)}")


def _train() -> None:
  _required("config", "workdir")
  from eic_jax.training import parallel
  from eic_jax.training import train
  if FLAGS.distributed or FLAGS.coordinator_address:
    parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  train.train_and_evaluate(FLAGS.config, FLAGS.workdir, allow_changes=FLAGS.allow_changes)


def _models() -> list[str]:
  """The workdirs or shipped models named by --workdir or --model."""
  if FLAGS.workdir and FLAGS.model:
    raise ValueError("give --workdir or --model, not both")
  if not FLAGS.workdir and not FLAGS.model:
    raise ValueError(f"--mode={FLAGS.mode} needs --workdir or --model")
  return [name for name in (FLAGS.model or FLAGS.workdir).split(",") if name]


def _no_export_yet(workdir: str) -> str:
  """Why a workdir has nothing to code with yet, and when its first checkpoint comes."""
  from eic_jax.training import training_log
  config = checkpoints.load_config(workdir)
  every = config.checkpoint_every_steps
  message = f"{workdir} has no export yet: training writes its first checkpoint at step {every:,}"
  try:
    steps, rates = training_log.read_scalars(workdir)["steps_per_sec"]
  except (FileNotFoundError, KeyError):
    return message + " (no step reported yet)"
  latest, rate = int(steps[-1]), float(rates[-1])
  left = max(every - latest, 0) / max(rate, 1e-9)
  return (message + f"; step {latest:,} was reported at {rate:.3g} steps/s, so about "
          f"{left / 60:.0f} min after that report")


def _load_codec(name: str):
  """The codec of a shipped model or a workdir, whose export is brought up to date first."""
  from eic_jax.codec import codec as codec_lib
  from eic_jax.codec import export
  workdir = name not in shipped.list_models() or os.path.isdir(name)
  if workdir:
    export.update(name)
    if (os.path.isfile(os.path.join(name, checkpoints.CONFIG_FILE))
        and checkpoints.latest_step(name, checkpoints.EXPORT_DIR) is None):
      raise FileNotFoundError(_no_export_yet(name))
  kwargs = {} if FLAGS.max_pixels is None else {"max_pixels": FLAGS.max_pixels}
  codec = codec_lib.load_codec(name, refine_steps=FLAGS.refine_steps, coder=FLAGS.coder,
                               effort=FLAGS.effort, **kwargs)
  if workdir:
    workdir_index.remember(codec.fingerprint.hex(), name)
  return codec


def _export() -> None:
  _required("workdir")
  from eic_jax.codec import export
  if export.update(FLAGS.workdir):
    return
  if checkpoints.latest_step(FLAGS.workdir, checkpoints.EXPORT_DIR) is None:
    raise FileNotFoundError(f"{FLAGS.workdir} has no training checkpoint to export")
  print(f"{FLAGS.workdir}: the export is up to date")


class _RefinementBar:
  """A progress bar for one image's latent refinement, shown while it runs (codec.refine_progress)."""

  def __init__(self, label: str):
    self.label = label
    self.bar = None

  def __call__(self, done: int, total: int) -> None:
    if self.bar is None:
      self.bar = tqdm.tqdm(total=total, desc=f"refining {self.label}", unit="step",
                           leave=False)
    self.bar.update(done - self.bar.n)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def _jobs(extensions: tuple[str, ...]) -> list[tuple[str, str]]:
  """(input, output) pairs, checked before any work: --input to the file --output, or every
  file of --input's patterns into the existing folder --output, named after it with the first
  of `extensions`."""
  if os.path.isdir(FLAGS.output) or FLAGS.output.endswith(os.sep):
    folder = FLAGS.output
    if not os.path.isdir(folder):
      raise ValueError(f"{folder}: the folder does not exist")
    sources = _list_files(FLAGS.input)
    targets = [os.path.join(folder, os.path.splitext(os.path.basename(f))[0] + extensions[0])
               for f in sources]
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
      raise ValueError(f"several inputs would be written to {clashes[0]}; code them into "
                       "separate folders")
    atomic_files.check_writable(targets[0], extensions)
    return list(zip(sources, targets))
  atomic_files.check_writable(FLAGS.output, extensions)
  if os.path.isfile(FLAGS.input) or not any(c in FLAGS.input for c in "*?[,"):
    return [(FLAGS.input, FLAGS.output)]  # a missing file is reported when it is read
  sources = _list_files(FLAGS.input)
  if len(sources) > 1:
    raise ValueError(f"--input matches {len(sources)} files; give an existing folder as "
                     "--output to code them all")
  return [(sources[0], FLAGS.output)]


def _list_files(patterns: str) -> list[str]:
  from eic_jax.training import input_pipeline
  return input_pipeline.list_files(patterns)


def _run_jobs(jobs: list[tuple[str, str]], code_one) -> None:
  """Codes each pair; with several, shows progress and reports each failure in one line, goes
  on with the rest, and fails at the end."""
  if len(jobs) == 1:
    code_one(*jobs[0])
    return
  failures = 0
  for source, target in tqdm.tqdm(jobs, desc=FLAGS.mode, unit="file"):
    try:
      code_one(source, target)
    except (ValueError, OSError) as error:
      failures += 1
      tqdm.tqdm.write(f"error: {error}", file=sys.stderr)
  if failures:
    raise ValueError(f"{failures} of {len(jobs)} files failed")


def _compress() -> None:
  _required("input", "output")
  jobs = _jobs((".eic",))
  coders.get(FLAGS.coder)  # installed, before the model loads
  codec = _load_codec(_models()[0])
  from eic_jax.evaluation import report

  def compress_one(source: str, target: str) -> None:
    image = image_io.read_image(source, codec.max_pixels)
    progress = codec.refine_progress = _RefinementBar(os.path.basename(source))
    try:
      if FLAGS.verbose:
        data, _, metrics = report.measure(codec, image)
      else:
        data = codec.compress(image)
    finally:
      progress.close()
    with atomic_files.atomic_write(target) as stream:
      stream.write(data)
    if FLAGS.verbose:  # above the progress bar of several files
      tqdm.tqdm.write(("" if len(jobs) == 1 else f"{source}\n")
                      + report.format_report(metrics, os.path.getsize(source)))

  _run_jobs(jobs, compress_one)


def _decompress() -> None:
  _required("input", "output")
  jobs = _jobs(tuple(image_io.LOSSLESS_FORMATS))
  named = _models()[0] if FLAGS.workdir or FLAGS.model else None
  codecs = {}

  def decompress_one(source: str, target: str) -> None:
    from eic_jax.coder import bitstream
    try:
      with open(source, "rb") as stream:
        data = stream.read()
    except OSError as error:
      raise OSError(f"{source}: {error.strerror}") from error
    try:
      header, streams = bitstream.unpack(data, FLAGS.max_pixels or bitstream.DEFAULT_MAX_PIXELS)
      if header.raw:  # pixels: no model needed
        image = bitstream.raw_pixels(header, streams)
      else:
        name = named or _writer(header)
        if name not in codecs:
          codecs[name] = _load_codec(name)
        image = codecs[name].decompress(data)
    except ValueError as error:
      raise ValueError(f"{source}: {error}") from error
    image_io.write_image(target, image)

  _run_jobs(jobs, decompress_one)


def _writer(header) -> str:
  """The shipped model or remembered workdir that wrote a file, from its header."""
  fingerprint = header.fingerprint.hex()
  if header.model in shipped.list_models():
    return header.model  # the codec names earlier weights of it, if those wrote the file
  release = shipped.find_release(fingerprint)
  if release is not None:
    return release[0]  # a version-1 file, which names no model
  workdir = workdir_index.find(fingerprint)
  if workdir is not None:
    return workdir
  written = f"{header.model} ({header.architecture})" if header.model else "a model"
  raise ValueError(f"the file was written by {written} with fingerprint {fingerprint}, neither "
                   "a shipped model nor a workdir this machine has compressed with: give "
                   "--workdir (or --model)")


def _evaluate() -> None:
  _required("input", "output")
  from eic_jax.evaluation import evaluation
  from eic_jax.evaluation import rd_curves
  atomic_files.check_writable(FLAGS.output, (".json",))
  files = _list_files(FLAGS.input)
  if FLAGS.baseline:
    curve = evaluation.evaluate_baseline(FLAGS.baseline, files)
  else:
    coders.get(FLAGS.coder)  # installed, before the models load
    names = _models()
    curve = evaluation.evaluate_codecs([_load_codec(n) for n in names], names, files)
  if FLAGS.name:
    curve["name"] = FLAGS.name
  with atomic_files.atomic_write(FLAGS.output, "w") as stream:
    stream.write(rd_curves.dumps(curve))
  for point, rate, psnr in zip(curve["points"], curve["results"]["bpp"],
                               curve["results"]["psnr-rgb"]):
    print(f"{point}: {rate:.4f} bpp, {psnr:.2f} dB PSNR")


def _compare() -> None:
  _required("input")
  from eic_jax.evaluation import rd_curves
  test = rd_curves.load(FLAGS.input)
  anchors = [rd_curves.load(p) for p in FLAGS.reference.split(",") if p]
  print(compare.format_table(test, anchors + compare.published_anchors(test, FLAGS.published),
                             FLAGS.metric))


class _ShortRecords(python_logging.Formatter):
  """Log lines as `12:24:38 message` (warnings say so), not absl's thread and file prefix."""

  def format(self, record: python_logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    level = "" if record.levelno < python_logging.WARNING else f"{record.levelname.lower()}: "
    return f"{stamp} {level}{record.getMessage()}"


def main(argv) -> None:
  log_filters.quiet_libraries()
  logging.get_absl_handler().setFormatter(_ShortRecords())
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.mode != "train":
    # The codec commands print their result; routine progress logs would only clutter it.
    logging.set_verbosity(logging.WARNING)
  if FLAGS.compilation_cache:
    compilation_cache.enable(FLAGS.compilation_cache)
  from eic_jax.training import graceful_stop
  try:
    {"train": _train, "export": _export, "compress": _compress, "decompress": _decompress,
     "evaluate": _evaluate, "compare": _compare}[FLAGS.mode]()
  except (ValueError, FileNotFoundError, FloatingPointError, OSError,
          tensorflow_setup.MissingDependencyError) as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)
  except graceful_stop.StoppedBySignal as stopped:
    print(str(stopped), file=sys.stderr)
    sys.exit(128 + stopped.signum)
  except KeyboardInterrupt:
    # What was being written is not left behind (atomic_files); what was done is.
    print(f"interrupted: --mode={FLAGS.mode} stopped; no partial output is left",
          file=sys.stderr)
    sys.exit(128 + signal.SIGINT)


_HELP = ("--help", "-h", "--helpshort", "--helpfull", "-?")


def _with_stored_config(argv: list[str]) -> list[str]:
  """argv, with `--config=configs/workdir.py:DIR` added when training is asked for with a
  --workdir that stored its configuration and no --config: the run resumes with it, and
  --config.FIELD=VALUE overrides it."""
  if any(arg == "--config" or arg.startswith("--config=") for arg in argv):
    return argv
  modes = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--mode=")]
  workdirs = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--workdir=")]
  if (modes and modes[-1] != "train") or not workdirs:
    return argv
  if not os.path.isfile(os.path.join(workdirs[-1], checkpoints.CONFIG_FILE)):
    return argv
  import configs  # installed with the package
  stored = os.path.join(os.path.dirname(configs.__file__), "workdir.py")
  return [argv[0], f"--config={stored}:{workdirs[-1]}", *argv[1:]]


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with every error as one line: a bad value, and a --config.FIELD that
  the config lacks (ml_collections raises it with its suggestion of the nearest field). Help
  goes to stdout and exits 0."""
  if any(arg in _HELP for arg in argv[1:]):
    print(__doc__)
    print(FLAGS.main_module_help() if "--helpfull" not in argv else FLAGS)
    sys.exit(0)
  argv = _with_stored_config(argv)
  try:
    return FLAGS(argv)
  except flags.Error as error:
    message = str(error)
  except FileNotFoundError as error:  # configs/workdir.py without a stored config
    message = str(error)
  except (AttributeError, KeyError) as error:
    text = str(error)
    if text[:1] in "'\"":
      text = ast.literal_eval(text)
    field, _, suggestion = text.strip("'\"").partition("\n")
    message = f"the config has no field {field.strip(chr(39))!r}" + (
        f"; {suggestion.strip()}" if suggestion.strip() else "")
  print(f"error: {message}", file=sys.stderr)
  sys.exit(1)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
