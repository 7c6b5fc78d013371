"""`sync-pipelines webhooks ...`: serve the receiver, re-queue events, show the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import click

from sync_pipelines.cli_errors import fail_cleanly
from sync_pipelines.lib import db

_clean_errors = fail_cleanly()


def _prepare() -> Any:
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url)
    return url


@click.group("webhooks")
def webhooks_group() -> None:
    """The webhook receiver and its queue (bridge.webhook_events)."""


@webhooks_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8800, show_default=True, type=int)
@_clean_errors
def serve(host: str, port: int) -> None:
    """Receive signed webhooks on POST /webhooks/{integration}/{account}; GET /healthz."""
    from sync_pipelines import webhooks_app

    url = _prepare()
    click.echo(f"webhook receiver on http://{host}:{port}/webhooks/{{integration}}/{{account}} ({db.safe_url(url)})")
    webhooks_app.serve(host, port, url)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("expected an ISO-8601 time like 2024-05-01T12:00:00Z", param_hint="--since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@webhooks_group.command("replay")
@click.option("--id", "ids", multiple=True, help="An event's id (bridge.webhook_events.id); repeatable.")
@click.option("--since", help="Every event received at or after this ISO-8601 time (UTC if no zone).")
@click.option("--integration", help="Only this integration's events.")
@click.option("--include-completed/--dead-only", default=True, show_default=True)
@_clean_errors
def replay(ids: tuple[str, ...], since: str | None, integration: str | None, include_completed: bool) -> None:
    """Queue dead (and done) events again: pending, attempts reset; the sensor applies them."""
    from sync_pipelines.lib import webhooks

    if not ids and not since:
        raise click.UsageError("give --id (one or more) or --since")
    try:
        parsed_ids = [uuid.UUID(i) for i in ids]
    except ValueError:
        raise click.BadParameter("expected event ids (UUIDs)", param_hint="--id") from None
    started = _parse_since(since)
    url = _prepare()
    statuses = ("dead", "completed") if include_completed else ("dead",)
    with db.raw_connection(url) as conn:
        count = webhooks.replay(conn, parsed_ids or None, started, integration, statuses)
        conn.commit()
    click.echo(f"re-queued {count} event(s)")


@webhooks_group.command("status")
@click.option("--integration", help="Only this integration's events.")
@_clean_errors
def status(integration: str | None) -> None:
    """Events per status."""
    from sync_pipelines.lib import webhooks

    url = _prepare()
    with db.raw_connection(url) as conn:
        counts = webhooks.counts_by_status(conn, integration)
    for name in ("pending", "in_progress", "failed", "dead", "completed"):
        click.echo(f"{name:12} {counts.get(name, 0)}")
