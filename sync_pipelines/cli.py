"""`sync-pipelines`: the operator's command line."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

import click

from sync_pipelines.cli_errors import fail_cleanly
from sync_pipelines.lib import db, interrupts
from sync_pipelines.lib.errors import OperatorError

_fail_cleanly = fail_cleanly()


def _integration(name: str) -> Any:
    from sync_pipelines import registry

    return registry.get(name)


@_fail_cleanly
def _check_mode() -> None:
    """SYNC_MODE=production: no command runs until every setting production needs is there (one line naming every
    missing one, exit 2); `--help` still answers."""
    from sync_pipelines import settings

    if "--help" not in sys.argv[1:]:
        settings.check("sync-pipelines")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """Keep the Postgres warehouse in sync with the brokerage's sources."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    _check_mode()


# ----------------------------------------------------------------------------------------------
# db
# ----------------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The warehouse database: start, migrate, show, stop."""


@db_group.command("up")
@_fail_cleanly
def db_up() -> None:
    """Start the server (embedded unless SYNC_DATABASE_URL is set) and create the databases."""
    url = db.ensure_databases()
    click.echo(f"database: {db.safe_url(url)}")


@db_group.command("upgrade")
@click.argument("revision", default="head")
@_fail_cleanly
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url, revision)
    click.echo(f"migrated {db.safe_url(url)} to {migrations.current_revision(url)}")


@db_group.command("downgrade")
@click.argument("revision")
@_fail_cleanly
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.downgrade(revision, url)
    click.echo(f"downgraded {db.safe_url(url)} to {migrations.current_revision(url) or 'base'}")


@db_group.command("url")
@click.option("--dagster", is_flag=True, help="Show Dagster's storage database instead.")
@_fail_cleanly
def db_url(dagster: bool) -> None:
    """Print the database URL, without its password."""
    from sqlalchemy.engine import make_url

    url = make_url(db.dagster_storage_url()) if dagster else db.warehouse_url()
    click.echo(db.safe_url(url))


@db_group.command("stop")
@_fail_cleanly
def db_stop() -> None:
    """Stop the embedded server (a server named by SYNC_DATABASE_URL is not ours to stop)."""
    if not db.is_embedded():
        click.echo("SYNC_DATABASE_URL is set: that server is not managed by sync-pipelines; nothing stopped")
        return
    stopped = db.stop_embedded()
    click.echo("embedded Postgres stopped" if stopped else "embedded Postgres was not running")


# ----------------------------------------------------------------------------------------------
# demo and dev
# ----------------------------------------------------------------------------------------------


def prepare() -> Any:
    """Database up, migrations at head, Dagster's environment exported: what every entry point needs."""
    from sync_pipelines.lib import migrations

    url = db.ensure_databases()
    migrations.upgrade(url)
    db.export_dagster_env()
    return url


@main.command("demo")
@_fail_cleanly
def demo() -> None:
    """Set everything up, sync every integration from the sandbox, print a summary."""
    from sync_pipelines.demo import run_demo
    from sync_pipelines.lib import modes

    modes.refuse_in_production("the demo (it syncs from the sandbox)")

    run_demo(prepare())


@main.command("dev")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--webhook-port", default=8800, show_default=True, help="Port of the webhook receiver.")
@_fail_cleanly
def dev(port: int, webhook_port: int) -> None:
    """Dagster UI and daemon, the webhook receiver and, while the sources point at it, the sandbox; Ctrl-C stops
    them all."""
    from sync_pipelines import local_stack

    sys.exit(local_stack.run_dev(prepare(), port, webhook_port, click.echo))


# ----------------------------------------------------------------------------------------------
# accounts, sync, status, dlq
# ----------------------------------------------------------------------------------------------


def _instance() -> Any:
    import dagster as dg

    prepare()
    return dg.DagsterInstance.get()


@main.group("accounts")
def accounts_group() -> None:
    """Accounts of each integration; credentials are stored encrypted."""


