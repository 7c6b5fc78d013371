"""The webhook receiver under a burst: accepted webhooks per second, p50/p99 accept latency.

A fresh database on the warehouse's server (embedded Postgres by default), one FUB account, the receiver
(`sync_pipelines.webhooks_app.serve`, exactly what `sync-pipelines webhooks serve` runs: uvicorn, one process)
in a spawned child, and a load generator in this process: BENCH_WEBHOOKS_REQUESTS (default 2,000) distinct
FUB events, each signed as FUB signs, sent at once over BENCH_WEBHOOKS_CONNECTIONS keep-alive HTTP/1.1
connections (a comma-separated list, each measured in turn against the same receiver; default 16,32,64).
A request's latency is from its first byte sent to the whole response read; every 202 means the event was
committed. Each run checks that exactly BENCH_WEBHOOKS_REQUESTS rows landed. Then the same burst is sent
again: all duplicates (200).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import multiprocessing
import os
import socket
import statistics
import time
import uuid

import orjson
import psycopg

from sync_pipelines.lib import accounts, db, migrations

SYSTEM_KEY = "fub_sandbox_system_key"
DATABASE = "bench_webhooks"


def _serve(url: str, port: int) -> None:
    from sync_pipelines.webhooks_app import serve

    serve("127.0.0.1", port, url, log_level="warning")  # what `sync-pipelines webhooks serve` runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(port: int, n: int, run: str) -> bytes:
    body = orjson.dumps({"eventId": f"{run}-{n}", "eventCreated": "2024-05-01T10:00:00+00:00",
                         "event": "peopleUpdated", "resourceIds": [n],
                         "uri": f"https://api.followupboss.com/v1/people?id={n}"})  # fmt: skip
    signature = hmac.new(SYSTEM_KEY.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()
    head = (
        f"POST /webhooks/fub/acme HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"FUB-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def _burst(port: int, requests: list[bytes], connections: int) -> tuple[float, list[float], dict[int, int]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty():
                raw = queue.get_nowait()
                started = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, latencies, statuses


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    total = int(os.environ.get("BENCH_WEBHOOKS_REQUESTS", "2000"))
    counts = [int(c) for c in os.environ.get("BENCH_WEBHOOKS_CONNECTIONS", "16,32,64").split(",") if c.strip()]
    db.ensure_databases()
    db.ensure_database(DATABASE)
    url = db.server_url(DATABASE)
    with psycopg.connect(db.libpq_uri(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bridge, staging, core CASCADE")
        conn.execute("DROP TABLE IF EXISTS alembic_version")
    migrations.upgrade(url)
    accounts.upsert_account(db.get_engine(url), "fub", "acme", {"api_key": "fub_sandbox_key_acme"})
    port = _free_port()
    env_key = os.environ.pop("SYNC_FUB_SYSTEM_KEY", None)
    child = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(db.render_secret_url(url), port), daemon=True
    )
    child.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("receiver did not start") from None
                time.sleep(0.1)
        for connections in counts:
            run = uuid.uuid4().hex[:8]
            # Warm up: the pool's connections and the account cache.
            asyncio.run(_burst(port, [_request(port, n, f"warm{run}") for n in range(200)], connections))
            burst = [_request(port, n, run) for n in range(total)]
            for label in ("new events", "duplicates"):
                elapsed, latencies, statuses = asyncio.run(_burst(port, burst, connections))
                print(
                    f"{label:10}: {total} requests over {connections} connections in {elapsed:.2f} s = "
                    f"{total / elapsed:,.0f}/s; latency p50 {_percentile(latencies, 50) * 1000:.1f} ms, "
                    f"p99 {_percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
                    f"statuses {dict(sorted(statuses.items()))}; mean {statistics.mean(latencies) * 1000:.1f} ms"
                )
            with psycopg.connect(db.libpq_uri(url)) as conn:
                stored = conn.execute(
                    "SELECT count(*) FROM bridge.webhook_events WHERE event_id LIKE %s", (f"{run}-%",)
                ).fetchone()
            print(f"stored: {stored[0] if stored else 0} of {total} (each exactly once)")
    finally:
        child.terminate()
        child.join(10)
        if env_key is not None:
            os.environ["SYNC_FUB_SYSTEM_KEY"] = env_key


if __name__ == "__main__":
    main()
