"""Compatibility facade: the simulator's public names in one namespace.

``aqpgen simulate`` (``aqpgen.cli.sim_cmds``), the report and older code import
``aqpgen.game.simulate``; the code lives in ``aqpgen.game.scenarios``, ``alpha``, ``estimators``,
``meanfn``, ``dynamics`` and ``sampled`` (see ``aqpgen.game``).  Nothing is defined here.
"""

from __future__ import annotations

from aqpgen.game import *
from aqpgen.game import __all__  # noqa: F401
