"""What every source simulator shares: faults, rate limits, error bodies, list envelopes, the clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.gen import HISTORY_END, stream_seed
from sync_pipelines.sandbox.ratelimit import Decision, SlidingWindowLimiter

if TYPE_CHECKING:
    from sync_pipelines.sandbox.app import Sandbox


class SandboxClock:
    """The sources' notion of now: starts where the generated history ends, moves only when told to."""

    def __init__(self, start: datetime = HISTORY_END) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def tick(self) -> datetime:
        """One second per mutation step, so each step's changes carry their own timestamp."""
        return self.advance(1)


def dumps(body: Any) -> bytes:
    """JSON as the sources write it: datetimes in UTC with a Z suffix, serialised in C by orjson."""
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


class Simulator:
    """One source system. Subclasses define routes, data, counts and mutations."""

    name: ClassVar[str]
    # Each context: (requests allowed, window seconds). Operators and benchmarks may raise them.
    default_rate_limits: ClassVar[dict[str, tuple[int, float]]] = {}
    webhook_retry_delays: ClassVar[tuple[float, ...]] = ()

    def __init__(self, sandbox: Sandbox, seed: int, scale: int) -> None:
        self.sandbox = sandbox
        self.seed = seed
        self.scale = scale
        self.stream = stream_seed(seed, self.name)
        self.faults = Faults()
        self.limiter = SlidingWindowLimiter()
        self.rate_limits = dict(self.default_rate_limits)
        self.subscriptions: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._burst_started = 0.0
        self._burst_size = 0

    # -- to implement -------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def credentials(self) -> dict[str, Any]:
        """Demo credentials, printed by `sandbox serve` and used by the demo and the tests."""
        raise NotImplementedError

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        """Live records per entity (optionally of one account and creation month YYYY-MM)."""
        raise NotImplementedError

    def mutate(
        self,
        account: str,
        entity: str,
        creates: int = 0,
        updates: int = 0,
        deletes: int = 0,
        update_ids: list[int] | None = None,
    ) -> dict:
        """Create, change and delete records now; `update_ids` picks which records change."""
        raise NotImplementedError

    def advance(self, seconds: float) -> None:
        """Called after the clock moved: make the activity a real source would have had meanwhile."""

    def error(self, status: int, message: str) -> Response:
        return json_response({"error": message}, status)

    # -- shared --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.sandbox.base_url}/{self.name}"

    def now(self) -> datetime:
        return self.sandbox.clock.now()

    def rate_headers(self, decision: Decision, context: str) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Window": str(int(decision.window_seconds)),
            "X-RateLimit-Context": context,
        }

    async def gate(self, credential: str, context: str = "global") -> tuple[Response | None, dict[str, str]]:
        """Faults and rate limits common to every request; returns (error response or None, headers)."""
        if self.faults.slow_requests > 0 and self.faults.take("slow_requests"):
            await asyncio.sleep(self.faults.slow_seconds)
        limit, window = self.rate_limits.get(context, self.rate_limits.get("global", (0, 1.0)))
        if self.faults.take("rate_limit_storm"):
            retry = self.faults.retry_after_seconds
            decision = Decision(False, limit, 0, window, retry, 0)
            headers = {**self.rate_headers(decision, context), "Retry-After": str(retry)}
            return self.too_many_requests(headers), headers
        decision = self.limiter.check((credential, context), limit, window)
        headers = self.rate_headers(decision, context)
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
            return self.too_many_requests(headers), headers
        number = self.faults.next_request_number()
        if self.faults.take("server_errors") or self.faults.random_server_error(number, self.stream):
            status = (500, 502, 503)[number % 3]
            return self.error(status, "Internal server error (sandbox fault)"), headers
        return None, headers

    def too_many_requests(self, headers: dict[str, str]) -> Response:
        response = self.error(429, "Too many requests, please retry after the time in Retry-After")
        response.headers.update(headers)
        return response

    def body(
        self, payload: Any, status: int = 200, headers: dict[str, str] | None = None, listing: bool = False
    ) -> Response:
        raw = dumps(payload)
        if listing and self.faults.take("truncated_pages"):
            raw = raw[: max(1, len(raw) // 2)]
        return Response(raw, status_code=status, headers=headers, media_type="application/json")

    def raw_body(
        self, raw: bytes, status: int = 200, headers: dict[str, str] | None = None, listing: bool = False
    ) -> Response:
        """Pre-serialised JSON, with the same truncated-page fault as `body`."""
        if listing and self.faults.take("truncated_pages"):
            raw = raw[: max(1, len(raw) // 2)]
        return Response(raw, status_code=status, headers=headers, media_type="application/json")

    def emit(self, url: str, payload: dict[str, Any], sign: Callable[[bytes], dict[str, str]], event_id: str) -> None:
        raw = dumps(payload)
        copies = 1 + max(0, self.faults.webhook_duplicates)
        delay = 0.0
        if self.faults.webhook_out_of_order:
            # Each event of a burst is held 0.1 s less than the one before it, so the burst arrives newest first
            # (0.1 s apart: the emitter delivers on several threads, so the gap is what keeps the order); a quiet
            # second resets the burst.
            now = time.monotonic()
            if now - self._burst_started > 1.0:
                self._burst_started, self._burst_size = now, 0
            self._burst_size += 1
            delay = max(0.0, 1.0 - 0.1 * self._burst_size)
        for _ in range(copies):
            self.sandbox.emitter.send(
                self.name, url, raw, sign, self.webhook_retry_delays, event_id=event_id, delay=delay
            )

    def after_page(self, account: str, entity: str, served_ids: list[int]) -> None:
        """Fault hooks: the source changes while a client pages through it."""
        if self.faults.insert_between_pages > 0:
            self.mutate(account, entity, creates=self.faults.insert_between_pages)
        if self.faults.change_between_pages > 0 and served_ids:
            self.mutate(account, entity, updates=self.faults.change_between_pages, update_ids=served_ids)


def query_param(request: Request, name: str, default: str | None = None) -> str | None:
    value = request.query_params.get(name)
    return default if value in (None, "") else value