@accounts_group.command("add")
@click.argument("integration")
@click.option("--name", required=True, help="Your name for the account; becomes its partition key.")
@click.option(
    "--api-key",
    help="The account's API key (stored encrypted, never printed); or SYNC_<INTEGRATION>_API_KEY, or typed at the "
    "prompt.",
)
@click.option("--secret", "secrets", multiple=True, help="Another credential the integration needs, KEY=VALUE.")
@_fail_cleanly
def accounts_add(integration: str, name: str, api_key: str | None, secrets: tuple[str, ...]) -> None:
    """Add an account of INTEGRATION (or replace its credentials) and its partition row."""
    from sync_pipelines import operations

    declared = _integration(integration)
    given: dict[str, str] = {}
    for item in secrets:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise OperatorError(f"--secret {item!r}: expected KEY=VALUE")
        given[key] = value
    if "api_key" in declared.credential_fields:
        if api_key is None:
            api_key = os.environ.get(f"SYNC_{declared.name.upper()}_API_KEY")
        if api_key is None:
            api_key = click.prompt("API key", hide_input=True, default="", show_default=False)
        given["api_key"] = api_key or ""
    with _instance() as instance:
        account = operations.add_account(instance, declared, name, given)
    click.echo(f"{declared.name} account {account.name} saved (id {account.id}); backfill it with "
               f"`sync-pipelines sync {declared.name} --account {account.name} --all`")  # fmt: skip


@accounts_group.command("list")
@click.argument("integration", required=False)
@_fail_cleanly
def accounts_list(integration: str | None) -> None:
    """Every account (of INTEGRATION, or of all) with its status and last error."""
    import sqlalchemy as sa

    from sync_pipelines.lib import schema

    t = schema.accounts
    query = sa.select(t).order_by(t.c.integration, t.c.name)
    if integration:
        query = query.where(t.c.integration == _integration(integration).name)
    prepare()
    with db.get_engine().connect() as conn:
        rows = conn.execute(query).mappings().all()
    if not rows:
        click.echo(f"no accounts yet: `sync-pipelines accounts add {integration or 'INTEGRATION'} --name NAME`")
    for row in rows:
        click.echo(f"{row['integration']:<9} {row['name']:<20} {row['status']:<8} {row['error'] or ''}")


@main.command("sync")
@click.argument("integration")
@click.option("--account", "account_names", multiple=True, help="Only this account (repeatable).")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable): people, calls, ...")
@click.option("--period", help="Only this creation month, YYYY-MM.")
@click.option("--all", "all_periods", is_flag=True, help="Every month (the default when --period is absent).")
@click.option("--delta", is_flag=True, help="Run the delta sync (changed since the cursor) instead.")
@_fail_cleanly
@interrupts.exit_on_interrupt(interrupts.STOPPED_AT_LAST_COMMIT)
def sync_command(
    integration: str, account_names: tuple[str, ...], entities: tuple[str, ...], period: str | None,
    all_periods: bool, delta: bool,
) -> None:  # fmt: skip
    """Run INTEGRATION's assets through Dagster, as a backfill would from the UI."""
    from sync_pipelines import operations

    declared = _integration(integration)
    if period and all_periods:
        raise OperatorError("use --period YYYY-MM or --all, not both")
    for entity in entities:
        operations.check_entity(declared, entity)
    if period:
        operations.check_period(declared, period)

    def reaped(run: Any) -> None:
        click.echo(run.describe(), err=True)

    with _instance() as instance:
        if delta:
            ok = operations.run_delta(instance, declared, on_reaped=reaped, account_names=list(account_names) or None)
            click.echo("delta sync " + ("succeeded" if ok else "failed: see `sync-pipelines status`"))
            sys.exit(0 if ok else 1)
        started = time.monotonic()
        outcomes = operations.sync(
            instance, declared, account_names=list(account_names) or None, entities=list(entities) or None,
            period=period, on_reaped=reaped, on_run=_print_run,
        )  # fmt: skip
    if not outcomes:
        raise OperatorError(f"no {declared.name} account to sync: `sync-pipelines accounts add {declared.name}`")
    failed = sum(not o.success for o in outcomes)
    fetched = sum(int(str(o.metadata.get("rows_fetched", 0) or 0)) for o in outcomes)
    seconds = time.monotonic() - started
    verdict = f"{failed} FAILED" if failed else "all succeeded"
    rate = fetched / seconds if seconds else 0
    click.echo(f"{declared.name}: {len(outcomes)} Dagster run(s), {fetched:,} records fetched in {seconds:.1f} s "
               f"({rate:,.0f}/s), {verdict}")  # fmt: skip
    sys.exit(1 if failed else 0)


