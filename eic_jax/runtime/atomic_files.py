"""Files that appear whole or not at all: written to a temporary file, then renamed.

The file gets the permissions a plain open(path, "w") would give it (0666 less the umask), not
the 0600 of the temporary file, so others can read what the umask lets them.
"""

import contextlib
import os
import tempfile
from typing import Sequence


def _umask() -> int:
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def default_mode(directory: bool = False) -> int:
  """The permissions of a new file (or directory) under the current umask."""
  return (0o777 if directory else 0o666) & ~_umask()


def check_writable(path: str, extensions: Sequence[str] = ()) -> None:
  """Raises ValueError, naming `path`, unless a file can be written there: its folder exists
  and is writable, it is not a folder, and it ends with one of `extensions` (any if empty)."""
  if os.path.isdir(path):
    raise ValueError(f"{path} is a folder; name the file to write")
  if extensions and not path.lower().endswith(tuple(e.lower() for e in extensions)):
    raise ValueError(f"{path}: the output must end with {' or '.join(extensions)}")
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise ValueError(f"{path}: the folder {directory} does not exist")
  if not os.access(directory, os.W_OK | os.X_OK):
    raise ValueError(f"{path}: the folder {directory} is not writable")


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb"):
  """Yields a file object whose content replaces `path` only once everything was written."""
  directory = os.path.dirname(os.path.abspath(path))
  try:
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-",
                                         suffix=os.path.basename(path))
  except OSError as error:
    raise OSError(f"{path}: cannot write there ({error.strerror})") from error
  try:
    with os.fdopen(handle, mode) as stream:
      yield stream
      stream.flush()
      os.fchmod(stream.fileno(), default_mode())
      os.fsync(stream.fileno())
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(temporary)
    raise
