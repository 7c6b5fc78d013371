"""Job tracking in bridge.job_status: PENDING -> IN_PROGRESS -> COMPLETED | ERROR, with progress."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import sqlalchemy as sa

from sync_pipelines.lib import schema


def start_job(
    engine: sa.Engine,
    *,
    job_type: str,
    integration: str,
    account_id: uuid.UUID | None,
    entity_type: str | None,
    period_key: str | None = None,
    dagster_run_id: str | None = None,
    priority: str = "NORMAL",
) -> str:
    job_id = f"{job_type}:{integration}:{entity_type}:{uuid.uuid4().hex[:12]}"
    t = schema.job_status
    scope = (
        (t.c.job_type == job_type) & (t.c.integration == integration) & (t.c.account_id == account_id)
        & (t.c.entity_type == entity_type) & (t.c.status == "IN_PROGRESS")
    )  # fmt: skip
    with engine.begin() as conn:
        # A job left IN_PROGRESS by a killed process is this one's earlier attempt: close it and count it.
        interrupted = (
            conn.execute(
                sa.update(t)
                .where(scope)
                .values(status="ERROR", completed_at=sa.func.now(), error_message=f"interrupted; resumed by {job_id}")
                .returning(t.c.attempts)
            )
            .scalars()
            .all()
        )
        conn.execute(
            sa.insert(t).values(
                job_id=job_id, job_type=job_type, integration=integration, account_id=account_id,
                entity_type=entity_type, period_key=period_key, status="IN_PROGRESS", priority=priority,
                attempts=max(interrupted, default=0) + 1, dagster_run_id=dagster_run_id,
                started_at=sa.func.now(), last_activity=sa.func.now(),
            )
        )  # fmt: skip
    return job_id


def progress(engine: sa.Engine, job_id: str, *, processed: int, stored: int, remaining: int | None = None) -> None:
    total = processed + (remaining or 0)
    percent = 100 if not total else min(99, int(processed * 100 / total))
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.job_status)
            .where(schema.job_status.c.job_id == job_id)
            .values(records_processed=processed, records_stored=stored, records_remaining=remaining,
                    progress=percent, last_activity=sa.func.now())
        )  # fmt: skip


def finish_job(
    engine: sa.Engine,
    job_id: str,
    *,
    error: BaseException | None = None,
    source_count: int | None = None,
    warehouse_count: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"completed_at": sa.func.now(), "last_activity": sa.func.now()}
    if error is None:
        values.update(status="COMPLETED", progress=100, source_count=source_count, warehouse_count=warehouse_count)
    else:
        values.update(
            status="ERROR",
            error_message=f"{type(error).__name__}: {error}"[:2000],
            error_details=orjson.loads(orjson.dumps(details or {}, default=str)),
        )
    with engine.begin() as conn:
        conn.execute(sa.update(schema.job_status).where(schema.job_status.c.job_id == job_id).values(**values))
