"""One schema check for the reader and the audit (``tablefile.check_schema``).

The reader (``read_table``) and the audit used to check the schema attributes separately and
disagreed on which versions they accept.  Here each variant of the two attributes is written
into a real table file and both must decide alike; the expected verdicts are written out by hand
(the only version this aqpgen writes and reads is 1).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from aqpgen import audit
from aqpgen.errors import TableFormatError
from aqpgen.generators import power
from aqpgen.store import content, tablefile

#: (schema attribute or None to delete, schema_version attribute or None to delete, accepted?,
#:  a fragment of the reason when refused)
CASES = [
    (b"aqpgen.table", np.int64(1), True, ""),
    (b"aqpgen.table", np.int32(1), True, ""),
    (b"aqpgen.table", np.int64(2), False, "newer aqpgen"),
    (b"aqpgen.table", np.int64(0), False, "invalid schema_version 0"),
    (b"aqpgen.table", np.int64(-3), False, "invalid schema_version -3"),
    (b"aqpgen.table", np.float64(1.0), False, "not an integer"),
    (b"aqpgen.table", np.float64(1.5), False, "not an integer"),
    (b"aqpgen.table", b"1", False, "not an integer"),
    (b"aqpgen.table", None, False, "missing attribute 'schema_version'"),
    (b"something.else", np.int64(1), False, "'something.else'"),
    (None, np.int64(1), False, "no 'schema' attribute"),
]


def _table(path):
    params = {"m": 2}
    td = content.make_table(name="power-m2", family="power", target=power.target_name(params),
                              method="ustat", params=params, provenance={"command": "test"},
                              results=[power.build_K(K, params) for K in (3, 4)])
    tablefile.write_table(path, td)


def _set(f, key, value):
    if key in f.attrs:
        del f.attrs[key]
    if value is not None:
        f.attrs.create(key, value)


@pytest.mark.parametrize("schema, version, accepted, reason", CASES)
def test_reader_and_audit_agree(tmp_path, schema, version, accepted, reason):
    p = tmp_path / "power-m2.h5"
    _table(p)
    with h5py.File(p, "r+") as f:
        _set(f, "schema", schema)
        _set(f, "schema_version", version)
    a = audit.audit_file(p, manifest=None)
    schema_findings = [x for x in a.findings if x.check == "schema"]
    assert len(schema_findings) == 1
    if accepted:
        assert schema_findings[0].ok
        with h5py.File(p, "r") as f:
            assert tablefile.check_schema(f.attrs) == ("aqpgen.table", 1)
        # the attributes are part of the content hash: the reader then names the changed section
        try:
            tablefile.read_table(p)
        except TableFormatError as e:
            assert "content hash mismatch" in str(e) and "attrs" in str(e)
    else:
        assert not schema_findings[0].ok and reason in schema_findings[0].detail
        with pytest.raises(TableFormatError, match=reason.replace("'", ".")) as e:
            tablefile.read_table(p)
        assert str(p) in str(e.value)
