"""Rewrite the provenance of current tables into the deterministic form of ``aqpgen.build.build``.

Usage: ``python -m aqpgen.build.migrate [SPEC] [--out DIR]`` (default ``tables/tables.toml``).

Tables written before the build became reproducible recorded ``git_commit`` (often ``+dirty``),
``aqpgen_version``, a path-dependent command and the pre-refactor generator module name; a
``--force`` rebuild can then never give the committed bytes.  For every table of the spec that is
*current* (its ``inputs_hash`` matches the spec and its content hash checks, i.e. ``aqpgen build``
would skip it) this rewrites only the ``provenance`` attribute to exactly what a rebuild records
now, checks that every other section (values, values_hp, metrics, status, solver, K, offsets) is
unchanged bit for bit, and updates the manifest.  Tables that are not current are left alone and
reported.  Idempotent.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from aqpgen.build.build import current_table, generator, provenance_for
from aqpgen.build.lock import build_lock
from aqpgen.build.spec import DEFAULT_SPEC, load_spec
from aqpgen.store.content import section_hashes, to_raw
from aqpgen.store.manifest import manifest_mismatch, update_manifest
from aqpgen.store.tablefile import write_table

__all__ = ["normalise_provenance"]


def normalise_provenance(spec_path: str, out_dir: str | None = None) -> list[tuple[str, str]]:
    """Rewrite the provenance of the current tables of ``spec_path`` in ``out_dir`` (default: the
    spec's directory).  Returns ``[(name, "rewritten" | "unchanged" | "not current")]``."""
    out_dir = out_dir or os.path.dirname(os.path.abspath(spec_path))
    report = []
    with build_lock(out_dir):
        # update_manifest lists every file as it is: never run it over a file it does not record
        bad = [why for s in load_spec(spec_path) if os.path.exists(p := os.path.join(out_dir, s.filename))
               and (why := manifest_mismatch(p)) is not None]
        if bad:
            raise RuntimeError(f"refusing to migrate {out_dir}: {'; '.join(bad)}; rebuild with `aqpgen build`")
        for spec in load_spec(spec_path):
            mod = generator(spec)
            path = os.path.join(out_dir, spec.filename)
            t = current_table(spec, path, mod.GENERATOR_VERSION)
            if t is None:
                report.append((spec.name, "not current"))
                continue
            prov = provenance_for(spec, spec_path, mod)
            if t.provenance == prov:
                report.append((spec.name, "unchanged"))
                continue
            new = replace(t, provenance=prov, content_hash=None)
            old_s, new_s = section_hashes(to_raw(t)), section_hashes(to_raw(new))
            changed = sorted(k for k in old_s if old_s[k] != new_s.get(k))
            if changed != ["attrs"]:
                raise RuntimeError(f"{spec.name}: sections {changed} would change; refusing")
            write_table(path, new)
            report.append((spec.name, "rewritten"))
        update_manifest(out_dir)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aqpgen.build.migrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", nargs="?", default=DEFAULT_SPEC)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    for name, what in normalise_provenance(a.spec, a.out):
        print(f"{name}: {what}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
