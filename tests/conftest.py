"""Shared pytest fixtures.

* ``reset_precision`` (autouse): restores mpmath / python-flint global precision after each test,
  so no test can leak a changed global precision into another.
* ``fake_generator``: a tiny deterministic generator module registered in ``aqpgen.build``'s
  registry as family "fake" / method "lin" (tests of the build machinery must not depend on the
  real generators).
* ``small_table``: a small TableData with metrics, NaN metrics, hp strings and a non-ok row.

At the end of a run, the skipped tests are listed by group with the ``make test`` switch that
runs them (``pytest_terminal_summary``); with ``AQPGEN_FAIL_ON_SKIP=1`` (set by ``.ci/run``) any
skipped test fails the run.
"""

from __future__ import annotations

import os
import re
import sys
import types
from fractions import Fraction

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def reset_precision():
    saved = {}
    try:
        import mpmath

        saved["mp"] = mpmath.mp.prec
    except ImportError:  # pragma: no cover
        pass
    try:
        import flint

        saved["flint"] = flint.ctx.prec
    except ImportError:  # pragma: no cover
        pass
    yield
    if "mp" in saved:
        import mpmath

        mpmath.mp.prec = saved["mp"]
    if "flint" in saved:
        import flint

        flint.ctx.prec = saved["flint"]


def _fake_build_K(K, params, *, tables_dir=None):
    """c_K[n] = a * n / K (exact rationals -> float64), optional failure / non-ok rows."""
    from aqpgen.records import KResult

    if params.get("fail_at") == K:
        raise RuntimeError(f"fake generator fails at K={K}")
    a = Fraction(str(params.get("a", "1")))
    exact = [a * n / K for n in range(1, K + 1)]
    if K in params.get("bad", ()):
        return KResult(K, np.full(K, np.nan), None, {"beta": float("nan")}, "out of reach (fake)",
                       {"solver": "fake"})
    return KResult(
        K,
        np.array([float(x) for x in exact]),
        tuple(f"{x.numerator}/{x.denominator}" for x in exact) if params.get("hp") else None,
        {"beta": 1.0 / K, "max_abs_c": float(max(abs(x) for x in exact))},
        "ok",
        {"solver": "fake", "prec": 53},
    )


def _fake_verify_row(K, values, values_hp, metrics, params):
    from aqpgen.records import Check

    a = Fraction(str(params.get("a", "1")))
    want = np.array([float(a * n / K) for n in range(1, K + 1)])
    ok = bool(np.array_equal(np.asarray(values), want))
    return [Check("fake-exact", ok, "values equal a*n/K" if ok else "values differ", K)]


@pytest.fixture
def fake_generator(monkeypatch):
    """Register module ``aqpgen_fake_gen`` as generator ("fake", "lin")."""
    mod = types.ModuleType("aqpgen_fake_gen")
    mod.GENERATOR_VERSION = "fake-1"
    mod.build_K = _fake_build_K
    mod.verify_row = _fake_verify_row
    mod.target_name = lambda params: f"{params.get('a', '1')}*p"
    mod.kmin = lambda params: 2
    # picklable by reference for process pools: functions live in this (importable) module
    monkeypatch.setitem(sys.modules, "aqpgen_fake_gen", mod)
    from aqpgen.build import spec as build_spec

    monkeypatch.setitem(build_spec.GENERATORS, ("fake", "lin"), "aqpgen_fake_gen")
    return mod


@pytest.fixture
def small_table():
    from aqpgen.records import KResult
    from aqpgen.store.content import make_table

    rs = [
        KResult(2, [0.25, 1.0], ("1/4", "1"), {"beta": 0.5, "exact": 1.0}, "ok", {"solver": "s", "prec": 64}),
        KResult(3, [1 / 3, 2 / 3, 1.0], None, {"beta": float("nan"), "V1": 0.125}, "ok", {"solver": "s"}),
        KResult(5, np.full(5, np.nan), None, {"beta": float("nan")}, "infeasible at K=5", {"solver": "s", "status": "infeasible"}),
    ]
    return make_table(
        name="small", family="fake", target="p", method="lin", params={"a": "1"},
        provenance={"aqpgen": "test"}, results=rs, inputs_hash="0" * 64,
    )


