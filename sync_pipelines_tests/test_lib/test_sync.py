"""run_pages on two connections: batches overlap, yet each commits alone and in order with its cursor."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from sync_pipelines.defs.fub.entities import SPECS
from sync_pipelines.lib import accounts, db, mappings
from sync_pipelines.lib.load import LoadContext, read_cursor
from sync_pipelines.lib.sync import Page, run_pages
from sync_pipelines.sandbox.app import Sandbox
from sync_pipelines.sandbox.base import dumps

PEOPLE = SPECS["people"]
PAGE_SIZE = 50
BATCH_SIZE = 100  # two pages per batch


def _people(count: int) -> list[dict]:
    table = Sandbox(seed=5, scale=count, sources=["fub"])["fub"].accounts["acme"].tables["people"]
    return [orjson.loads(dumps(record)) for record in table.get_many(list(range(1, count + 1)))]


def _pages(records: list[dict]) -> list[Page]:
    return [
        Page(records[i : i + PAGE_SIZE], cursor=f"page-{i // PAGE_SIZE}") for i in range(0, len(records), PAGE_SIZE)
    ]


@pytest.fixture
def lanes(database_url: URL) -> Iterator[tuple[psycopg.Connection, psycopg.Connection, LoadContext, sa.Engine]]:
    engine = db.get_engine(database_url)
    with engine.begin() as conn:
        mappings.seed_defaults(conn, "fub", "people", PEOPLE.mappings)
    account = accounts.upsert_account(engine, "fub", "acme", {"api_key": "k"})
    ctx = LoadContext("fub", account.id, registry=SPECS)
    with (
        db.raw_connection(database_url, autocommit=True) as first,
        db.raw_connection(database_url, autocommit=True) as second,
    ):
        yield first, second, ctx, engine


def _core_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT source_id FROM core.fub_people")).scalars())


def test_two_lanes_load_every_record_once_with_the_last_cursor(lanes) -> None:  # type: ignore[no-untyped-def]
    first, second, ctx, engine = lanes
    records = _people(1_000)
    result = run_pages(first, PEOPLE, ctx, iter(_pages(records)), cursor_key="people@t", batch_size=BATCH_SIZE,
                       second=second)  # fmt: skip
    assert result.counts.fetched == result.counts.inserted == 1_000
    assert len(result.batch_ids) == 10
    assert _core_ids(engine) == sorted(str(r["id"]) for r in records)
    assert read_cursor(first, "fub", ctx.account_id, "people@t") == "page-19"
    with engine.connect() as conn:
        creates = conn.execute(sa.text("SELECT count(*) FROM bridge.audit_log WHERE action = 'CREATE'")).scalar_one()
        completed = conn.execute(
            sa.text("SELECT count(*) FROM bridge.sync_batches WHERE status = 'completed' AND entity_name = 'people'")
        ).scalar_one()
    assert (creates, completed) == (1_000, 10)


def test_a_failing_batch_rolls_back_the_one_staged_behind_it_and_the_cursor_stays_behind_both(lanes) -> None:  # type: ignore[no-untyped-def]
    first, second, ctx, engine = lanes
    records = _people(600)  # batches of 100: the third (records 200..299) fails
    poison = str(records[250]["id"])
    first.execute(
        f"""
        CREATE FUNCTION core.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.source_id = '{poison}' THEN RAISE EXCEPTION 'refused %', NEW.source_id; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT ON core.fub_people
            FOR EACH ROW EXECUTE FUNCTION core.refuse_poison();
        """
    )
    with pytest.raises(psycopg.errors.RaiseException, match="refused"):
        run_pages(first, PEOPLE, ctx, iter(_pages(records)), cursor_key="people@t", batch_size=BATCH_SIZE,
                  second=second)  # fmt: skip
    # Batches 1 and 2 committed; 3 failed; 4 had been staged on the other connection and rolled back with it.
    assert _core_ids(engine) == sorted(str(r["id"]) for r in records[:200])
    assert read_cursor(first, "fub", ctx.account_id, "people@t") == "page-3"
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("SELECT status, count(*) FROM bridge.sync_batches GROUP BY 1")).all()
        staged = conn.execute(sa.text("SELECT count(*) FROM staging.fub_people")).scalar_one()
    assert dict(statuses) == {"completed": 2}
    assert staged == 200

    # The next run resumes after the cursor and lands the rest exactly once.
    first.execute("DROP TRIGGER refuse_poison ON core.fub_people")
    rest = [page for page in _pages(records) if int(page.cursor.split("-")[1]) > 3]  # type: ignore[union-attr]
    run_pages(first, PEOPLE, ctx, iter(rest), cursor_key="people@t", batch_size=BATCH_SIZE, second=second)
    assert _core_ids(engine) == sorted(str(r["id"]) for r in records)
    assert read_cursor(first, "fub", ctx.account_id, "people@t") == "page-11"
