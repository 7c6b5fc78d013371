"""The load path's own COPY into staging keeps every record byte for byte, whatever its text holds."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.entities import SPECS
from sync_pipelines.lib import accounts, db, load, mappings
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


def _person(source_id: int, first_name: str, *, price: object = 1, updated: str = "2024-03-01T00:00:00Z") -> dict:
    return {"id": source_id, "created": "2024-01-02T03:04:05Z", "updated": updated, "firstName": first_name,
            "price": price}  # fmt: skip


@pytest.mark.parametrize("repeat_an_id", [False, True], ids=["one-statement", "temp-tables"])
def test_a_batch_queues_refreshes_loads_and_resolves_the_same_whether_or_not_an_id_repeats(
    database_url: URL, repeat_an_id: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch in which no id repeats goes from staging to core in one statement; one with a repeated id goes
    # through the temp tables that dedupe it. Both must leave the DLQ, core and the audit log the same.
    in_one_statement: list[int] = []
    real = load._load_in_one_statement

    def counted(*args: Any, **kwargs: Any) -> None:
        in_one_statement.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(load, "_load_in_one_statement", counted)
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        mappings.seed_defaults(conn, "fub", "people", PEOPLE.mappings)
    account = accounts.upsert_account(engine, "fub", "acme", {"api_key": "k"})
    ctx = LoadContext("fub", account.id, registry=SPECS)
    first = [_person(1, "Ann", price="not a number"), _person(2, "Bo", price="nan-ish"), _person(3, "Cy")]
    second = [_person(1, "Ann"), _person(2, "Bo", price="still bad"), _person(3, "Cy"), _person(4, "Di", price="x")]
    if repeat_an_id:
        second.append(_person(3, "Cy"))  # the same version again: nothing changes but the path it takes
    with db.raw_connection(database_url, autocommit=True) as conn:
        first_batch, before = load_batch(conn, PEOPLE, ctx, first)
        second_batch, after = load_batch(conn, PEOPLE, ctx, second)
    assert len(in_one_statement) == (1 if repeat_an_id else 2)  # the first batch has no repeated id either way
    assert (before.inserted, before.failed) == (1, 2)
    assert (after.inserted, after.updated, after.unchanged, after.failed, after.dlq_resolved) == (1, 0, 1, 2, 1)
    with engine.connect() as conn:
        dlq = conn.execute(
            sa.text("SELECT source_id, batch_id, status, resolution, raw_data, normalized_data, error_message "
                    "FROM bridge.failed_records ORDER BY source_id, created_at")
        ).all()  # fmt: skip
        core = conn.execute(sa.text("SELECT source_id, price FROM core.fub_people ORDER BY source_id")).all()
        audit = conn.execute(
            sa.text("SELECT source_id, action, batch_id FROM bridge.audit_log ORDER BY source_id, action")
        ).all()
    by_id = {row.source_id: row for row in dlq}
    assert [row.source_id for row in dlq] == ["1", "2", "4"]  # one row per record: 2's was refreshed, not added
    assert (by_id["1"].status, by_id["1"].resolution) == ("resolved", f"loaded cleanly by batch {second_batch}")
    assert (by_id["2"].status, by_id["2"].batch_id) == ("pending", second_batch)
    assert by_id["2"].raw_data == second[1] and by_id["2"].normalized_data["first_name"] == "Bo"
    assert "price" in by_id["2"].error_message and "price" in by_id["4"].error_message
    assert by_id["4"].raw_data == second[3] and by_id["4"].batch_id == second_batch
    assert [(row.source_id, row.price) for row in core] == [("1", 1), ("3", 1)]
    assert [(row.source_id, row.action, row.batch_id) for row in audit] == [
        ("1", "CREATE", second_batch),
        ("3", "CREATE", first_batch),
    ]


@pytest.mark.parametrize("repeat_an_id", [False, True], ids=["one-statement", "temp-tables"])
def test_a_batch_expected_to_hold_new_keys_that_meets_one_core_has_is_upserted_all_the_same(
    database_url: URL, repeat_an_id: bool
) -> None:
    # A first read tries a plain INSERT (ctx.insert_first); a key core already has (a webhook got there first)
    # rolls it back and the batch upserts, and the table upserts for the rest of the run.
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        mappings.seed_defaults(conn, "fub", "people", PEOPLE.mappings)
    account = accounts.upsert_account(engine, "fub", "acme", {"api_key": "k"})
    ctx = LoadContext("fub", account.id, registry=SPECS)
    core = PEOPLE.core.fullname

    def batch(*records: dict) -> list[dict]:
        return [*records, records[-1]] if repeat_an_id else list(records)

    later = "2024-04-01T00:00:00Z"
    with db.raw_connection(database_url, autocommit=True) as conn:
        load_batch(conn, PEOPLE, ctx, batch(_person(1, "Ann"), _person(2, "Bo")))
        ctx.insert_first.add(core)
        _, new = load_batch(conn, PEOPLE, ctx, batch(_person(3, "Cy"), _person(4, "Di")))
        assert ctx.insert_first == {core}  # no key of that batch was in core: the plain INSERT held
        _, met = load_batch(conn, PEOPLE, ctx, batch(_person(2, "Bea", updated=later), _person(5, "Ed")))
        assert ctx.insert_first == set()
    assert (new.inserted, new.updated) == (2, 0)
    assert (met.inserted, met.updated) == (1, 1)
    with engine.connect() as conn:
        core_rows = conn.execute(sa.text("SELECT source_id, first_name FROM core.fub_people ORDER BY source_id")).all()
        audit = conn.execute(
            sa.text(
                "SELECT action, old_value ->> 'first_name' FROM bridge.audit_log WHERE source_id = '2' ORDER BY action"
            )
        ).all()
    assert [tuple(row) for row in core_rows] == [("1", "Ann"), ("2", "Bea"), ("3", "Cy"), ("4", "Di"), ("5", "Ed")]
    assert [tuple(row) for row in audit] == [("CREATE", None), ("UPDATE", "Bo")]
