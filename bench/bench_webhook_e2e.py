"""Webhook end to end: from the FUB sandbox emitting a signed webhook to the changed row visible in core.

Every part is the real one, each in its own process as `make dev` runs them, on a fresh database
(BENCH_WEBHOOK_E2E_DATABASE, default `bench_webhook_e2e`, dropped and created again; Dagster's storage in
`<that>_dagster`) on the project's Postgres (embedded by default): the FUB sandbox (`sync-pipelines sandbox
serve`, FUB's default rate limit of 250 requests per 10 s), the webhook receiver (`sync-pipelines webhooks
serve`), and `dagster-webserver` + `dagster-daemon run` on the project's workspace.yaml and dagster.yaml
(Postgres storage, queued runs). Setup: one FUB account (`acme`) is added as `accounts add` does, its
BENCH_WEBHOOK_E2E_PEOPLE people (default 2,000) are backfilled into core, and a `peopleUpdated` webhook is
registered at the sandbox pointing at the receiver. The FUB delta schedule is moved out of the way
(BENCH_WEBHOOK_E2E_DELTA_CRON, default never), so every change measured reaches core through the webhook path;
so are the other sources' deltas and re-walks (they have no account here, but six runs starting on the same minute
would measure the machine, not the path); the platform and ERP schedules and every sensor run as configured.

One event: this process asks the sandbox's admin API (`POST /_sandbox/fub/mutate`) to change one person (stage,
price, tags; `updated` moves to the step's time `at`), and the sandbox sends the signed `peopleUpdated` webhook
for it, as FUB would. t0 is taken just before that request. A poller (every BENCH_WEBHOOK_E2E_POLL seconds,
default 0.1) reads core.fub_people; t1 is the end of the first poll that returns the person with
`_source_updated_at >= at` (so a latency is over-stated by at most one poll). Latency = t1 - t0.

Phases, one after the other: steady, BENCH_WEBHOOK_E2E_RATE events per second (default 20) for
BENCH_WEBHOOK_E2E_SECONDS (default 300), people taken in turn; then a burst of BENCH_WEBHOOK_E2E_BURST events
(default 1,000, distinct people) sent as fast as the sandbox takes them (4 client threads; the sandbox delivers
webhooks on 4 threads). Three warm-up events before the steady phase (until Dagster's code servers are up) are not
counted. A phase ends when all its changes are visible or BENCH_WEBHOOK_E2E_DRAIN seconds (default 120) after its
last event. Reported per phase: p50, p95, max, count; lost (never visible); applied twice (more than one UPDATE
audit row for one person at one `at`); where the time went, per event, from the receiver's `received_at`, the
Dagster run that applied it (the audit row's batch -> sync_batches.dagster_run_id), that run's creation (the
sensor's request) and its STARTING / START events in Dagster's event log; and the pipeline's own share, from the
receiver's 202 to visible. Then the queue's statuses, the webhook runs' statuses and the duplicate natural keys in
core.fub_people.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests
from sqlalchemy.engine import URL

from sync_pipelines.lib import db, migrations
from sync_pipelines_tests.e2e.helpers import VENV_BIN, ChildProcess, child_processes, free_port

DATABASE = os.environ.get("BENCH_WEBHOOK_E2E_DATABASE", "bench_webhook_e2e")
ACCOUNT = "acme"
NEVER = "0 0 29 2 *"  # Feb 29 at midnight
WEBHOOK_JOB = "fub_webhook_apply"
STARTUP_SECONDS = 300.0


@dataclass
class Event:
    phase: str
    person: int
    at: datetime  # the person's new `updated` at the source
    t0: float
    t1: float | None = None


def _knobs() -> dict[str, float]:
    env = os.environ.get
    knobs = {
        "seconds": float(env("BENCH_WEBHOOK_E2E_SECONDS", "300")),
        "rate": float(env("BENCH_WEBHOOK_E2E_RATE", "20")),
        "burst": int(env("BENCH_WEBHOOK_E2E_BURST", "1000")),
        "poll": float(env("BENCH_WEBHOOK_E2E_POLL", "0.1")),
        "drain": float(env("BENCH_WEBHOOK_E2E_DRAIN", "120")),
    }
    knobs["people"] = int(env("BENCH_WEBHOOK_E2E_PEOPLE", str(max(2000, int(knobs["burst"])))))
    if knobs["people"] < knobs["burst"]:
        raise SystemExit("BENCH_WEBHOOK_E2E_PEOPLE must be at least BENCH_WEBHOOK_E2E_BURST (distinct people)")
    return knobs


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


class Watcher(threading.Thread):
    """Polls core.fub_people for the people of outstanding events; stamps t1 when a change shows."""

    def __init__(self, url: str, account_id: object, interval: float) -> None:
        super().__init__(name="e2e-watcher", daemon=True)
        self._url = url
        self._account_id = account_id
        self._interval = interval
        self._outstanding: dict[str, list[Event]] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.polls = 0

    def watch(self, event: Event) -> None:
        with self._lock:
            self._outstanding.setdefault(str(event.person), []).append(event)

    def outstanding(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._outstanding.values())

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._halt.is_set():
                started = time.monotonic()
                with self._lock:
                    people = list(self._outstanding)
                if people:
                    rows = conn.execute(
                        "SELECT source_id, _source_updated_at FROM core.fub_people "
                        "WHERE account_id = %s AND source_id = ANY(%s)",
                        (self._account_id, people),
                    ).fetchall()
                    seen = time.time()
                    self.polls += 1
                    with self._lock:
                        for source_id, updated in rows:
                            waiting = self._outstanding.get(source_id, [])
                            for event in [e for e in waiting if updated is not None and updated >= e.at]:
                                event.t1 = seen
                                waiting.remove(event)
                            if not waiting:
                                self._outstanding.pop(source_id, None)
                self._halt.wait(max(0.0, self._interval - (time.monotonic() - started)))


class Sandbox:
    """The admin API of the sandbox process: change one person, which emits its signed webhook."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def change(self, phase: str, person: int) -> Event:
        t0 = time.time()
        response = self._session().post(
            f"{self.url}/_sandbox/fub/mutate",
            json={"account": ACCOUNT, "entity": "people", "updates": 1, "update_ids": [person]},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        if body["updated"] != [person]:
            raise RuntimeError(f"the sandbox changed {body['updated']}, not person {person}")
        return Event(phase, person, _parse_time(body["at"]), t0)


def _fresh_databases() -> URL:
    db.ensure_databases()
    maintenance = db.warehouse_url(None) if db.configured_url() is not None else db.server_url("postgres", None)
    with psycopg.connect(db.libpq_uri(maintenance), autocommit=True) as conn:
        for name in (DATABASE, f"{DATABASE}_dagster"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    url = db.server_url(DATABASE)
    migrations.upgrade(url)
    return url


def _wait(probe: Callable[[], object], timeout: float, what: str, children: list[ChildProcess]) -> object:
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited while waiting for {what}\n{child.tail()}")
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(c.tail() for c in children)
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s\n{tails}")
        time.sleep(0.25)


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _run_phase(
    sandbox: Sandbox, watcher: Watcher, phase: str, people: list[int], rate: float | None, drain: float
) -> tuple[list[Event], float]:
    """Emit one event per person (at `rate` per second, or as fast as the sandbox answers); wait for core."""
    events: list[Event] = []
    started = time.monotonic()
    if rate:
        for n, person in enumerate(people):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event = sandbox.change(phase, person)
            watcher.watch(event)
            events.append(event)
    else:
        with ThreadPoolExecutor(4) as pool:
            for event in pool.map(lambda p: sandbox.change(phase, p), people):
                watcher.watch(event)
                events.append(event)
    emitted = time.monotonic() - started
    deadline = time.monotonic() + drain
    while any(e.t1 is None for e in events) and time.monotonic() < deadline:
        time.sleep(0.2)
    return events, emitted


def _dagster_runs(dagster_url: str) -> dict[str, dict[str, float]]:
    """Per run of the webhook job: its status and the times of its lifecycle events (epoch seconds)."""
    out: dict[str, dict[str, float]] = {}
    with psycopg.connect(dagster_url) as conn:
        for run_id, status, created in conn.execute(
            "SELECT run_id, status, create_timestamp FROM runs WHERE pipeline_name = %s", (WEBHOOK_JOB,)
        ).fetchall():
            # A run the coordinator launched as the sensor submitted it was never enqueued: its creation is the request.
            out[run_id] = {"status": status, "created": created.replace(tzinfo=UTC).timestamp()}  # type: ignore[dict-item]
        rows = conn.execute(
            "SELECT run_id, dagster_event_type, min(timestamp) FROM event_logs "
            "WHERE run_id = ANY(%s) AND dagster_event_type IN "
            "('PIPELINE_ENQUEUED', 'PIPELINE_STARTING', 'PIPELINE_START', 'PIPELINE_SUCCESS', 'PIPELINE_FAILURE') "
            "GROUP BY run_id, dagster_event_type",
            (list(out),),
        ).fetchall()
    for run_id, kind, at in rows:
        out[run_id][kind.removeprefix("PIPELINE_").lower()] = at.replace(tzinfo=UTC).timestamp()
    return out


def _report(label: str, events: list[Event], emitted: float, details: dict) -> None:
    seen = [e for e in events if e.t1 is not None]
    latencies = [e.t1 - e.t0 for e in seen]  # type: ignore[operator]
    lost = len(events) - len(seen)
    twice = sum(1 for e in events if details["audits"].get((str(e.person), e.at), 0) > 1)
    if latencies:
        figures = (
            f"p50 {_percentile(latencies, 50):.2f} s, p95 {_percentile(latencies, 95):.2f} s, "
            f"max {max(latencies):.2f} s"
        )
    else:
        figures = "no event became visible"
    print(
        f"{label:6}: {len(events)} events emitted in {emitted:.1f} s ({len(events) / emitted:,.1f}/s); "
        f"latency {figures}; count {len(seen)}, lost {lost}, applied twice {twice}"
    )
    # Where the time went, per event: each step from the stores' own timestamps.
    steps: dict[str, list[float]] = {
        "emit->accepted": [],
        "accepted->run requested": [],
        "requested->launching": [],
        "launching->run started": [],
        "run started->visible": [],
    }
    runs_used: set[str] = set()
    via_other = superseded = 0
    for event in seen:
        key = (str(event.person), event.at)
        received = details["received"].get(key)
        if key not in details["applied_by"]:
            superseded += 1  # that version never reached core: a newer change of the person overtook it
            continue
        run_id = details["applied_by"][key]
        run = details["runs"].get(run_id or "")
        if run is None:
            via_other += 1  # written by a batch of something other than a webhook run
            continue
        runs_used.add(run_id)  # type: ignore[arg-type]
        if received is not None:
            steps["emit->accepted"].append(received - event.t0)
        if received is not None:
            steps["accepted->run requested"].append(run["created"] - received)
        if "starting" in run:
            steps["requested->launching"].append(run["starting"] - run["created"])
        if "starting" in run and "start" in run:
            steps["launching->run started"].append(run["start"] - run["starting"])
        if "start" in run:
            steps["run started->visible"].append(event.t1 - run["start"])  # type: ignore[operator]
    parts = ", ".join(f"{name} {_percentile(v, 50):.2f}/{_percentile(v, 95):.2f}" for name, v in steps.items() if v)
    print(f"        where the time goes, p50/p95 s: {parts}")
    # The pipeline's own share: from the receiver's commit of the event (its 202) to the row in core.
    accepted = [
        e.t1 - details["received"][key]  # type: ignore[operator]
        for e in seen
        if (key := (str(e.person), e.at)) in details["received"]
    ]
    if accepted:
        print(
            f"        accepted->visible (without the sandbox's delivery): p50 {_percentile(accepted, 50):.2f} s, "
            f"p95 {_percentile(accepted, 95):.2f} s, max {max(accepted):.2f} s"
        )
    durations = [
        details["runs"][r]["success"] - details["runs"][r]["start"]
        for r in runs_used
        if "success" in details["runs"][r] and "start" in details["runs"][r]
    ]
    per_run = len(seen) / max(len(runs_used), 1)
    print(
        f"        {len(runs_used)} webhook runs applied them ({per_run:.0f} events per run; run start->success "
        f"p50 {statistics.median(durations) if durations else float('nan'):.2f} s); applied by another job "
        f"{via_other}; overtaken by a newer change {superseded}"
    )


@dataclass(frozen=True)
class Ports:
    sandbox: int
    receiver: int
    webserver: int

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox}"


_ENVIRONMENT = ("SYNC_DATABASE_URL", "SYNC_DAGSTER_DATABASE", "DAGSTER_HOME", "SYNC_DAGSTER_PG_URL",
                "SYNC_FUB_SYSTEM_KEY", "SYNC_FUB_BASE_URL", "SYNC_FUB_DELTA_CRON")  # fmt: skip


def main() -> None:
    knobs = _knobs()
    from sync_pipelines import registry

    # Every other scheduled run moved out of the way too: six sources' deltas starting on the same minute saturate
    # two cores for half a minute (measured: webhook batches waited up to 12 s in the queue at each :x0/:x5).
    schedules = [
        name
        for integration in registry.INTEGRATIONS.values()
        for name in (integration.delta_cron_env, integration.rewalk_cron_env)
        if name and name != "SYNC_FUB_DELTA_CRON"
    ]
    saved = {key: os.environ.get(key) for key in (*_ENVIRONMENT, *schedules)}
    for name in schedules:
        os.environ[name] = NEVER
    home = Path(tempfile.mkdtemp(prefix="bench_webhook_e2e_"))
    try:
        url = _fresh_databases()
        ports = Ports(free_port(), free_port(), free_port())
        # From here on this process and every child see the bench's databases, as `make dev` would its own.
        os.environ["SYNC_DATABASE_URL"] = db.libpq_uri(url)
        os.environ["SYNC_DAGSTER_DATABASE"] = f"{DATABASE}_dagster"
        (home / "dagster_home").mkdir()
        shutil.copyfile(db.PROJECT_ROOT / "dagster.yaml", home / "dagster_home" / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
        os.environ.pop("SYNC_FUB_SYSTEM_KEY", None)  # the sandbox signs with its demo key
        os.environ["SYNC_FUB_BASE_URL"] = f"{ports.sandbox_url}/fub"
        os.environ["SYNC_FUB_DELTA_CRON"] = os.environ.get("BENCH_WEBHOOK_E2E_DELTA_CRON", NEVER)
        db.export_dagster_env()
        _measure(knobs, url, home, ports)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if os.environ.get("BENCH_WEBHOOK_E2E_KEEP_LOGS"):
            print(f"logs  : kept in {home / 'logs'}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def _measure(knobs: dict[str, float], url: URL, home: Path, ports: Ports) -> None:
    import dagster as dg

    from sync_pipelines import operations
    from sync_pipelines.defs.fub.declaration import FUB
    from sync_pipelines.defs.fub.resources import FubResource
    from sync_pipelines.lib.integration import sync as fub_sync
    from sync_pipelines.sandbox.fub import ACCOUNTS, SYSTEM, SYSTEM_KEY

    people_total = int(knobs["people"])
    env = {**os.environ, "DAGSTER_TELEMETRY_DISABLED": "1", "PYTHONUNBUFFERED": "1"}
    cli = str(VENV_BIN / "sync-pipelines")
    workspace = str(db.PROJECT_ROOT / "workspace.yaml")
    logs = home / "logs"
    logs.mkdir()
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC; machine: {platform.node()}, {os.cpu_count()} cores; "
          f"{_load()}; knobs: {knobs}")  # fmt: skip
    with child_processes() as started:
        serve_sandbox = [cli, "sandbox", "serve", "--port", str(ports.sandbox), "--scale", str(people_total)]
        started.append(ChildProcess("sandbox", serve_sandbox, env, logs))
        started.append(ChildProcess("receiver", [cli, "webhooks", "serve", "--port", str(ports.receiver)], env, logs))
        # Dagster's tables exist before two processes start on the empty storage database.
        with dg.DagsterInstance.get() as instance:
            instance.get_runs_count()
            api_key = ACCOUNTS[ACCOUNT][0]
            account = operations.add_account(instance, FUB, ACCOUNT, {"api_key": api_key})  # as `accounts add` does
        web = [str(VENV_BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(ports.webserver)]
        started.append(ChildProcess("webserver", web, env, logs))
        started.append(ChildProcess("daemon", [str(VENV_BIN / "dagster-daemon"), "run", "-w", workspace], env, logs))
        _wait(lambda: _http_ok(f"{ports.sandbox_url}/_sandbox/info"), 120, "the sandbox", started)
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ports.receiver}/healthz"), 120, "the receiver", started)

        # Onboarding: the account's people into core through the product's backfill, then the subscription.
        engine = db.get_engine(url)
        fub = FubResource(base_url=f"{ports.sandbox_url}/fub")
        began = time.monotonic()
        report = fub_sync.backfill(engine, FUB, lambda a: fub.client_for(engine, a), account, "people", None)
        print(f"setup : backfilled {report.counts.fetched} people in {time.monotonic() - began:.1f} s")
        requests.post(
            f"{ports.sandbox_url}/fub/v1/webhooks",
            json={"event": "peopleUpdated", "url": f"http://127.0.0.1:{ports.receiver}/webhooks/fub/{ACCOUNT}"},
            auth=(api_key, ""),
            headers={"X-System": SYSTEM, "X-System-Key": SYSTEM_KEY},
            timeout=10,
        ).raise_for_status()
        _wait(lambda: _http_ok(f"http://127.0.0.1:{ports.webserver}/server_info"), STARTUP_SECONDS, "the webserver",
              started)  # fmt: skip

        sandbox = Sandbox(ports.sandbox_url)
        watcher = Watcher(db.libpq_uri(url), account.id, knobs["poll"])
        watcher.start()
        try:
            # Warm-up, not counted: the daemon's code server loads and the sensor starts ticking.
            began = time.monotonic()
            warm = [sandbox.change("warm-up", p) for p in (1, 2, 3)]
            for event in warm:
                watcher.watch(event)
            _wait(lambda: all(e.t1 is not None for e in warm), STARTUP_SECONDS, "the warm-up events in core", started)
            print(f"setup : Dagster up, first webhooks in core after {time.monotonic() - began:.1f} s; {_load()}")

            steady_count = int(knobs["seconds"] * knobs["rate"])
            steady_people = [n % people_total + 1 for n in range(steady_count)]
            steady = _run_phase(sandbox, watcher, "steady", steady_people, knobs["rate"], knobs["drain"])
            print(f"phase : steady done; {_load()}")
            burst_people = [(steady_count + n) % people_total + 1 for n in range(int(knobs["burst"]))]
            burst = _run_phase(sandbox, watcher, "burst", burst_people, None, knobs["drain"])
            print(f"phase : burst done; {_load()}")
        finally:
            watcher.stop()
        time.sleep(2)  # the last runs write their success events
        details = _collect(url, account.id)
    _report("steady", *steady, details)
    _report("burst", *burst, details)
    print(
        f"queue : {dict(sorted(details['statuses'].items()))}; events retried {details['retried']}; "
        f"webhook runs {dict(sorted(details['run_statuses'].items()))}; "
        f"duplicate natural keys in core.fub_people {details['duplicates']}; {watcher.polls} polls"
    )


def _collect(url: str, account_id: object) -> dict:
    """What the stores recorded: receipt times, which run applied which version, audit counts, run events."""
    received: dict[tuple[str, datetime], float] = {}
    statuses: dict[str, int] = {}
    retried = 0
    with psycopg.connect(db.libpq_uri(url)) as conn:
        for person, created, at, status, attempts in conn.execute(
            "SELECT payload->'resourceIds'->>0, payload->>'eventCreated', received_at, status, attempts "
            "FROM bridge.webhook_events WHERE integration = 'fub'"
        ).fetchall():
            received[(person, _parse_time(created))] = at.timestamp()
            statuses[status] = statuses.get(status, 0) + 1
            retried += attempts > 1
        audits: dict[tuple[str, datetime], int] = {}
        applied_by: dict[tuple[str, datetime], str | None] = {}
        for source_id, updated, run_id in conn.execute(
            "SELECT a.source_id, a.new_value->>'_source_updated_at', b.dagster_run_id FROM bridge.audit_log a "
            "LEFT JOIN bridge.sync_batches b ON b.id = a.batch_id "
            "WHERE a.action = 'UPDATE' AND a.account_id = %s",
            (account_id,),
        ).fetchall():
            key = (source_id, _parse_time(updated))
            audits[key] = audits.get(key, 0) + 1
            applied_by.setdefault(key, run_id)
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM core.fub_people GROUP BY account_id, source_id HAVING count(*) > 1) d"
        ).fetchone()
    runs = _dagster_runs(db.libpq_uri(db.server_url(f"{DATABASE}_dagster")))
    run_statuses: dict[str, int] = {}
    for run in runs.values():
        run_statuses[str(run["status"])] = run_statuses.get(str(run["status"]), 0) + 1
    return {
        "received": received,
        "statuses": statuses,
        "retried": retried,
        "audits": audits,
        "applied_by": applied_by,
        "runs": runs,
        "run_statuses": run_statuses,
        "duplicates": duplicates[0] if duplicates else 0,
    }


if __name__ == "__main__":
    main()
