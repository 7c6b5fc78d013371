"""The webhook queue in bridge.webhook_events, and how each source signs what it sends us.

Life of an event:

    receiver: verify signature -> enqueue (pending; a duplicate event id is stored once)
    sensor:   claim_batch (FOR UPDATE SKIP LOCKED; pending, failed-and-due, or a stale claim) -> in_progress
    run:      acquire (still ours?) -> fetch + load -> complete | fail (backoff with jitter, then dead)
    operator: replay (dead or completed -> pending)

Nothing here knows an integration's payloads beyond its signature scheme; secrets are never logged.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
# A claim older than this whose run never finished (daemon or run killed) is taken again.
CLAIM_LEASE_SECONDS = 600

_COLUMNS = (
    "id, integration, account_id, event_id, event_type, resource_key, payload, status, attempts, max_attempts,"
    " last_error, claimed_by, received_at"
)

INSERT_SQL = """
    INSERT INTO bridge.webhook_events (integration, account_id, event_id, event_type, resource_key, payload, headers)
    VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)
    ON CONFLICT (integration, event_id) DO NOTHING
    RETURNING id
"""

# Many events in one statement (the receiver's group commit); a duplicate event id, also one repeated inside
# the batch, is skipped and not returned. The arrays travel in binary (%b): in text format psycopg quotes every
# element and backslash-escapes each `"` of the JSON with a regex, ~120 µs per event, against ~4 µs in binary
# (the JSON arrives as text[] and the server casts it).
INSERT_MANY_SQL = """
    INSERT INTO bridge.webhook_events (integration, account_id, event_id, event_type, resource_key, payload, headers)
    SELECT * FROM unnest(%b::text[], %b::uuid[], %b::text[], %b::text[], %b::text[], %b::jsonb[], %b::jsonb[])
    ON CONFLICT (integration, event_id) DO NOTHING
    RETURNING integration, event_id
"""


def insert_many_params(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows of `insert_params` as the column arrays INSERT_MANY_SQL takes."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(7)]


def new_flags(rows: Sequence[Sequence[Any]], returned: Iterable[tuple[str, str]]) -> list[bool]:
    """Which of `rows` were stored by INSERT_MANY_SQL: the first of each returned (integration, event_id)."""
    fresh = set(returned)
    flags = []
    for row in rows:
        key = (row[0], row[2])
        flags.append(key in fresh)
        fresh.discard(key)
    return flags


@dataclass(frozen=True)
class WebhookEvent:
    id: uuid.UUID
    integration: str
    account_id: uuid.UUID
    event_id: str
    event_type: str | None
    resource_key: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    claimed_by: str | None
    received_at: datetime


def _event(row: Sequence[Any]) -> WebhookEvent:
    return WebhookEvent(*row)


def _json_text(value: bytes | str | Mapping[str, Any]) -> str:
    if isinstance(value, bytes):
        text = value.decode()
    elif isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value).decode()
    # jsonb refuses \u0000; the event stays, the NUL goes (as the load path does for records).
    return text.replace("\\u0000", "") if "\\u0000" in text else text


def insert_params(
    integration: str,
    account_id: uuid.UUID,
    event_id: str,
    event_type: str | None,
    resource_key: str | None,
    payload: bytes | str | Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> tuple[Any, ...]:
    return (
        integration,
        account_id,
        event_id,
        event_type,
        resource_key,
        _json_text(payload),
        orjson.dumps(sanitize_headers(headers or {})).decode(),
    )


def enqueue(
    conn: psycopg.Connection,
    integration: str,
    account_id: uuid.UUID,
    event_id: str,
    event_type: str | None,
    resource_key: str | None,
    payload: bytes | str | Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Store an event as pending; False when this integration already has that event id (stored once).
    The caller commits (or uses an autocommit connection)."""
    params = insert_params(integration, account_id, event_id, event_type, resource_key, payload, headers)
    return conn.execute(INSERT_SQL, params).fetchone() is not None


def enqueue_many(conn: psycopg.Connection, rows: Sequence[Sequence[Any]]) -> list[bool]:
    """Store many events (rows of `insert_params`) in one statement; per row, whether it was new."""
    returned = conn.execute(INSERT_MANY_SQL, insert_many_params(rows)).fetchall()
    return new_flags(rows, [(r[0], r[1]) for r in returned])


def claim_batch(
    conn: psycopg.Connection,
    integration: str,
    limit: int,
    claimed_by: str,
    *,
    lease_seconds: int = CLAIM_LEASE_SECONDS,
) -> list[WebhookEvent]:
    """Take up to `limit` ready events (pending, failed and due, or claimed longer than the lease ago), oldest
    first, skipping rows another claimer holds. Each claim counts as an attempt. The caller commits."""
    rows = conn.execute(
        f"""
        WITH ready AS (
            SELECT id FROM bridge.webhook_events
            WHERE integration = %(integration)s
              AND ((status IN ('pending', 'failed') AND next_attempt_at <= now())
                   OR (status = 'in_progress' AND claimed_at < now() - make_interval(secs => %(lease)s)))
            ORDER BY next_attempt_at, received_at, id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE bridge.webhook_events e
        SET status = 'in_progress', claimed_by = %(claimed_by)s, claimed_at = now(), attempts = e.attempts + 1
        FROM ready WHERE e.id = ready.id
        RETURNING {", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))}
        """,
        {"integration": integration, "limit": limit, "claimed_by": claimed_by, "lease": lease_seconds},
    ).fetchall()
    return sorted((_event(r) for r in rows), key=lambda e: (e.received_at, e.id))


