"""SIGINT and SIGTERM for long-running commands: stop at the last commit, say so, exit 128 + the signal.

While a Dagster run executes in-process, Dagster replaces the handlers: inside a step it raises its own
interrupt error (which a step's RetryPolicy turns into a retry unless the step converts it into a
`Failure(allow_retries=False)`), elsewhere in the run it records the signal and forgets it once the run ends.
So besides the handlers, the signal number is written to a wakeup socket (`signal.set_wakeup_fd`, done by
the interpreter for every handled signal, whichever Python handler is installed), and `received()` reads it
afterwards: a command learns of an interrupt Dagster swallowed.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# What an interrupted load leaves behind: every batch commits with its cursor (lib/load.py, lib/sync.py).
STOPPED_AT_LAST_COMMIT = "stopped at the last committed batch; rerun to resume"
F = TypeVar("F", bound=Callable[..., Any])

_reader: socket.socket | None = None
_writer: socket.socket | None = None
_received: int | None = None


class Interrupted(KeyboardInterrupt):
    """An operator's SIGINT or SIGTERM; a KeyboardInterrupt, so `except Exception` never swallows it and
    psycopg cancels the statement in flight before the transaction rolls back."""

    def __init__(self, signum: int, detail: str = "") -> None:
        self.signum = signum
        self.detail = detail
        super().__init__(f"interrupted by {signal.Signals(signum).name}" + (f": {detail}" if detail else ""))

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, _frame: FrameType | None) -> None:
    _note(signum)
    raise Interrupted(signum)


def _note(signum: int) -> None:
    # No lock: this also runs inside the signal handler, on the main thread, possibly while the main thread
    # is itself in here; the first signal wins, and a plain assignment is atomic.
    global _received
    if _received is None and signum in STOP_SIGNALS:
        _received = signum


def install() -> None:
    """Handlers and wakeup socket; call once from the main thread at the start of a command."""
    global _reader, _writer
    for signum in STOP_SIGNALS:
        signal.signal(signum, _handler)
    if _reader is None:
        _reader, _writer = socket.socketpair()
        _reader.setblocking(False)
        _writer.setblocking(False)
        signal.set_wakeup_fd(_writer.fileno(), warn_on_full_buffer=False)


def received() -> int | None:
    """The first SIGINT/SIGTERM this process received since `install()`, or None."""
    if _reader is not None:
        while True:
            try:
                data = _reader.recv(512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            for signum in data:
                _note(signum)
    return _received


def check(detail: str = "") -> None:
    """Raise Interrupted if a stop signal has been received (for checkpoints between units of work)."""
    signum = received()
    if signum is not None:
        raise Interrupted(signum, detail)


def exit_on_interrupt(detail: str) -> Callable[[F], F]:
    """Decorate a command: install the handlers; an interrupt, raised or swallowed on the way, ends the command
    with one line on stderr ("interrupted by SIGTERM: <detail>") and exit code 128 + the signal."""

    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            install()
            try:
                result = fn(*args, **kwargs)
            except KeyboardInterrupt as exc:
                signum = exc.signum if isinstance(exc, Interrupted) else (received() or signal.SIGINT)
                _stop(signum, detail)
            except SystemExit:
                # A command that ends with its own exit code after an interrupt Dagster swallowed.
                signum = received()
                if signum is None:
                    raise
                _stop(signum, detail)
            signum = received()
            if signum is not None:
                _stop(signum, detail)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _stop(signum: int, detail: str) -> None:
    sys.stderr.write(f"{Interrupted(signum, detail)}\n")
    sys.stderr.flush()
    sys.exit(128 + signum)