def _print_run(o: Any, seconds: float) -> None:
    """One line per run as it ends: what it moved, how fast, and its run id for the UI."""
    m = o.metadata
    fetched = int(str(m.get("rows_fetched", 0) or 0))
    click.echo(
        f"{'ok  ' if o.success else 'FAIL'} {o.entity:<14} {o.partitions:<28} fetched={m.get('rows_fetched', '-')} "
        f"inserted={m.get('rows_inserted', '-')} updated={m.get('rows_updated', '-')} "
        f"unchanged={m.get('rows_unchanged', '-')} failed={m.get('rows_failed', '-')} "
        f"{seconds:.1f} s ({fetched / seconds if seconds else 0:,.0f}/s) run={o.run_id[:8]}"
    )


@main.command("status")
@click.option("--integration", help="Only this integration.")
@click.option("--account", help="Only this account (by name).")
@_fail_cleanly
def status_command(integration: str | None, account: str | None) -> None:
    """Per account and entity: rows in core, open DLQ records, the last sync (started, finished, error) and the
    delta cursor."""
    from sync_pipelines import operations

    name = _integration(integration).name if integration else None
    prepare()
    rows = operations.status_rows(db.get_engine(), name)
    if account:
        rows = [r for r in rows if r["account"] == account]
        if not rows:
            raise OperatorError(
                f"no account {account!r}{f' of {name}' if name else ''}; see `sync-pipelines accounts list`"
            )
    if not rows:
        click.echo("no accounts yet: `sync-pipelines accounts add INTEGRATION --name NAME --api-key KEY`")
        return
    click.echo(
        f"{'account':<20}{'entity':<24}{'rows':>9}{'dlq':>6}  {'last sync':<10} started -> finished / delta cursor"
    )
    for r in rows:
        click.echo(
            f"{r['integration'] + '/' + str(r['account']):<20}{r['entity']!s:<24}{r['rows']:>9}{r['dlq_open']:>6}  "
            f"{r['sync_status']!s:<10} {r['last_started_at'] or '-'} -> {r['last_finished_at'] or '-'}"
            f" / {r['delta_cursor'] or '-'}"
            + (f"  account {r['status']}: {r['error']}" if r["error"] and r["first_of_account"] else "")
            + (f"  error: {r['entity_error']}" if r["entity_error"] else "")
        )


@main.group("dlq")
def dlq_group() -> None:
    """The dead-letter queue: records that failed, with their payload and reason."""


@dlq_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved records.")
@click.option("--limit", default=50, show_default=True)
@_fail_cleanly
def dlq_list(show_all: bool, limit: int) -> None:
    import sqlalchemy as sa

    from sync_pipelines.lib import schema

    prepare()
    t = schema.failed_records
    query = sa.select(t).order_by(t.c.created_at.desc()).limit(limit)
    if not show_all:
        query = query.where(t.c.resolved_at.is_(None))
    with db.get_engine().connect() as conn:
        rows = conn.execute(query).mappings().all()
    if not rows:
        click.echo("the DLQ is empty")
    for r in rows:
        click.echo(
            f"{r['id']} {r['integration']}/{r['entity_name']} source_id={r['source_id']} {r['status']} "
            f"retries={r['retry_count']}/{r['max_retries']} {r['stage_failed']}: {r['error_message']}"
        )