#: a module a skipped test needed -> (the group of tests, the ``make test`` switch that installs it)
SKIP_GROUPS = {
    "torch": ("torch tests", "make test WITH_TORCH=1"),
    "jax": ("jax tests", "make test WITH_JAX=1"),
    "trl": ("real TRL GRPOTrainer tests", "make test WITH_TORCH=1 WITH_TRL=1"),
    "transformers": ("real TRL GRPOTrainer tests", "make test WITH_TORCH=1 WITH_TRL=1"),
    "datasets": ("real TRL GRPOTrainer tests", "make test WITH_TORCH=1 WITH_TRL=1"),
    "accelerate": ("real TRL GRPOTrainer tests", "make test WITH_TORCH=1 WITH_TRL=1"),
    "verl": ("verl adapter tests", "make test WITH_TORCH=1 WITH_VERL=1"),
    "tensordict": ("verl adapter tests", "make test WITH_TORCH=1 WITH_VERL=1"),
    "ray": ("verl / OpenRLHF adapter tests", "make test WITH_TORCH=1 WITH_VERL=1 WITH_OPENRLHF=1"),
    "openrlhf": ("OpenRLHF adapter tests", "make test WITH_TORCH=1 WITH_OPENRLHF=1"),
    "aiohttp": ("OpenRLHF adapter tests", "make test WITH_TORCH=1 WITH_OPENRLHF=1"),
    "dask": ("Dask build tests", "make venv (installs the [dev] extra, dask included)"),
    "distributed": ("Dask build tests", "make venv (installs the [dev] extra, dask included)"),
}
_MODULE = re.compile(r"could not import '([\w.]+)'|imports ([\w.]+), which is not installed")


def skip_group(reason: str) -> tuple[str, str]:
    """(group, switch) of a skip reason: a missing module of :data:`SKIP_GROUPS`, else the
    reason itself and what it says (a reason should name its switch)."""
    m = _MODULE.search(reason)
    mod = (m.group(1) or m.group(2)).split(".")[0] if m else None
    if mod in SKIP_GROUPS:
        return SKIP_GROUPS[mod]
    return reason, "see the reason"


def _skip_reasons(terminalreporter) -> list[str]:
    out = []
    for rep in terminalreporter.stats.get("skipped", []):
        lr = rep.longrepr
        reason = lr[2] if isinstance(lr, tuple) and len(lr) == 3 else str(lr)
        out.append(reason.removeprefix("Skipped: "))
    return out


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Name every group of skipped tests and the switch that runs it."""
    reasons = _skip_reasons(terminalreporter)
    if not reasons:
        return
    groups: dict = {}
    for r in reasons:
        g = skip_group(r)
        groups[g] = groups.get(g, 0) + 1
    tr = terminalreporter
    tr.section("skipped test groups (and the switch that runs each)")
    for (group, switch), n in sorted(groups.items(), key=lambda kv: -kv[1]):
        tr.write_line(f"{n:4d} skipped  {group}: {switch}")
    if os.environ.get("AQPGEN_FAIL_ON_SKIP") == "1":
        tr.write_line(f"error: {len(reasons)} test(s) skipped and AQPGEN_FAIL_ON_SKIP=1 (CI runs "
                      "every test)", red=True, bold=True)


def pytest_sessionfinish(session, exitstatus):
    """With ``AQPGEN_FAIL_ON_SKIP=1`` a run with skipped tests fails (exit status 1)."""
    if os.environ.get("AQPGEN_FAIL_ON_SKIP") != "1" or exitstatus not in (0,):
        return
    rep = session.config.pluginmanager.get_plugin("terminalreporter")
    if rep is not None and rep.stats.get("skipped"):
        session.exitstatus = 1
