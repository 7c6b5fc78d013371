"""`bridge.uuid_v7()` (the default id of every row that set-based SQL creates: core rows, audit rows, DLQ rows, …)
takes its 74 random bits from `random()` instead of the server's strong random source.

`gen_random_uuid()` and Postgres 18's `uuidv7()` draw on `pg_strong_random()`, which on a server built without
OpenSSL (the embedded server is one) opens, reads and closes `/dev/urandom` for every id: 5-8 µs a call, two calls
per record loaded (its core row and its audit row): 15% of the Postgres CPU of a FUB backfill (BENCHMARKS.md).
`random()` is a per-backend xoshiro256** seeded from the strong source when the backend starts: these are surrogate
keys, not secrets, and 48 bits of milliseconds plus 64 random bits keep them unique and time-ordered. The body is
one expression, so the planner inlines it as it did the old one.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# 48 bits of Unix milliseconds, version 7, 12 random bits; variant 0b10 and 62 random bits (random() has 52 bits of
# precision, so 64 random bits in all).
UUID_V7 = """
CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    int8send((floor(date_part('epoch', clock_timestamp()) * 1000)::bigint << 16) | 28672 | floor(random() * 4096)::int)
    || int8send(floor(random() * 4611686018427387904)::bigint | (-9223372036854775808)),
    'hex')::uuid
$$
"""
# What 0004 left: Postgres 18's uuidv7(), or the portable body before 18.
NATIVE_UUID_V7 = """
CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$ SELECT uuidv7() $$
"""
PORTABLE_UUID_V7 = """
CREATE OR REPLACE FUNCTION bridge.uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(
    set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
      substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
      FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$
"""


def upgrade() -> None:
    op.execute(UUID_V7)


def downgrade() -> None:
    native = op.get_bind().execute(sa.text("SELECT current_setting('server_version_num')::int >= 180000")).scalar()
    op.execute(NATIVE_UUID_V7 if native else PORTABLE_UUID_V7)
