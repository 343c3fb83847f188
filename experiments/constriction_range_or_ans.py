"""Which of constriction's coders codes the project's latents better: its range coder (a queue)
or its ANS coder (a stack). The base install's coder (eic_jax/coder/constriction_coder.py) uses
the range coder; this measures the choice on the shipped models' real streams.

  python experiments/constriction_range_or_ans.py [--image=PATH]

For every stream a shipped middle-rate model writes for the photograph, the regular symbols are
coded table by table as the project's coder codes them (escapes left out: they are coded the
same way by either), with each coder, and the script prints the bits over the tables'
information content and the coding time of each.
"""

import argparse
import time

import constriction
import numpy as np
import skimage.data

from eic_jax.codec import codec as codec_lib
from eic_jax.runtime import image_io


class _Recorder:
  """Stands in for a coder: keeps what the latent codec asks to code."""

  def __init__(self):
    self.calls = []

  def encode(self, symbols, tables, indexes=None):
    self.calls.append((np.asarray(symbols), tables, indexes))
    return b""


def _segments(symbols, tables, indexes):
  """(categories, frequencies) of every table in index order, as the project's coder codes
  them; the information content of the regular symbols in bits."""
  indexes = (np.broadcast_to(np.arange(symbols.shape[-1]), symbols.shape) if indexes is None
             else indexes).ravel()
  values = symbols.ravel().astype(np.int64) - tables.minima[indexes]
  lengths = tables.lengths()[indexes]
  inside = (values >= 0) & (values < lengths)
  segments, bits = [], 0.0
  for row in np.unique(indexes):
    frequencies = tables.frequencies(row).astype(np.float64)
    categories = values[(indexes == row) & inside].astype(np.int32)
    segments.append((categories, frequencies / frequencies.sum()))
    bits -= np.sum(np.log2(frequencies[categories] / frequencies.sum()))
  return segments, bits


def _code(segments, stack: bool):
  start = time.perf_counter()
  models = [constriction.stream.model.Categorical(p, perfect=False) for _, p in segments]
  if stack:
    coder = constriction.stream.stack.AnsCoder()
    for (categories, _), model in reversed(list(zip(segments, models))):
      coder.encode_reverse(categories, model)
  else:
    coder = constriction.stream.queue.RangeEncoder()
    for (categories, _), model in zip(segments, models):
      coder.encode(categories, model)
  words = coder.get_compressed()
  return 32 * words.size, time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--image", default=None, help="a photograph (default: coffee, 400x600)")
  parser.add_argument("--models", default="bls2017-mse-0.0067,bmshj2018-mse-0.0067")
  args = parser.parse_args()
  image = (skimage.data.coffee() if args.image is None else image_io.read_image(args.image))
  print(f"{'model':<22} {'stream':>6} {'symbols':>8} {'information':>12} "
        f"{'range: over, ms':>16} {'ANS: over, ms':>16}")
  for name in args.models.split(","):
    codec = codec_lib.load_codec(name)
    recorder = _Recorder()
    codec.latent_codec.encode(codec.latents(image), recorder)
    for stream, call in enumerate(recorder.calls):
      segments, bits = _segments(*call)
      cells = []
      for stack in (False, True):
        coded, seconds = min(_code(segments, stack) for _ in range(5))
        cells.append(f"{100 * (coded / bits - 1):+6.3f} %, {1e3 * seconds:5.2f}")
      print(f"{name:<22} {stream:>6} {call[0].size:>8} {bits:>12.0f} {cells[0]:>16} {cells[1]:>16}")


if __name__ == "__main__":
  main()
