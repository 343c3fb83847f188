"""Where a one-photo command-line compress and decompress spend their time beyond the work.

  python -m eic_jax.tools.startup [--model=NAME] [--image=PATH] [--repeats=5] [--json]

Each row is the median wall time of fresh processes (after one run that fills the compilation
cache, so the commands are warm): the interpreter alone, importing the command line, importing
TensorFlow with the range coder, the whole compress and decompress commands, and the codec's
own compress and decompress in a warm process (the work itself).
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import skimage.data

flags.DEFINE_string("model", "bls2017-mse-0.0067", "A shipped model or a workdir.")
flags.DEFINE_string("image", os.path.join(os.path.dirname(skimage.data.__file__), "coffee.png"),
                    "The photograph coded.")
flags.DEFINE_integer("repeats", 5, "Processes timed per row.")
flags.DEFINE_bool("json", False, "Print one JSON object instead of a table.")
FLAGS = flags.FLAGS

_WORK = """
import sys, time
from eic_jax import load_codec
from eic_jax.runtime import image_io
codec = load_codec(sys.argv[1]); image = image_io.read_image(sys.argv[2])
data = codec.compress(image); codec.decompress(data)
start = time.perf_counter(); data = codec.compress(image); middle = time.perf_counter()
codec.decompress(data); end = time.perf_counter()
print(middle - start, end - middle)
"""


def _seconds(command: list[str], env: dict, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def measure(model: str, image: str, repeats: int) -> dict:
  python = sys.executable
  with tempfile.TemporaryDirectory() as folder:
    env = {**os.environ, "XDG_CACHE_HOME": folder}
    cache = f"--compilation_cache={folder}/jax"
    coded, decoded = os.path.join(folder, "photo.eic"), os.path.join(folder, "photo.png")
    compress = [python, "-m", "eic_jax.main", "--mode=compress", f"--model={model}",
                f"--input={image}", f"--output={coded}", cache]
    decompress = [python, "-m", "eic_jax.main", "--mode=decompress", f"--input={coded}",
                  f"--output={decoded}", cache]
    subprocess.run(compress, env=env, check=True, capture_output=True)  # fills the cache
    subprocess.run(decompress, env=env, check=True, capture_output=True)
    rows = {
        "python_s": _seconds([python, "-c", "pass"], env, repeats),
        "import_command_line_s": _seconds([python, "-c", "import eic_jax.main"], env, repeats),
        "import_tensorflow_and_coder_s": _seconds(
            [python, "-c", "from eic_jax.runtime import tensorflow_setup as t; t.coding_ops()"],
            env, repeats),
        "compress_command_s": _seconds(compress, env, repeats),
        "decompress_command_s": _seconds(decompress, env, repeats),
    }
    work = subprocess.run([python, "-c", _WORK, model, image], env=env, check=True,
                          capture_output=True, text=True).stdout.split()
  rows["compress_work_s"], rows["decompress_work_s"] = float(work[0]), float(work[1])
  return {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
          "cpu_cores": len(os.sched_getaffinity(0)), "model": model,
          "image": os.path.basename(image), **rows}


def main(argv) -> None:
  del argv
  results = measure(FLAGS.model, FLAGS.image, FLAGS.repeats)
  if FLAGS.json:
    print(json.dumps(results))
    return
  for name, value in results.items():
    print(f"{name:<32} {value:.3f}" if isinstance(value, float) else f"{name:<32} {value}")


if __name__ == "__main__":
  app.run(main)