@dlq_group.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--due", is_flag=True, help="Only records whose next retry time has come (default: all open).")
@click.option(
    "--refetch/--no-refetch",
    default=True,
    show_default=True,
    help="Fetch each record anew from its source by id (what the source served is what failed); "
    "--no-refetch runs the stored payload again, e.g. after a field-mapping fix.",
)
@_fail_cleanly
def dlq_retry(ids: tuple[str, ...], due: bool, refetch: bool) -> None:
    """Retry open DLQ records: refetched from the source, or their stored payload reprocessed."""

    import sqlalchemy as sa

    from sync_pipelines import registry
    from sync_pipelines.defs.erp.entities import SPECS as ERP_SPECS
    from sync_pipelines.lib import accounts, dlq, schema
    from sync_pipelines.lib.http import ApiError, TransientError
    from sync_pipelines.lib.integration import sync
    from sync_pipelines.lib.load import LoadContext

    wanted = _dlq_ids(ids)
    # The ERP is a database source, not on the kit: its records are reprocessed from the stored payload.
    specs_by_integration = {name: i.specs for name, i in registry.INTEGRATIONS.items()} | {"erp": ERP_SPECS}
    prepare()
    engine = db.get_engine()
    t = schema.failed_records
    scope = sa.select(t.c.integration, t.c.account_id, t.c.entity_name).where(t.c.resolved_at.is_(None)).distinct()
    if wanted:
        scope = scope.where(t.c.id.in_(wanted))
    with engine.connect() as conn:
        scopes = conn.execute(scope).all()
        if wanted:
            found = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(wanted), t.c.resolved_at.is_(None))).scalars())
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise OperatorError(f"no open DLQ record {', '.join(missing)} (see `sync-pipelines dlq list`)")
    known = {a.id: a for a in accounts.list_accounts(engine, active_only=False)}
    total = dlq.RetryOutcome()
    unreachable: list[str] = []
    with db.raw_connection(engine.url, autocommit=True) as conn:
        for integration, account_id, entity in scopes:
            spec = specs_by_integration.get(integration, {}).get(entity)
            account = known.get(account_id)
            if spec is None or account is None:
                continue
            ctx = LoadContext(integration, account.id, registry=specs_by_integration[integration])
            fetch = None
            client = None
            declared = registry.INTEGRATIONS.get(integration)
            if refetch and declared is not None:
                client = declared.resource().client_for(engine, account)
                fetch = sync.refetcher(declared, client, entity)
            calls_logged: Any = contextlib.nullcontext()
            if client is not None:
                calls_logged = client.logging_calls(sync.call_log_for(engine, account), entity)
            try:
                with calls_logged:
                    outcome = dlq.retry(conn, spec, ctx, fetch=fetch, only_due=due, ids=wanted or None)
            except (ApiError, TransientError) as exc:
                unreachable.append(f"{integration}/{account.name}/{entity}: {exc}")
                continue
            total.add(outcome)
    click.echo(
        f"resolved {total.resolved}, gone at the source {total.gone}, still failing {total.still_failing}"
        + (f" ({total.without_id} without an id: a full re-read of their period resolves them)"
           if total.without_id else "")
    )  # fmt: skip
    for line in unreachable:
        click.echo(f"error: could not refetch {line}", err=True)
    sys.exit(1 if unreachable else 0)


@dlq_group.command("resolve")
@click.argument("ids", nargs=-1, required=True)
@click.option("--note", default="resolved by an operator", show_default=True)
@_fail_cleanly
def dlq_resolve(ids: tuple[str, ...], note: str) -> None:
    """Mark DLQ records resolved without reprocessing them."""
    import sqlalchemy as sa

    from sync_pipelines.lib import schema

    wanted = _dlq_ids(ids)
    prepare()
    t = schema.failed_records
    with db.get_engine().begin() as conn:
        open_ids = set(conn.execute(sa.select(t.c.id).where(t.c.id.in_(wanted), t.c.resolved_at.is_(None))).scalars())
        missing = [str(i) for i in wanted if i not in open_ids]
        if missing:
            raise OperatorError(f"no open DLQ record {', '.join(missing)} (see `sync-pipelines dlq list`)")
        count = conn.execute(
            sa.update(t).where(t.c.id.in_(wanted), t.c.resolved_at.is_(None))
            .values(status="resolved", resolved_at=sa.func.now(), resolution=note, updated_at=sa.func.now())
        ).rowcount  # fmt: skip
    click.echo(f"resolved {count} record(s)")


def _dlq_ids(ids: tuple[str, ...]) -> list[Any]:
    import uuid

    out = []
    for value in ids:
        try:
            out.append(uuid.UUID(value))
        except ValueError:
            raise OperatorError(f"{value!r} is not a DLQ record id (a UUID, as `dlq list` prints)") from None
    return out


# ----------------------------------------------------------------------------------------------
# sandbox
# ----------------------------------------------------------------------------------------------


def _sandbox_url() -> str:
    """The sandbox the sources' base URLs point at (where `make dev` and the demo serve it), else the default."""
    from sync_pipelines import local_stack

    return local_stack.sandbox_url()


_SANDBOX_URL = click.option("--url", default=_sandbox_url, show_default="the sources' local sandbox, 127.0.0.1:8900")


