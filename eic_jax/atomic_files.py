"""Files that appear whole or not at all: written to a temporary file, then renamed."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb"):
  """Yields a file object whose content replaces `path` only once everything was written."""
  directory = os.path.dirname(os.path.abspath(path))
  handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
  try:
    with os.fdopen(handle, mode) as stream:
      yield stream
      stream.flush()
      os.fsync(stream.fileno())
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(temporary)
    raise
