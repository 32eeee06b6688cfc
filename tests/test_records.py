"""records.as_int (the one integer validation), as_K and the status vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from aqpgen.records import STATUS_OK, as_int, as_K, standard_Ks


@pytest.mark.parametrize(("x", "want"), [(1, 1), (np.int64(3), 3), (np.int32(7), 7), (np.uint8(8), 8),
                                         (-4, -4), (2**70, 2**70)])
def test_as_int_accepts_integers(x, want):
    got = as_int(x, "n")
    assert got == want and type(got) is int
    if want >= 1:
        got = as_K(x)
        assert got == want and type(got) is int


@pytest.mark.parametrize("bad", [2.0, 2.5, np.float64(3.0), np.float32(3), "3", True, False,
                                 np.bool_(True), None, 1 + 0j, [2], np.array([3])])
def test_as_int_refuses_non_integers_naming_argument_and_value(bad):
    with pytest.raises(TypeError, match=r"^maxiter must be an integer, received ") as e:
        as_int(bad, "maxiter")
    assert repr(bad) in str(e.value)
    with pytest.raises(TypeError, match=r"Kbatch must be an integer, received"):
        as_K(bad, "Kbatch")


def test_as_int_minimum():
    assert as_int(0, "jobs") == 0 and as_int(-3, "shift") == -3  # no minimum unless asked
    assert as_int(1, "jobs", minimum=1) == 1
    with pytest.raises(ValueError, match=r"^jobs must be an integer >= 1, received 0$"):
        as_int(np.int64(0), "jobs", minimum=1)


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
