"""`sync-pipelines status` at 1,000 accounts is a handful of statements (set-based), not one per account and
entity: the statements it sends to the warehouse are counted at the engine."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import URL

from sync_pipelines import registry
from sync_pipelines.cli import main
from sync_pipelines.lib import db, schema

ACCOUNTS = 1_000


@contextmanager
def counted(engine: sa.Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_status_at_a_thousand_accounts_is_a_one_digit_number_of_queries(database_url: URL) -> None:
    engine = db.get_engine(database_url)
    names = list(registry.INTEGRATIONS)
    with engine.begin() as conn:
        # One INSERT ... SELECT: the accounts spread over every registered integration.
        conn.execute(
            sa.text(
                "INSERT INTO bridge.accounts (integration, name) "
                "SELECT (CAST(:names AS text[]))[1 + n % :k], 'account_' || n FROM generate_series(1, :accounts) AS n"
            ),
            {"names": names, "k": len(names), "accounts": ACCOUNTS},
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.accounts)).scalar_one() == ACCOUNTS

    with counted(engine) as statements:
        result = CliRunner().invoke(main, ["status"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = set(re.findall(r"^\w+/account_\d+", result.output, re.M))
    assert len(shown) == ACCOUNTS
    assert 0 < len(statements) < 10, f"{len(statements)} statements:\n" + "\n".join(s[:120] for s in statements)
