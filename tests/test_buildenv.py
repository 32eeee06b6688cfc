"""The pinned build environment: constraints.txt, the hash tables record, and what it gates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import tomllib

from aqpgen.build import build as build_mod
from aqpgen.build import buildenv
from aqpgen.build.build import BuildError, build, current_table
from aqpgen.build.spec import load_spec
from aqpgen.store.tablefile import read_table

REPO = Path(__file__).resolve().parents[1]

SPEC = """
[[table]]
name = "p1"
family = "power"
method = "ustat"
params = { m = 1 }
Ks = [2, 5, 9]
"""


def test_the_lock_pins_every_numeric_package_and_every_declared_dependency_exactly():
    pins = buildenv.read_lock(REPO / buildenv.LOCK_NAME)
    for name in buildenv.NUMERIC_PACKAGES:
        assert name in pins, f"{buildenv.LOCK_NAME} does not pin {name}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["build"]
    for req in declared:
        if ";" in req and "python_version < '3.11'" in req:
            continue  # tomli: not installed on 3.11
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
        assert buildenv._norm(name) in pins, f"{req} (pyproject) is not pinned"


def test_read_lock_rejects_anything_but_exact_pins(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("# a comment\nnumpy==2.4.6\n\nscipy>=1.10\n")
    with pytest.raises(ValueError, match=r"c.txt:4: not an exact pin"):
        buildenv.read_lock(p)
    p.write_text("NumPy==2.4.6  # trailing\npython_flint==0.9.0\n")
    assert buildenv.read_lock(p) == {"numpy": "2.4.6", "python-flint": "0.9.0"}


def test_env_key_hashes_the_numeric_pins_and_says_unlocked_on_any_mismatch():
    have = buildenv.installed_versions(buildenv.NUMERIC_PACKAGES)
    lock = {n: v for n, v in have.items() if v is not None}
    if len(lock) < len(have):
        pytest.skip("a numeric package is not installed")
    key = buildenv.env_key(lock)
    assert key.startswith("constraints.txt sha256:") and len(key.split(":")[1]) == 64
    assert buildenv.env_key(dict(lock, pytest="0.0.1")) == key  # a test tool: same key
    bumped = dict(lock, numpy=lock["numpy"] + ".post999")
    assert buildenv.env_key(bumped) == "unlocked"
    assert buildenv.mismatches(bumped) == [("numpy", bumped["numpy"], have["numpy"])]
    assert "numpy" in buildenv.describe(bumped)


def test_tables_record_the_build_env_and_count_as_stale_under_another(tmp_path, monkeypatch):
    spec = tmp_path / "tables.toml"
    spec.write_text(SPEC)
    build(spec, tmp_path)
    t = read_table(tmp_path / "p1.h5")
    assert t.provenance["build_env"] == buildenv.env_key()
    (s,) = load_spec(spec)
    from aqpgen.generators import power

    assert current_table(s, str(tmp_path / "p1.h5"), power.GENERATOR_VERSION) is not None
    monkeypatch.setattr(build_mod, "env_key", lambda: "constraints.txt sha256:" + "0" * 64)
    assert current_table(s, str(tmp_path / "p1.h5"), power.GENERATOR_VERSION) is None
    out = build(spec, tmp_path)
    assert [o.action for o in out] == ["built"]


def test_an_unlocked_environment_may_not_write_the_shipped_tables(tmp_path, monkeypatch):
    spec = tmp_path / "tables.toml"
    spec.write_text(SPEC)
    monkeypatch.setattr(build_mod, "env_key", lambda: "unlocked")
    monkeypatch.setattr(build_mod, "_is_shipped_dir", lambda d: True)
    monkeypatch.setattr(build_mod, "_check_clean_tree", lambda d: None)
    with pytest.raises(BuildError, match="constraints.txt"):
        build(spec, tmp_path)
    assert not (tmp_path / "p1.h5").exists()
    build(spec, tmp_path, allow_unlocked=True)
    assert read_table(tmp_path / "p1.h5").provenance["build_env"] == "unlocked"


def test_a_build_elsewhere_from_an_unlocked_environment_is_allowed_and_says_so(tmp_path, monkeypatch):
    spec = tmp_path / "tables.toml"
    spec.write_text(SPEC)
    monkeypatch.setattr(build_mod, "env_key", lambda: "unlocked")
    build(spec, tmp_path / "out")
    assert read_table(tmp_path / "out" / "p1.h5").provenance["build_env"] == "unlocked"
    shutil.rmtree(tmp_path / "out")
