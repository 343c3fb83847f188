"""The errors of reading .eic files, shared by the container and the coders."""


class BitstreamError(ValueError):
  """A compressed file cannot be decoded: not an .eic file, an unsupported version, truncated or
  corrupted data, a different model, or image dimensions beyond the configured limits."""


class CodingError(BitstreamError):
  """An entropy coder could not decode a stream (corrupted data or mismatched tables)."""
