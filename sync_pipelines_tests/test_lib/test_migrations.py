from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import URL

from sync_pipelines import warehouse_schema as _warehouse_schema  # noqa: F401  (every integration's tables)
from sync_pipelines.defs.rezen import tables as _rezen_tables  # noqa: F401  (puts reZEN's tables on the metadata)
from sync_pipelines.lib import db, migrations, schema


def _diff(url: URL) -> list:
    with db.get_engine(url).connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _: name in schema.SCHEMAS if type_ == "schema" else True,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return compare_metadata(context, schema.metadata)


def test_migrations_at_head_match_the_metadata_exactly(database_url: URL) -> None:
    assert migrations.current_revision(database_url) == migrations.head_revision()
    assert _diff(database_url) == []


def test_upgrade_downgrade_to_base_and_upgrade_again_round_trips(database_url: URL) -> None:
    migrations.downgrade("base", database_url)
    with db.get_engine(database_url).connect() as conn:
        schemas = set(sa.inspect(conn).get_schema_names())
    assert not schemas & set(schema.SCHEMAS)
    assert migrations.current_revision(database_url) is None

    migrations.upgrade(database_url)
    assert migrations.current_revision(database_url) == migrations.head_revision()
    assert _diff(database_url) == []


def test_every_bridge_table_the_issue_names_exists(database_url: URL) -> None:
    expected = {
        "accounts",
        "credentials",
        "sync_state",
        "job_status",
        "sync_batches",
        "failed_records",
        "pending_children",
        "background_sync_schedule",
        "erp_sync_state",
        "field_mappings",
        "webhook_events",
        "audit_log",
        "error_log",
        "event_log",
        "sync_logs",
    }
    with db.get_engine(database_url).connect() as conn:
        tables = set(sa.inspect(conn).get_table_names(schema="bridge"))
    assert expected <= tables


def test_every_status_column_has_a_check_constraint_that_rejects_unknown_values(database_url: URL) -> None:
    with db.get_engine(database_url).connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT c.table_name,
                       EXISTS (SELECT 1 FROM pg_constraint k
                               JOIN pg_class t ON t.oid = k.conrelid
                               JOIN pg_namespace n ON n.oid = t.relnamespace
                               WHERE k.contype = 'c' AND n.nspname = 'bridge' AND t.relname = c.table_name
                                 AND pg_get_constraintdef(k.oid) LIKE '%status%')
                FROM information_schema.columns c
                WHERE c.table_schema = 'bridge' AND c.column_name = 'status'
                """
            )
        ).all()
    assert len(rows) >= 9
    assert [table for table, has_check in rows if not has_check] == []

    with db.get_engine(database_url).begin() as conn:
        account_id = conn.execute(
            sa.insert(schema.accounts).values(integration="fub", name="a").returning(schema.accounts.c.id)
        ).scalar_one()
    try:
        with db.get_engine(database_url).begin() as conn:
            conn.execute(sa.update(schema.accounts).where(schema.accounts.c.id == account_id).values(status="bogus"))
    except sa.exc.IntegrityError as exc:
        assert "ck_accounts_status" in str(exc)
    else:
        raise AssertionError("a status outside the allowed set was accepted")


def test_primary_keys_are_uuidv7_generated_in_python(database_url: URL) -> None:
    with db.get_engine(database_url).begin() as conn:
        first = conn.execute(
            sa.insert(schema.accounts).values(integration="fub", name="x").returning(schema.accounts.c.id)
        ).scalar_one()
        second = conn.execute(
            sa.insert(schema.accounts).values(integration="fub", name="y").returning(schema.accounts.c.id)
        ).scalar_one()
    assert first.version == 7 and second.version == 7
    assert first < second  # time-ordered


def test_ids_made_in_sql_are_uuidv7_unique_and_time_ordered(database_url: URL) -> None:
    """bridge.uuid_v7() (migration 0014) takes its random bits from random(), not the strong source."""
    with db.get_engine(database_url).connect() as conn:
        ids = conn.execute(sa.text("SELECT bridge.uuid_v7() FROM generate_series(1, 20000)")).scalars().all()
        conn.execute(sa.text("SELECT pg_sleep(0.002)"))
        later = conn.execute(sa.text("SELECT bridge.uuid_v7()")).scalar_one()
        skew = conn.execute(
            sa.text("SELECT abs(extract(epoch FROM uuid_extract_timestamp(:id) - clock_timestamp()))"), {"id": later}
        ).scalar_one()
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert later > max(ids)  # a later millisecond sorts after every id of the earlier ones
    assert skew < 5


def test_seed_named_indexes_exist_including_the_partial_dlq_retry_index(database_url: URL) -> None:
    with db.get_engine(database_url).connect() as conn:
        indexes = dict(
            conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'bridge'")).all()
        )
    for name in (
        "ix_sync_batches_entity",
        "ix_sync_batches_status",
        "ix_failed_records_batch",
        "ix_pending_children_parent",
        "ix_erp_sync_state_entity",
        "ix_field_mappings_entity",
    ):
        assert name in indexes
    assert "WHERE (resolved_at IS NULL)" in indexes["ix_failed_records_retry"]
