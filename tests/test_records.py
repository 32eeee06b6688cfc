"""records.as_K (the one K validation) and the status vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from aqpgen.records import STATUS_OK, as_K, standard_Ks


@pytest.mark.parametrize(("x", "want"), [(1, 1), (np.int64(7), 7), (8.0, 8), (np.float32(3), 3)])
def test_as_K_accepts_integers(x, want):
    got = as_K(x)
    assert got == want and type(got) is int


@pytest.mark.parametrize("bad", [2.5, "3", True, np.bool_(True), None, 1 + 0j, [2]])
def test_as_K_type_errors_name_the_argument(bad):
    with pytest.raises(TypeError, match=r"Kbatch must be an integer, received"):
        as_K(bad, "Kbatch")


def test_as_K_minimum():
    assert as_K(2, minimum=2) == 2
    with pytest.raises(ValueError, match=r"K must be an integer >= 2, received 1"):
        as_K(1, minimum=2)
    with pytest.raises(ValueError, match=r"N must be an integer >= 0, received -1"):
        as_K(-1, "N", minimum=0)


def test_standard_Ks_and_status():
    Ks = standard_Ks(2)
    assert Ks[0] == 2 and Ks[-1] == 1024 and len(Ks) == 255 + 8
    with pytest.raises(TypeError, match="kmin"):
        standard_Ks(1.5)
    assert STATUS_OK == "ok"


def test_result_types_share_the_status_vocabulary():
    from aqpgen.generators.peers import peer_table
    from aqpgen.generators.remez import remez
    from aqpgen.numerics.certify import certify_beta

    r = remez(4)
    assert r.converged and r.status == STATUS_OK
    c = certify_beta(8, peer_table("plugin", 8))
    assert c.converged and c.status == STATUS_OK
    loose = certify_beta(8, peer_table("plugin", 8), rel_slack=1e-9, max_rounds=1)
    assert not loose.converged and loose.status.startswith("not converged")
