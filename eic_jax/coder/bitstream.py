"""The .eic container: a header naming the model and the entropy coder, then the coded streams,
or, for an image so small that its coded streams would take more bytes than its pixels, the
pixels.

Version 3 is written; version 2 (no coder name: TensorFlow Compression's range coder) and
version 1 (one bls2017 stream, no model name) are still read. See docs/bitstream.md.
"""

import dataclasses
import struct
import zlib

import numpy as np

from eic_jax.coder.errors import BitstreamError

MAGIC = b"EIC"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# The coder of files that do not name one (versions 1 and 2).
EARLIER_CODER = "tfc"
FINGERPRINT_SIZE = 8
MAX_STREAMS = 8
MAX_NAME_BYTES = 255
# Default limit on decoded image size (pixels), checked before anything is allocated.
DEFAULT_MAX_PIXELS = 2**28
_PREFIX = struct.Struct(">3sBI")  # magic, version, crc32 of everything after it
_FIELDS_V2 = struct.Struct(">8sIIII")  # fingerprint, height, width, step, index checksum
# (versions 2 and 3)
_FIELDS_V1 = struct.Struct(">8sII")  # fingerprint, height, width (then the crc32)
V1_HEADER_SIZE = 24


@dataclasses.dataclass(frozen=True)
class Header:
  """What a file says about itself. `step` 0 and `architecture` "bls2017" with an empty
  `model` and no index checksum: a version-1 file, which does not record them. `coder`: the
  entropy coder that wrote the streams (coders.py)."""

  fingerprint: bytes
  height: int
  width: int
  architecture: str = "bls2017"
  model: str = ""
  step: int = 0
  index_checksum: int | None = None
  version: int = VERSION
  # The payload is the image's RGB pixels, row by row (a stream count of 0 in the file).
  raw: bool = False
  coder: str = EARLIER_CODER


def index_checksum(indexes: np.ndarray) -> int:
  """CRC-32 of the coding-table indexes, as little-endian int32 in row-major order."""
  return zlib.crc32(np.ascontiguousarray(indexes, "<i4").tobytes())


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
  value = shift = 0
  for position in range(offset, min(len(data), offset + 5)):
    value |= (data[position] & 0x7F) << shift
    shift += 7
    if not data[position] & 0x80:
      return value, position + 1
  raise BitstreamError("corrupted header: a stream length runs past the header")


def _name(text: str) -> bytes:
  """Length-prefixed UTF-8, cut at a character boundary to fit."""
  encoded = text.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore").encode("utf-8")
  return bytes([len(encoded)]) + encoded


def pack(header: Header, streams: list[bytes]) -> bytes:
  """A version-3 file: the header's fields, then `streams` (every length but the last is
  stored; the last runs to the end)."""
  if not 1 <= len(streams) <= MAX_STREAMS:
    raise ValueError(f"a file holds 1 to {MAX_STREAMS} streams, not {len(streams)}")
  return _pack(header, bytes([len(streams)]) + b"".join(_varint(len(s)) for s in streams[:-1])
               + b"".join(streams))


def pack_raw(header: Header, pixels: np.ndarray) -> bytes:
  """A version-3 file holding the uint8 RGB `pixels` (height, width, 3) as they are."""
  if pixels.shape != (header.height, header.width, 3) or pixels.dtype != np.uint8:
    raise ValueError(f"expected uint8 pixels of shape {(header.height, header.width, 3)}")
  return _pack(header, bytes([0]) + np.ascontiguousarray(pixels).tobytes())


def raw_pixels(header: Header, streams: list[bytes]) -> np.ndarray:
  """The uint8 (height, width, 3) image of a file of pixels (header.raw), as unpack gives it."""
  return np.frombuffer(streams[0], np.uint8).reshape(header.height, header.width, 3).copy()


def _pack(header: Header, payload: bytes) -> bytes:
  if len(header.fingerprint) != FINGERPRINT_SIZE:
    raise ValueError(f"fingerprint must be {FINGERPRINT_SIZE} bytes")
  body = (_FIELDS_V2.pack(header.fingerprint, header.height, header.width, header.step,
                          header.index_checksum or 0)
          + _name(header.architecture) + _name(header.model) + _name(header.coder) + payload)
  return _PREFIX.pack(MAGIC, VERSION, zlib.crc32(body)) + body


