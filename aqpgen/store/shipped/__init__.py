"""Package data: the runtime copies of the shipped tables (``<name>.h5``, without ``values_hp``).

Empty in a source checkout (the build reads and writes ``tables/``); ``pip wheel`` / ``pip
install`` fill it at build time from the committed ``tables/*.h5`` (``setup.py``, see
``aqpgen.store.wheeldata``).  ``aqpgen.store.locate`` searches it last.
"""
