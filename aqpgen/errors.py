"""Exception classes of aqpgen.

AqpgenError          -- base class.
ConvergenceError     -- an iterative solver did not converge; carries the numbers.
TableFormatError     -- a table file is corrupted, tampered with, or of an unknown schema.
InfeasibleError      -- a program has no feasible point (e.g. a preset out of reach at some K).
"""

__all__ = ["AqpgenError", "ConvergenceError", "InfeasibleError", "TableFormatError"]


class AqpgenError(Exception):
    """Base class of every aqpgen error."""


class ConvergenceError(AqpgenError, RuntimeError):
    """An iterative method stopped without meeting its stopping rule.

    The message states achieved versus required accuracy; ``info`` holds the numbers.
    """

    def __init__(self, message: str, info: dict | None = None):
        super().__init__(message)
        self.info = dict(info or {})


class TableFormatError(AqpgenError, ValueError):
    """A table file fails its schema, hash or manifest checks."""


class InfeasibleError(AqpgenError, ValueError):
    """A convex program is infeasible or out of numerical reach."""
