import dataclasses
import pathlib
import struct
import zlib

import numpy as np
import pytest

from eic_jax.coder import bitstream

FINGERPRINT = bytes(range(8))
DATA = pathlib.Path(__file__).parent / "data"


def _file(streams=(b"side stream", b"payload bytes"), height=5, width=7, model="mine-0.01"):
  header = bitstream.Header(FINGERPRINT, height, width, architecture="bmshj2018", model=model,
                            step=1234, index_checksum=bitstream.index_checksum(np.arange(6)),
                            coder="constriction")
  return bitstream.pack(header, list(streams))


def _with_valid_crc(data: bytes) -> bytes:
  return data[:4] + struct.pack(">I", zlib.crc32(data[8:])) + data[8:]


def test_round_trip_keeps_every_field_and_stream():
  streams = [b"z" * 3, b"", b"y" * 300]
  header, unpacked = bitstream.unpack(_file(streams))
  assert unpacked == streams
  assert (header.height, header.width, header.step, header.version) == (5, 7, 1234, 3)
  assert (header.architecture, header.model, header.coder) == ("bmshj2018", "mine-0.01",
                                                               "constriction")
  assert header.index_checksum == bitstream.index_checksum(np.arange(6))
  # Fixed fields, three names, a stream count and one length byte per stream but the last.
  assert len(_file(streams)) - 303 == 32 + 1 + 9 + 1 + 9 + 1 + 12 + 1 + 2


def test_version_2_files_name_no_coder_and_were_written_by_tensorflow_compressions():
  header, streams = bitstream.unpack((DATA / "coffee-bls2017-version2-tfc.eic").read_bytes())
  assert (header.version, header.coder, header.model) == (2, "tfc", "bls2017-mse-0.0067")
  assert (header.height, header.width) == (64, 96) and len(streams) == 1


def test_version_1_files_still_unpack():
  data = (DATA / "coffee-v1-bls2017-mse-0.013.eic").read_bytes()
  header, streams = bitstream.unpack(data)
  assert (header.version, header.architecture, header.model, header.index_checksum) == (
      1, "bls2017", "", None)
  assert (header.height, header.width) == (48, 40) and streams == [data[24:]]


@pytest.mark.parametrize("data,message", [
    (b"", "not an eic_jax compressed file"),
    (b"PNG\x89 something else entirely", "not an eic_jax compressed file"),
    (b"EIC", "truncated file"),
    (_file()[:20], "truncated file"),
    (_file()[:-1], "corrupted or truncated"),
    (_file() + b"\x00", "corrupted or truncated"),
    (_file()[:30] + bytes([_file()[30] ^ 4]) + _file()[31:], "corrupted or truncated"),
    (_file()[:3] + b"\x07" + _file()[4:], "unsupported format version 7"),
    (_with_valid_crc(_file()[:32] + b"\xff" + _file()[33:]), "a name runs past"),
    (_with_valid_crc(_file()[:32] + b"\x02\xff\xfe" + _file()[35:]), "not UTF-8"),
    (_with_valid_crc(_file()[:52] + b"\x7f" + _file()[53:]), "a name runs past"),
    (_with_valid_crc(_file()[:65] + b"\x09" + _file()[66:]), "invalid stream count"),
    (_with_valid_crc(_file()[:66] + b"\x7f" + _file()[67:]), "streams are shorter"),
    (_with_valid_crc(_file()[:66] + b"\xff\xff\xff\xff\xff" + _file()[67:]), "stream length"),
])
def test_bad_files_raise_the_documented_error(data, message):
  with pytest.raises(bitstream.BitstreamError, match=message):
    bitstream.unpack(data)


def test_size_limits():
  with pytest.raises(bitstream.BitstreamError, match="exceeds the limit of 1000 pixels"):
    bitstream.unpack(_file(height=100, width=100), max_pixels=1000)
  with pytest.raises(bitstream.BitstreamError, match="invalid image size 0x7"):
    bitstream.unpack(_file(height=0))
  assert issubclass(bitstream.BitstreamError, ValueError)


def test_names_are_cut_to_what_the_header_holds():
  header, _ = bitstream.unpack(_file(model="é" * 200))
  assert len(header.model.encode("utf-8")) <= bitstream.MAX_NAME_BYTES


def test_index_checksum_sees_every_index():
  indexes = np.zeros((4, 5, 3), np.int32)
  changed = indexes.copy()
  changed[3, 4, 2] = 1
  assert bitstream.index_checksum(indexes) != bitstream.index_checksum(changed)


def test_raw_pixels_round_trip_and_their_length_is_checked():
  pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
  header = bitstream.Header(b"\x01" * 8, 2, 3, model="m", step=5)
  data = bitstream.pack_raw(header, pixels)
  unpacked, (payload,) = bitstream.unpack(data)
  assert unpacked.raw and (unpacked.height, unpacked.width, unpacked.model) == (2, 3, "m")
  assert payload == pixels.tobytes()
  with pytest.raises(ValueError, match="uint8 pixels of shape"):
    bitstream.pack_raw(header, pixels[:1])
  short = bitstream.pack_raw(dataclasses.replace(header, height=1), pixels[:1])
  forged = short[:4] + struct.pack(">I", zlib.crc32(short[8:] + b"x")) + short[8:] + b"x"
  with pytest.raises(bitstream.BitstreamError, match="bytes of pixels for a 1x3 image"):
    bitstream.unpack(forged)
