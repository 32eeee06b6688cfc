"""The build lock of a tables directory: one build at a time writes into a directory.

Public names
------------
LOCK_NAME                  -- ``".build.lock"`` (in the tables directory; ignored by git).
build_lock(directory, on_wait=None) -- context manager holding an exclusive ``fcntl.flock`` on
                              ``directory/.build.lock``; blocks while another build holds it.

The lock is an advisory ``flock`` on an open file: the kernel releases it when the holder exits
for any reason (``kill -9`` included), so a dead build never leaves the directory locked.  The
file keeps the holder's pid (for the waiting message); its content is never trusted for locking.
The holder removes the file before it releases the lock, so a finished or failed build leaves no
``.build.lock`` (only ``kill -9`` can leave one, harmless: the next build takes it).  A waiter
that then gets the lock of a removed file sees that the path no longer names the file it locked
and starts over on the current one, so two builds never hold locks on two different files.
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
    until it is released).  Yields the lock file's path; the file is removed on exit.
    """
    if fcntl is None:  # pragma: no cover - Windows
        yield ""
        return
    d = os.fspath(directory)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, LOCK_NAME)
    fd = _acquire(path, on_wait)
    try:
        with contextlib.suppress(OSError):  # the pid is informative only (a full disk may refuse it)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still ours: removed while we hold the lock
        os.close(fd)  # releases the flock


def _acquire(path: str, on_wait) -> int:
    """An fd of ``path`` holding its exclusive flock, ``path`` still naming that file."""
    waited = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not waited:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
                    on_wait(f"waiting for the build lock {path} (held by pid {holder})")
                waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed the file we waited on: lock the current one
