"""Rebuilding rows of the shipped tables reproduces them bit for bit (values, strings, metrics).

The oracle is the committed file itself (tables/*.h5): any change of a floating-point operation
in the generators, metrics or certificates for the target log p shows up here.  Values and
strings must never move; stored metrics must equal the rebuilt ones whenever the file was built
by the current GENERATOR_VERSION (a version bump is the only licence to move them, and then the
file must be older).  Small K only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aqpgen.generators import aqp, minimax, power
from aqpgen.store.tablefile import read_table

TABLES = Path(__file__).resolve().parents[1] / "tables"

CASES = [
    ("power-m2", power, {"m": 2}, (3, 5, 8)),
    ("kl-minimax", minimax, {}, (2, 3, 5, 8, 16)),
    ("kl-aqp-rho1", aqp, {"rho": 1.0}, (2, 3, 5, 8)),
    ("kl-aqp-eta3", aqp, {"eta": 3.0, "objective": "Vinf"}, (2, 5, 8)),
]


@pytest.mark.parametrize(("name", "mod", "params", "Ks"), CASES, ids=[c[0] for c in CASES])
def test_rebuilt_rows_are_bit_identical(name, mod, params, Ks):
    t = read_table(TABLES / f"{name}.h5")
    assert mod.target_name(params) == t.target
    decl = getattr(mod, "declared_inputs", lambda p: {})(params)  # the build's input rule
    t_in = read_table(TABLES / f"{next(iter(decl.values())).table}.h5") if decl else None
    for K in Ks:
        ins = {key: t_in.metrics(K)[i.metric] for key, i in decl.items()}
        r = mod.build_K(K, params, inputs=ins) if ins else mod.build_K(K, params)
        row = t.row(K)
        assert r.status == row.status
        assert np.array_equal(r.values, row.values), (name, K)
        assert tuple(r.values_hp or ()) == tuple(row.values_hp or ()), (name, K)
        built_by = t.provenance["generator_version"]
        if built_by != mod.GENERATOR_VERSION:
            assert int(built_by) < int(mod.GENERATOR_VERSION), (name, built_by)
            continue
        stored = t.metrics(K)
        assert set(r.metrics) <= set(stored), (name, K)
        for key, v in r.metrics.items():
            same = v == stored[key] or (math.isnan(v) and math.isnan(stored[key]))
            assert same, (name, K, key, v, stored[key])
