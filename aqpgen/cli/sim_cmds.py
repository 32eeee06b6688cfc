"""CLI commands (placeholder until implemented)."""


def register(group):
    """Add this module's commands to ``group``."""
