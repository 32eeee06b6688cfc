"""Declared inputs (aqpgen.build.inputs): the AQP eta presets read E*_K from the minimax table.

The build reads the input from its own directory, orders tables by their inputs, passes the value
to build_K and hashes the input's content into inputs_hash: a rebuilt kl-minimax with another
value makes the eta preset stale and its rebuild uses the new value.  An input that cannot be
read is an error (no fallback).  Tiny K in a tmp dir.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from aqpgen.build.build import BuildError, build, inputs_hash, is_up_to_date
from aqpgen.build.spec import load_spec
from aqpgen.generators import aqp, minimax
from aqpgen.records import TableInput
from aqpgen.store.content import SCHEMA_VERSION, canonical_json
from aqpgen.store.tablefile import read_table

# the eta preset first: the build must still build kl-minimax before it
SPEC = """
[[table]]
name = "kl-aqp-eta3"
family = "kl"
method = "aqp"
params = { eta = 3, objective = "Vinf" }
Ks = [4, 6]

[[table]]
name = "kl-minimax"
family = "kl"
method = "minimax"
params = {}
Ks = [4, 6]
"""


@pytest.fixture
def built(tmp_path):
    spec = tmp_path / "t.toml"
    spec.write_text(SPEC)
    out = build(spec, tmp_path / "o")
    return spec, tmp_path / "o", out


def test_declared_inputs_of_the_generators():
    assert aqp.declared_inputs({"eta": 3, "objective": "Vinf"}) == {"E_star": TableInput("kl-minimax", "E_star")}
    assert aqp.declared_inputs({"eta": 3, "target": "p^0.5"}) == {"E_star": TableInput("pow0.5-minimax", "E_star")}
    assert aqp.declared_inputs({"rho": 1}) == {}
    assert not hasattr(minimax, "declared_inputs")
    with pytest.raises(ValueError, match="needs its declared input E\\*_K"):
        aqp.build_K(4, {"eta": 3, "objective": "Vinf"})


def test_order_input_value_and_hash(built):
    spec, out, outcomes = built
    assert [o.name for o in outcomes] == ["kl-minimax", "kl-aqp-eta3"]  # built in input order
    mm, eta = read_table(out / "kl-minimax.h5"), read_table(out / "kl-aqp-eta3.h5")
    for K in (4, 6):  # the row's budget is (1 + eta) times the E_star stored in kl-minimax
        assert eta.metrics(K)["E_star"] == mm.metrics(K)["E_star"]
        assert eta.metrics(K)["eta_budget"] == 4 * mm.metrics(K)["E_star"]
    s_eta = next(s for s in load_spec(spec) if s.name == "kl-aqp-eta3")
    doc = {"name": s_eta.name, "family": "kl", "method": "aqp", "params": s_eta.params, "Ks": [4, 6],
           "generator_version": aqp.GENERATOR_VERSION, "schema_version": SCHEMA_VERSION,
           "inputs": {"kl-minimax": mm.content_hash}}
    assert eta.inputs_hash == hashlib.sha256(canonical_json(doc).encode()).hexdigest()
    assert inputs_hash(s_eta, aqp.GENERATOR_VERSION, {}) != eta.inputs_hash  # no inputs: other key


def test_changed_minimax_marks_eta_stale_and_rebuild_uses_it(built, monkeypatch):
    spec, out, _ = built
    s_eta = next(s for s in load_spec(spec) if s.name == "kl-aqp-eta3")
    assert is_up_to_date(s_eta, out / "kl-aqp-eta3.h5")
    real = minimax.build_K

    def changed(K, params):  # a kl-minimax rebuild whose E_star moved by 1e-9 at K = 6
        r = real(K, params)
        m = dict(r.metrics, E_star=r.metrics["E_star"] * (1 + 1e-9)) if K == 6 else r.metrics
        return dataclasses.replace(r, metrics=m)

    monkeypatch.setattr(minimax, "build_K", changed)
    out1 = build(spec, out, only=["kl-minimax"], force=True)
    assert [o.action for o in out1] == ["built"]
    assert not is_up_to_date(s_eta, out / "kl-aqp-eta3.h5")  # stale: its input changed
    out2 = build(spec, out)
    assert [(o.name, o.action) for o in out2] == [("kl-minimax", "up-to-date"), ("kl-aqp-eta3", "built")]
    mm, eta = read_table(out / "kl-minimax.h5"), read_table(out / "kl-aqp-eta3.h5")
    assert eta.metrics(6)["E_star"] == mm.metrics(6)["E_star"] != real(6, {}).metrics["E_star"]
    assert is_up_to_date(s_eta, out / "kl-aqp-eta3.h5")


def test_unreadable_or_missing_input_is_an_error(built, tmp_path):
    spec, out, _ = built
    (out / "kl-minimax.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(BuildError, match=r"'kl-aqp-eta3' reads table 'kl-minimax'.*cannot be read"):
        build(spec, out, only=["kl-aqp-eta3"], force=True)
    s_eta = next(s for s in load_spec(spec) if s.name == "kl-aqp-eta3")
    assert not is_up_to_date(s_eta, out / "kl-aqp-eta3.h5")
    with pytest.raises(BuildError, match=r"kl-minimax.h5 does not exist: build it first"):
        build(spec, tmp_path / "empty", only=["kl-aqp-eta3"])


def test_input_without_the_row_is_an_error(tmp_path):
    spec = tmp_path / "t.toml"
    spec.write_text(SPEC.replace("Ks = [4, 6]\n\n[[table]]", "Ks = [4, 5]\n\n[[table]]", 1))
    with pytest.raises(BuildError, match=r"'kl-aqp-eta3' at K=5 reads the metric 'E_star' of table "
                                         r"'kl-minimax', which has no usable value there"):
        build(spec, tmp_path / "o")
    assert not (tmp_path / "o" / "kl-aqp-eta3.h5").exists()
