"""The audit of every call to a source (bridge.sync_logs, seed 003): one row per HTTP request, retried 429s
and 5xx included, stamped with the time the request was sent.

Rows are written by a thread of their own, on a connection of their own, in COPY blocks: the load path
never waits for them, and they do not share its transactions, so a call whose batch rolls back (or whose
run fails) is still on record. What a hard kill loses is at most the last second's calls.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import psycopg
from sqlalchemy.engine import URL

from sync_pipelines.lib import db

log = logging.getLogger(__name__)

# Query parameters whose values are credentials in some source's API; their values never reach the log.
_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|signature|auth|session|code)", re.IGNORECASE)
REDACTED = "[redacted]"


def redact_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: (REDACTED if _SECRET_NAME.search(str(k)) else v) for k, v in (params or {}).items()}


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query and "@" not in parts.netloc:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # user:password@ never reaches the log either
    if not any(_SECRET_NAME.search(k) for k, _ in pairs):
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    query = urlencode([(k, REDACTED if _SECRET_NAME.search(k) else v) for k, v in pairs], safe=",:[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass
class CallRecord:
    method: str
    url: str
    status: int | None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = None
    requested_at: datetime | None = None
    params: Mapping[str, Any] | None = None
    response_bytes: int | None = None
    entity: str | None = None


@dataclass
class CallLog:
    """Buffers one client's calls and writes them to bridge.sync_logs in the background."""

    url: URL
    integration: str
    account_id: uuid.UUID | None
    flush_rows: int = 500
    flush_seconds: float = 1.0
    _buffer: list[CallRecord] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _thread: threading.Thread | None = None
    _conn: psycopg.Connection | None = None
    written: int = 0

    def record(self, call: CallRecord) -> None:
        with self._lock:
            self._buffer.append(call)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="call-log", daemon=True)
                self._thread.start()
            if len(self._buffer) >= self.flush_rows:
                self._lock.notify()

    def close(self) -> None:
        """Write what is buffered and stop the writer; safe to call twice."""
        with self._lock:
            self._closed = True
            self._lock.notify()
            thread = self._thread
        if thread is not None:
            thread.join(30)
        self._write(self._take())  # anything recorded after the writer stopped
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _take(self) -> list[CallRecord]:
        with self._lock:
            calls, self._buffer = self._buffer, []
        return calls

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._closed and len(self._buffer) < self.flush_rows:
                    self._lock.wait(self.flush_seconds)
                closed = self._closed
            self._write(self._take())
            if closed:
                return

    def _write(self, calls: list[CallRecord]) -> None:
        if not calls:
            return
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(
                    db.libpq_uri(self.url), connect_timeout=db.CONNECT_TIMEOUT_SECONDS, autocommit=True
                )
            with self._conn.cursor().copy(
                "COPY bridge.sync_logs (created_at, integration, account_id, entity_type, method, url, status_code,"
                " duration_ms, error_message, request_payload, response_payload) FROM STDIN"
            ) as copy:
                for call in calls:
                    copy.write_row(self._row(call))
            self.written += len(calls)
        except psycopg.Error as exc:
            # The audit must never fail a sync; a lost block of log rows is reported where operators look.
            log.error("could not write %d call log rows to bridge.sync_logs: %s", len(calls), exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _row(self, call: CallRecord) -> tuple:
        request = orjson.dumps({"params": redact_params(call.params)}).decode() if call.params else None
        response: dict[str, Any] = {}
        if call.response_bytes is not None:
            response["bytes"] = call.response_bytes
        if call.response_excerpt:
            response["excerpt"] = call.response_excerpt
        return (
            call.requested_at, self.integration, self.account_id, call.entity, call.method, redact_url(call.url),
            call.status, call.duration_ms, call.error, request, orjson.dumps(response).decode() if response else None,
        )  # fmt: skip
