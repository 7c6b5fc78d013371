"""DotLoop Public API v2 client: Bearer tokens that rotate, `batch_number`/`batch_size` paging, loops per profile,
participants per loop, and the 100-requests-a-minute-per-user limit. It implements the kit's source-client
protocol (lib/integration/declaration.py, `SourceClient`), keyed by our entity names (entities.py).

Auth. Every call sends the account's access token. It is refreshed before it expires (within REFRESH_MARGIN of the
expiry we computed from `expires_in`) and when DotLoop answers 401; the call is then sent once more. The new pair
is committed to the warehouse before it is used (tokens.StoredTokens), and threads of one client refresh once.
A refresh DotLoop refuses (`invalid_grant`: revoked, or rotated out) raises lib.http.AuthError, so the kit marks
the account in error with the reason and goes on with the other accounts.

Paging that cannot lose a loop. DotLoop pages loops by `batch_number` (an offset), sorted by `created` or
`updated`, filtered by `created_min` / `updated_min` (inclusive). An offset walk skips a loop whenever one before
it leaves the list mid-walk (a merge), and a walk by `updated` skips whatever is changed behind it. So each batch
is asked for from the last timestamp seen (`*_min` = that timestamp, batch 1) and the loops already seen at that
timestamp are dropped from the answer: a keyset on the timestamp. Only a run of one timestamp longer than a batch
is walked by `batch_number` inside that timestamp. The cursor saved with each page is that keyset position.

Delta cursors. A delta reads several profiles one after the other; a loop changed in the first profile after that
profile was read is only found from the next delta on if the cursor is not past it. The cursor after a delta is
therefore the newest `updated` seen minus how long the walk took (never before the cursor it started from): any
change made after its profile was read is at least that recent. Each page before the last saves the starting
cursor, so a delta that stops part way reads the whole window again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import requests

from sync_pipelines.defs.dotloop.tokens import OAuthError, TokenEndpoint, Tokens, TokenStore
from sync_pipelines.lib.http import ApiClient, ApiError, AuthError, Pacer
from sync_pipelines.lib.integration.paging import DONE, records_at
from sync_pipelines.lib.sync import Page

BATCH_SIZE = 100  # DotLoop's largest batch
# Refresh this long before the expiry we computed (12 h tokens: at 11 h 55 m), so a call never goes out with a
# token about to lapse; a token that lives less than this is refreshed at most once per MIN_REFRESH_INTERVAL.
REFRESH_MARGIN = timedelta(minutes=5)
MIN_REFRESH_INTERVAL = 60.0
# A participant webhook names a loop, not a participant list: the apply job asks for `loop:<loop id>`.
LOOP_PREFIX = "loop:"
# Detail sections (display names as DotLoop sends them) -> the flattened field; the first present value wins.
DETAIL_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "street_number": (("Property Address", "Street Number"),),
    "street_name": (("Property Address", "Street Name"),),
    "unit_number": (("Property Address", "Unit Number"),),
    "city": (("Property Address", "City"),),
    "state": (("Property Address", "State/Prov"),),
    "zip": (("Property Address", "Zip/Postal Code"),),
    "county": (("Property Address", "County"),),
    "country": (("Property Address", "Country"),),
    "mls_number": (("Property Address", "MLS Number"), ("Listing Information", "MLS Number")),
    "price": (
        ("Financials", "Purchase/Sale Price"),
        ("Listing Information", "Current Price"),
        ("Listing Information", "Original Price"),
    ),
    "contract_agreement_date": (("Contract Dates", "Contract Agreement Date"),),
    "closing_date": (("Contract Dates", "Closing Date"),),
    "listing_date": (("Listing Information", "Listing Date"),),
    "expiration_date": (("Listing Information", "Expiration Date"),),
    "transaction_number": (("Contract Info", "Transaction Number"),),
}
DATE_FIELDS = ("contract_agreement_date", "closing_date", "listing_date", "expiration_date")
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m/%d/%y", "%m-%d-%Y")

# (loop ids) -> {loop id: profile id} the warehouse knows; (participant ids) -> {participant id: loop id}.
Locate = Callable[[list[str]], dict[str, str]]
# (merged loop id, the loop it went into): DotLoop answered a loop by id with another one (301).
OnMerge = Callable[[str, str], None]


def fmt_time(value: datetime) -> str:
    """A filter timestamp: ISO 8601 UTC with a Z, to the microsecond only where it has one."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if value.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """A record's `created` / `updated`, or None when it is not an ISO timestamp (a malformed record, which the
    load path sends to the DLQ; it then plays no part in the keyset)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _id(record: Any) -> str | None:
    value = record.get("id") if isinstance(record, dict) else None
    return None if value is None else str(value)


