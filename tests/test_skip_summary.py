"""``make test`` ends by naming each group of skipped tests with the switch that runs it, and
``AQPGEN_FAIL_ON_SKIP=1`` (what .ci/run sets) fails a run with any skipped test.  Runs pytest on
a small file with this suite's conftest, as the Makefile does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEMO = '''
import pytest

def test_runs():
    pass

def test_needs_trl():
    pytest.skip("could not import 'trl': No module named 'trl'")

def test_needs_torch():
    pytest.skip("could not import 'torch': No module named 'torch'")

def test_other():
    pytest.skip("compiled gather not built (set AQPGEN_REQUIRE_CGATHER=1 to require it)")
'''


def _run(tmp_path, fail_on_skip: bool):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_demo.py").write_text(DEMO)
    env = {k: v for k, v in os.environ.items() if k != "AQPGEN_FAIL_ON_SKIP"}
    if fail_on_skip:
        env["AQPGEN_FAIL_ON_SKIP"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_demo.py"], cwd=tmp_path, env=env, capture_output=True, check=False, text=True,
                          timeout=120)


def test_skipped_groups_are_named_with_their_switch(tmp_path):
    res = _run(tmp_path, fail_on_skip=False)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "skipped test groups (and the switch that runs each)" in out
    assert "1 skipped  real TRL GRPOTrainer tests: make test WITH_TORCH=1 WITH_TRL=1" in out
    assert "1 skipped  torch tests: make test WITH_TORCH=1" in out
    assert "AQPGEN_REQUIRE_CGATHER=1" in out


def test_ci_fails_on_any_skip(tmp_path):
    res = _run(tmp_path, fail_on_skip=True)
    assert res.returncode == 1
    assert "3 test(s) skipped and AQPGEN_FAIL_ON_SKIP=1" in res.stdout
