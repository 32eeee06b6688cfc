"""Working-precision context for python-flint (the one place aqpgen changes ``flint.ctx.prec``).

flint_prec(bits) -- context manager: set python-flint's working precision to ``bits`` inside
                    the block, restore the caller's on exit (also on exceptions); yields the
                    ``flint`` module.

Precision is always an explicit argument in aqpgen (docs/ARCHITECTURE.md); nothing sets a global
precision at import time or leaves it changed.
"""

from __future__ import annotations

import contextlib

__all__ = ["flint_prec"]


@contextlib.contextmanager
def flint_prec(bits: int):
    """Temporarily set python-flint's working precision to ``bits`` (restored on exit)."""
    import flint

    old = flint.ctx.prec
    flint.ctx.prec = int(bits)
    try:
        yield flint
    finally:
        flint.ctx.prec = old
