"""The webhook queue on real Postgres, and every signature scheme against independent signers."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy.engine import URL

from sync_pipelines.lib import accounts, db, webhooks


@pytest.fixture
def account_id(database_url: URL) -> uuid.UUID:
    return accounts.upsert_account(db.get_engine(database_url), "fub", "acme", {"api_key": "k"}).id


def _conn(url: URL, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(db.libpq_uri(url), autocommit=autocommit)


def _enqueue(conn: psycopg.Connection, account_id: uuid.UUID, event_id: str, **kw: object) -> bool:
    payload = kw.pop("payload", {"eventId": event_id, "event": "peopleUpdated", "resourceIds": [1]})
    return webhooks.enqueue(conn, "fub", account_id, event_id, "peopleUpdated", "people:1", payload, **kw)  # type: ignore[arg-type]


def _row(conn: psycopg.Connection, event_id: str) -> dict:
    cur = conn.execute(
        "SELECT status, attempts, next_attempt_at - now(), last_error, headers, claimed_by "
        "FROM bridge.webhook_events WHERE event_id = %s",
        (event_id,),
    )
    status, attempts, wait, error, headers, claimed = cur.fetchone()
    return {"status": status, "attempts": attempts, "wait": wait, "error": error, "headers": headers,
            "claimed_by": claimed}  # fmt: skip


def test_enqueue_stores_an_event_once_and_drops_secret_headers(database_url: URL, account_id: uuid.UUID) -> None:
    with _conn(database_url) as conn:
        headers = {"FUB-Signature": "abc", "Authorization": "Basic x", "Content-Type": "application/json",
                   "User-Agent": "FUB", "X-System-Key": "s", "Cookie": "c"}  # fmt: skip
        assert _enqueue(conn, account_id, "e1", headers=headers) is True
        assert _enqueue(conn, account_id, "e1", headers=headers) is False
        assert conn.execute("SELECT count(*) FROM bridge.webhook_events").fetchone()[0] == 1
        assert _row(conn, "e1")["headers"] == {"content-type": "application/json", "user-agent": "FUB"}
        # The same event id under another integration is another event.
        assert webhooks.enqueue(conn, "stripe", account_id, "e1", "x", None, b'{"id": "e1"}') is True


def test_claim_takes_ready_events_oldest_first_and_skips_rows_locked_by_another_claimer(
    database_url: URL, account_id: uuid.UUID
) -> None:
    with _conn(database_url) as conn:
        for n in range(6):
            _enqueue(conn, account_id, f"e{n}")
        conn.execute("UPDATE bridge.webhook_events SET next_attempt_at = now() + interval '1 hour' "
                     "WHERE event_id = 'e5'")  # fmt: skip
    holder = _conn(database_url, autocommit=False)
    try:
        first = webhooks.claim_batch(holder, "fub", 2, "claim-a")  # not committed: rows stay locked
        assert [e.event_id for e in first] == ["e0", "e1"]
        with _conn(database_url, autocommit=False) as other:
            second = webhooks.claim_batch(other, "fub", 10, "claim-b")
            other.commit()
        assert [e.event_id for e in second] == ["e2", "e3", "e4"]  # e5 is not due; e0, e1 are locked
        holder.commit()
    finally:
        holder.close()
    with _conn(database_url) as conn:
        assert _row(conn, "e0")["claimed_by"] == "claim-a" and _row(conn, "e0")["attempts"] == 1
        assert webhooks.claim_batch(conn, "fub", 10, "claim-c") == []


def test_concurrent_claimers_never_take_the_same_event(database_url: URL, account_id: uuid.UUID) -> None:
    with _conn(database_url) as conn:
        for n in range(200):
            _enqueue(conn, account_id, f"e{n}")
    taken: list[list[str]] = [[] for _ in range(4)]

    def claimer(slot: int) -> None:
        with _conn(database_url, autocommit=False) as conn:
            while True:
                batch = webhooks.claim_batch(conn, "fub", 7, f"claim-{slot}")
                conn.commit()
                if not batch:
                    return
                taken[slot].extend(e.event_id for e in batch)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [e for part in taken for e in part]
    assert sorted(everything) == sorted(f"e{n}" for n in range(200))


def test_fail_backs_off_exponentially_with_jitter_capped_then_dead_with_the_reason(
    database_url: URL, account_id: uuid.UUID
) -> None:
    with _conn(database_url) as conn:
        _enqueue(conn, account_id, "e1")
        conn.execute("UPDATE bridge.webhook_events SET max_attempts = 10")
        waits = []
        for attempt in range(1, 11):
            conn.execute("UPDATE bridge.webhook_events SET next_attempt_at = now()")
            claimed = webhooks.claim_batch(conn, "fub", 10, f"c{attempt}")
            assert [e.attempts for e in claimed] == [attempt]
            outcome = webhooks.fail(conn, [claimed[0].id], f"boom {attempt}", f"c{attempt}")
            row = _row(conn, "e1")
            if attempt < 10:
                assert outcome == {"failed": 1, "dead": 0} and row["status"] == "failed"
                waits.append(row["wait"].total_seconds())
            else:
                assert outcome == {"failed": 0, "dead": 1}
                assert row["status"] == "dead" and row["error"] == "boom 10"
        for attempt, wait in enumerate(waits, start=1):
            low = min(300.0, 2.0 * 2 ** (attempt - 1))
            assert low - 1 <= wait <= min(300.0, low + 2.0) + 1, (attempt, wait)
        assert waits[-1] == pytest.approx(300, abs=1)  # capped at 5 minutes
        # A failed event is not claimed before it is due; a dead one never.
        assert webhooks.claim_batch(conn, "fub", 10, "late") == []


def test_fail_and_complete_touch_only_what_the_claim_holds(database_url: URL, account_id: uuid.UUID) -> None:
    with _conn(database_url) as conn:
        _enqueue(conn, account_id, "e1")
        (event,) = webhooks.claim_batch(conn, "fub", 10, "mine")
        assert webhooks.complete(conn, [event.id], "someone-else") == 0
        assert webhooks.fail(conn, [event.id], "x", "someone-else") == {"failed": 0, "dead": 0}
        assert webhooks.complete(conn, [event.id], "mine") == 1
        assert _row(conn, "e1")["status"] == "completed"
        assert webhooks.acquire(conn, [event.id], "mine") == []  # done: nothing to take back


def test_acquire_takes_back_a_failed_batch_for_a_rerun_unless_another_claim_has_it(
    database_url: URL, account_id: uuid.UUID
) -> None:
    with _conn(database_url) as conn:
        _enqueue(conn, account_id, "e1")
        _enqueue(conn, account_id, "e2")
        batch = webhooks.claim_batch(conn, "fub", 10, "run-1")
        webhooks.fail(conn, [e.id for e in batch], "api down", "run-1")
        conn.execute("UPDATE bridge.webhook_events SET next_attempt_at = now() WHERE event_id = 'e2'")
        webhooks.claim_batch(conn, "fub", 10, "run-2")  # takes e2 only (e1 is not due yet)
        again = webhooks.acquire(conn, [e.id for e in batch], "run-1")
        assert [e.event_id for e in again] == ["e1"] and again[0].attempts == 2
        assert _row(conn, "e1")["status"] == "in_progress"


def test_a_stale_claim_is_taken_again_after_the_lease(database_url: URL, account_id: uuid.UUID) -> None:
    with _conn(database_url) as conn:
        _enqueue(conn, account_id, "e1")
        webhooks.claim_batch(conn, "fub", 10, "crashed-run")
        assert webhooks.claim_batch(conn, "fub", 10, "next") == []
        conn.execute("UPDATE bridge.webhook_events SET claimed_at = now() - interval '11 minutes'")
        (event,) = webhooks.claim_batch(conn, "fub", 10, "next")
        assert event.claimed_by == "next" and event.attempts == 2


def test_replay_by_id_and_since_requeues_dead_and_done_events(database_url: URL, account_id: uuid.UUID) -> None:
    with _conn(database_url) as conn:
        for n in range(4):
            _enqueue(conn, account_id, f"e{n}")
        claimed = {e.event_id: e for e in webhooks.claim_batch(conn, "fub", 10, "c")}
        conn.execute("UPDATE bridge.webhook_events SET max_attempts = 1")
        webhooks.fail(conn, [claimed["e0"].id], "gone", "c")
        webhooks.complete(conn, [claimed["e1"].id, claimed["e2"].id], "c")
        assert webhooks.counts_by_status(conn, "fub") == {"dead": 1, "completed": 2, "in_progress": 1}
        assert webhooks.replay(conn, ids=[claimed["e0"].id]) == 1
        row = _row(conn, "e0")
        assert row["status"] == "pending" and row["attempts"] == 0 and row["error"] is None
        conn.execute("UPDATE bridge.webhook_events SET received_at = now() - interval '2 days' WHERE event_id='e1'")
        assert webhooks.replay(conn, since=datetime.now(UTC) - timedelta(days=1)) == 1  # e2 only; e3 is in flight
        assert _row(conn, "e1")["status"] == "completed" and _row(conn, "e2")["status"] == "pending"
        with pytest.raises(ValueError):
            webhooks.replay(conn)


# -- signatures, each computed here independently ----------------------------------------------

BODY = b'{"eventId":"abc","event":"peopleUpdated","resourceIds":[5]}'


def test_enqueue_many_stores_each_event_once_even_when_repeated_inside_the_batch(
    database_url: URL, account_id: uuid.UUID
) -> None:
    def row(event_id: str) -> tuple:
        return webhooks.insert_params("fub", account_id, event_id, "peopleUpdated", None, {"id": event_id},
                                      {"FUB-Signature": "x"})  # fmt: skip

    with _conn(database_url) as conn:
        _enqueue(conn, account_id, "old")
        flags = webhooks.enqueue_many(conn, [row("a"), row("old"), row("b"), row("a")])
        assert flags == [True, False, True, False]
        assert webhooks.enqueue_many(conn, []) == []
        ids = [r[0] for r in conn.execute("SELECT event_id FROM bridge.webhook_events ORDER BY event_id")]
        assert ids == ["a", "b", "old"]
        assert _row(conn, "a")["headers"] == {}
