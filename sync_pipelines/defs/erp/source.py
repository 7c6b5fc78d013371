"""Reading the ERP: a keyset on rowversion, relayed by COPY from the source into the warehouse's staging.

    SELECT ... FROM ifsapp.<table> WHERE rowversion > :cursor [AND rowversion <= :until]
    ORDER BY rowversion LIMIT :n

The source renders each row as JSON inside `COPY ... TO STDOUT`; the blocks stream into staging's COPY, so a
50,000-row chunk never sits in memory whole and no row passes through Python. Numbers and timestamps stay
the text Postgres prints (UTC, ISO): the load path casts them in SQL, so nothing is rounded or re-zoned.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.types.string import TextLoader
from sqlalchemy.engine import URL, make_url

from sync_pipelines.defs.erp.entities import PRIMARY_KEYS, SOURCE_SCHEMA, SOURCES
from sync_pipelines.lib import db, modes
from sync_pipelines.lib.load import Staged
from sync_pipelines.lib.modes import EnvSetting

_TEXT_TYPES = ("numeric", "timestamptz", "timestamp", "date")
ERP_URL_ENV = "SYNC_ERP_DATABASE_URL"
DATABASE_URL = EnvSetting(ERP_URL_ENV, "the ERP database, postgresql://user:password@host:5432/database", secret=True)


def erp_url() -> URL:
    """The ERP database: SYNC_ERP_DATABASE_URL, else (local mode only) `<warehouse database>_erp` on the warehouse's
    server.

    The default is where the demo creates the sandbox ERP (`sandbox.erp.create_database`); it lives here, not in
    the sandbox, because production code never imports the sandbox (the sandbox reads it from here). Production
    has no default: a generated sandbox ERP beside the warehouse is never what a brokerage's ERP is."""
    raw = os.environ.get(ERP_URL_ENV, "").strip()
    if not raw and modes.is_production():
        raise db.ConfigError(
            f"{modes.MODE_ENV}=production: {ERP_URL_ENV} is not set; set it to {DATABASE_URL.description}"
        )
    if raw:
        try:
            url = make_url(raw)
        except Exception as exc:
            raise db.ConfigError(
                f"{ERP_URL_ENV}: expected a URL like postgresql://user:password@host:5432/database"
            ) from exc
        if not url.drivername.startswith("postgresql") or not url.database:
            raise db.ConfigError(f"{ERP_URL_ENV}: expected a postgresql:// URL ending in a database name")
        return url.set(drivername="postgresql+psycopg")
    warehouse = db.configured_url()
    base = warehouse.database if warehouse is not None and warehouse.database else db.DEFAULT_DATABASE
    return db.server_url(f"{base}_erp")


class SourceUnreachable(RuntimeError):
    """The ERP database did not answer; the message says where and why (never the password)."""


@contextmanager
def connect(url: URL | str) -> Iterator[psycopg.Connection]:
    target = make_url(url) if isinstance(url, str) else url
    try:
        conn = psycopg.connect(
            db.libpq_uri(target),
            connect_timeout=db.CONNECT_TIMEOUT_SECONDS,
            options="-c TimeZone=UTC -c DateStyle=ISO,YMD",
            application_name="sync_pipelines_erp_source",
        )
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if target.password:
            reason = reason.replace(target.password, "***")
        raise SourceUnreachable(f"cannot reach the ERP database at {db.describe(target)}: {reason}") from None
    for type_name in _TEXT_TYPES:
        conn.adapters.register_loader(type_name, TextLoader)
    try:
        yield conn
    finally:
        conn.close()


def _table(entity: str) -> sql.Composable:
    return sql.Identifier(*SOURCES[entity].qualified.split("."))


def checksum(conn: psycopg.Connection, table: str, *, schema: str = SOURCE_SCHEMA) -> str:
    """md5 over (primary key, rowversion) of every row in primary-key order, computed in SQL.

    `table` is an ERP table name, optionally schema-qualified, so a copy elsewhere (the warehouse's core rows
    behind a view) can be compared with the source. Text keys sort with the "C" collation so both sides agree
    whatever their database collation. Rows are hashed in chunks of 100,000 and the chunk hashes hashed again,
    so ten million rows never build one giant string.
    """
    schema_name, _, name = table.rpartition(".")
    schema_name = schema_name or schema
    if name not in PRIMARY_KEYS:
        raise ValueError(f"unknown ERP table {name!r}; expected one of {', '.join(PRIMARY_KEYS)}")
    pk = PRIMARY_KEYS[name]
    order = ", ".join(f'{c} COLLATE "C"' if c not in ("line_no", "transaction_id") else c for c in pk)
    query = f"""
        SELECT md5(coalesce(string_agg(chunk, '' ORDER BY bucket), '')) FROM (
            SELECT (rn - 1) / 100000 AS bucket, md5(string_agg(k, E'\\n' ORDER BY rn)) AS chunk
            FROM (SELECT concat_ws('|', {", ".join(pk)}, rowversion) AS k,
                         row_number() OVER (ORDER BY {order}) AS rn
                  FROM {{table}}) AS r
            GROUP BY 1) AS c"""
    composed = sql.SQL(query).format(table=sql.Identifier(schema_name, name))  # type: ignore[arg-type]
    return conn.execute(composed).fetchone()[0]  # type: ignore[index]


