"""Build hook: put the runtime copies of the committed tables/*.h5 into the wheel (a pure-Python
wheel, ``py3-none-any``: nothing is compiled).

Everything else is in pyproject.toml.  ``build_py`` writes ``aqpgen/store/shipped/<name>.h5`` in
the build directory: each table without its high-precision strings, with its own content hash and
the full table's content hash recorded (aqpgen.store.wheeldata).  Editable installs skip this (a
source checkout finds tables/ directly).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildPyWithTables(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        sys.path.insert(0, HERE)
        try:
            from aqpgen.store.wheeldata import write_runtime_tables
        finally:
            sys.path.remove(HERE)
        dst = os.path.join(self.build_lib, "aqpgen", "store", "shipped")
        if os.path.isdir(dst):  # a reused build/ directory must not ship copies of removed tables
            for fn in os.listdir(dst):
                if fn.endswith(".h5"):
                    os.remove(os.path.join(dst, fn))
        for name, full, copy in write_runtime_tables(os.path.join(HERE, "tables"), dst):
            print(f"runtime copy {name}.h5: content hash {copy[:16]} (full table {full[:16]})")


setup(cmdclass={"build_py": BuildPyWithTables})
