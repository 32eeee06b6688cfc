"""The table store: file format, table locator, spec + build, verification.

Light modules (numpy + h5py, imported by the runtime): ``tablefile`` (HDF5 format, content hash,
manifest) and ``locate`` (the one table locator, ``$AQPGEN_TABLES``).  Build-side modules:
``build`` (spec file, orchestration) and ``verify`` (re-verification dispatcher).
"""
