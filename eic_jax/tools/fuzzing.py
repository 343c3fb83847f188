"""A seeded mutator for compressed files, and a harness that checks how decompress treats them.

Every input must either raise the documented BitstreamError or decode to a valid uint8 image,
within a time limit. Mutations: truncation, bit flips, splices of two files, extensions, random
bytes, and the same damage with the CRC recomputed so that it reaches the header checks and the
range decoder instead of stopping at the checksum.
"""

import collections
import struct
import time
import zlib
from typing import Callable, Iterator, Sequence

import numpy as np

from eic_jax.coder import bitstream

KINDS = ("truncate", "flip", "splice", "extend", "random", "payload+crc", "header+crc")


# Bytes at the start of a file that hold header fields (version 2: fixed fields and names).
_HEADER_SPAN = 60


def with_valid_crc(data: bytes) -> bytes:
  """`data` with its CRC field recomputed as its version byte says (when it is long enough to
  have one)."""
  if len(data) >= bitstream.V1_HEADER_SIZE and data[3] == 1:
    fields, payload = data[:20], data[bitstream.V1_HEADER_SIZE:]
    return fields + struct.pack(">I", zlib.crc32(payload, zlib.crc32(fields))) + payload
  if len(data) < 8:
    return data
  return data[:4] + struct.pack(">I", zlib.crc32(data[8:])) + data[8:]


def mutate(rng: np.random.Generator, files: Sequence[bytes], kind: str) -> bytes:
  data = bytearray(files[rng.integers(len(files))])
  if kind == "truncate":
    return bytes(data[:rng.integers(len(data))])
  if kind == "flip":
    for _ in range(rng.integers(1, 9)):
      position = rng.integers(len(data))
      data[position] ^= 1 << rng.integers(8)
    return bytes(data)
  if kind == "splice":
    other = files[rng.integers(len(files))]
    return bytes(data[:rng.integers(len(data) + 1)]) + other[rng.integers(len(other) + 1):]
  if kind == "extend":
    return bytes(data) + rng.bytes(int(rng.integers(1, 64)))
  if kind == "random":
    body = rng.bytes(int(rng.integers(0, 256)))
    return (bitstream.MAGIC + bytes([bitstream.VERSION]) + body) if rng.random() < 0.5 else body
  if kind == "payload+crc":
    header_size = min(len(data), _HEADER_SPAN)
    payload = data[header_size:]
    if rng.random() < 0.5 and payload:
      payload = payload[:rng.integers(len(payload))]
    else:
      for _ in range(rng.integers(1, 9)):
        if payload:
          payload[rng.integers(len(payload))] ^= 1 << rng.integers(8)
    return with_valid_crc(bytes(data[:header_size]) + bytes(payload))
  if kind == "header+crc":
    position = rng.integers(3, min(len(data), _HEADER_SPAN))
    data[position] = rng.integers(256)
    return with_valid_crc(bytes(data))
  raise ValueError(f"unknown mutation {kind!r}")


def inputs(seed: int, files: Sequence[bytes], count: int) -> Iterator[tuple[str, bytes]]:
  rng = np.random.default_rng(seed)
  for i in range(count):
    kind = KINDS[i % len(KINDS)]
    yield kind, mutate(rng, files, kind)


def run(decompress: Callable[[bytes], np.ndarray], files: Sequence[bytes], count: int,
        seed: int = 0, time_limit_s: float = 2.0) -> dict:
  """Decompresses `count` mutated inputs; returns totals and the failures (which should be
  none): other exceptions, invalid outputs, inputs slower than `time_limit_s`."""
  totals = collections.Counter()
  failures = []
  slowest = 0.0
  for kind, data in inputs(seed, files, count):
    start = time.perf_counter()
    try:
      image = decompress(data)
      valid = isinstance(image, np.ndarray) and image.dtype == np.uint8 and (
          image.ndim == 3 and image.shape[2] == 3)
      outcome = "decoded" if valid else "invalid output"
    except bitstream.BitstreamError:
      outcome = "rejected"
    except Exception as error:  # pylint: disable=broad-except
      outcome = f"{type(error).__name__}: {error}"
    elapsed = time.perf_counter() - start
    slowest = max(slowest, elapsed)
    if outcome not in ("decoded", "rejected") or elapsed > time_limit_s:
      failures.append({"kind": kind, "outcome": outcome, "seconds": elapsed,
                       "input": data[:64].hex()})
    totals[f"{kind}: {outcome if outcome in ('decoded', 'rejected') else 'failed'}"] += 1
  return {"inputs": count, "totals": dict(sorted(totals.items())),
          "rejected": sum(v for k, v in totals.items() if k.endswith("rejected")),
          "decoded": sum(v for k, v in totals.items() if k.endswith("decoded")),
          "failures": failures, "slowest_s": slowest}
