"""core.participant gets an index on `_synced_at`: the unified transaction and listing update links rows to the
participants that changed since its last run, and without the index that read scans every lead and agent
(200,000 rows: 12 ms of a 42 ms no-change update at 1M source rows, growing with the participants, not the delta;
BENCHMARKS.md, unified update).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_participant_synced_at", "participant", ["_synced_at"], schema="core")


def downgrade() -> None:
    op.drop_index("ix_participant_synced_at", table_name="participant", schema="core")
