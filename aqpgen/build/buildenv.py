"""The pinned build environment: the lock file that built the shipped tables, and its hash.

A table's values come from float64 solvers (the Remez float64 stage, Clarabel through cvxpy) whose
last bits move with a numpy, scipy, Clarabel or cvxpy release, so "the same bytes" holds only for
the same numerical libraries.  The repository carries them as pip constraints in
``constraints.txt`` (next to ``pyproject.toml``); ``make venv`` installs from it, and every table
built in an environment that matches it records the lock's hash in its provenance.

Public names
------------
LOCK_NAME                 -- ``"constraints.txt"``.
NUMERIC_PACKAGES          -- the distributions whose code runs while a row is solved, certified
                             or written: the part of the lock that decides a table's bytes.
lock_path()               -- the source checkout's lock file, or None (installed aqpgen).
read_lock(path)           -- {normalised name: version} of a pip constraints file.
installed_versions(names) -- {name: installed version or None}.
mismatches(lock=None)     -- [(name, locked, installed)] for the numeric packages that differ.
env_key(lock=None)        -- what a table's provenance records as ``build_env``:
                             ``"constraints.txt sha256:<hex>"`` (hash of the numeric packages'
                             locked versions and the Python minor version) when the running
                             environment matches the lock, ``"unlocked"`` otherwise or when
                             there is no lock.
describe(lock=None)       -- one line for the CLI: which lock, and what differs.

The hash covers only ``NUMERIC_PACKAGES`` (and ``python``), so bumping a test tool in the lock
does not make every table out of date, while bumping numpy does: ``aqpgen build`` then rebuilds,
and ``make check-unpinned`` shows beforehand by how much the tables would move.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from importlib import metadata
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "NUMERIC_PACKAGES",
    "describe",
    "env_key",
    "installed_versions",
    "lock_path",
    "mismatches",
    "read_lock",
]

LOCK_NAME = "constraints.txt"
#: distributions whose code runs in a solve, a certificate or a table write.
NUMERIC_PACKAGES = ("numpy", "scipy", "python-flint", "mpmath", "sympy", "cvxpy", "clarabel",
                    "osqp", "scs", "h5py", "threadpoolctl")
UNLOCKED = "unlocked"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path | None:
    """``constraints.txt`` of the source checkout aqpgen runs from, or None (installed package)."""
    root = Path(__file__).resolve().parent.parent.parent
    p = root / LOCK_NAME
    return p if p.is_file() and (root / "pyproject.toml").is_file() else None


def read_lock(path: str | os.PathLike) -> dict[str, str]:
    """{normalised name: version} of the ``name==version`` lines of a constraints file.

    Raises ValueError naming the line for anything else than comments, blank lines and exact
    pins (a lock with a range is not a lock)."""
    out = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([A-Za-z0-9.+!_-]+)"
                         r"(\s*;.*)?", text)
        if not m:
            raise ValueError(f"{path}:{i}: not an exact pin 'name==version': {line.strip()!r}")
        out[_norm(m.group(1))] = m.group(3)
    return out


def installed_versions(names) -> dict[str, str | None]:
    """{name: the installed version, or None when the distribution is not installed}."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def _lock(lock):
    if lock is None:
        p = lock_path()
        return None if p is None else read_lock(p)
    return lock if isinstance(lock, dict) else read_lock(lock)


def mismatches(lock=None) -> list[tuple[str, str | None, str | None]]:
    """Numeric packages whose installed version differs from the lock: (name, locked, installed).

    ``lock``: a path, a dict from `read_lock`, or None for the checkout's lock (no lock: [])."""
    pins = _lock(lock)
    if pins is None:
        return []
    have = installed_versions(NUMERIC_PACKAGES)
    return [(n, pins.get(n), have[n]) for n in NUMERIC_PACKAGES if pins.get(n) != have[n]]


def env_key(lock=None) -> str:
    """``"constraints.txt sha256:<hex>"`` when the running environment matches the lock, else
    ``"unlocked"`` (also when there is no lock)."""
    pins = _lock(lock)
    if pins is None or mismatches(pins):
        return UNLOCKED
    lines = [f"python=={sys.version_info.major}.{sys.version_info.minor}"]
    lines += [f"{n}=={pins.get(n)}" for n in NUMERIC_PACKAGES]
    return f"{LOCK_NAME} sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def describe(lock=None) -> str:
    """One line: the lock in use, or what differs from it."""
    pins = _lock(lock)
    if pins is None:
        return f"no {LOCK_NAME} (an installed aqpgen): tables record build_env 'unlocked'"
    bad = mismatches(pins)
    if not bad:
        return f"build environment matches {LOCK_NAME}"
    diff = ", ".join(f"{n} {have or 'missing'} (locked {want or 'absent'})" for n, want, have in bad)
    return f"build environment differs from {LOCK_NAME}: {diff}"
