"""The build: spec files, orchestration, runners, reproducibility, re-verification.

This layer sits above the generators (it imports them) and above the table format
(``aqpgen.store``).  Nothing below it imports it.  Modules: ``spec`` (the spec file, validated
whole before any solve; ``MAX_K``), ``build`` (orchestration: lock, atomic writes, manifest,
deterministic provenance), ``runner`` (in process, process pool or Dask), ``lock`` (one build per
directory), ``buildenv`` (the pinned build environment), ``diff`` (row-by-row comparison of two
builds), ``reproduce`` (rebuild in a fresh virtual environment), ``migrate`` (provenance
rewrites) and ``verify`` (re-verification by the generators' own checks).
"""