def _unpack_v1(data: bytes) -> tuple[Header, list[bytes]]:
  if len(data) < V1_HEADER_SIZE:
    raise BitstreamError(f"truncated file: {len(data)} bytes, shorter than the "
                         f"{V1_HEADER_SIZE}-byte header")
  fingerprint, height, width = _FIELDS_V1.unpack_from(data, 4)
  (crc,) = struct.unpack_from(">I", data, 20)
  payload = data[V1_HEADER_SIZE:]
  if zlib.crc32(payload, zlib.crc32(data[:20])) != crc:
    raise BitstreamError("corrupted or truncated file: the CRC32 check failed")
  return Header(fingerprint, height, width, version=1), [payload]


def _unpack_v2(data: bytes, version: int) -> tuple[Header, list[bytes]]:
  """Versions 2 and 3, which adds the coder's name after the model's."""
  name_count = 2 if version == 2 else 3
  # The fixed fields, a length byte per name and the stream count.
  smallest = _PREFIX.size + _FIELDS_V2.size + name_count + 1
  if len(data) < smallest:
    raise BitstreamError(f"truncated file: {len(data)} bytes, shorter than the smallest "
                         f"header ({smallest} bytes)")
  (_, _, crc) = _PREFIX.unpack_from(data)
  if zlib.crc32(data[_PREFIX.size:]) != crc:
    raise BitstreamError("corrupted or truncated file: the CRC32 check failed")
  fingerprint, height, width, step, checksum = _FIELDS_V2.unpack_from(data, _PREFIX.size)
  offset = _PREFIX.size + _FIELDS_V2.size
  names = []
  for _ in range(name_count):
    if offset >= len(data):
      raise BitstreamError("corrupted header: the names run past the end of the file")
    length = data[offset]
    text = data[offset + 1:offset + 1 + length]
    if len(text) != length:
      raise BitstreamError("corrupted header: a name runs past the end of the file")
    try:
      names.append(text.decode("utf-8"))
    except UnicodeDecodeError as error:
      raise BitstreamError("corrupted header: a name is not UTF-8") from error
    offset += 1 + length
  if offset >= len(data) or not 0 <= data[offset] <= MAX_STREAMS:
    raise BitstreamError("corrupted header: invalid stream count")
  count = data[offset]
  offset += 1
  if count == 0:
    if len(data) - offset != 3 * height * width:
      raise BitstreamError(f"corrupted file: {len(data) - offset} bytes of pixels for a "
                           f"{height}x{width} image")
    return Header(fingerprint, height, width, architecture=names[0], model=names[1], step=step,
                  index_checksum=checksum, version=version, raw=True,
                  coder=names[2] if version > 2 else EARLIER_CODER), [data[offset:]]
  lengths = []
  for _ in range(count - 1):
    length, offset = _read_varint(data, offset)
    lengths.append(length)
  if sum(lengths) > len(data) - offset:
    raise BitstreamError("truncated file: the streams are shorter than the header says")
  streams = []
  for length in lengths:
    streams.append(data[offset:offset + length])
    offset += length
  streams.append(data[offset:])
  header = Header(fingerprint, height, width, architecture=names[0], model=names[1], step=step,
                  index_checksum=checksum, version=version,
                  coder=names[2] if version > 2 else EARLIER_CODER)
  return header, streams


def unpack(data: bytes, max_pixels: int | None = None) -> tuple[Header, list[bytes]]:
  """Checks a container's structure and returns its header and streams; raises
  BitstreamError. Whether the file fits a model is the codec's check."""
  data = bytes(data)
  if len(data) < len(MAGIC) or not data.startswith(MAGIC):
    raise BitstreamError("not an eic_jax compressed file (wrong magic bytes)")
  if len(data) < len(MAGIC) + 1:
    raise BitstreamError("truncated file: it ends before the version byte")
  version = data[len(MAGIC)]
  if version not in READABLE_VERSIONS:
    raise BitstreamError(f"unsupported format version {version}; this eic_jax reads versions "
                         f"{', '.join(map(str, READABLE_VERSIONS))}")
  header, streams = _unpack_v1(data) if version == 1 else _unpack_v2(data, version)
  check_size(header, max_pixels)
  return header, streams


def check_size(header: Header, max_pixels: int | None) -> None:
  if header.height < 1 or header.width < 1:
    raise BitstreamError(f"invalid image size {header.height}x{header.width}")
  if max_pixels is not None and header.height * header.width > max_pixels:
    raise BitstreamError(f"image size {header.height}x{header.width} exceeds the limit of "
                         f"{max_pixels} pixels")
