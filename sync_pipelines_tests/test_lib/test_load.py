"""The load path's own COPY into staging keeps every record byte for byte, whatever its text holds."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.entities import SPECS
from sync_pipelines.lib import accounts, db, mappings
from sync_pipelines.lib.load import LoadContext, Staged, load_batch

PEOPLE = SPECS["people"]

AWKWARD = [
    {
        "id": 1,
        "created": "2024-01-02T03:04:05Z",
        "updated": "2024-03-01T00:00:00Z",
        "firstName": 'back\\slash "quoted" \\n not a newline',
    },
    {
        "id": 2,
        "created": "2024-01-02T03:04:05Z",
        "updated": "2024-03-01T00:00:00Z",
        "firstName": "tab\there\nnewline\rreturn",
        "tags": ["a\tb"],
    },
    {
        "id": 3,
        "created": "2024-02-02T03:04:05Z",
        "updated": "2024-03-01T00:00:00Z",
        "firstName": "Zoë Łukasz 北京 🏠",
        "lastName": "\\\\",
    },
    {"id": "4\tfour\\", "created": "2024\t02-02", "firstName": "an id and a month with a tab and a backslash"},
    {"id": 5, "created": None, "firstName": None, "emails": [{"value": "a\\b@example.com"}]},
]


def test_staging_holds_each_record_exactly_with_the_hash_of_its_bytes(database_url: URL) -> None:
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        mappings.seed_defaults(conn, "fub", "people", PEOPLE.mappings)
    account = accounts.upsert_account(engine, "fub", "acme", {"api_key": "k"})
    with db.raw_connection(database_url, autocommit=True) as conn:
        batch_id, counts = load_batch(conn, PEOPLE, LoadContext("fub", account.id, registry=SPECS), AWKWARD)
    assert counts.fetched == len(AWKWARD)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT source_id, period_key, raw, _raw_hash FROM staging.fub_people WHERE _batch_id = :b "
                    "ORDER BY _row_id"),
            {"b": batch_id},
        ).all()  # fmt: skip
    assert [row.raw for row in rows] == AWKWARD
    assert [row.source_id for row in rows] == ["1", "2", "3", "4\tfour\\", "5"]
    assert [row.period_key for row in rows] == ["2024-01", "2024-01", "2024-02", "2024\t02", None]
    assert [row._raw_hash for row in rows] == [hashlib.md5(orjson.dumps(r)).hexdigest() for r in AWKWARD]
    # The two without a valid creation time went to the DLQ, each with its raw record from staging.
    with engine.connect() as conn:
        failed = conn.execute(sa.text("SELECT raw_data FROM bridge.failed_records ORDER BY source_id")).scalars().all()
    assert counts.failed == 2 and failed == [AWKWARD[3], AWKWARD[4]]


def test_records_without_a_readable_id_are_counted_whoever_staged_them(database_url: URL) -> None:
    # The count that keeps a complete read from soft-deleting (load.soft_delete_missing): from the COPY here, or
    # from what a stager put into staging when it does not say.
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        mappings.seed_defaults(conn, "fub", "people", PEOPLE.mappings)
    account = accounts.upsert_account(engine, "fub", "acme", {"api_key": "k"})
    records = [*AWKWARD[:3], {"created": "2024-01-02T03:04:05Z", "firstName": "no id"}]
    ctx = LoadContext("fub", account.id, registry=SPECS)

    def stager(conn: Any, batch_id: Any) -> Staged:
        with conn.cursor().copy("COPY staging.fub_people (_batch_id, account_id, source_id, raw) FROM STDIN") as copy:
            for record in records:
                source_id = str(record["id"]) if "id" in record else None
                copy.write_row((batch_id, account.id, source_id, orjson.dumps(record).decode()))
        return Staged(rows=len(records))  # says nothing of ids

    with db.raw_connection(database_url, autocommit=True) as conn:
        _, copied = load_batch(conn, PEOPLE, ctx, records)
        _, relayed = load_batch(conn, PEOPLE, ctx, (), stager=stager)
    assert copied.without_id == relayed.without_id == 1