def high_water(conn: psycopg.Connection, entity: str) -> tuple[int, int]:
    """(highest rowversion, rows) of a table right now: the end and size of a background pass."""
    with conn.transaction():
        row = conn.execute(sql.SQL("SELECT coalesce(max(rowversion), 0), count(*) FROM {}").format(_table(entity)))
        top, count = row.fetchone()  # type: ignore[misc]
    return int(top), int(count)


def has_rows(conn: psycopg.Connection, entity: str, after: int, until: int | None) -> bool:
    query = sql.SQL("SELECT 1 FROM {} WHERE rowversion > %s AND (%s::bigint IS NULL OR rowversion <= %s) LIMIT 1")
    with conn.transaction():
        return conn.execute(query.format(_table(entity)), (after, until, until)).fetchone() is not None


@dataclass
class Chunk:
    """One keyset read, relayed once. `rows` and `last_rowversion` say what landed."""

    conn: psycopg.Connection
    entity: str
    after: int
    until: int | None
    limit: int
    rows: int = 0
    last_rowversion: int | None = None
    _used: bool = field(default=False, repr=False)

    def _select(self) -> sql.Composable:
        source = SOURCES[self.entity]
        columns = [sql.Identifier(c) for c in source.columns]
        columns += [sql.SQL("{} AS {}").format(sql.SQL(expr), sql.Identifier(name)) for name, expr in source.computed]
        return sql.SQL(
            "SELECT {columns} FROM {table} WHERE rowversion > {after} AND ({until}::bigint IS NULL OR rowversion <= "
            "{until}) ORDER BY rowversion LIMIT {limit}"
        ).format(
            columns=sql.SQL(", ").join(columns),
            table=_table(self.entity),
            after=sql.Literal(self.after),
            until=sql.Literal(self.until),
            limit=sql.Literal(self.limit),
        )

    def relay(self, warehouse: psycopg.Connection, staging: sql.Composable, batch_id: uuid.UUID,
              account_id: uuid.UUID) -> Staged:  # fmt: skip
        """COPY the chunk from the ERP straight into staging, block by block: the source renders each row as
        JSON (and its md5), so no row is parsed or rebuilt in Python. Then `rows` and `last_rowversion` are
        read back from what landed."""
        if self._used:
            raise RuntimeError("a Chunk is read once")
        self._used = True
        source = SOURCES[self.entity]
        created = (
            sql.SQL("left(r.{}::text, 7)").format(sql.Identifier(source.created_field))
            if source.created_field
            else sql.SQL("NULL")
        )
        query = sql.SQL(
            "COPY (SELECT {batch}::uuid, {account}::uuid, x.id, x.period, x.j, md5(x.j) FROM ("
            "SELECT r.{id}::text AS id, {created} AS period, row_to_json(r)::text AS j FROM ({select}) r) x) TO STDOUT"
        ).format(
            batch=sql.Literal(str(batch_id)),
            account=sql.Literal(str(account_id)),
            id=sql.Identifier(source.id_field),
            created=created,
            select=self._select(),
        )
        target = sql.SQL("COPY {} (_batch_id, account_id, source_id, period_key, raw, _raw_hash) FROM STDIN").format(
            staging
        )
        with self.conn.transaction(), self.conn.cursor().copy(query) as out, warehouse.cursor().copy(target) as into:
            for block in out:
                into.write(block)
        rows, last = warehouse.execute(
            sql.SQL("SELECT count(*), max((raw->>'rowversion')::bigint) FROM {} WHERE _batch_id = %s").format(staging),
            (batch_id,),
        ).fetchone()  # type: ignore[misc]
        self.rows, self.last_rowversion = int(rows), (int(last) if last is not None else None)
        # Every row is read by its table's primary key, which is never null: no record without an id.
        return Staged(rows=self.rows, without_id=0)