def acquire(conn: psycopg.Connection, ids: Iterable[uuid.UUID | str], claimed_by: str) -> list[WebhookEvent]:
    """The events of `ids` this claim still owns, marked in progress again. A rerun of a failed run takes its
    failed events back (one more attempt); events another claim has taken since, or completed, are not
    returned. The caller commits."""
    rows = conn.execute(
        f"""
        UPDATE bridge.webhook_events
        SET attempts = attempts + CASE WHEN status = 'failed' THEN 1 ELSE 0 END,
            status = 'in_progress', claimed_at = now()
        WHERE id = ANY(%s) AND claimed_by = %s AND status IN ('in_progress', 'failed')
        RETURNING {_COLUMNS}
        """,
        ([uuid.UUID(str(i)) for i in ids], claimed_by),
    ).fetchall()
    return sorted((_event(r) for r in rows), key=lambda e: (e.received_at, e.id))


def complete(conn: psycopg.Connection, ids: Iterable[uuid.UUID | str], claimed_by: str | None = None) -> int:
    """Mark events done. With `claimed_by`, only those this claim still holds. The caller commits."""
    query = (
        "UPDATE bridge.webhook_events SET status = 'completed', processed_at = now(), last_error = NULL "
        "WHERE id = ANY(%s) AND status = 'in_progress'"
    )
    params: list[Any] = [[uuid.UUID(str(i)) for i in ids]]
    if claimed_by is not None:
        query += " AND claimed_by = %s"
        params.append(claimed_by)
    return conn.execute(query, params).rowcount


def fail(
    conn: psycopg.Connection,
    ids: Iterable[uuid.UUID | str],
    error: str,
    claimed_by: str | None = None,
    *,
    base_seconds: float = BACKOFF_BASE_SECONDS,
    cap_seconds: float = BACKOFF_CAP_SECONDS,
) -> dict[str, int]:
    """A failed attempt: retry after base * 2^(attempts-1) plus up to `base` of jitter, at most `cap` seconds;
    once attempts reach max_attempts the event is dead with the reason. Returns counts per new status."""
    query = """
        UPDATE bridge.webhook_events
        SET status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
            last_error = %(error)s,
            next_attempt_at = now() + make_interval(
                secs => LEAST(%(cap)s, %(base)s * power(2, GREATEST(attempts - 1, 0)) + random() * %(base)s))
        WHERE id = ANY(%(ids)s) AND status = 'in_progress'
    """
    params: dict[str, Any] = {
        "ids": [uuid.UUID(str(i)) for i in ids],
        "error": error[:4000],
        "cap": cap_seconds,
        "base": base_seconds,
    }
    if claimed_by is not None:
        query += " AND claimed_by = %(claimed_by)s"
        params["claimed_by"] = claimed_by
    rows = conn.execute(query + " RETURNING status", params).fetchall()
    counts = {"failed": 0, "dead": 0}
    for (status,) in rows:
        counts[status] += 1
    return counts


def replay(
    conn: psycopg.Connection,
    ids: Iterable[uuid.UUID | str] | None = None,
    since: datetime | None = None,
    integration: str | None = None,
    statuses: Sequence[str] = ("dead", "completed"),
) -> int:
    """Queue dead or done events again (by id, or received since a time): pending, attempts reset.
    Events in flight are left alone. The caller commits."""
    id_list = [uuid.UUID(str(i)) for i in ids or []]
    if not id_list and since is None:
        raise ValueError("replay needs event ids or a time to replay from")
    where = ["status = ANY(%(statuses)s)"]
    params: dict[str, Any] = {"statuses": list(statuses)}
    if id_list:
        where.append("id = ANY(%(ids)s)")
        params["ids"] = id_list
    if since is not None:
        where.append("received_at >= %(since)s")
        params["since"] = since
    if integration:
        where.append("integration = %(integration)s")
        params["integration"] = integration
    return conn.execute(
        "UPDATE bridge.webhook_events SET status = 'pending', attempts = 0, next_attempt_at = now(), "
        "last_error = NULL, claimed_by = NULL, claimed_at = NULL, processed_at = NULL "
        f"WHERE {' AND '.join(where)}",
        params,
    ).rowcount


def counts_by_status(conn: psycopg.Connection, integration: str | None = None) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) FROM bridge.webhook_events WHERE %(i)s::text IS NULL OR integration = %(i)s "
        "GROUP BY status",
        {"i": integration},
    ).fetchall()
    return {status: int(n) for status, n in rows}


# ----------------------------------------------------------------------------------------------
# Headers and signatures
# ----------------------------------------------------------------------------------------------

_SECRET_HEADER_PARTS = ("signature", "authorization", "cookie", "secret", "token", "api-key", "apikey", "x-system-key")


@functools.lru_cache(maxsize=1024)
def _kept_name(name: str) -> str | None:
    """The lower-cased header name, or None for one that may carry a secret. Cached: senders repeat the same
    few names on every delivery."""
    lowered = name.lower()
    return None if any(part in lowered for part in _SECRET_HEADER_PARTS) else lowered


def sanitize_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers worth keeping with an event, lower-cased; signatures, credentials and cookies dropped."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = _kept_name(name)
        if lowered is not None:
            kept[lowered] = value
    return kept


def body_hash(body: bytes) -> str:
    """The dedupe key of an event that carries no id of its own."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value, its name matched case-insensitively; empty when absent."""
    return _header(headers, name)


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    return ""
