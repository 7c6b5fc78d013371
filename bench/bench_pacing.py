"""Rate-limit pacing: a FUB sync against the sandbox's real limit (250 requests per sliding 10 s).

Goal (issue 5): use >= 90% of the allowed rate while fewer than 1% of calls get 429.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime

PAGES = int(os.environ.get("BENCH_PACING_PAGES", "1000"))


def main() -> None:
    from sync_pipelines.defs.fub.client import FubClient
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    sandbox = Sandbox(seed=11, scale=PAGES * 100, sources=["fub"])
    limit, window = sandbox["fub"].rate_limits["global"]
    with SandboxServer(sandbox) as server:
        client = FubClient(f"{server.url}/fub", "fub_sandbox_key_acme", "SyncPipelines", "fub_sandbox_system_key")
        started = time.monotonic()
        records = sum(len(page.records) for page in client.window_pages("people", None, None, None))
        elapsed = time.monotonic() - started
    allowed = limit / window
    achieved = client.stats.api_calls / elapsed
    share_429 = client.stats.rate_limited / client.stats.api_calls
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} {os.cpu_count()} cores")
    calls = client.stats.api_calls
    print(f"pacing: {records} records, {calls} calls in {elapsed:.1f} s against {limit}/{window:.0f} s")
    print(f"pacing: {achieved:.1f} calls/s = {achieved / allowed:.1%} of the allowed {allowed:.1f}/s "
          f"(goal >= 90%); 429s: {client.stats.rate_limited} = {share_429:.2%} of calls (goal < 1%)")  # fmt: skip


if __name__ == "__main__":
    main()
