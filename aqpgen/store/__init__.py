"""The table store: file format, table locator, spec + build, verification, the wheel's tables.

Light modules (numpy + h5py, imported by the runtime): ``content`` (records, canonical
serialisation, content hash), ``tablefile`` (HDF5 format, manifest), ``atomic`` (the one atomic
write), ``locate`` (the one table locator, ``$AQPGEN_TABLES``) and ``wheeldata`` (the runtime
copies shipped as package data in ``shipped/``).  Build-side modules: ``spec`` (the spec file,
validated whole before any solve; ``MAX_K``), ``build`` (orchestration), ``runner`` (in process,
process pool or Dask), ``lock`` (one build per directory) and ``verify`` (re-verification).
"""
