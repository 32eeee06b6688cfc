"""The one way to find a table file: by path, or by name on the table search path.

Public names
------------
TABLES_ENV                 -- ``"AQPGEN_TABLES"``: the one environment variable (directories
                              separated by ``os.pathsep``, searched first).
search_path()              -- the directories searched for a table given by name, in order.
find_table(ref)            -- a path, or a name such as ``"kl-aqp-rho1"`` -> the file's ``Path``.
available_tables()         -- the table names found on the search path.
source_tables_dir()        -- the source checkout's ``tables/`` directory (None when installed).
packaged_tables_dir()      -- the installed package data holding the runtime copies (None when
                              there are none, e.g. in a source checkout).

Search order for a name: ``$AQPGEN_TABLES`` entries, then the source checkout's ``tables/`` (only
when aqpgen runs from a checkout: the directory above the package holds ``pyproject.toml`` and
``tables/tables.toml``), then the installed package data ``aqpgen.store.shipped`` (read through
``importlib.resources``; the wheel's runtime copies, see ``aqpgen.store.wheeldata``).  An
``$AQPGEN_TABLES`` entry that is not a directory is skipped with a :class:`TablesPathWarning`
naming it, once per process and entry.  A name is
never looked up in ``site-packages/tables`` (that is PyTables' package).
Every part of aqpgen (runtime, CLI, builder, report, simulator) locates tables through here.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path

__all__ = [
    "TABLES_ENV",
    "TablesPathWarning",
    "available_tables",
    "find_table",
    "packaged_tables_dir",
    "search_path",
    "source_tables_dir",
]

#: The environment variable holding extra table directories (``os.pathsep``-separated).
TABLES_ENV = "AQPGEN_TABLES"


#: The ``$AQPGEN_TABLES`` entries already reported as missing (each is reported once per process).
_REPORTED: set[str] = set()


class TablesPathWarning(UserWarning):
    """An ``$AQPGEN_TABLES`` entry is not a directory (it is skipped)."""


def _env_dirs() -> list[Path]:
    """The ``$AQPGEN_TABLES`` entries, each that is not a directory reported once per process."""
    dirs = []
    for d in os.environ.get(TABLES_ENV, "").split(os.pathsep):
        if not d:
            continue
        if not os.path.isdir(d) and d not in _REPORTED:
            _REPORTED.add(d)
            what = "is not a directory" if os.path.exists(d) else "does not exist"
            warnings.warn(f"${TABLES_ENV} entry {d!r} {what}; no tables are looked up there",
                          TablesPathWarning, stacklevel=3)
        dirs.append(Path(d))
    return dirs


#: The package whose data files are the wheel's runtime copies (``aqpgen.store.wheeldata``).
_PACKAGE_DATA = "aqpgen.store.shipped"


def source_tables_dir() -> Path | None:
    """The ``tables/`` directory of the source checkout this package runs from, if any (the
    directory above the ``aqpgen`` package holds ``pyproject.toml`` and ``tables/tables.toml``)."""
    root = Path(__file__).resolve().parents[2]
    d = root / "tables"
    return d if (root / "pyproject.toml").is_file() and (d / "tables.toml").is_file() else None


def packaged_tables_dir() -> Path | None:
    """The installed package data directory holding ``*.h5`` runtime copies, or None.

    Found through ``importlib.resources``; only a package installed as files (what pip does
    with a wheel) qualifies: a zipped install is not searched."""
    try:
        d = resources.files(_PACKAGE_DATA)
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - package data removed
        return None
    if not isinstance(d, os.PathLike):  # pragma: no cover - zip import
        return None
    p = Path(d)
    return p if p.is_dir() and any(p.glob("*.h5")) else None


def search_path() -> list[Path]:
    """Directories searched for a table given by name, in order: ``$AQPGEN_TABLES`` entries, the
    source checkout's ``tables/`` (when running from a checkout), the installed package data."""
    dirs = _env_dirs()
    for d in (source_tables_dir(), packaged_tables_dir()):
        if d is not None:
            dirs.append(d)
    return dirs


def _is_name(ref: str) -> bool:
    return os.sep not in ref and (os.altsep is None or os.altsep not in ref)


def available_tables() -> list[str]:
    """Sorted names of the ``.h5`` files on the search path."""
    return sorted({f.stem for d in search_path() if d.is_dir() for f in d.glob("*.h5")})


def find_table(ref) -> Path:
    """Resolve a table reference: an existing file, or a name (``"power-m2"`` or ``"power-m2.h5"``)
    looked up on :func:`search_path`.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a known name; the message lists the directories searched and the
        names available.
    """
    p = Path(os.fspath(ref))
    if p.is_file():
        return p
    name = str(os.fspath(ref))
    if _is_name(name):
        for d in search_path():
            for cand in (d / f"{name}.h5", d / name):
                if cand.is_file():
                    return cand
    searched = [str(d) for d in search_path()]
    raise FileNotFoundError(
        f"no table file {name!r}: not a file, and no '{name}.h5' in {searched} "
        f"(available names: {available_tables() or 'none'}; set ${TABLES_ENV} to a directory "
        f"holding tables, build them with `aqpgen build`, or install aqpgen from a wheel, which "
        f"ships every table)"
    )
