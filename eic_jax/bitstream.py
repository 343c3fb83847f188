"""The .eic container: a 24-byte header, then the range-coded latents. See docs/bitstream.md."""

import dataclasses
import struct
import zlib

MAGIC = b"EIC"
VERSION = 1
_HEADER = struct.Struct(">3sB8sII")  # magic, version, fingerprint, height, width
_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _CRC.size  # 24 bytes
FINGERPRINT_SIZE = 8


class BitstreamError(ValueError):
  """A compressed file cannot be decoded: not an .eic file, an unsupported version, truncated or
  corrupted data, a different model, or image dimensions beyond the configured limits."""


@dataclasses.dataclass(frozen=True)
class Header:
  fingerprint: bytes
  height: int
  width: int


def pack(header: Header, payload: bytes) -> bytes:
  if len(header.fingerprint) != FINGERPRINT_SIZE:
    raise ValueError(f"fingerprint must be {FINGERPRINT_SIZE} bytes")
  fields = _HEADER.pack(MAGIC, VERSION, header.fingerprint, header.height, header.width)
  crc = zlib.crc32(payload, zlib.crc32(fields))
  return fields + _CRC.pack(crc) + payload


def unpack(data: bytes, fingerprint: bytes | None = None, max_pixels: int | None = None
           ) -> tuple[Header, bytes]:
  """Checks a container and returns its header and payload; raises BitstreamError."""
  data = bytes(data)
  if len(data) < len(MAGIC) or not data.startswith(MAGIC):
    raise BitstreamError("not an eic_jax compressed file (wrong magic bytes)")
  if len(data) < HEADER_SIZE:
    raise BitstreamError(f"truncated file: {len(data)} bytes, shorter than the "
                         f"{HEADER_SIZE}-byte header")
  magic, version, file_fingerprint, height, width = _HEADER.unpack_from(data)
  del magic
  if version != VERSION:
    raise BitstreamError(f"unsupported format version {version}; this eic_jax reads version "
                         f"{VERSION}")
  (crc,) = _CRC.unpack_from(data, _HEADER.size)
  payload = data[HEADER_SIZE:]
  if zlib.crc32(payload, zlib.crc32(data[:_HEADER.size])) != crc:
    raise BitstreamError("corrupted or truncated file: the CRC32 check failed")
  if fingerprint is not None and file_fingerprint != fingerprint:
    raise BitstreamError(f"compressed with a different model (file {file_fingerprint.hex()}, "
                         f"this model {fingerprint.hex()})")
  if height < 1 or width < 1:
    raise BitstreamError(f"invalid image size {height}x{width}")
  if max_pixels is not None and height * width > max_pixels:
    raise BitstreamError(f"image size {height}x{width} exceeds the limit of {max_pixels} pixels")
  return Header(file_fingerprint, height, width), payload
