"""The DLQ keeps one open row per record, so a record that fails again updates its row instead of piling up.

A record that fails on every run (or on each `dlq retry --refetch`) used to add a row each time; the rows
for one record then disagreed on retry counts and on which payload was current. With at most one open row
per (integration, account, entity, source id), a later failure refreshes that row, and a later clean load
of the record finds and resolves it through the same index. Rows without a readable id are not covered:
they cannot be told apart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Older duplicates of an open record are closed as superseded by the newest one.
    op.execute(
        """
        UPDATE bridge.failed_records f
        SET status = 'resolved', resolved_at = now(), resolution = 'superseded by a later failure', updated_at = now()
        WHERE f.resolved_at IS NULL AND f.source_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM bridge.failed_records n
                      WHERE n.resolved_at IS NULL AND n.integration = f.integration
                        AND n.account_id IS NOT DISTINCT FROM f.account_id AND n.entity_name = f.entity_name
                        AND n.source_id = f.source_id
                        AND (n.created_at, n.id) > (f.created_at, f.id))
        """
    )
    op.create_index(
        "ux_failed_records_open_record",
        "failed_records",
        ["integration", "account_id", "entity_name", "source_id"],
        unique=True,
        schema="bridge",
        postgresql_where="resolved_at IS NULL",
    )


def downgrade() -> None:
    op.drop_index("ux_failed_records_open_record", table_name="failed_records", schema="bridge")
