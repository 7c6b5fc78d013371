"""Errors an operator can fix, reported as one line (the CLI exits 2 with it, never a traceback)."""

from __future__ import annotations


class OperatorError(ValueError):
    """A value an operator gave (an integration, account, period, entity or id) that cannot be used; the message
    names the value and what was expected."""
