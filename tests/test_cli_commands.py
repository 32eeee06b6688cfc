"""Commands that answered badly (issue 25): ``show`` of an unavailable row, ``verify`` with
``--jobs``, progress and no arguments, progress of long solves, the one-thread BLAS of every
command that solves, unwritable ``audit --json`` targets.  Oracles: the table files read with h5py,
the shipped rows' solver records, threadpoolctl's own report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import h5py
import pytest
from click.testing import CliRunner

from aqpgen.cli import main
from aqpgen.store.locate import find_table

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _h5_rows(name: str) -> dict:
    """{K: (status, solver record)} of a table file, read with h5py."""
    with h5py.File(find_table(name), "r") as f:
        Ks = f["K"][()].tolist()
        st = [s.decode() if isinstance(s, bytes) else str(s) for s in f["status"][()]]
        sol = [json.loads(s.decode() if isinstance(s, bytes) else s) for s in f["solver"][()]]
    return {K: (s, r) for K, s, r in zip(Ks, st, sol)}


def _unavailable_row() -> tuple[str, int, str]:
    for name in ("kl-aqp-eta3", "kl-aqp-eta15", "kl-minimax"):
        for K, (status, _) in sorted(_h5_rows(name).items()):
            if status != "ok":
                return name, K, status
    pytest.skip("no shipped table has an unavailable row")


def test_show_unavailable_row_prints_status_not_nan():
    name, K, status = _unavailable_row()
    r = CliRunner().invoke(main, ["show", name, "--K", str(K)])
    assert r.exit_code == 1, r.output
    assert status in r.output and "unavailable" in r.output
    assert "nan" not in r.output.lower().replace("nanoseconds", "")
    assert len(r.output.splitlines()) < 30  # no K lines of values
    r = CliRunner().invoke(main, ["show", name, "--K", str(K), "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["status"] == status and doc["values"] is None and doc["values_hp"] is None
    r = CliRunner().invoke(main, ["show", "power-m2", "--K", "4"])
    assert r.exit_code == 0 and "1/3" in r.output  # an ok row still prints its values


def test_verify_jobs_gives_the_same_checks_and_reports_progress(monkeypatch):
    args = ["verify", "power-m1", "power-m3", "--json"]
    one = CliRunner().invoke(main, args + ["--jobs", "1"])
    two = CliRunner().invoke(main, args + ["--jobs", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert json.loads(one.stdout) == json.loads(two.stdout)
    n_rows = sum(len(_h5_rows(n)) for n in ("power-m1", "power-m3"))
    seen = []

    class Bar:
        def __init__(self, total, label):
            seen.append(("total", total))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            seen.append(("update", n))

    monkeypatch.setattr("aqpgen.cli.build_cmds.progress_bar", Bar)
    r = CliRunner().invoke(main, ["verify", "power-m1", "power-m3", "--jobs", "2"])
    assert r.exit_code == 0, r.output
    assert seen[0] == ("total", n_rows) and sum(n for k, n in seen[1:]) == n_rows


def test_line_progress_prints_on_a_pipe(capsys):
    from aqpgen.cli import _LineProgress

    p = _LineProgress(3, "verifying rows", every=0.0)
    for _ in range(3):
        p.update(1)
    assert capsys.readouterr().err.splitlines()[-1] == "verifying rows: 3/3"
    quiet = _LineProgress(3, "x", every=3600)
    for _ in range(3):
        quiet.update(1)
    assert capsys.readouterr().err == ""  # a short run prints nothing


def test_verify_without_arguments_verifies_the_tables_directory(tmp_path, monkeypatch):
    for n in ("power-m1", "power-m2"):
        shutil.copy(find_table(n), tmp_path / f"{n}.h5")
    monkeypatch.setattr("aqpgen.cli.build_cmds.source_tables_dir", lambda: tmp_path)
    r = CliRunner().invoke(main, ["verify", "--jobs", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert sorted(json.loads(r.stdout)["files"]) == [str(tmp_path / "power-m1.h5"),
                                                     str(tmp_path / "power-m2.h5")]
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr("aqpgen.cli.build_cmds.source_tables_dir", lambda: empty)
    monkeypatch.setattr("aqpgen.cli.build_cmds.packaged_tables_dir", lambda: None)
    r = CliRunner().invoke(main, ["verify"])
    assert r.exit_code == 2 and "no TABLES given" in r.output


def test_audit_without_arguments_audits_the_checkouts_tables(tmp_path, monkeypatch):
    """Like verify: no TABLES = every table of the checkout's tables/ (never the installed
    runtime copies, which lack what the audit recomputes: a usage error instead)."""
    shutil.copy(find_table("power-m1"), tmp_path / "power-m1.h5")
    monkeypatch.setattr("aqpgen.cli.build_cmds.source_tables_dir", lambda: tmp_path)
    out = tmp_path / "audit.json"
    r = CliRunner().invoke(main, ["audit", "-q", "--jobs", "1", "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["ok"] and [f["file"] for f in doc["files"]] == ["power-m1.h5"]
    monkeypatch.setattr("aqpgen.cli.build_cmds.source_tables_dir", lambda: None)
    r = CliRunner().invoke(main, ["audit"])
    assert r.exit_code == 2 and "no TABLES given" in r.output and "no checkout's tables/" in r.output


@pytest.mark.parametrize("K", [128, 256])
def test_solve_minimax_equals_the_shipped_row_under_default_threads(K):
    """Run as a user would, with the machine's default BLAS threads (no *_NUM_THREADS): the
    E* string equals the shipped row's (the build solved it under one-thread BLAS).  Fails
    without the limit on a machine with more than one core."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    res = subprocess.run([sys.executable, "-c", "from aqpgen.cli import main; main()", "solve",
                          "minimax", "--K", str(K), "--json"], env=env, capture_output=True, check=False,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    status, solver = _h5_rows("kl-minimax")[K]
    assert status == "ok"
    assert json.loads(res.stdout)["E_star_hp"] == solver["E_star"]


