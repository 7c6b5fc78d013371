"""Accounts of an integration and their credentials (encrypted at rest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from sync_pipelines.lib import crypto, schema


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    integration: str
    name: str
    active: bool
    status: str
    config: dict[str, Any]


def upsert_account(
    engine: sa.Engine, integration: str, name: str, secrets: dict[str, str], config: dict[str, Any] | None = None
) -> Account:
    """Create or update an account; its secrets are stored as one Fernet token, never in plain text."""
    table = schema.accounts
    with engine.begin() as conn:
        row = (
            conn.execute(
                insert(table)
                .values(integration=integration, name=name, config=config or {}, status="pending")
                .on_conflict_do_update(
                    index_elements=["integration", "name"],
                    set_={"config": config or {}, "active": True, "updated_at": sa.func.now()},
                )
                .returning(table)
            )
            .mappings()
            .one()
        )
        token = crypto.encrypt(orjson.dumps(secrets).decode())
        fingerprint = crypto.fingerprint(orjson.dumps(sorted(secrets.items())).decode())
        conn.execute(
            insert(schema.credentials)
            .values(account_id=row["id"], kind="api", secret_ciphertext=token, fingerprint=fingerprint)
            .on_conflict_do_update(
                index_elements=["account_id", "kind"],
                set_={"secret_ciphertext": token, "fingerprint": fingerprint, "verified": False,
                      "updated_at": sa.func.now()},
            )
        )  # fmt: skip
    return _account(row)


def _account(row: Any) -> Account:
    return Account(row["id"], row["integration"], row["name"], row["active"], row["status"], dict(row["config"]))


def list_accounts(engine: sa.Engine, integration: str | None = None, active_only: bool = True) -> list[Account]:
    table = schema.accounts
    query = sa.select(table).order_by(table.c.integration, table.c.name)
    if integration:
        query = query.where(table.c.integration == integration)
    if active_only:
        query = query.where(table.c.active)
    with engine.connect() as conn:
        return [_account(r) for r in conn.execute(query).mappings()]


def get_account(engine: sa.Engine, integration: str, name: str) -> Account:
    table = schema.accounts
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(table).where(table.c.integration == integration, table.c.name == name))
            .mappings()
            .first()
        )
    if row is None:
        raise LookupError(f"no {integration} account named {name!r}: add it with `sync-pipelines accounts add`")
    return _account(row)


def secrets_for(engine: sa.Engine, account_id: uuid.UUID) -> dict[str, str]:
    with engine.connect() as conn:
        token = conn.execute(
            sa.select(schema.credentials.c.secret_ciphertext).where(
                schema.credentials.c.account_id == account_id, schema.credentials.c.active
            )
        ).scalar()
    if token is None:
        raise LookupError(f"account {account_id} has no active credentials")
    return orjson.loads(crypto.decrypt(token))


def mark_account(engine: sa.Engine, account_id: uuid.UUID, *, error: str | None) -> None:
    """An account in error keeps its reason until a sync of it succeeds again; the others are untouched."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.accounts)
            .where(schema.accounts.c.id == account_id)
            .values(
                status="error" if error else "active",
                error=error,
                last_error_at=sa.func.now() if error else schema.accounts.c.last_error_at,
                updated_at=sa.func.now(),
            )
        )
        if error is None:
            conn.execute(
                sa.update(schema.credentials)
                .where(schema.credentials.c.account_id == account_id)
                .values(verified=True, verified_at=sa.func.now())
            )
