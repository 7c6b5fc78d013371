"""Sandbox throughput: FUB people served over real HTTP, in pages of 100, to a client in another process.

The sandbox must never be the bottleneck of a sync benchmark: target >= 100,000 records/s on 2 cores.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from datetime import UTC, datetime

RECORDS = int(os.environ.get("BENCH_SANDBOX_RECORDS", "300000"))
CLIENTS = int(os.environ.get("BENCH_SANDBOX_CLIENTS", "2"))


def _pin(core: int) -> None:
    # Server on one core, clients on the other: three processes migrating across two cores cost the
    # server ~30% of its throughput in cache misses, which would measure the scheduler, not the sandbox.
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {core})


def _serve(ready: multiprocessing.Queue, stop: multiprocessing.Event, scale: int) -> None:  # type: ignore[type-arg]
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    _pin(0)
    sandbox = Sandbox(seed=7, scale=scale, sources=["fub"])
    sandbox["fub"].rate_limits["global"] = (0, 10.0)  # unlimited: we measure the server, not the limit
    with SandboxServer(sandbox) as server:
        ready.put(server.url)
        stop.wait()


def _client(url: str, start: int, stop_at: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    # http.client rather than requests: requests costs ~1 ms per 68 KB page, which would measure the client.
    import base64
    import http.client
    from urllib.parse import urlsplit

    import orjson

    _pin(1)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    headers = {
        "Authorization": "Basic " + base64.b64encode(b"fub_sandbox_key_acme:").decode(),
        "X-System": "SyncPipelines",
        "X-System-Key": "fub_sandbox_system_key",
    }
    fetched = 0
    path: str | None = f"/fub/v1/people?limit=100&sort=id&idGreaterThan={start}&idLessThan={stop_at + 1}"
    while path:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = orjson.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body}")
        fetched += len(body["people"])
        next_link = body["_metadata"]["nextLink"]
        path = next_link[len(url) :] if next_link else None
    out.put(fetched)


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    server = ctx.Process(target=_serve, args=(ready, stop, RECORDS), daemon=True)
    server.start()
    url = ready.get(timeout=60)
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    share = RECORDS // CLIENTS
    clients = [
        ctx.Process(target=_client, args=(url, i * share, (i + 1) * share if i < CLIENTS - 1 else RECORDS, out))
        for i in range(CLIENTS)
    ]
    import psutil

    server_process = psutil.Process(server.pid)
    cpu_before = server_process.cpu_times()
    started = time.perf_counter()
    for c in clients:
        c.start()
    total = sum(out.get(timeout=600) for _ in clients)
    elapsed = time.perf_counter() - started
    cpu_after = server_process.cpu_times()
    server_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    for c in clients:
        c.join()
    stop.set()
    server.join(10)
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} {os.cpu_count()} cores")
    print(f"sandbox FUB people: {total} records in pages of 100 by {CLIENTS} client processes in {elapsed:.2f} s")
    print(f"sandbox throughput: {total / elapsed:,.0f} records/s (target >= 100,000)")
    print(
        f"sandbox server CPU: {server_cpu:.2f} s ({server_cpu / elapsed:.0%} of one core), "
        f"{server_cpu / total * 1e6:.1f} µs per record: capacity {total / server_cpu:,.0f} records per CPU-second"
    )
    assert total == RECORDS, f"fetched {total}, expected {RECORDS}"


if __name__ == "__main__":
    main()
