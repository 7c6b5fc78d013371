"""SkySlope Transaction Management API client: HMAC login and its `Session`, the bulk export read in creation
windows, the `links[rel=next]` pages, users and offices. It implements the kit's source-client protocol
(lib/integration/declaration.py, `SourceClient`), keyed by the entities' source names (entities.py).

**Auth.** `POST /auth/login` with `Authorization: SS <accessKey>:<hmac>` and `Timestamp: <UTC, ...Z>`, where hmac =
base64(HMAC-SHA256(key = accessSecret, msg = "clientId:clientSecret:timestamp")), body `{ClientId, ClientSecret}`;
it answers `{Session, Expiration}`, and every later call sends `Session: <token>`. One session serves every client
of the same credentials in this process (threads, the prefetch thread, the next asset's client: SkySlope limits
logins). It is renewed ahead of its `Expiration` (five minutes, or a tenth of a shorter life), and on a 401:
the request that got the 401 is sent again on the new session, so a session that dies mid-backfill costs one
login and loses no page. A second 401 on a fresh session is the account's (a revoked key, say) and is raised.

**Where each entity is read, and why.**
- sales, listings: the bulk export `GET /api/files?type=sale|listing&createdAfter&createdBefore` (strict bounds),
  which returns whole files. The paged lists (`/api/files/sales`) hand out summaries (no price, no property
  parts, no office), so reading them would cost one more request per file; and their page number is an offset,
  so a file deleted while we page would shift every later page and a file would be skipped. A window is read as
  consecutive creation sub-windows sized to hold about `TARGET_RECORDS` files each (a month to start with,
  doubled while they come back small, halved when large), and the cursor saved with each page is the start of
  its sub-window: a run that stops resumes at the sub-window it was in.
  Without a lower bound, the first page of the paged list (in creation order) names the oldest file.
  The delta reads `modifiedAfter` the cursor minus an overlap. Its cursor stays put until the last page, an empty
  one whose cursor is the newest `modifiedOn` seen; files changed in the same second as that newest one are read
  again by the next delta (the filter is strict and the overlap reaches back past them), never skipped.
- Reconciliation counts the paged list (`links[rel=next]`, `earliestDate`/`latestDate`, inclusive): a second
  channel, independent of the bulk export the load reads.
- users (`includeDeactivated=true`: files name agents who have left) and offices: whole lists, read again by the
  delta (no filter exists) with the change guard skipping what did not change.

Every record gets `_created`, `_updated` and `_dates` (feed.stamp: the date rule), and the bulk export is made
readable despite raw control bytes (feed.readable_feed: the control-byte rule) before it is parsed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from sync_pipelines.defs.skyslope.feed import readable_feed, stamp
from sync_pipelines.lib.http import ApiClient, ApiError, AuthError, TransientError
from sync_pipelines.lib.integration.paging import DONE
from sync_pipelines.lib.sync import Page

BASE_URL_ENV = "SYNC_SKYSLOPE_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8900/skyslope"  # the sandbox (sync-pipelines sandbox serve)
PRODUCTION_BASE_URL = "https://api.skyslope.com"

# Our entity's source name -> the bulk export's `type`; users and offices are lists of their own.
FILES = {"sales": "sale", "listings": "listing"}
ID_FIELDS = {"sales": "saleGuid", "listings": "listingGuid", "users": "userGuid", "offices": "officeGuid"}
SINGLE = {"sales": "sale", "listings": "listing", "users": "user", "offices": "office"}

PAGE_RECORDS = 500  # records per Page handed to the load path (it commits every 2,000)
TARGET_RECORDS = 2_000  # files per bulk-export document the sub-windows aim at
FIRST_SPAN = timedelta(days=31)
MIN_SPAN = timedelta(days=1)
MAX_SPAN = timedelta(days=366)
# Filters are strict; SkySlope's times have millisecond resolution: one sub-window ends where the next begins.
TICK = timedelta(milliseconds=1)
RENEW_AHEAD = timedelta(minutes=5)
# Without a lower bound: the first window starts this long before the oldest readable file on the first page, so
# a file whose own createdOn is unreadable (malformed) just before it is still read.
OLDEST_MARGIN = timedelta(days=31)
FALLBACK_OLDEST = datetime(2000, 1, 1, tzinfo=UTC)  # when no file on the first page has a readable createdOn


def net_time(value: datetime) -> str:
    """A filter value as SkySlope writes times: naive UTC with milliseconds."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def iso(value: datetime) -> str:
    """A cursor value: ISO 8601 UTC with milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def login_signature(access_secret: str, client_id: str, client_secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key = accessSecret, msg = "clientId:clientSecret:timestamp")), as SkySlope's sample."""
    digest = hmac.new(access_secret.encode(), f"{client_id}:{client_secret}:{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


@dataclass
class _Session:
    """One login's session, shared by every client of the same credentials in this process."""

    token: str | None = None
    renew_at: float | None = None  # epoch seconds; None: kept until SkySlope answers 401
    logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_SESSIONS: dict[tuple[str, str, str], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _shared_session(base_url: str, access_key: str, client_id: str) -> _Session:
    with _SESSIONS_LOCK:
        return _SESSIONS.setdefault((base_url, access_key, client_id), _Session())


def forget_sessions() -> None:
    """Drop every cached session: the next request of each client logs in (tests, or after rotating credentials)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()


def _newest(records: list[dict], newest: datetime) -> datetime:
    for record in records:
        updated = record.get("_updated") if isinstance(record, dict) else None
        if isinstance(updated, str):
            try:
                newest = max(newest, parse_iso(updated))
            except ValueError:
                pass  # a malformed record: the load path sends it to the DLQ
    return newest


def _slices(records: list[dict], cursor: str | None, last_cursor: str | None) -> Iterator[Page]:
    """A document's records as pages of PAGE_RECORDS: every page but the last carries `cursor`."""
    for start in range(0, max(len(records), 1), PAGE_RECORDS):
        last = start + PAGE_RECORDS >= len(records)
        yield Page(records[start : start + PAGE_RECORDS], last_cursor if last else cursor)


class SkySlopeClient(ApiClient):
    """One brokerage connection: the integrator's client id and secret with a user's access key and secret."""

    integration = "skyslope"

    def __init__(
        self,
        base_url: str,
        access_key: str,
        access_secret: str,
        client_id: str,
        client_secret: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self._access_key = access_key
        self._access_secret = access_secret
        self._client_id = client_id
        self._client_secret = client_secret
        self._shared = _shared_session(self.base_url, access_key, client_id)
        self._used = threading.local()  # the session token each thread last sent: the one a 401 condemns
        # The bulk export is made readable before ApiClient parses it (see feed.readable_feed).
        self.session.hooks["response"].append(self._readable_feed)

    # -- the session -----------------------------------------------------------------------------------

    @property
    def logins(self) -> int:
        """Logins made for these credentials in this process (shared with every client of them)."""
        return self._shared.logins

    def authorize(self, headers: dict[str, str]) -> None:
        shared = self._shared
        with shared.lock:
            if shared.token is None or (shared.renew_at is not None and time.time() >= shared.renew_at):
                shared.token, shared.renew_at = self._login()
                shared.logins += 1
            token = shared.token
        headers["Session"] = token
        self._used.token = token

    def _forget(self, token: str | None) -> None:
        """The source refused `token`: the next request logs in, unless another thread already has."""
        with self._shared.lock:
            if self._shared.token == token:
                self._shared.token = None

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        """ApiClient's GET, sent again once on a new session when SkySlope answers 401 (an expired or forgotten
        session): the page in progress is read on the new session, not lost."""
        try:
            return super().get_json(path, params)
        except AuthError as exc:
            if exc.status != 401 or exc.url == self.url("auth/login"):
                raise  # a refused login (a revoked key, wrong secrets) is the account's: logging in again is no cure
            self._forget(getattr(self._used, "token", None))
        return super().get_json(path, params)

    def _login(self) -> tuple[str, float | None]:
        """A new session and when to renew it; retried like a GET on 5xx, timeouts and 429 (logins are limited)."""
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
        return retrying(self._login_once)

    def _login_once(self) -> tuple[str, float | None]:
        url = self.url("auth/login")
        body = orjson.dumps({"ClientId": self._client_id, "ClientSecret": self._client_secret})
        rate_limited = 0
        while True:
            sent_at = datetime.now(UTC)
            timestamp = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            signature = login_signature(self._access_secret, self._client_id, self._client_secret, timestamp)
            headers = {
                "Authorization": f"SS {self._access_key}:{signature}",
                "Timestamp": timestamp,
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            started = time.monotonic()
            self.stats.api_calls += 1
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=self.timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                self._record("POST", url, None, started, type(exc).__name__, sent_at=sent_at)
                raise TransientError(f"{type(exc).__name__} calling {url}") from exc
            status = response.status_code
            excerpt = response.text[:500] if status >= 400 else None
            if status == 429:
                rate_limited += 1
                self.stats.rate_limited += 1
                self._record("POST", url, status, started, "rate limited", excerpt, sent_at=sent_at)
                if rate_limited > self.max_rate_limited:
                    raise TransientError(f"{url} kept answering 429 ({rate_limited} times)")
                wait = _seconds(response.headers.get("Retry-After")) or min(2.0**rate_limited, 60.0)
                wait += random.uniform(0, 0.1)  # so parallel clients do not return in lockstep
                self.stats.waited_seconds += wait
                self.sleep(wait)
                continue
            if status >= 500:
                self._record("POST", url, status, started, f"HTTP {status}", excerpt, sent_at=sent_at)
                raise TransientError(f"HTTP {status} from {url}")
            if status >= 400:
                message = _message(response)
                self._record("POST", url, status, started, message, excerpt, sent_at=sent_at)
                raise (AuthError if status in (401, 403) else ApiError)(status, message, url)
            try:
                answer = orjson.loads(response.content)
                token = str(answer["Session"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                self._record("POST", url, status, started, "no Session in the answer", sent_at=sent_at)
                raise TransientError(f"no Session in the login answer from {url}") from exc
            self._record("POST", url, status, started, None, sent_at=sent_at, size=len(response.content))
            return token, _renew_at(answer.get("Expiration"), time.time())

    # -- the bulk export -------------------------------------------------------------------------------

    def _readable_feed(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """A requests response hook: the bulk export's body, made valid JSON if raw control bytes broke it."""
        if response.status_code != 200 or not urlsplit(response.url).path.endswith("/api/files"):
            return response
        kind = (parse_qs(urlsplit(response.url).query).get("type") or [None])[0]
        readable = readable_feed(response.content, kind)
        if readable is not None:
            response._content = readable  # what response.content returns from now on
        return response

    def _export(self, kind: str, params: dict[str, str]) -> list[dict]:
        body, _ = self.get_json("api/files", {"type": kind, **params})
        records = body.get("value") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise TransientError(f"SkySlope's bulk export answered without a value list: {str(body)[:200]}")
        return [stamp(r) for r in records if not isinstance(r, dict) or r.get("objectType") in (kind, None)]

    def _oldest(self, entity: str) -> datetime | None:
        """The creation time of the oldest file (the paged list is in creation order), or None without files."""
        body, _ = self.get_json(f"api/files/{entity}", {"pageNumber": 1})
        items = (body.get("value") or {}).get(entity) or []
        if not items:
            return None
        for item in items:
            created = stamp(dict(item)).get("_created") if isinstance(item, dict) else None
            if isinstance(created, str):
                try:
                    return parse_iso(created)
                except ValueError:
                    continue
        return FALLBACK_OLDEST

    def _files(
        self, entity: str, after: datetime | None, before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """Files created strictly between `after` and `before`, as consecutive creation sub-windows."""
        if resume == DONE:
            return
        kind = FILES[entity]
        if resume:
            state = orjson.loads(resume)
            lower, upper = parse_iso(state["after"]), parse_iso(state["before"]) if state.get("before") else None
        else:
            lower, upper = _after(after), before
        if lower is None:
            oldest = self._oldest(entity)
            if oldest is None:
                yield Page([], DONE)
                return
            lower = oldest - OLDEST_MARGIN
        span = FIRST_SPAN
        while True:
            end: datetime | None = lower + span
            if upper is not None:
                end = min(end, upper)  # type: ignore[type-var]
            elif end >= datetime.now(UTC):  # type: ignore[operator]
                # The last window is open-ended: whatever the source's clock says, nothing after it is left out.
                end = None
            params = {"createdAfter": net_time(lower)}
            if end is not None:
                params["createdBefore"] = net_time(end)
            records = self._export(kind, params)
            last = end is None or end == upper
            following = DONE if last else _window_cursor(end - TICK, upper)  # type: ignore[operator]
            yield from _slices(records, _window_cursor(lower, upper), following)
            if last:
                return
            lower = end - TICK  # type: ignore[operator]
            if len(records) > TARGET_RECORDS:
                span = max(span / 2, MIN_SPAN)
            elif len(records) < TARGET_RECORDS // 4:
                span = min(span * 2, MAX_SPAN)

    # -- users and offices -----------------------------------------------------------------------------

    def _list(self, entity: str) -> list[dict]:
        params = {"includeDeactivated": "true"} if entity == "users" else None
        body, _ = self.get_json(f"api/{entity}", params)
        records = (body.get("value") or {}).get(entity) if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise TransientError(f"SkySlope's {entity} list answered without records: {str(body)[:200]}")
        return [stamp(r) for r in records]

    # -- the kit's protocol ------------------------------------------------------------------------------

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """Every record of `entity` created strictly inside the bounds (sales and listings; users and offices are
        read whole, the bounds ignored), resumable from the cursor saved with each page."""
        if entity in FILES:
            yield from self._files(entity, created_after, created_before, resume)
            return
        self._check(entity)
        if resume == DONE:
            return
        # A list is one document: a run that stops part way reads it again from the start (cursor None).
        yield from _slices(self._list(entity), None, DONE)

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta) -> Iterator[Page]:
        """What changed after `since` minus `overlap`: the bulk export's `modifiedAfter` for sales and listings,
        the whole list for users and offices. Every page carries `since` as its cursor but the last, an empty
        one carrying the newest change seen, so a run that stops part way starts again from the same point."""
        if entity in FILES:
            kind = FILES[entity]
            records = self._export(kind, {"modifiedAfter": net_time(since - overlap)})
        else:
            self._check(entity)
            records = self._list(entity)
        if records:
            yield from _slices(records, iso(since), iso(since))
        yield Page([], iso(_newest(records, since)))

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None:
        """The count SkySlope lists: sales and listings by walking the paged list's `links[rel=next]` with
        `earliestDate`/`latestDate` (inclusive, so the strict bounds move in by a millisecond); users and offices by
        their lists, which cannot be counted for a creation window (None)."""
        if entity in FILES:
            params: dict[str, Any] = {"pageNumber": 1}
            if created_after is not None:
                params["earliestDate"] = net_time(_after(created_after) + TICK)  # type: ignore[operator]
            if created_before is not None:
                params["latestDate"] = net_time(created_before - TICK)
            return sum(len(items) for items in self._walk(entity, params))
        self._check(entity)
        if created_after is not None or created_before is not None:
            return None
        return len(self._list(entity))

    def _walk(self, entity: str, params: dict[str, Any]) -> Iterator[list[dict]]:
        """The paged list's items, page by page, following `links[rel=next]` until there is none."""
        body, _ = self.get_json(f"api/files/{entity}", params)
        while True:
            yield (body.get("value") or {}).get(entity) or []
            following = [link.get("href") for link in body.get("links") or [] if link.get("rel") == "next"]
            if not following or not following[0]:
                return
            body, _ = self.get_json(str(following[0]))

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]:
        """Records by GUID (`dlq retry`, a refetch): one request each; a GUID SkySlope answers 404 for is absent."""
        self._check(entity)
        out: list[dict] = []
        for guid in dict.fromkeys(ids):
            try:
                body, _ = self.get_json(f"api/{'files/' if entity in FILES else ''}{entity}/{guid}")
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            record = (body.get("value") or {}).get(SINGLE[entity]) if isinstance(body, dict) else None
            if not isinstance(record, dict):
                continue
            if entity == "offices":
                # The single office also comes as {guid, name, ...}: the list's shape, so the change guard sees
                # the same record whichever way it was read.
                record = {k: v for k, v in record.items() if k not in ("guid", "name")}
            out.append(stamp(record))
        return out

    @staticmethod
    def _check(entity: str) -> None:
        if entity not in ID_FIELDS:
            raise ValueError(f"SkySlope has no entity {entity!r}; known: {', '.join(ID_FIELDS)}")


def _after(value: datetime | None) -> datetime | None:
    """A strict lower bound given in whole seconds, read at SkySlope's millisecond resolution as the whole second.
    The kit's month windows start one second before the month (lib/integration/sync.py, month_window), which at a
    second's resolution is exactly the month; here, taken literally, it would also take in the files created in
    the previous month's last second (23:59:59.5), read them in two windows and count them in two months."""
    if value is None or value.microsecond:
        return value
    return value + timedelta(seconds=1) - TICK


def _window_cursor(lower: datetime, upper: datetime | None) -> str:
    """Where a creation window resumes: the start of the sub-window a page came from, and the window's end."""
    return orjson.dumps({"after": iso(lower), "before": iso(upper) if upper else None}).decode()


def _renew_at(expiration: Any, issued: float) -> float | None:
    """When to renew a session SkySlope says expires at `expiration`: five minutes ahead, or a tenth of its life
    when that is shorter. A session already expired by our clock (the clocks disagree) is kept until SkySlope
    answers 401, rather than logging in before every request."""
    if not isinstance(expiration, str):
        return None
    try:
        expires = parse_iso(expiration)
    except ValueError:
        return None
    expires = expires.replace(tzinfo=UTC) if expires.tzinfo is None else expires
    life = expires.timestamp() - issued
    if life <= 0:
        return None
    return expires.timestamp() - min(RENEW_AHEAD.total_seconds(), life / 10)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("Message", "message", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return str(body)[:200]