@main.group("sandbox")
@_fail_cleanly
def sandbox_group() -> None:
    """The built-in simulators of every source, over real HTTP on 127.0.0.1."""
    from sync_pipelines.lib import modes

    modes.refuse_in_production("the sandbox")


def _parse_faults(specs: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """`fub:rate_limit_storm=5` -> {"fub": {"rate_limit_storm": "5"}}."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        source, _, assignment = spec.partition(":")
        key, eq, value = assignment.partition("=")
        if not source or not eq or not key:
            raise click.BadParameter(f"{spec!r}: expected SOURCE:FAULT=VALUE, e.g. fub:rate_limit_storm=5")
        out.setdefault(source, {})[key] = value
    return out


@sandbox_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True)
@click.option("--seed", default=42, show_default=True, help="Same seed, same data.")
@click.option("--scale", default=200, show_default=True, help="Records of the main entity per account.")
@click.option("--webhook-speed", default=1.0, show_default=True, help="Divide webhook redelivery delays by this.")
@click.option("--fault", "faults", multiple=True, help="SOURCE:FAULT=VALUE, repeatable (see `sandbox faults`).")
def sandbox_serve(host: str, port: int, seed: int, scale: int, webhook_speed: float, faults: tuple[str, ...]) -> None:
    """Serve every simulator under one port and print base URLs and demo credentials."""
    import json

    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    sandbox = Sandbox(seed=seed, scale=scale, webhook_speed=webhook_speed)
    for source, values in _parse_faults(faults).items():
        if source not in sandbox.simulators:
            raise click.BadParameter(f"unknown source {source!r}; known: {', '.join(sandbox.simulators)}")
        try:
            sandbox[source].faults.update(values)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    server = SandboxServer(sandbox, host=host, port=port)
    click.echo(f"sandbox on {server.url} (seed {seed}, scale {scale}); admin API at {server.url}/_sandbox/info")
    for name, simulator in sandbox.simulators.items():
        click.echo(f"  {name:<9} {simulator.base_url}")
        click.echo(f"            credentials: {json.dumps(simulator.credentials())}")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _admin(url: str, method: str, path: str, body: dict | None = None) -> dict:
    import requests

    try:
        response = requests.request(method, f"{url}/_sandbox/{path}", json=body, timeout=10)
    except requests.ConnectionError:
        raise click.ClickException(
            f"no sandbox answers at {url}: start one with `sync-pipelines sandbox serve`"
        ) from None
    if response.status_code >= 400:
        raise click.ClickException(response.json().get("error", response.text))
    return response.json()


@sandbox_group.command("fault")
@click.argument("source")
@click.argument("assignments", nargs=-1)
@click.option("--reset", is_flag=True, help="Switch every fault of SOURCE off first.")
@_SANDBOX_URL
def sandbox_fault(source: str, assignments: tuple[str, ...], reset: bool, url: str) -> None:
    """Switch faults of a running sandbox: `sandbox fault fub rate_limit_storm=5 malformed_rate=0.01`."""
    import json

    if reset:
        _admin(url, "DELETE", f"{source}/faults")
    values = _parse_faults(tuple(f"{source}:{a}" for a in assignments)).get(source, {})
    click.echo(json.dumps(_admin(url, "POST", f"{source}/faults", values), indent=2))


@sandbox_group.command("faults")
def sandbox_faults() -> None:
    """List the faults every simulator understands."""
    from sync_pipelines.sandbox.faults import Faults

    for name in Faults.names():
        click.echo(name)


@sandbox_group.command("advance")
@click.argument("seconds", type=float)
@_SANDBOX_URL
def sandbox_advance(seconds: float, url: str) -> None:
    """Move the sources' clock: they create, update and delete records as time passes."""
    click.echo(_admin(url, "POST", "clock/advance", {"seconds": seconds})["now"])


@sandbox_group.command("info")
@_SANDBOX_URL
def sandbox_info(url: str) -> None:
    """Counts per source and entity, credentials and the clock of a running sandbox."""
    import json

    click.echo(json.dumps(_admin(url, "GET", "info"), indent=2))


def _register_groups() -> None:
    from sync_pipelines.cli_background import background_group
    from sync_pipelines.cli_webhooks import webhooks_group

    main.add_command(webhooks_group)
    main.add_command(background_group)


_register_groups()

if __name__ == "__main__":
    main()
