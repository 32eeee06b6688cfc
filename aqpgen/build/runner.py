"""Where the per-K solves of a build run: in process, in a local process pool, or on Dask.

Public names
------------
ROW_LOCK                   -- the process-wide lock a row holds while it runs.
run_K(modname, K, params, inputs=None) -- one row: ``import_module(modname).build_K(...)``, with
                              ``inputs=`` (the row's declared inputs) when there are any (the
                              picklable entry point shipped to workers).
RowFailed                  -- a ``build_K`` raised; carries ``K`` and the original exception.
LocalRunner, PoolRunner, DaskRunner -- ``run(modname, Ks, params, row_inputs)`` yields
                              ``(K, KResult)`` as rows finish (largest K submitted first);
                              ``close()`` releases workers; ``abort()`` stops them at once
                              (a failed or interrupted build).
make_runner(jobs, dask)    -- the runner for ``aqpgen build --jobs J [--dask ADDRESS|local]``.
die_with_parent(parent_pid) -- pool worker initializer: the worker dies when the build dies.

One row at a time per process
-----------------------------
A row's working precision is process-wide state (python-flint's ``flint.ctx.prec``, mpmath's
``mp.prec``; ``aqpgen.numerics.precision``), and so is the BLAS thread limit.  Two rows of different
precision computing at once in one process (the threads of a Dask worker started the default way,
``dask worker`` with one thread per core) would compute in each other's precision.  So
``run_K`` holds ``ROW_LOCK``: rows of one process run one after another whatever the threads.
A threaded Dask worker therefore builds correct rows but no faster than one thread; start
workers with ``--nthreads 1 --nworkers N`` (``--dask local`` does) for parallel rows.

Every backend runs the same ``run_K`` on the same arguments, and the build sorts rows by K before
writing, so the table bytes do not depend on the backend or the completion order.

No debris
---------
Pool workers call :func:`die_with_parent`: on Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the
kernel kills the worker when the build process dies, ``kill -9`` included), plus a watchdog
thread that exits when the parent pid changes (other POSIX systems, and the race where the parent
died before ``prctl``).  Dask workers belong to their cluster; ``--dask local`` starts a
``LocalCluster`` that is closed with the build (its nanny processes watch their parent too).

SIGINT (Ctrl-C) is the build process's to handle: pool workers ignore it, and on
``KeyboardInterrupt`` the build calls ``abort()``, which kills the workers instead of waiting for
the rows in progress, so an interrupted build stops within a second.

Dask (``pip install 'aqpgen[dask]'``) is imported only by :class:`DaskRunner`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from aqpgen.numerics.precision import single_thread_blas

__all__ = ["ROW_LOCK", "DaskRunner", "LocalRunner", "PoolRunner", "RowFailed", "die_with_parent", "make_runner",
           "run_K"]

_PR_SET_PDEATHSIG = 1

#: held by ``run_K`` while a row runs: rows of one process never overlap (module docstring).
ROW_LOCK = threading.Lock()

#: How long ``--dask ADDRESS`` waits for the scheduler before giving up.
CONNECT_TIMEOUT = "20s"


class RowFailed(Exception):
    """``build_K`` raised for one K (``.K``, ``.exc``)."""

    def __init__(self, K: int, exc: BaseException):
        super().__init__(f"K={K}: {type(exc).__name__}: {exc}")
        self.K, self.exc = K, exc


def run_K(modname: str, K: int, params: dict, inputs: dict | None = None):
    """Build one row: import the generator by name and call its ``build_K`` (BLAS on one thread:
    ``aqpgen.numerics.precision.single_thread_blas``; the pool's workers run in parallel instead).
    ``inputs``: the row's declared inputs (``aqpgen.build.inputs``), passed only when not empty.
    Rows of one process run one at a time (``ROW_LOCK``, module docstring)."""
    build_K = importlib.import_module(modname).build_K
    with ROW_LOCK, single_thread_blas():
        if inputs:
            return build_K(K, dict(params), inputs=dict(inputs))
        return build_K(K, dict(params))


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process exit when ``parent_pid`` dies (see the module docstring)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="aqpgen-parent-watch").start()


def _pool_worker_init(parent_pid: int) -> None:
    """Pool worker initializer: die with the build (:func:`die_with_parent`) and leave SIGINT to
    the build process (a Ctrl-C reaches the whole process group; the build aborts the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)


def _order(Ks) -> list[int]:
    return sorted(Ks, reverse=True)  # largest first: better load balance


class LocalRunner:
    """Rows one after another in this process."""

    def run(self, modname: str, Ks, params: dict, row_inputs: dict) -> Iterator[tuple[int, object]]:
        for K in _order(Ks):
            try:
                r = run_K(modname, K, params, row_inputs.get(K))
            except Exception as e:
                raise RowFailed(K, e) from e
            yield K, r

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class PoolRunner:
    """Rows in a ``ProcessPoolExecutor`` of ``jobs`` workers that die with this process."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._pool = None

    def _executor(self):
        if self._pool is None:
            # fork keeps generators registered at run time (tests) visible to workers
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                             initializer=_pool_worker_init, initargs=(os.getpid(),))
        return self._pool

    def run(self, modname: str, Ks, params: dict, row_inputs: dict) -> Iterator[tuple[int, object]]:
        ex = self._executor()
        futures = {ex.submit(run_K, modname, K, dict(params), row_inputs.get(K)): K for K in _order(Ks)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: -futures[f]):
                    exc = fut.exception()
                    if exc is not None:
                        raise RowFailed(futures[fut], exc) from exc
                    yield futures[fut], fut.result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Kill the workers (rows in progress are dropped) and release the pool without waiting."""
        if self._pool is None:
            return
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
        self._pool = None


class DaskRunner:
    """Rows fanned out with ``distributed.Client.map`` on a Dask cluster.

    ``address``: ``"local"`` (a ``LocalCluster`` of ``jobs`` single-threaded worker processes,
    closed by :meth:`close`), a scheduler address (``"tcp://host:8786"``), or a ``Client``."""

    def __init__(self, address, jobs: int = 1):
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise ImportError(f"--dask needs the distributed scheduler ({e}): pip install 'aqpgen[dask]'") from e
        self._cluster = None
        self._own_client = True
        if isinstance(address, Client):
            self.client, self._own_client = address, False
        elif address == "local":
            self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self.client = Client(self._cluster)
        elif isinstance(address, str) and address:
            try:
                self.client = Client(address, timeout=CONNECT_TIMEOUT)
            except OSError as e:
                raise ConnectionError(f"cannot reach the Dask scheduler at {address!r} ({e}); start one "
                                      "(docs/SCALING.md) or use --dask local") from None
        else:
            raise ValueError(f"dask must be 'local', a scheduler address or a distributed.Client, received {address!r}")

    def run(self, modname: str, Ks, params: dict, row_inputs: dict) -> Iterator[tuple[int, object]]:
        from distributed import as_completed

        order = _order(Ks)
        n = len(order)
        futs = self.client.map(run_K, [modname] * n, order, [dict(params)] * n,
                               [row_inputs.get(K) for K in order], pure=False)
        K_of = {f.key: K for f, K in zip(futs, order)}
        try:
            for fut in as_completed(futs):
                K = K_of[fut.key]
                if fut.status == "error":
                    exc = fut.exception()
                    raise RowFailed(K, exc) from exc
                yield K, fut.result()
        finally:
            self.client.cancel([f for f in futs if not f.done()])

    def close(self) -> None:
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()

    def abort(self) -> None:
        self.close()


def make_runner(jobs: int = 1, dask=None):
    """``DaskRunner(dask, jobs)`` when ``dask`` is given, else a pool of ``jobs`` workers.

    ``jobs = 1`` is a pool of one worker too where processes fork (a row's solver may sit in
    one C call for seconds, where Ctrl-C cannot reach it in process; a worker is killed at
    once), and rows run in this process only where they cannot (no ``fork``, or this process is
    a daemon that may not have children)."""
    if dask is not None:
        return DaskRunner(dask, jobs)
    if jobs > 1:
        return PoolRunner(jobs)
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    return PoolRunner(1) if can_fork and not multiprocessing.current_process().daemon else LocalRunner()
