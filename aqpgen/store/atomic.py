"""The one atomic file write of aqpgen: a temporary file in the target's directory, fsync, rename.

Public names
------------
atomic_path(path)              -- context manager yielding a temporary path next to ``path``; on
                                  success the file is fsynced and renamed onto ``path`` (and the
                                  directory fsynced), on any exception it is removed.
write_text_atomic(path, text)  -- write UTF-8 text (``\\n`` line ends) atomically.
write_bytes_atomic(path, data) -- write bytes atomically.
TMP_MARK                       -- ``".tmp-"``: temporary files are named ``<name>.tmp-<random>``.
stale_temp_files(directory, suffixes) -- temporary files left in ``directory`` by a killed writer.
remove_stale_temp_files(directory, suffixes) -- remove them; returns the removed paths.
check_writable(path, what=..., directory=False) -- raise NotWritableError (one line naming
                                  ``path`` and the reason) unless a file can be created there;
                                  for a command to call before it does any work.
NotWritableError               -- ``OSError`` + ``AqpgenError``: an output cannot be written.

A reader never sees a half-written file: it sees the old file or the new one.  A process killed
by SIGKILL inside ``atomic_path`` cannot clean up; the temporary file it leaves is named
``<name>.tmp-<random>`` and is removed by the next ``aqpgen build`` of that directory (which holds
the directory's build lock, so it never removes another live build's file).

Where a write fails for lack of space, the error is the ``OSError`` of the write (ENOSPC) and the
temporary file is removed: a full disk leaves the target as it was.

Standard library only (and ``aqpgen.errors``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aqpgen.errors import AqpgenError

__all__ = [
    "TMP_MARK",
    "NotWritableError",
    "atomic_path",
    "check_writable",
    "remove_stale_temp_files",
    "stale_temp_files",
    "write_bytes_atomic",
    "write_text_atomic",
]

#: Marker in the names of temporary files: ``<final name>.tmp-<random>``.
TMP_MARK = ".tmp-"


def _fsync_dir(d: str) -> None:
    """fsync a directory so a rename in it is durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path in ``path``'s directory; on success move it onto ``path``.

    The caller writes (and closes) the temporary file inside the ``with`` block.  On normal exit
    the file gets the default permissions (0666 minus the umask), is fsynced and renamed onto
    ``path`` with ``os.replace`` (atomic on POSIX and Windows), and the directory is fsynced.
    On any exception the temporary file is removed and ``path`` is untouched.  The directory is
    created if needed.
    """
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(path) + TMP_MARK)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(d)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"write_bytes_atomic: data must be bytes, received {type(data).__name__}")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends on every platform) to ``path`` atomically."""
    if not isinstance(text, str):
        raise TypeError(f"write_text_atomic: text must be a str, received {type(text).__name__}")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def stale_temp_files(directory: str | os.PathLike, suffixes: tuple[str, ...] = (".h5", ".json")) -> list[Path]:
    """Temporary files of :func:`atomic_path` in ``directory`` whose final name ends with one of
    ``suffixes`` (``x.h5.tmp-abc``), sorted.  Only meaningful while no writer is running there."""
    d = Path(directory)
    if not d.is_dir():
        return []
    out = []
    for f in d.iterdir():
        head, mark, _rand = f.name.rpartition(TMP_MARK)
        if mark and head.endswith(suffixes) and f.is_file():
            out.append(f)
    return sorted(out)


def remove_stale_temp_files(directory: str | os.PathLike,
                            suffixes: tuple[str, ...] = (".h5", ".json")) -> list[Path]:
    """Remove :func:`stale_temp_files` (call it only while holding the directory's build lock)."""
    removed = []
    for f in stale_temp_files(directory, suffixes):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
            removed.append(f)
    return removed


class NotWritableError(AqpgenError, OSError):
    """An output path cannot be written (read-only file system, no permission, not a directory,
    no space for a new file); the message is one line naming the path and the reason."""


def _probe_directory(d: str) -> None:
    """Create (and remove) a file in the existing directory ``d``; OSError if that fails.

    An unnamed ``O_TMPFILE`` file where the system has it (nothing can be left behind), else a
    named temporary file removed at once."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            os.close(os.open(d, flag | os.O_WRONLY, 0o600))
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP):
                raise
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".write-check.json" + TMP_MARK)
    os.close(fd)
    os.unlink(tmp)


def check_writable(path: str | os.PathLike, what: str = "output", *, directory: bool = False) -> None:
    """Check, before any work, that a file can be written at ``path`` (``directory=True``: that
    files can be created in the directory ``path``).

    Missing directories count as writable when their nearest existing ancestor is (the writers
    create them).  The check creates no file that stays (an unnamed or at once removed probe
    file).  It cannot know whether the data will fit: a disk that fills up later still fails
    the write itself, with the target left as it was (:func:`atomic_path`).

    Parameters
    ----------
    path : path-like
        The file to be written, or the directory (``directory=True``).
    what : str
        How the message names the path (e.g. ``"--out"``, ``"--json"``).

    Raises
    ------
    NotWritableError
        One line: ``cannot write <what> <path>: <reason>``.
    """
    p = os.path.abspath(os.fspath(path))
    target_dir = p if directory else os.path.dirname(p)
    try:
        if not directory and os.path.isdir(p):
            raise OSError(errno.EISDIR, "it is a directory")
        d = target_dir
        while not os.path.exists(d):  # the writers create missing directories
            d = os.path.dirname(d)
        if not os.path.isdir(d):
            raise OSError(errno.ENOTDIR, f"{d} is not a directory")
        _probe_directory(d)
        if not directory and os.path.exists(p) and not os.access(p, os.W_OK):
            raise OSError(errno.EACCES, "the file is read-only")
    except OSError as e:
        err = NotWritableError(f"cannot write {what} {os.fspath(path)}: {e.strerror or e}")
        err.errno = e.errno
        raise err from None
