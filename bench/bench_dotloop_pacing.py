"""Rate-limit pacing of the DotLoop client against the sandbox's real limit: 100 requests per sliding minute per user.

DotLoop sends `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (the milliseconds left until the
window frees a request) on every response; the client (`defs/dotloop/client.py: ResetPacer`) spreads the requests
it has left over that time once fewer than 15% remain, and waits for it at none left.

One user (`acme`, the sandbox at scale BENCH_DOTLOOP_LOOPS loops in its default profile, so the walk never runs out)
walks its loops (`window_pages("loops")`: 100 loops with their details per request) for BENCH_DOTLOOP_SECONDS (150)
seconds of wall time; tokens are held in memory (no warehouse). Reported:
- share of the allowance used: calls made / the most a sliding window allows from an idle start over the elapsed
  time, limit x (floor(elapsed / window) + 1);
- the calls answered in each window-long slice of the run, from the first call (at most the limit each);
- 429s: their number and their share of all calls.
"""

from __future__ import annotations

import math
import os
import platform
import time
from datetime import UTC, datetime

SECONDS = float(os.environ.get("BENCH_DOTLOOP_SECONDS", "150"))
LOOPS = int(os.environ.get("BENCH_DOTLOOP_LOOPS", "100000"))


def main() -> None:
    from sync_pipelines.defs.dotloop.client import DotLoopClient
    from sync_pipelines.defs.dotloop.resources import sandbox_resource
    from sync_pipelines.defs.dotloop.tokens import MemoryTokens
    from sync_pipelines.sandbox.app import Sandbox, SandboxServer

    sandbox = Sandbox(seed=11, scale=LOOPS, sources=["dotloop"])
    simulator = sandbox["dotloop"]
    limit, window = simulator.rate_limits["global"]
    with SandboxServer(sandbox) as server:
        resource = sandbox_resource(server.url)
        endpoint = resource.token_endpoint()
        tokens = endpoint.exchange_code(simulator.issue_code("acme"))  # type: ignore[attr-defined]
        client = DotLoopClient(resource.api_url, endpoint, MemoryTokens(tokens))
        started = time.monotonic()
        records = 0
        while time.monotonic() - started < SECONDS:
            for page in client.window_pages("loops", None, None, None):
                records += len(page.records)
                if time.monotonic() - started >= SECONDS:
                    break
        elapsed = time.monotonic() - started
    calls = [c for c in client.calls if c.method == "GET"]
    ok = sum(1 for c in calls if c.status == 200)
    refused = sum(1 for c in calls if c.status == 429)
    first = calls[0].requested_at
    slices = [0] * (math.floor(elapsed / window) + 1)
    for call in calls:
        if call.status == 200 and call.requested_at is not None and first is not None:
            slices[min(len(slices) - 1, int((call.requested_at - first).total_seconds() // window))] += 1
    allowance = limit * len(slices)
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()} {os.cpu_count()} cores")
    print(f"dotloop pacing: {records} loops, {len(calls)} calls ({ok} answered, {refused} 429) in {elapsed:.1f} s "
          f"against {limit}/{window:.0f} s per user")  # fmt: skip
    waited = client.stats.waited_seconds
    print(f"dotloop pacing: {ok / allowance:.1%} of the allowance ({ok} of {allowance} an idle start allows); "
          f"answered per {window:.0f} s slice {slices}; "
          f"429s {refused} = {refused / len(calls):.2%} of calls; waited {waited:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
