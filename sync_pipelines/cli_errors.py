"""The one place the command line turns known operator errors into one clear line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from sync_pipelines.lib import db
from sync_pipelines.lib.errors import OperatorError

KNOWN: tuple[type[BaseException], ...] = (db.DatabaseUnreachable, db.ConfigError, OperatorError)


def fail_cleanly(*also: type[BaseException]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Known operator errors (and `also`) are one clear line on stderr and exit code 2, never a traceback."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (*KNOWN, *also) as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)

        return wrapper

    return decorate
