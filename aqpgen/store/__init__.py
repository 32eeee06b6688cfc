"""The table file format: records, canonical serialisation, HDF5 files, the locator, wheel data.

The bottom layer of the build side, light enough for the runtime (numpy + h5py): ``content``
(records, canonical serialisation, content hash), ``tablefile`` (HDF5 format, manifest),
``atomic`` (the one atomic write), ``locate`` (the one table locator, ``$AQPGEN_TABLES``) and
``wheeldata`` (the runtime copies shipped as package data in ``shipped/``).  It imports nothing
above it: the build (spec, orchestration, runners, verification) lives in ``aqpgen.build``.
"""
