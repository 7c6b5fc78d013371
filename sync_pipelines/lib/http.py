"""HTTP for source APIs: keep-alive, retries with backoff and jitter, Retry-After, pacing, an audit of calls.

Source-agnostic: an integration's client subclasses ApiClient and adds its auth in `authorize`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies, get_netrc_auth
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from sync_pipelines.lib.call_log import CallLog, CallRecord

__all__ = ["ApiClient", "ApiError", "AuthError", "CallLog", "CallRecord", "CallStats", "TransientError"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A source answered with an error we must not retry (4xx other than 429)."""

    def __init__(self, status: int, message: str, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}: {message}")
        self.status = status
        self.message = message
        self.url = url


class AuthError(ApiError):
    """401/403: the credentials are wrong, revoked or the account is suspended."""


class TransientError(Exception):
    """Worth retrying: 5xx, a timeout, a broken connection or a body that is not valid JSON."""


@dataclass
class CallStats:
    api_calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    pages: int = 0
    bytes: int = 0
    waited_seconds: float = 0.0

    def as_metadata(self) -> dict[str, int | float]:
        return {
            "api_calls": self.api_calls,
            "rate_limited_429": self.rate_limited,
            "retries": self.retries,
            "pages": self.pages,
            "bytes": self.bytes,
            "rate_wait_seconds": round(self.waited_seconds, 2),
        }


@dataclass
class Pacer:
    """Spreads requests at the source's advertised rate once the window runs low, so a sync uses nearly
    all of its allowance while almost never hitting 429."""

    low_water: float = 0.15
    _next_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, stats: CallStats) -> None:
        with self._lock:
            delay = self._next_at - time.monotonic()
        if delay > 0:
            stats.waited_seconds += delay
            time.sleep(delay)

    def observe(self, headers: Mapping[str, str]) -> None:
        limit = _int(headers.get("X-RateLimit-Limit"))
        remaining = _int(headers.get("X-RateLimit-Remaining"))
        if not limit or remaining is None:
            return
        window = _float(headers.get("X-RateLimit-Window"))
        reset = _float(headers.get("X-RateLimit-Reset"))
        if window is None and reset is not None:
            window = max(reset - time.time(), 0.0) if reset > 1e9 else reset
        if window is None:
            window = 60.0
        now = time.monotonic()
        with self._lock:
            if remaining <= 0:
                self._next_at = now + (window / limit) * 2
            elif remaining < limit * self.low_water:
                self._next_at = now + window / limit
            else:
                self._next_at = 0.0


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Stands for "no .netrc entry" once that was looked up: requests then does not look again."""
    return request


class EnvironmentOnceSession(requests.Session):
    """A requests Session that reads the environment (proxy variables, `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE`,
    `.netrc`) once per scheme and host for its lifetime, where requests reads it on every request: about 0.45 ms
    a call, 5% of the fetch thread's time on a page of 100 CRM records (BENCHMARKS.md). The outcome is the same as
    requests' as long as the environment does not change under a running client. Redirects (rare) are resolved by
    requests as usual."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None, Any]] = {}
        self._environment_lock = threading.Lock()

    def _environment_of(self, url: str) -> tuple[dict[str, str], str | None, Any]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        found = self._environment.get(key)
        if found is None:
            with self._environment_lock:
                found = self._environment.get(key)
                if found is None:
                    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
                    found = (get_environ_proxies(url, no_proxy=None), bundle, get_netrc_auth(url) or _no_auth)
                    self._environment[key] = found
        return found

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if self.trust_env and not request.auth and not self.auth:
            request.auth = self._environment_of(request.url)[2]  # as requests would, from .netrc
        return super().prepare_request(request)

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if not self.trust_env or (proxies and "no_proxy" in proxies):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        env_proxies, bundle, _ = self._environment_of(url)
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = bundle or verify
        # The rest is requests' own merge with the session's settings.
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


