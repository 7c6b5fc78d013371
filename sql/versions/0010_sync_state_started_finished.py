"""Each cursor row of bridge.sync_state says when its last sync started and when it finished (seed 001's
transaction_status / listing_status / account_users_status with last started and finished), so `status` and the
UI can show per entity whether a sync is running, done or failed, and since when.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_state", sa.Column("last_started_at", sa.DateTime(timezone=True)), schema="bridge")
    op.add_column("sync_state", sa.Column("last_finished_at", sa.DateTime(timezone=True)), schema="bridge")


def downgrade() -> None:
    op.drop_column("sync_state", "last_finished_at", schema="bridge")
    op.drop_column("sync_state", "last_started_at", schema="bridge")
