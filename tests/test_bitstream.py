import pytest

from eic_jax import bitstream

FINGERPRINT = bytes(range(8))


def _file(payload=b"payload bytes", height=5, width=7):
  return bitstream.pack(bitstream.Header(FINGERPRINT, height, width), payload)


def test_round_trip_and_header_size():
  data = _file()
  assert len(data) == bitstream.HEADER_SIZE + len(b"payload bytes") and bitstream.HEADER_SIZE <= 24
  header, payload = bitstream.unpack(data, FINGERPRINT)
  assert (header.height, header.width, payload) == (5, 7, b"payload bytes")


@pytest.mark.parametrize("data,message", [
    (b"", "not an eic_jax compressed file"),
    (b"PNG\x89 something else entirely", "not an eic_jax compressed file"),
    (_file()[:20], "truncated file"),
    (_file()[:-1], "corrupted or truncated"),
    (_file() + b"\x00", "corrupted or truncated"),
    (_file()[:30] + bytes([_file()[30] ^ 4]) + _file()[31:], "corrupted or truncated"),
    (_file()[:3] + b"\x07" + _file()[4:], "unsupported format version 7"),
])
def test_bad_files_raise_the_documented_error(data, message):
  with pytest.raises(bitstream.BitstreamError, match=message):
    bitstream.unpack(data, FINGERPRINT)


def test_other_model_and_size_limits():
  with pytest.raises(bitstream.BitstreamError, match="different model"):
    bitstream.unpack(_file(), bytes(8))
  with pytest.raises(bitstream.BitstreamError, match="exceeds the limit of 1000 pixels"):
    bitstream.unpack(_file(height=100, width=100), FINGERPRINT, max_pixels=1000)
  with pytest.raises(bitstream.BitstreamError, match="invalid image size 0x7"):
    bitstream.unpack(_file(height=0), FINGERPRINT)
  assert issubclass(bitstream.BitstreamError, ValueError)