class ApiClient:
    """One source's HTTP client. Subclasses set `integration` and implement `authorize`."""

    integration = "generic"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_rate_limited: int = 50,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_rate_limited = max_rate_limited
        self.sleep = sleep
        self.stats = CallStats()
        # Calls since the last drain_calls (a batch's metrics); every call also goes to call_log when set.
        self.calls: list[CallRecord] = []
        self._calls_lock = threading.Lock()
        self.call_log: CallLog | None = None
        self.entity: str | None = None  # what is being synced, for the call log
        self.pacer = Pacer()
        self.session = EnvironmentOnceSession()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def authorize(self, headers: dict[str, str]) -> None:
        """Add credentials to a request's headers."""

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        """GET a JSON body, retrying what is transient; 429s wait for Retry-After and do not use up attempts."""
        url = self.url(path)
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(
                initial=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
            ),
            stop=stop_after_attempt(self.max_attempts),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: self._count_retry(state.outcome.exception() if state.outcome else None),
        )
        return retrying(self._get_once, url, params)

    def _count_retry(self, exc: BaseException | None) -> None:
        self.stats.retries += 1
        log.warning("%s: retrying after %s", self.integration, exc)

    def _get_once(self, url: str, params: Mapping[str, Any] | None) -> tuple[Any, Mapping[str, str]]:
        rate_limited = 0
        while True:
            self.pacer.wait(self.stats)
            headers: dict[str, str] = {"Accept": "application/json"}
            self.authorize(headers)
            sent_at = datetime.now(UTC)
            started = time.monotonic()
            self.stats.api_calls += 1

            def record(
                status: int | None,
                error: str | None,
                excerpt: str | None = None,
                size: int | None = None,
                started: float = started,
                sent_at: datetime = sent_at,
            ) -> None:
                self._record("GET", url, status, started, error, excerpt, sent_at=sent_at, params=params, size=size)

            try:
                response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                record(None, type(exc).__name__)
                raise TransientError(f"{type(exc).__name__} calling {url}") from exc
            self.pacer.observe(response.headers)
            status = response.status_code
            if status == 429:
                rate_limited += 1
                self.stats.rate_limited += 1
                record(status, "rate limited", response.text[:500])
                if rate_limited > self.max_rate_limited:
                    raise TransientError(f"{url} kept answering 429 ({rate_limited} times)")
                wait = _float(response.headers.get("Retry-After")) or min(2.0**rate_limited, 60.0)
                wait += random.uniform(0, 0.1)  # so parallel clients do not return in lockstep
                self.stats.waited_seconds += wait
                self.sleep(wait)
                continue
            if status >= 500:
                record(status, f"HTTP {status}", response.text[:500])
                raise TransientError(f"HTTP {status} from {url}")
            if status >= 400:
                message = _error_message(response)
                record(status, message, response.text[:500])
                error_cls = AuthError if status in (401, 403) else ApiError
                raise error_cls(status, message, url)
            body_bytes = response.content
            try:
                body = orjson.loads(body_bytes)
            except orjson.JSONDecodeError as exc:
                record(status, "invalid JSON", body_bytes[-200:].decode(errors="replace"), len(body_bytes))
                raise TransientError(f"truncated or invalid JSON from {url}") from exc
            self.stats.pages += 1
            self.stats.bytes += len(body_bytes)
            record(status, None, size=len(body_bytes))
            return body, response.headers

    def _record(
        self,
        method: str,
        url: str,
        status: int | None,
        started: float,
        error: str | None,
        excerpt: str | None = None,
        *,
        sent_at: datetime | None = None,
        params: Mapping[str, Any] | None = None,
        size: int | None = None,
    ) -> None:
        call = CallRecord(method, url, status, int((time.monotonic() - started) * 1000), error, excerpt,
                          sent_at or datetime.now(UTC), params, size, self.entity)  # fmt: skip
        with self._calls_lock:
            self.calls.append(call)
        if self.call_log is not None:
            self.call_log.record(call)

    def drain_calls(self) -> list[CallRecord]:
        with self._calls_lock:
            calls, self.calls = self.calls, []
        return calls

    @contextmanager
    def logging_calls(self, call_log: CallLog | None, entity: str | None = None) -> Iterator[None]:
        """Every call made inside goes to `call_log` (bridge.sync_logs), which is flushed and closed on the way
        out. A client that already logs keeps its own log."""
        owned = self.call_log is None and call_log is not None
        if owned:
            self.call_log = call_log
        previous, self.entity = self.entity, entity
        try:
            yield
        finally:
            self.entity = previous
            if owned and call_log is not None:
                self.call_log = None
                call_log.close()


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("errorMessage", "message", "error_description"):
            if isinstance(body.get(key), str):
                return body[key]
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return str(body)[:200]