def _one_thread_pools() -> list:
    from threadpoolctl import threadpool_info

    return [x for x in threadpool_info() if x.get("num_threads") != 1]


def test_frontier_and_compare_solve_under_one_thread_blas(monkeypatch):
    import aqpgen.cli.aqp_cmds as C

    wide = []

    def spy(*a, **k):
        wide.append(_one_thread_pools())
        return []

    monkeypatch.setattr(C, "compare", spy)
    monkeypatch.setattr(C, "E_star", lambda *a, **k: (wide.append(_one_thread_pools()), 1e-3)[1])
    monkeypatch.setattr(C.aqp, "frontier", spy)
    monkeypatch.setattr(C, "peer_metrics", spy)
    assert CliRunner().invoke(main, ["compare", "--K", "8"]).exit_code == 0
    r = CliRunner().invoke(main, ["frontier", "--K", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert len(wide) == 4 and wide == [[]] * 4


def test_long_solve_prints_progress(capsys):
    from aqpgen.cli.solve_cmds import heartbeat

    with heartbeat("solving K=4096 (Remez exchange)", every=0.05):
        time.sleep(0.3)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "solving K=4096 (Remez exchange) ..." and len(err) >= 3
    assert all(line.startswith("solving K=4096 (Remez exchange): ") for line in err[1:])


@pytest.mark.parametrize("target", ["a-file/out.json", "."])
def test_audit_unwritable_json_fails_before_any_work(tmp_path, monkeypatch, target):
    """A path under a regular file, or a directory: refused before the audit runs (a missing
    directory is not an error: the atomic writer creates it)."""
    import aqpgen.audit as A

    monkeypatch.setattr(A, "audit_files", lambda *a, **k: pytest.fail("audit ran"))
    (tmp_path / "a-file").write_text("x")
    path = str(tmp_path / target)
    r = CliRunner().invoke(main, ["audit", "power-m1", "--json", path])
    assert r.exit_code == 2 and "--json" in r.output and "Traceback" not in r.output