def _date(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), pattern).date().isoformat()
        except ValueError:
            continue
    return None


def _number(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    cleaned = value.strip().replace("$", "").replace(",", "").replace(" ", "")
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    return str(number) if number.is_finite() else None


def flatten_details(details: Any) -> dict[str, str | None]:
    """A loop's detail sections as typed-ready values: dates ISO, the price a plain number, None where absent or
    unreadable (the value as typed stays in the raw record)."""
    sections = details if isinstance(details, dict) else {}
    out: dict[str, str | None] = {}
    for field, places in DETAIL_FIELDS.items():
        value = None
        for section, name in places:
            candidate = sections.get(section, {}).get(name) if isinstance(sections.get(section), dict) else None
            if candidate not in (None, ""):
                value = candidate
                break
        if field in DATE_FIELDS:
            out[field] = _date(value)
        elif field == "price":
            out[field] = _number(value)
        else:
            out[field] = str(value) if value is not None else None
    return out


def stamp_loop(record: Any, profile_id: str, details: Any = None) -> Any:
    """`_profileId`, and with details `details` (as received) and `_detail` (flattened); nothing else changes."""
    if isinstance(record, dict):
        record["_profileId"] = profile_id
        if details is not None:
            record["details"] = details
        if "details" in record:
            record["_detail"] = flatten_details(record["details"])
    return record


def stamp_participant(record: Any, loop: dict, profile_id: str) -> Any:
    """A participant read from its loop: the loop it is on and the loop's times (see entities.py)."""
    if isinstance(record, dict):
        record["_loopId"] = _id(loop)
        record["_profileId"] = profile_id
        created, updated = parse_time(loop.get("created")), parse_time(loop.get("updated"))
        # The loop's own text when it is a timestamp; when not, what it was, so the load path names it.
        record["_created"] = fmt_time(created) if created else loop.get("created")
        record["_updated"] = fmt_time(updated) if updated else None
    return record


@dataclass
class ResetPacer(Pacer):
    """DotLoop's `X-RateLimit-Reset` is the time left until the window frees a request, in milliseconds, not a
    window length in seconds (what lib.http.Pacer reads). Once fewer than `low_water` of the limit remain, the
    remaining requests are spread over that time, and at none left the next waits for it: the window is used to
    the last request without asking for a 429."""

    # Added to the wait for the window to free a request: the sandbox rounds its Reset down to the second (the real
    # API's rounding is unpublished), and a 429 would cost at least its Retry-After second anyway.
    margin: float = 1.0

    def observe(self, headers: Mapping[str, str]) -> None:
        try:
            limit = int(headers.get("X-RateLimit-Limit", ""))
            remaining = int(headers.get("X-RateLimit-Remaining", ""))
            left = float(headers.get("X-RateLimit-Reset", "")) / 1000
        except ValueError:
            return
        if limit <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if remaining >= limit * self.low_water:
                self._next_at = 0.0
            elif remaining <= 0:
                self._next_at = now + left + self.margin
            else:
                self._next_at = now + left / (remaining + 1)


@dataclass
class _Walk:
    """Where a loop walk is: the timestamp it asks from, the batch within that timestamp, the ids already yielded
    at it; and, once a whole batch of an `updated` walk turned out to share one timestamp, that timestamp
    (`within`): the walk then goes on by `created` through everything updated from it on."""

    start: str | None
    batch: int = 1
    seen: tuple[str, ...] = ()
    within: str | None = None
    done: tuple[str, ...] = ()  # ids yielded at `within` before the walk switched to `created`

    @classmethod
    def resume(cls, cursor: str | None, start: datetime | None) -> _Walk:
        if cursor:
            state = orjson.loads(cursor)
            return cls(
                state.get("from"),
                int(state.get("batch", 1)),
                tuple(state.get("seen", ())),
                state.get("within"),
                tuple(state.get("done", ())),
            )
        return cls(fmt_time(start) if start else None)

    def cursor(self) -> str:
        state: dict[str, Any] = {"from": self.start, "batch": self.batch, "seen": list(self.seen)}
        if self.within:
            state.update(within=self.within, done=list(self.done))
        return orjson.dumps(state).decode()


class DotLoopClient(ApiClient):
    """One DotLoop user's grant: their profiles, the loops of each, the loops' participants, their contacts."""

    integration = "dotloop"

    def __init__(
        self,
        api_url: str,
        endpoint: TokenEndpoint,
        tokens: TokenStore,
        *,
        batch_size: int = BATCH_SIZE,
        locate_loops: Locate | None = None,
        locate_participants: Locate | None = None,
        on_merge: OnMerge | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(api_url, **kwargs)
        self.pacer = ResetPacer()
        self.endpoint = endpoint
        self.batch_size = batch_size
        self._store = tokens
        self._tokens: Tokens = tokens.current()
        self._token_lock = threading.Lock()
        self._refreshed_at = -math.inf  # monotonic time of this client's last refresh
        self.refreshes = 0
        self._locate_loops = locate_loops
        self._locate_participants = locate_participants
        self._on_merge = on_merge
        self._profile_list: list[dict] | None = None
        self._loop_profiles: dict[str, str] = {}  # loop id -> profile id, from what this client has read
        self._count_cache: dict[tuple[str, str | None], int] = {}
        # Loops whose participant list this client read whole: a delta's departures soft-delete the participants
        # core still holds on them that the list no longer has (declaration.py, `Departures`).
        self.participant_lists_read: set[str] = set()
        self._moves = threading.local()
        self.session.hooks["response"].append(self._note_redirect)

    # -- auth ----------------------------------------------------------------------------------------------

    def authorize(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = f"Bearer {self._tokens.access_token}"

    def _observe_token_call(
        self, method: str, url: str, status: int | None, started: float, error: str | None, sent_at: datetime
    ) -> None:
        self._record(method, url, status, started, error, sent_at=sent_at)

    def _refresh_at_endpoint(self, refresh_token: str) -> Tokens:
        return self.endpoint.refresh(refresh_token, session=self.session, observe=self._observe_token_call)

    def _rotate(self, stale_access_token: str) -> None:
        """Replace the pair whose access token is `stale_access_token` (once, however many threads ask)."""
        with self._token_lock:
            if self._tokens.access_token != stale_access_token:
                return
            try:
                self._tokens = self._store.rotate(stale_access_token, self._refresh_at_endpoint)
            except OAuthError as exc:
                if exc.refused:
                    raise AuthError(
                        401,
                        f"DotLoop refused the refresh token ({exc.error}: {exc.description}); reconnect the account "
                        "with `sync-pipelines accounts add dotloop --name NAME --secret code=<authorization code>`",
                        self.endpoint.token_url,
                    ) from exc
                raise  # an outage of the token endpoint: not the account's fault, it stays active
            self._refreshed_at = time.monotonic()
            self.refreshes += 1

    def _token_for_call(self) -> str:
        """The access token to send, refreshed first when it is about to expire."""
        tokens = self._tokens
        due = tokens.expires_at - datetime.now(UTC) <= REFRESH_MARGIN
        if due and time.monotonic() - self._refreshed_at >= MIN_REFRESH_INTERVAL:
            self._rotate(tokens.access_token)
        return self._tokens.access_token

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Any, Mapping[str, str]]:
        sent_with = self._token_for_call()
        try:
            return super().get_json(path, params)
        except AuthError as exc:
            if exc.status != 401:
                raise  # 403: the user is suspended or the profile is not theirs; a new token changes nothing
            self._rotate(sent_with)
            return super().get_json(path, params)

    # -- redirects (a merged loop answers 301 to the loop it went into) --------------------------------------

    def _note_redirect(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.is_redirect:
            self._moves.location = response.headers.get("Location")

    def _get_tracking_moves(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Any, bool] | None:
        """(body, whether DotLoop redirected), or None on a 404."""
        self._moves.location = None
        try:
            body, _ = self.get_json(path, params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return body, self._moves.location is not None

    # -- profiles ------------------------------------------------------------------------------------------

    def profiles(self) -> list[dict]:
        """The user's profiles (not batched), read once per client."""
        if self._profile_list is None:
            body, _ = self.get_json("profile")
            self._profile_list = [p for p in records_at(body, "data") if isinstance(p, dict)]
        return list(self._profile_list)

    def profile_ids(self) -> list[str]:
        return [str(p["id"]) for p in self.profiles() if p.get("id") is not None]

    # -- the loop walk ---------------------------------------------------------------------------------------

    def _walk(
        self,
        profile_id: str,
        key: str,
        lower: datetime | None,
        upper: datetime | None,
        resume: str | None,
        details: bool,
    ) -> Iterator[Page]:
        """Loops of one profile in `key` order ('created' or 'updated') from `lower` (inclusive) to `upper`
        (exclusive; None: to the end) as a keyset on that timestamp (see the module docstring).

        A batch whose loops all share the timestamp asked from is a run longer than a batch. By `created` (which
        never changes) it is walked by batch number. By `updated` it is not: a loop changed while the run is walked
        leaves it and shifts the batches behind it, skipping one. So the walk then reads everything updated from
        that timestamp on (`updated_min`, the same set) by `created` instead, a keyset no change can shift."""
        if resume == DONE:
            return
        walk = _Walk.resume(resume, lower)
        path = f"profile/{profile_id}/loop"
        while True:
            order = "created" if walk.within else key
            filters = [f"updated_min={walk.within}"] if walk.within else []
            if walk.start:
                filters.append(f"{order}_min={walk.start}")
            params: dict[str, Any] = {"batch_size": self.batch_size, "batch_number": walk.batch, "sort": f"{order}:asc"}
            if filters:
                params["filter"] = ",".join(filters)
            if details:
                params["include_details"] = "true"
            body, _ = self.get_json(path, params)
            records = [r for r in records_at(body, "data") if isinstance(r, dict)]
            skip = set(walk.seen) | set(walk.done)
            page: list[dict] = []
            ended = len(records) < self.batch_size
            for record in records:
                moment = parse_time(record.get(order))
                if upper is not None and moment is not None and moment >= upper:
                    ended = True  # sorted by the window's key: everything after this is past the window too
                    break
                if _id(record) is None or _id(record) not in skip:
                    page.append(record)
            for record in page:
                if (loop_id := _id(record)) is not None:
                    self._loop_profiles[loop_id] = profile_id
            if ended:
                yield Page(page, DONE)
                return
            moments = [parse_time(r.get(order)) for r in records]
            last = max((m for m in moments if m is not None), default=None)
            start = parse_time(walk.start) if walk.start else None
            if last is not None and (start is None or last > start):
                tied = tuple(i for r, m in zip(records, moments, strict=True) if m == last and (i := _id(r)))
                walk = _Walk(fmt_time(last), 1, tied, walk.within, walk.done)
            elif order == "updated" and walk.start:
                yielded = tuple(dict.fromkeys([*walk.seen, *(i for r in page if (i := _id(r)))]))
                walk = _Walk(None, 1, (), walk.start, yielded)
            else:
                walk = _Walk(walk.start, walk.batch + 1, walk.seen, walk.within, walk.done)
            yield Page(page, walk.cursor())

    def _profiles_chained(
        self, listing: Callable[[str, str | None], Iterator[Page]], resume: str | None
    ) -> Iterator[Page]:
        """One listing per profile as one stream; the cursor names the profile and its own cursor."""
        if resume == DONE:
            return
        state = orjson.loads(resume) if resume else {}
        ids = self.profile_ids()
        start = ids.index(state["profile"]) if state.get("profile") in ids else 0
        for index in range(start, len(ids)):
            profile_id = ids[index]
            inner = state.get("cursor") if index == start else None
            for page in listing(profile_id, inner):
                if page.cursor == DONE:
                    following = ids[index + 1] if index + 1 < len(ids) else None
                    cursor = DONE if following is None else orjson.dumps({"profile": following}).decode()
                else:
                    cursor = orjson.dumps({"profile": profile_id, "cursor": page.cursor}).decode()
                yield Page(page.records, cursor)

    def _loops(self, profile_id: str, records: list[dict]) -> list[dict]:
        return [stamp_loop(r, profile_id) for r in records]

    def _participants_of(self, profile_id: str, loop: Any) -> list[dict]:
        """The participant list of one loop (not batched: a loop has a handful), stamped with the loop. A loop
        gone since it was listed (404) or merged into another (301) has none here: they come with the survivor."""
        loop_id = _id(loop)
        if loop_id is None:
            return []
        answer = self._get_tracking_moves(f"profile/{profile_id}/loop/{loop_id}/participant")
        if answer is None or answer[1]:
            return []
        self.participant_lists_read.add(loop_id)
        return [stamp_participant(p, loop, profile_id) for p in records_at(answer[0], "data")]

    def _participants(self, profile_id: str, pages: Iterator[Page]) -> Iterator[Page]:
        for page in pages:
            records = [p for loop in page.records for p in self._participants_of(profile_id, loop)]
            yield Page(records, page.cursor)

    # -- contacts ------------------------------------------------------------------------------------------

    def _contacts(self, resume: str | None) -> Iterator[Page]:
        """Contacts by `batch_number`, in id order. A contact deleted ahead of the walk shifts the batches left,
        which would skip one: when the reported total drops, the walk steps back as many batches as it dropped and
        drops the ids it has already passed."""
        if resume == DONE:
            return
        state = orjson.loads(resume) if resume else {"batch": 1, "after": None, "total": None}
        batch, after, known = int(state["batch"]), state.get("after"), state.get("total")
        while True:
            body, _ = self.get_json("contact", {"batch_number": batch, "batch_size": self.batch_size})
            records = records_at(body, "data")
            total = body.get("meta", {}).get("total") if isinstance(body, dict) else None
            if isinstance(total, int) and isinstance(known, int) and total < known and batch > 1:
                batch = max(1, batch - math.ceil((known - total) / self.batch_size))
                known = total
                continue
            known = total if isinstance(total, int) else known
            ids = [r.get("id") for r in records if isinstance(r, dict)]
            page = [
                r for r, i in zip(records, ids, strict=True) if not (isinstance(i, int) and isinstance(after, int))
                or i > after
            ]  # fmt: skip
            numeric = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
            if numeric:
                after = max(numeric + ([after] if isinstance(after, int) else []))
            ended = len(records) < self.batch_size
            batch += 1
            cursor = DONE if ended else orjson.dumps({"batch": batch, "after": after, "total": known}).decode()
            yield Page(page, cursor)
            if ended:
                return

    # -- the kit's protocol --------------------------------------------------------------------------------

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """Every record of `entity`, resumable from the cursor saved with each page.

        - loops: each profile's loops created in (after, before), sorted by `created`, details included;
        - participants: the same walk of loops (without details), and each loop's participant list;
        - profiles and contacts: the whole list (no creation filter exists; they are partitioned by account)."""
        lower = created_after + timedelta(microseconds=1) if created_after is not None else None
        if entity == "loops":
            yield from self._profiles_chained(
                lambda p, cursor: (
                    Page(self._loops(p, page.records), page.cursor)
                    for page in self._walk(p, "created", lower, created_before, cursor, details=True)
                ),
                resume,
            )
        elif entity == "participants":
            yield from self._profiles_chained(
                lambda p, cursor: self._participants(
                    p, self._walk(p, "created", lower, created_before, cursor, details=False)
                ),
                resume,
            )
        elif entity == "profiles":
            if resume != DONE:
                yield Page(self.profiles(), DONE)
        elif entity == "contacts":
            yield from self._contacts(resume)
        else:
            raise ValueError(f"DotLoop has no entity {entity!r}")

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta) -> Iterator[Page]:
        """What changed since `since` (minus `overlap`); the cursor rule is the module docstring's.

        - loops: each profile's loops with `updated_min`, sorted by `updated`, details included;
        - participants: the participant lists of those loops (any participant change moves its loop's `updated`);
        - contacts: no updated filter: the whole list is read, and the contacts updated since are loaded;
        - profiles: a handful, read whole."""
        started = time.monotonic()
        lower = since - overlap
        if entity == "loops":
            pages: Iterator[Page] = self._profiles_chained(
                lambda p, _: (
                    Page(self._loops(p, page.records), page.cursor)
                    for page in self._walk(p, "updated", lower, None, None, details=True)
                ),
                None,
            )
        elif entity == "participants":
            pages = self._profiles_chained(
                lambda p, _: self._participants(p, self._walk(p, "updated", lower, None, None, details=False)), None
            )
        elif entity == "contacts":
            pages = (
                Page([r for r in page.records if _updated_at_least(r, lower)], page.cursor)
                for page in self._contacts(None)
            )
        elif entity == "profiles":
            pages = iter([Page(self.profiles(), DONE)])
        else:
            raise ValueError(f"DotLoop has no entity {entity!r}")
        newest = since
        for page in pages:
            for record in page.records:
                moment = parse_time(record.get("_updated" if entity == "participants" else "updated"))
                if moment is not None:
                    newest = max(newest, moment)
            yield Page(page.records, fmt_time(since))
        took = timedelta(seconds=time.monotonic() - started)
        yield Page([], fmt_time(max(since, newest - took)))

    def _count(self, profile_id: str, created_min: datetime | None) -> int:
        """Loops of a profile created at or after `created_min` (all: None), as DotLoop counts them. Cached per
        client: a reconciliation over many months asks for each month boundary twice."""
        key = (profile_id, fmt_time(created_min) if created_min else None)
        if key not in self._count_cache:
            params: dict[str, Any] = {"batch_size": 1, "batch_number": 1}
            if created_min is not None:
                params["filter"] = f"created_min={key[1]}"
            body, _ = self.get_json(f"profile/{profile_id}/loop", params)
            self._count_cache[key] = int(body["meta"]["total"])
        return self._count_cache[key]

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None:
        """The count the source reports, for reconciliation. Loops in (after, before): DotLoop filters by
        `created_min` only, so it is the loops from `after` on less those from `before` on, per profile.
        Participants: None, DotLoop counts them only per loop (one call per loop is a walk, not a check)."""
        if entity == "profiles":
            return len(self.profiles())
        if entity == "contacts":
            body, _ = self.get_json("contact", {"batch_number": 1, "batch_size": 1})
            return int(body["meta"]["total"])
        if entity == "loops":
            lower = created_after + timedelta(microseconds=1) if created_after is not None else None
            total = 0
            for profile_id in self.profile_ids():
                total += self._count(profile_id, lower)
                if created_before is not None:
                    total -= self._count(profile_id, created_before)
            return total
        if entity == "participants":
            return None
        raise ValueError(f"DotLoop has no entity {entity!r}")

    # -- records by id -------------------------------------------------------------------------------------

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]:
        """Records by id (webhooks, `dlq retry`); an id DotLoop no longer has is absent from the answer.

        - loops: `GET /profile/{p}/loop/{id}` and its `/detail`. A merged loop answers with the loop it went into:
          that one is returned, and the merge is recorded (on_merge: the old row points at the survivor).
        - participants: `loop:<loop id>` asks for a loop's whole list; a participant id is looked up in the loop the
          warehouse has it on. Either way the list is read again whole.
        - contacts, profiles: one by one."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if entity == "loops":
            return self._fetch_loops(wanted)
        if entity == "participants":
            return self._fetch_participants(wanted)
        if entity in ("contacts", "profiles"):
            path = "contact" if entity == "contacts" else "profile"
            out = []
            for record_id in wanted:
                answer = self._get_tracking_moves(f"{path}/{record_id}")
                if answer is not None and isinstance(answer[0], dict) and isinstance(answer[0].get("data"), dict):
                    out.append(answer[0]["data"])
            return out
        raise ValueError(f"DotLoop has no entity {entity!r}")

    def _profiles_of(self, loop_ids: list[str]) -> dict[str, str]:
        known = {i: self._loop_profiles[i] for i in loop_ids if i in self._loop_profiles}
        missing = [i for i in loop_ids if i not in known]
        if missing and self._locate_loops is not None:
            known.update({k: v for k, v in self._locate_loops(missing).items() if v})
        return known

    def _find_loop(self, loop_id: str, profile_id: str | None) -> tuple[str, dict, bool] | None:
        """(profile id, loop body, whether DotLoop redirected to another loop), or None if no profile has it.
        A loop the warehouse does not know yet (a webhook's new loop) is looked for in each profile."""
        for candidate in [profile_id] if profile_id else self.profile_ids():
            answer = self._get_tracking_moves(f"profile/{candidate}/loop/{loop_id}")
            if answer is not None and isinstance(answer[0], dict) and isinstance(answer[0].get("data"), dict):
                return candidate, answer[0]["data"], answer[1]
        return None

    def _fetch_loops(self, wanted: list[str]) -> list[dict]:
        profiles = self._profiles_of(wanted)
        out: dict[str, dict] = {}
        for loop_id in wanted:
            found = self._find_loop(loop_id, profiles.get(loop_id))
            if found is None:
                continue
            profile_id, record, moved = found
            actual = _id(record)
            if actual is None:
                continue
            if (moved or actual != loop_id) and self._on_merge is not None:
                self._on_merge(loop_id, actual)
            if actual in out:
                continue
            detail = self._get_tracking_moves(f"profile/{profile_id}/loop/{actual}/detail")
            sections = detail[0].get("data") if detail is not None and isinstance(detail[0], dict) else None
            self._loop_profiles[actual] = profile_id
            out[actual] = stamp_loop(record, profile_id, sections if isinstance(sections, dict) else {})
        return list(out.values())

    def _fetch_participants(self, wanted: list[str]) -> list[dict]:
        loops = [i[len(LOOP_PREFIX) :] for i in wanted if i.startswith(LOOP_PREFIX)]
        plain = [i for i in wanted if not i.startswith(LOOP_PREFIX)]
        if plain and self._locate_participants is not None:
            loops += [loop for loop in self._locate_participants(plain).values() if loop]
        loops = list(dict.fromkeys(loops))
        profiles = self._profiles_of(loops)
        out: dict[str, dict] = {}
        for loop_id in loops:
            found = self._find_loop(loop_id, profiles.get(loop_id))
            if found is None or found[2]:
                continue  # gone, or merged: its participants are the survivor's now
            profile_id, loop, _ = found
            for participant in self._participants_of(profile_id, loop):
                key = _id(participant)
                out[key or f"{loop_id}:{len(out)}"] = participant
        return list(out.values())


def _updated_at_least(record: Any, floor: datetime) -> bool:
    """Updated at or after `floor`; a record whose `updated` cannot be read is kept, for the load path to refuse
    with its reason."""
    moment = parse_time(record.get("updated")) if isinstance(record, dict) else None
    return moment is None or moment >= floor


__all__ = ["DotLoopClient", "ResetPacer", "flatten_details", "fmt_time", "parse_time"]
