"""The build lock of a tables directory: one build at a time writes into a directory.

Public names
------------
LOCK_NAME                  -- ``".build.lock"`` (in the tables directory; ignored by git).
build_lock(directory, on_wait=None) -- context manager holding an exclusive ``fcntl.flock`` on
                              ``directory/.build.lock``; blocks while another build holds it.

The lock is an advisory ``flock`` on an open file: the kernel releases it when the holder exits
for any reason (``kill -9`` included), so a dead build never leaves the directory locked.  The
file keeps the holder's pid (for the waiting message); its content is never trusted for locking.
Where ``fcntl`` does not exist (Windows) the lock is a no-op and concurrent builds into one
directory are the user's responsibility.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["LOCK_NAME", "build_lock"]

LOCK_NAME = ".build.lock"


@contextlib.contextmanager
def build_lock(directory: str | os.PathLike, on_wait: Callable[[str], None] | None = None) -> Iterator[str]:
    """Hold the exclusive build lock of ``directory`` (created if needed) for the ``with`` block.

    ``on_wait(message)`` is called once if another process holds the lock (then this call blocks
    until it is released).  Yields the lock file's path.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield ""
        return
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
            if on_wait is not None:
                on_wait(f"waiting for the build lock {path} (held by pid {holder})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
