"""reZEN (Real Brokerage) simulator: `/rezen/arrakis/api/v1/...` and `/rezen/yenta/api/v1/...`.

reZEN publishes no API reference; the contract is the one third-party clients rely on (theperrygroup/rezen),
and everything the evidence leaves open (rate limits, webhooks, list envelopes of some endpoints) is a
documented assumption. Contract, evidence and assumptions: docs/integrations/rezen.md.

Ids are UUIDs made from the record's index by an invertible map (GuidCodec), so a path id finds its
record without a lookup table. Lifecycle group, transaction type, network tier and agent status are
functions of the index (Pattern), so a list filtered by them still pages by arithmetic at ten million
records.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sync_pipelines.sandbox.base import Simulator, dumps, json_response
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.gen import (
    CITIES,
    EMAIL_DOMAINS,
    HISTORY_END,
    HISTORY_START,
    STREET_KINDS,
    STREET_NAMES,
    Draw,
    history_first_index,
    iso,
    mix64,
    person_name,
    phone,
    stream_seed,
)
from sync_pipelines.sandbox.store import VirtualTable, Window

# account name -> (X-API-KEY, share of the sandbox scale): two agents' views of different size.
ACCOUNTS: dict[str, tuple[str, float]] = {
    "keystone": ("rezen_sandbox_key_keystone", 1.0),
    "meridian": ("rezen_sandbox_key_meridian", 0.4),
}
ENTITIES = ("transactions", "listings", "agents", "contributions", "teams")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
TIERS = 5  # agents sit in tiers 1-5; tiers 6 and 7 are valid and empty, as in Real's 5-tier revshare
MAX_TIER = 7

STATE_NAMES = {
    "TX": "TEXAS",
    "AZ": "ARIZONA",
    "CO": "COLORADO",
    "WA": "WASHINGTON",
    "OR": "OREGON",
    "GA": "GEORGIA",
    "FL": "FLORIDA",
    "NC": "NORTH_CAROLINA",
    "TN": "TENNESSEE",
    "IL": "ILLINOIS",
    "MA": "MASSACHUSETTS",
    "CA": "CALIFORNIA",
    "NV": "NEVADA",
    "ID": "IDAHO",
}

# Transaction lifecycle states per group (letter used in Pattern classes).
TX_STATES = {
    "O": (
        "NEW",
        "NEEDS_COMMISSION_VALIDATION",
        "COMMISSION_VALIDATED",
        "COMMISSION_DOCUMENT_GENERATED",
        "APPROVED_FOR_CLOSING",
    ),
    "C": ("CLOSED", "PAYMENT_ACCEPTED", "SETTLED"),
    "T": ("TERMINATED",),
}
LISTING_STATES = {
    "A": ("LISTING_ACTIVE", "LISTING_IN_CONTRACT"),
    "C": ("LISTING_CLOSED",),
    "T": ("TERMINATED", "EXPIRED"),
}
# Shared, read-only {"state": ...} objects: a change replaces a record's lifecycleState, never edits it.
LIFECYCLE = {
    state: {"state": state} for group in (TX_STATES, LISTING_STATES) for states in group.values() for state in states
}
TX_TYPES = {"S": "SALE", "L": "LEASE", "R": "REFERRAL"}
TX_TYPE_LETTER = {v: k for k, v in TX_TYPES.items()}
TX_GROUPS = {"OPEN": {"O"}, "CLOSED": {"C"}, "TERMINATED": {"T"}}
# The participant transactions endpoint also answers the listing groups, from the listing table.
LISTING_GROUPS = {
    "LISTING_ACTIVE": {"A"},
    "CURRENT": {"A"},
    "OPEN": {"A"},
    "LISTING_NONTERMINATED": {"A", "C"},
    "CLOSED": {"C"},
    "TERMINATED": {"T"},
}
AGENT_STATUS_LETTER = {"ACTIVE": "A", "INACTIVE": "I", "CANDIDATE": "C", "REJECTED": "R", "RESURRECTING": "S"}
TEAM_TYPES = {"N": "NORMAL", "P": "PLATINUM", "G": "GROUP", "D": "DOMESTIC", "R": "PRO"}
TEAM_TYPE_LETTER = {v: k for k, v in TEAM_TYPES.items()}
EQUITY_PLANS: dict[str, list[dict[str, Any]]] = {
    "equity_purchase": [
        {"name": "Standard Equity Purchase", "minPercent": 5, "maxPercent": 5, "capAmount": 4000},
        {"name": "Elite Equity Purchase", "minPercent": 5, "maxPercent": 10, "capAmount": 8000},
        {"name": "Legacy Equity Purchase", "minPercent": 0, "maxPercent": 5, "capAmount": 2000},
    ],
    "equity_award": [
        {"name": "Capping Award", "awardShares": 75, "trigger": "CAPPED"},
        {"name": "Elite Agent Award", "awardShares": 150, "trigger": "ELITE"},
        {"name": "Attracting Award", "awardShares": 25, "trigger": "ATTRACTED_AGENT_CAPPED"},
    ],
}
WEBHOOK_EVENTS = {
    "transactions": ("TRANSACTION", "transactionId"),
    "listings": ("LISTING", "transactionId"),
    "agents": ("AGENT", "agentId"),
    "contributions": ("REVSHARE_CONTRIBUTION", "contributionId"),
    "teams": ("TEAM", "teamId"),
}
EVENT_TYPES = {
    f"{prefix}_{action}" for prefix, _ in WEBHOOK_EVENTS.values() for action in ("CREATED", "UPDATED", "DELETED")
}
API_ERROR = "com.real.commons.apierror.ApiError"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An affine permutation of the 26**9 transaction codes: the multiplier is coprime to 26 (odd, not 13k).
CODE_SPACE = 26**9
CODE_MULT = 2_718_281_828_459 * 2 + 1
CODE_ADD = 1_414_213_562_373
CODE_INVERSE = pow(CODE_MULT, -1, CODE_SPACE)
TRIGRAM_SPACE = 26**3
TRIGRAMS = [chr(65 + a) + chr(65 + b) + chr(65 + c) for a in range(26) for b in range(26) for c in range(26)]


# -- ids ---------------------------------------------------------------------------------------------------


class GuidCodec:
    """Record id <-> UUID string, invertible: the last 48 bits are a keyed permutation of the id.

    The first group is a hash of those bits (so ids of one table do not look sequential) and the middle
    groups name the table, so decoding also tells a transaction id from a listing id.
    """

    _M48 = (1 << 48) - 1

    def __init__(self, *parts: object) -> None:
        h = stream_seed(*parts, "guid")
        self._key = mix64(h) & 0xFFFFFFFF
        self._mult = (mix64(h ^ 0xA5A5) & self._M48) | 1
        self._inverse = pow(self._mult, -1, 1 << 48)
        self._mask = mix64(h ^ 0x5A5A) & self._M48
        self._middle = f"{(h >> 16) & 0xFFFF:04x}-4{(h >> 4) & 0xFFF:03x}-{8 + (h & 3):x}{(h >> 32) & 0xFFF:03x}"

    def encode(self, record_id: int) -> str:
        x = ((record_id * self._mult) & self._M48) ^ self._mask
        return f"{(x ^ (x >> 20) ^ self._key) & 0xFFFFFFFF:08x}-{self._middle}-{x:012x}"

    def _head(self, x: int) -> int:
        # Folded id bits: a check on decode, and the first group does not repeat the last.
        return (x ^ (x >> 20) ^ self._key) & 0xFFFFFFFF

    def decode(self, value: str) -> int | None:
        value = value.lower()
        if len(value) != 36 or value[9:23] != self._middle:
            return None
        try:
            x = int(value[24:], 16)
        except ValueError:
            return None
        if f"{self._head(x):08x}" != value[:8]:
            return None
        return ((x ^ self._mask) * self._inverse) & self._M48


def millis(ts: datetime) -> int:
    """reZEN's createdAt/updatedAt: epoch milliseconds."""
    return int(ts.timestamp() * 1000)


@functools.lru_cache(maxsize=8192)
def _day_of(epoch_day: int) -> str:
    return (EPOCH + timedelta(days=epoch_day)).date().isoformat()


# Day texts of 2015-2040 by epoch day: list pages format several dates per record.
_FIRST_DAY = 16436
_DAY_TEXT = [_day_of(n) for n in range(_FIRST_DAY, _FIRST_DAY + 9500)]


def day(ts: datetime | int, plus_days: int = 0) -> str:
    """YYYY-MM-DD of a UTC instant or epoch second, plus whole days."""
    seconds = ts if isinstance(ts, int) else int(ts.timestamp())
    n = seconds // 86400 + plus_days - _FIRST_DAY
    return _DAY_TEXT[n] if 0 <= n < 9500 else _day_of(n + _FIRST_DAY)


# -- filtered views ----------------------------------------------------------------------------------------


class Pattern:
    """Each base record's class as a function of its index alone.

    class(i) = before[i % period] if i < threshold else after[i % period]. A class is a short string
    (lifecycle group + type, tier + status, ...). Counting the members of a set of classes in any index
    range is arithmetic, so a list filtered by class pages, counts and ranks like an unfiltered one.
    """

    def __init__(self, before: Sequence[str], after: Sequence[str] | None = None, threshold: int = 0) -> None:
        self.before = list(before)
        self.after = list(after if after is not None else before)
        if len(self.after) != len(self.before):
            raise ValueError("before and after need the same period")
        self.period = len(self.before)
        self.threshold = threshold if after is not None else 1 << 62
        self._cache: dict[frozenset[str], tuple[list[int], list[int], list[int], list[int]]] = {}

    def category(self, index: int) -> str:
        return (self.before if index < self.threshold else self.after)[index % self.period]

    def _residues(self, cats: frozenset[str]) -> tuple[list[int], list[int], list[int], list[int]]:
        cached = self._cache.get(cats)
        if cached is None:
            rb = [r for r, c in enumerate(self.before) if c in cats]
            ra = [r for r, c in enumerate(self.after) if c in cats]
            pb = [bisect.bisect_left(rb, r) for r in range(self.period + 1)]
            pa = [bisect.bisect_left(ra, r) for r in range(self.period + 1)]
            cached = self._cache[cats] = (rb, ra, pb, pa)
        return cached

    def _below(self, prefix: list[int], n: int, x: int) -> int:
        return (x // self.period) * n + prefix[x % self.period]

    def count(self, a: int, b: int, cats: frozenset[str]) -> int:
        """Indices in [a, b) whose class is in cats."""
        if b <= a:
            return 0
        rb, ra, pb, pa = self._residues(cats)
        t = self.threshold
        total = 0
        if a < t:
            end = min(b, t)
            total += self._below(pb, len(rb), end) - self._below(pb, len(rb), a)
        if b > t:
            start = max(a, t)
            total += self._below(pa, len(ra), b) - self._below(pa, len(ra), start)
        return total

    def kth(self, cats: frozenset[str], k: int, limit: int) -> int | None:
        """The k-th (0-based) index < limit whose class is in cats."""
        rb, _, _, _ = self._residues(cats)
        if rb and limit <= self.threshold:
            # The common case (one region): direct arithmetic, no search.
            index = (k // len(rb)) * self.period + rb[k % len(rb)]
            return index if index < limit else None
        lo, hi = 0, limit
        while lo < hi:
            mid = (lo + hi) // 2
            if self.count(0, mid + 1, cats) > k:
                hi = mid
            else:
                lo = mid + 1
        return lo if lo < limit else None

    def members(self, start: int, stop: int, cats: frozenset[str]) -> Iterator[int]:
        """Indices in [start, stop) whose class is in cats, ascending, in O(members)."""
        rb, ra, _, _ = self._residues(cats)
        t = self.threshold
        for a, b, residues in ((start, min(stop, t), rb), (max(start, t), stop, ra)):
            if a >= b or not residues:
                continue
            block = (a // self.period) * self.period
            while block < b:
                for r in residues:
                    i = block + r
                    if i >= b:
                        break
                    if i >= a:
                        yield i
                block += self.period


def shuffled(stream: int, counts: Iterable[tuple[str, int]]) -> list[str]:
    """A deterministic permutation of a multiset of classes: exact proportions, no visible order."""
    items = [c for c, n in counts for _ in range(n)]
    d = Draw(stream, 0)
    for k in range(len(items) - 1, 0, -1):
        j = d.below(k + 1)
        items[k], items[j] = items[j], items[k]
    return items


class PatternView:
    """Records of a table that a window admits and whose class is in `cats`, in id (creation) order.

    Base records are counted by Pattern arithmetic; changed or deleted base records (holes) are subtracted
    and the overlay (records the clock created or changed) is classified from the record itself.
    """

    def __init__(
        self,
        table: VirtualTable,
        window: Window,
        pattern: Pattern,
        cats: Iterable[str],
        classify: Callable[[dict], str],
    ) -> None:
        self.table = table
        self.pattern = pattern
        self.cats = frozenset(cats)
        self.base = table.id_base
        view = table.query(window)
        self.lo, self.hi = view.lo, view.hi
        self.holes = [h for h in view.holes if pattern.category(h - self.base) in self.cats]
        self._hole_set = set(self.holes)
        self.overlay = []
        for rid in view.overlay:
            record = table.get(rid)
            if record is not None and classify(record) in self.cats:
                self.overlay.append(rid)
        self._length = self._rank_below(max(self.hi, self.overlay[-1] + 1 if self.overlay else 0))

    def __len__(self) -> int:
        return self._length

    def _rank_below(self, x: int) -> int:
        clamped = min(max(x, self.lo), self.hi)
        base = self.pattern.count(self.lo - self.base, clamped - self.base, self.cats)
        return base - bisect.bisect_left(self.holes, clamped) + bisect.bisect_left(self.overlay, x)

    def _base_from(self, start: int) -> Iterator[int]:
        for index in self.pattern.members(max(start, self.lo) - self.base, self.hi - self.base, self.cats):
            rid = index + self.base
            if rid not in self._hole_set:
                yield rid

    def ids(self, offset: int, limit: int) -> list[int]:
        if offset >= len(self) or limit <= 0 or offset < 0:
            return []
        lo = min(self.lo, self.overlay[0] if self.overlay else self.lo)
        hi = max(self.hi, self.overlay[-1] + 1 if self.overlay else self.hi)
        while lo < hi:  # smallest id x with rank_below(x + 1) > offset
            mid = (lo + hi) // 2
            if self._rank_below(mid + 1) > offset:
                hi = mid
            else:
                lo = mid + 1
        out: list[int] = []
        base_iter = self._base_from(lo)
        next_base = next(base_iter, None)
        o = bisect.bisect_left(self.overlay, lo)
        while len(out) < limit and (next_base is not None or o < len(self.overlay)):
            if o < len(self.overlay) and (next_base is None or self.overlay[o] < next_base):
                out.append(self.overlay[o])
                o += 1
            else:
                out.append(next_base)  # type: ignore[arg-type]
                next_base = next(base_iter, None)
        return out

    def page_ids(self, offset: int, limit: int, descending: bool = False) -> list[int]:
        if descending:
            end = len(self) - offset
            start = max(0, end - limit)
            return list(reversed(self.ids(start, end - start))) if end > 0 else []
        return self.ids(offset, limit)

    def all_ids(self, chunk: int = 2000) -> Iterator[int]:
        offset = 0
        while True:
            ids = self.ids(offset, chunk)
            yield from ids
            if len(ids) < chunk:
                return
            offset += chunk


class Builder:
    """A record = a template shared by many records (cached with its JSON) + the record's own fields.

    The same idea as gen.Composite, kept here so these simulators' fast paths (JSON splicing, reading a
    related record's template) rely on nothing private of a shared class. Template keys starting with `_`
    are private: `own` may read them, the output never contains them.
    """

    def __init__(
        self,
        stream: int,
        template: Callable[[Draw], dict],
        own: Callable[[int, int, datetime, dict], dict],
        size: int = 4096,
    ) -> None:
        self._stream = stream
        self._template = template
        self._own = own
        self._slots: list[tuple[dict, dict, bytes] | None] = [None] * size
        self.size = size

    def _slot(self, h: int) -> tuple[dict, dict, bytes]:
        k = h % self.size
        slot = self._slots[k]
        if slot is None:  # built on first use: startup stays instant
            full = self._template(Draw(self._stream, k))
            public = {key: value for key, value in full.items() if not key.startswith("_")}
            slot = self._slots[k] = (full, public, dumps(public)[1:-1])
        return slot

    def template_of(self, h: int) -> dict:
        """The (read-only) template of the record whose hash is h: cheap access to its shared fields."""
        return self._slot(h)[0]

    def __call__(self, index: int, d: Draw, created: datetime) -> dict:
        full, public, _ = self._slot(d.state)
        return {**self._own(index, d.state, created, full), **public}

    def json(self, index: int, h: int, created: datetime) -> bytes:
        parts: list[bytes] = []
        self.write_json(parts, index, h, created)
        return b"".join(parts)

    def write_json(self, out: list[bytes], index: int, h: int, created: datetime) -> None:
        """Append the record's JSON as parts: the page joins every part once."""
        full, _, fragment = self._slot(h)
        own = dumps(self._own(index, h, created, full))
        if fragment:
            out.extend((own[:-1], b",", fragment, b"}"))
        else:
            out.append(own)


class FastTable(VirtualTable):
    """A VirtualTable that serialises a page of base records without building them as dicts."""

    def json_many(self, record_ids: list[int]) -> bytes:
        build = self.build
        if not isinstance(build, Builder):
            return dumps(self.get_many(record_ids))
        with self._lock:  # the overlay and deletions are the parent's; read under its lock
            found = [(rid, self._overlay.get(rid)) for rid in record_ids if rid not in self._deleted]
        parts: list[bytes] = [b"["]
        write, stream, id_base, count = build.write_json, self.stream, self.id_base, self.count
        for rid, record in found:
            if len(parts) > 1:
                parts.append(b",")
            if record is not None:
                parts.append(dumps(record))
                continue
            index = rid - id_base
            if 0 <= index < count:
                write(parts, index, Draw(stream, index).state, self.created_at(index))
            elif len(parts) > 1:
                parts.pop()  # an allocated id not created yet (child before parent): nothing to send
        parts.append(b"]")
        return b"".join(parts)

    def hash_of(self, record_id: int) -> int:
        index = record_id - self.id_base
        return Draw(self.stream, index).state


def raw_json(faults: Faults, raw: bytes, headers: dict[str, str], listing: bool = True) -> Response:
    """A JSON body already serialised (list pages are spliced as bytes); honours the truncated-JSON fault."""
    if listing and faults.take("truncated_pages"):
        raw = raw[: max(1, len(raw) // 2)]
    return Response(raw, status_code=200, headers=headers, media_type="application/json")


# -- accounts ----------------------------------------------------------------------------------------------


@dataclass
class RezenAccount:
    name: str
    api_key: str
    sizes: dict[str, int]
    owner_id: str = ""
    owner: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, FastTable] = field(default_factory=dict)
    patterns: dict[str, Pattern] = field(default_factory=dict)
    codecs: dict[str, GuidCodec] = field(default_factory=dict)
    step: int = 0
    future_agents: list[tuple[int, int]] = field(default_factory=list)  # (agent id, tier) referenced early


def _tx_class(record: dict) -> str:
    state = (record.get("lifecycleState") or {}).get("state", "")
    group = next((g for g, states in TX_STATES.items() if state in states), "O")
    return group + TX_TYPE_LETTER.get(record.get("transactionType", ""), "S")


def _listing_class(record: dict) -> str:
    state = (record.get("lifecycleState") or {}).get("state", "")
    return next((g for g, states in LISTING_STATES.items() if state in states), "A")


def _agent_class(record: dict) -> str:
    return f"{record.get('tier', 0)}{AGENT_STATUS_LETTER.get(record.get('status', ''), 'O')}"


def _contribution_class(record: dict) -> str:
    return f"{record.get('tier', 0)}{'M' if record.get('missed') else 'N'}"


def _team_class(record: dict) -> str:
    return TEAM_TYPE_LETTER.get(record.get("teamType", ""), "N") + ("A" if record.get("status") == "ACTIVE" else "I")


CLASSIFY: dict[str, Callable[[dict], str]] = {
    "transactions": _tx_class,
    "listings": _listing_class,
    "agents": _agent_class,
    "contributions": _contribution_class,
    "teams": _team_class,
}


def rezen_signature(body: bytes, secret: str) -> str:
    """X-Real-Signature (sandbox assumption): `sha256=` + hex HMAC-SHA256 of the raw body, keyed by the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BadRequest(ValueError):
    pass


def _int_param(request: Request, name: str, default: int, low: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Failed to convert value of type 'String' to 'int' for {name}: {raw!r}") from None
    if value < low:
        raise BadRequest(f"{name} must be greater than or equal to {low}")
    return value


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: expected a date like 2024-01-31") from None


def _list_param(request: Request, name: str) -> list[str]:
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def _day_window(start: date | None, end: date | None, field_name: str) -> Window:
    """Inclusive calendar days [start, end] in UTC as a Window on created or updated time."""
    after = datetime(start.year, start.month, start.day, tzinfo=UTC) - timedelta(microseconds=1) if start else None
    before = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1) if end else None
    if field_name == "updated":
        return Window(updated_after=after, updated_before=before)
    return Window(created_after=after, created_before=before)


def _period_window(period: str | None) -> Window:
    if not period:
        return Window()
    start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
    end = (start + timedelta(days=32)).replace(day=1)
    return Window(created_after=start - timedelta(microseconds=1), created_before=end)


class Rezen(Simulator):
    name = "rezen"
    # Not published: 100 requests per 10 s per API key is the sandbox's documented assumption.
    default_rate_limits = {"global": (100, 10.0)}
    # Not published: 30 s, 2 min, 10 min, 30 min, 2 h, 6 h (docs/integrations/rezen.md).
    webhook_retry_delays = (30.0, 120.0, 600.0, 1800.0, 7200.0, 21600.0)

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.accounts: dict[str, RezenAccount] = {}
        self._by_key: dict[str, RezenAccount] = {}
        for name, (key, share) in ACCOUNTS.items():
            self.add_account(name, key, max(10, int(scale * share)))
        self._next_webhook = 1

    # -- data ----------------------------------------------------------------------------------------

    def add_account(self, name: str, api_key: str, size: int) -> RezenAccount:
        sizes = {
            "transactions": size,
            "listings": max(3, size // 3),
            "agents": size,
            "contributions": size,
            "teams": max(2, size // 25),
        }
        acct = RezenAccount(name, api_key, sizes)
        for entity in ENTITIES:
            acct.codecs[entity] = GuidCodec(self.seed, self.name, name, entity)
        acct.codecs["events"] = GuidCodec(self.seed, self.name, name, "events")
        acct.owner_id = acct.codecs["agents"].encode(0)
        acct.patterns = self._patterns(acct)
        acct.owner = self._owner(acct)
        for entity in ENTITIES:
            stream = stream_seed(self.seed, self.name, name, entity)
            acct.tables[entity] = FastTable(entity, sizes[entity], stream, self._builder(acct, entity), dumps=dumps)
        self.accounts[name] = acct
        self._by_key[api_key] = acct
        return acct

    def _patterns(self, acct: RezenAccount) -> dict[str, Pattern]:
        def s(*parts: object) -> int:
            return stream_seed(self.seed, self.name, acct.name, "pattern", *parts)

        sizes = acct.sizes
        # Transactions: 8% terminated; the rest closed, unless created in the last 120 days (open).
        groups = shuffled(s("tx", "group"), [("T", 8), ("C", 92)])
        types = shuffled(s("tx", "type"), [("S", 80), ("L", 12), ("R", 8)])
        tx_before = [g + t for g, t in zip(groups, types, strict=True)]
        tx_after = [("O" if c[0] == "C" else c[0]) + c[1] for c in tx_before]
        tx_open = history_first_index(HISTORY_END - timedelta(days=120), sizes["transactions"])
        # Listings: 10% terminated or expired; older than 180 days closed, newer active.
        listing_before = shuffled(s("listing"), [("T", 10), ("C", 90)])
        listing_after = ["A" if c == "C" else c for c in listing_before]
        listing_open = history_first_index(HISTORY_END - timedelta(days=180), sizes["listings"])
        # Network: tiers grow outward (2/8/20/30/40 %), 10% of agents inactive.
        tiers = shuffled(s("agents", "tier"), [("1", 2), ("2", 8), ("3", 20), ("4", 30), ("5", 40)])
        status = shuffled(s("agents", "status"), [("I", 10), ("A", 90)])
        c_tiers = shuffled(s("contrib", "tier"), [("1", 30), ("2", 25), ("3", 20), ("4", 15), ("5", 10)])
        missed = shuffled(s("contrib", "missed"), [("M", 5), ("N", 95)])
        team_types = shuffled(s("teams"), [("N", 12), ("P", 3), ("G", 2), ("D", 2), ("R", 1)])
        return {
            "transactions": Pattern(tx_before, tx_after, tx_open),
            "listings": Pattern(listing_before, listing_after, listing_open),
            "agents": Pattern([t + a for t, a in zip(tiers, status, strict=True)]),
            "contributions": Pattern([t + m for t, m in zip(c_tiers, missed, strict=True)]),
            "teams": Pattern([t + "A" for t in team_types]),
        }

    def _owner(self, acct: RezenAccount) -> dict[str, Any]:
        d = Draw(stream_seed(self.seed, self.name, acct.name, "owner"), 0)
        first, last = person_name(d)
        city, state, _ = d.pick(CITIES)
        joined = HISTORY_START - timedelta(days=200 + d.below(600))
        return {
            "id": acct.owner_id,
            "firstName": first,
            "lastName": last,
            "displayName": f"{first} {last}",
            "emailAddress": f"{first.lower()}.{last.lower()}@{acct.name}.example",
            "phoneNumber": phone(d),
            "status": "ACTIVE",
            "type": "AGENT",
            "tier": 0,
            "sponsorId": None,
            "accountCountry": "UNITED_STATES",
            "licenses": [
                {"number": f"{state}{700000 + d.below(300000)}", "stateOrProvince": STATE_NAMES[state], "active": True}
            ],
            "addresses": [{"city": city, "stateOrProvince": STATE_NAMES[state], "country": "UNITED_STATES"}],
            "equityPurchasePlanId": self._plan_id("equity_purchase", 0),
            "equityAwardPlanId": self._plan_id("equity_award", 0),
            "joinDate": day(joined),
            "createdAt": millis(joined),
            "updatedAt": millis(joined),
        }

    def _plan_id(self, kind: str, index: int) -> str:
        h = stream_seed(self.seed, self.name, "plan", kind, index)
        return str(uuid.UUID(int=h << 64 | mix64(h)))

    def _builder(self, acct: RezenAccount, entity: str) -> Callable[[int, Draw, datetime], dict]:
        sizes = acct.sizes
        pool = stream_seed(self.seed, self.name, acct.name, entity, "templates")
        codec = acct.codecs[entity]
        pattern = acct.patterns[entity]
        agents_codec = acct.codecs["agents"]
        agent_pattern = acct.patterns["agents"]
        owner_ref = {"id": acct.owner_id, "firstName": acct.owner["firstName"], "lastName": acct.owner["lastName"]}
        tier_cats = {t: frozenset(f"{t}{s}" for s in "AI") for t in range(1, TIERS + 1)}
        external = GuidCodec(self.seed, self.name, acct.name, "external-transactions")
        paid_before = int((HISTORY_END - timedelta(days=30)).timestamp())

        def tx_template(d: Draw) -> dict:
            city, state, zip3 = d.pick(CITIES)
            price = d.money(150_000, 1_500_000, 5_000)
            rate = d.pick((0.025, 0.03, 0.03, 0.035))
            return {
                "address": {
                    "street": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                    "street2": f"Unit {1 + d.below(40)}" if d.chance(0.15) else None,
                    "city": city,
                    "state": STATE_NAMES[state],
                    "zip": f"{zip3}{d.below(100):02d}",
                    "country": "UNITED_STATES",
                },
                "price": {"amount": float(price), "currency": "USD"},
                "grossCommission": {"amount": round(price * rate, 2), "currency": "USD"},
                "grossCommissionPercentage": round(rate * 100, 2),
                "representationType": d.pick(("BUYER", "BUYER", "SELLER", "SELLER", "DUAL")),
                "mlsNumber": str(10_000_000 + d.below(89_999_999)),
                "_days": (10 + d.below(20), 30 + d.below(60)),
                "_co_agent": d.chance(0.3),
            }

        def tx_template_with_owner(d: Draw) -> dict:
            # The key owner's participant entry is shared by every record of the template (read-only).
            template = tx_template(d)
            role = "SELLERS_AGENT" if template["representationType"] == "SELLER" else "BUYERS_AGENT"
            template["_owner_agent"] = {"yentaId": acct.owner_id, "role": role}
            return template

        def co_agent(h: int, index: int, count: int) -> str:
            # A co-agent joined the network no later than the transaction was created.
            ceiling = min(sizes["agents"], (index * sizes["agents"]) // max(count, 1) + 1)
            return agents_codec.encode(1 + (h >> 20) % max(ceiling, 1))

        def tx_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            cls = (pattern.before if i < pattern.threshold else pattern.after)[i % pattern.period]
            states = TX_STATES[cls[0]]
            accept_days, close_days = t["_days"]
            record_id = i + 1
            agents = [t["_owner_agent"]]
            if t["_co_agent"]:
                agents.append({"yentaId": co_agent(h, i, sizes["transactions"]), "role": "CO_AGENT"})
            return {
                "id": codec.encode(record_id),
                "code": self._code(record_id, 0),
                "transactionType": TX_TYPES[cls[1]],
                "lifecycleState": LIFECYCLE[states[(h >> 12) % len(states)]],
                "listing": False,
                "transactionOwner": owner_ref,
                "agents": agents,
                "contractAcceptanceDate": day(sec, accept_days),
                "closingDateEstimated": day(sec, close_days),
                "closedAt": day(sec, close_days) if cls[0] == "C" else None,
                "createdAt": sec * 1000,
                "updatedAt": sec * 1000,
            }

        def listing_template(d: Draw) -> dict:
            base = tx_template(d)
            base.pop("grossCommission")
            base.pop("representationType")
            base["_expires"] = 90 + d.below(180)
            return base

        def listing_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            cls = pattern.category(i)
            states = LISTING_STATES[cls]
            record_id = i + 1
            return {
                "id": codec.encode(record_id),
                "code": self._code(record_id, 1),
                "transactionType": "SALE",
                "lifecycleState": LIFECYCLE[states[(h >> 12) % len(states)]],
                "listing": True,
                "transactionOwner": owner_ref,
                "agents": [{"yentaId": acct.owner_id, "role": "SELLERS_AGENT"}],
                "listingDate": day(sec),
                "listingExpirationDate": day(sec, t["_expires"]),
                "createdAt": sec * 1000,
                "updatedAt": sec * 1000,
            }

        def agent_template(d: Draw) -> dict:
            first, last = person_name(d)
            city, state, _ = d.pick(CITIES)
            return {
                "firstName": first,
                "lastName": last,
                "displayName": f"{first} {last}",
                "_email": (f"{first.lower()}.{last.lower()}", d.pick(EMAIL_DOMAINS)),
                "phoneNumber": phone(d),
                "type": "AGENT",
                "accountCountry": "UNITED_STATES",
                "licenses": [
                    {
                        "number": f"{state}{700000 + d.below(300000)}",
                        "stateOrProvince": STATE_NAMES[state],
                        "active": True,
                    }
                ],
                "addresses": [{"city": city, "stateOrProvince": STATE_NAMES[state], "country": "UNITED_STATES"}],
                "equityPurchasePlanId": self._plan_id("equity_purchase", d.below(3)),
                "equityAwardPlanId": self._plan_id("equity_award", d.below(3)),
            }

        def sponsor(h: int, i: int, tier: int) -> str:
            # A tier-t agent was sponsored by a tier-(t-1) agent who joined before them.
            if tier <= 1:
                return acct.owner_id
            cats = tier_cats[tier - 1]
            above = agent_pattern.count(0, i, cats)
            if above == 0:
                # Only at the very start of history: the first agent of the tier above, though they joined later.
                parent = agent_pattern.kth(cats, 0, sizes["agents"])
                return agents_codec.encode(parent + 1) if parent is not None else acct.owner_id
            parent = agent_pattern.kth(cats, (h >> 16) % above, i)
            return agents_codec.encode(parent + 1) if parent is not None else acct.owner_id

        def agent_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            cls = agent_pattern.category(i)
            tier = int(cls[0])
            user, domain = t["_email"]
            return {
                "id": agents_codec.encode(i + 1),
                "emailAddress": f"{user}{i + 1}@{domain}",
                "status": "ACTIVE" if cls[1] == "A" else "INACTIVE",
                "tier": tier,
                "sponsorId": sponsor(h, i, tier),
                "joinDate": day(sec),
                "createdAt": sec * 1000,
                "updatedAt": sec * 1000,
            }

        def contribution_template(d: Draw) -> dict:
            gross = d.money(3_000, 45_000, 50)
            share = d.pick((0.05, 0.04, 0.03, 0.02, 0.01))
            return {
                "payout": {"amount": round(gross * share, 2), "currency": "USD"},
                "grossCommission": {"amount": float(gross), "currency": "USD"},
            }

        def contributor(h: int, i: int, tier: int) -> int:
            cats = tier_cats[tier]
            ceiling = min(sizes["agents"], (i * sizes["agents"]) // max(sizes["contributions"], 1) + 1)
            below = agent_pattern.count(0, ceiling, cats)
            if below == 0:
                first = agent_pattern.kth(cats, 0, sizes["agents"])
                return (first if first is not None else 0) + 1
            return (agent_pattern.kth(cats, (h >> 16) % below, ceiling) or 0) + 1

        def contribution_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            cls = pattern.category(i)
            tier = int(cls[0])
            agent_id = contributor(h, i, tier)
            # The contributor's name is in their template: no need to build their whole record.
            agents_table = acct.tables["agents"]
            agent = agents_table.build.template_of(agents_table.hash_of(agent_id))  # type: ignore[attr-defined]
            agent_uuid = agents_codec.encode(agent_id)
            return {
                "id": codec.encode(i + 1),
                "tier": tier,
                "agentYentaId": agent_uuid,
                "agent": {"id": agent_uuid, "firstName": agent["firstName"], "lastName": agent["lastName"]},
                # The contributing agent's own transaction: not one of this agent's, so only its identifiers.
                "transactionId": external.encode(h >> 16),
                "transactionCode": self._code(1 + (h >> 24) % (1 << 30), 2),
                "closedAt": day(sec),
                "missed": cls[1] == "M",
                "status": "PAID" if sec < paid_before else "PENDING",
                "createdAt": sec * 1000,
                "updatedAt": sec * 1000,
            }

        def team_template(d: Draw) -> dict:
            city = d.pick(CITIES)[0]
            return {"_name": (city, d.pick(("Group", "Team", "Collective", "Partners", "Realty")))}

        def team_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            city, kind = t["_name"]
            cls = pattern.category(i)
            leader = 1 + (h >> 20) % max(1, min(sizes["agents"], (i * sizes["agents"]) // sizes["teams"] + 1))
            return {
                "id": codec.encode(i + 1),
                "name": f"{city} {kind} {i + 1}",
                "status": "ACTIVE",
                "teamType": TEAM_TYPES[cls[0]],
                "leaderId": agents_codec.encode(leader),
                "createdAt": sec * 1000,
                "updatedAt": sec * 1000,
            }

        parts: dict[str, tuple[Callable[[Draw], dict], Callable[[int, int, datetime, dict], dict]]] = {
            "transactions": (tx_template_with_owner, tx_own),
            "listings": (listing_template, listing_own),
            "agents": (agent_template, agent_own),
            "contributions": (contribution_template, contribution_own),
            "teams": (team_template, team_own),
        }
        template, own = parts[entity]
        return Builder(pool, template, own)

    @staticmethod
    def _code(record_id: int, kind: int) -> str:
        """A transaction code like `KQX-BRM-TZA`, invertible so `transactions/code/{code}` needs no index."""
        n = (((record_id << 2) | kind) * CODE_MULT + CODE_ADD) % CODE_SPACE
        high, rest = divmod(n, TRIGRAM_SPACE * TRIGRAM_SPACE)
        middle, low = divmod(rest, TRIGRAM_SPACE)
        return f"{TRIGRAMS[high]}-{TRIGRAMS[middle]}-{TRIGRAMS[low]}"

    @staticmethod
    def _uncode(code: str) -> tuple[int, int] | None:
        text = code.replace("-", "").upper()
        if len(text) != 9 or not text.isalpha() or not text.isascii():
            return None
        space = CODE_SPACE
        n = 0
        for ch in text:
            n = n * 26 + (ord(ch) - 65)
        raw = ((n - CODE_ADD) * CODE_INVERSE) % space
        return raw >> 2, raw & 3

    # -- counts and mutations ------------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        window = _period_window(period)
        totals = dict.fromkeys((*ENTITIES, "equityPlans"), 0)
        for acct in self.accounts.values():
            if account and acct.name != account:
                continue
            for entity, table in acct.tables.items():
                totals[entity] += len(table.query(window))
        plans_created = HISTORY_START
        if window.admits(plans_created, plans_created, 0):
            totals["equityPlans"] = sum(len(p) for p in EQUITY_PLANS.values())
        return totals

    def _resolve(self, acct: RezenAccount, entity: str, value: int | str) -> int | None:
        if isinstance(value, int):
            return value
        return acct.codecs[entity].decode(value)

    def mutate(
        self,
        account: str,
        entity: str,
        creates: int = 0,
        updates: int = 0,
        deletes: int = 0,
        update_ids: list[int] | list[str] | None = None,
    ) -> dict:
        acct = self.accounts[account]
        table = acct.tables[entity]
        codec = acct.codecs[entity]
        events: list[tuple[str, str, str]] = []  # (entity, action, public id)
        with self._lock:
            acct.step += 1
            now = self.sandbox.clock.tick()
            d = Draw(table.stream ^ 0xC10C, acct.step)
            result: dict[str, list[int]] = {"created": [], "updated": [], "deleted": []}
            if acct.future_agents:
                # Agents promised by an earlier child-before-parent step join now.
                for agent_id, tier in acct.future_agents:
                    self._create_agent(acct, agent_id, tier, now, d)
                    events.append(("agents", "CREATED", acct.codecs["agents"].encode(agent_id)))
                acct.future_agents = []
            for _ in range(creates):
                record_id = table.allocate_id()
                record = table.build(record_id - 1, Draw(table.stream, record_id - 1), now)
                self._fresh(acct, entity, record, now, d)
                table.put(record_id, record, now, now)
                result["created"].append(record_id)
            candidates = [r for r in (self._resolve(acct, entity, v) for v in (update_ids or [])) if r is not None]
            attempts = 0
            while len(result["updated"]) < updates and attempts < updates * 20 + 20:
                attempts += 1
                record_id = candidates.pop(0) if candidates else 1 + d.below(max(table.next_id - 1, 1))
                current = table.get(record_id)
                if current is None or record_id in result["updated"] or record_id in result["created"]:
                    continue
                changed = self._changed(entity, dict(current), now, d)
                changed["updatedAt"] = millis(now)
                created = table.times(record_id)[0]  # type: ignore[index]
                table.put(record_id, changed, created, now)
                result["updated"].append(record_id)
            attempts = 0
            while len(result["deleted"]) < deletes and attempts < deletes * 20 + 20:
                attempts += 1
                record_id = 1 + d.below(max(table.next_id - 1, 1))
                if table.delete(record_id):
                    result["deleted"].append(record_id)
        public = {key: [codec.encode(r) for r in ids] for key, ids in result.items()}
        for key, action in (("created", "CREATED"), ("updated", "UPDATED"), ("deleted", "DELETED")):
            events.extend((entity, action, public_id) for public_id in public[key])
        self._notify(acct, events, now)
        return public

    def _create_agent(self, acct: RezenAccount, agent_id: int, tier: int, now: datetime, d: Draw) -> None:
        table = acct.tables["agents"]
        record = table.build(agent_id - 1, Draw(table.stream, agent_id - 1), now)
        record.update(tier=tier, status="ACTIVE", sponsorId=self._pick_sponsor(acct, tier, d))
        record.update(joinDate=day(now), createdAt=millis(now), updatedAt=millis(now))
        table.put(agent_id, record, now, now)

    def _pick_sponsor(self, acct: RezenAccount, tier: int, d: Draw) -> str:
        if tier <= 1:
            return acct.owner_id
        table = acct.tables["agents"]
        for _ in range(50):
            candidate = table.get(1 + d.below(max(table.next_id - 1, 1)))
            if candidate is not None and candidate.get("tier") == tier - 1:
                return candidate["id"]
        return acct.owner_id

    def _existing_agent(self, acct: RezenAccount, d: Draw, tier: int | None = None) -> int:
        table = acct.tables["agents"]
        fallback = 0
        for _ in range(100):
            candidate = 1 + d.below(max(table.next_id - 1, 1))
            record = table.get(candidate)
            if record is not None:
                fallback = fallback or candidate
                if tier is None or record.get("tier") == tier:
                    return candidate
        return fallback

    def _fresh(self, acct: RezenAccount, entity: str, record: dict, now: datetime, d: Draw) -> None:
        """A record created now: the clock's timestamps and the state a new record has."""
        record["createdAt"] = record["updatedAt"] = millis(now)
        agents = acct.codecs["agents"]
        if entity == "transactions":
            record["lifecycleState"] = {"state": "NEW"}
            record["closedAt"] = None
            record["contractAcceptanceDate"] = day(now)
            record["closingDateEstimated"] = day(now + timedelta(days=30 + d.below(45)))
            if len(record["agents"]) > 1:
                record["agents"][1] = {"yentaId": agents.encode(self._existing_agent(acct, d)), "role": "CO_AGENT"}
        elif entity == "listings":
            record["lifecycleState"] = {"state": "LISTING_ACTIVE"}
            record["listingDate"] = day(now)
            record["listingExpirationDate"] = day(now + timedelta(days=180))
        elif entity == "agents":
            record.update(status="ACTIVE", joinDate=day(now))
            record["sponsorId"] = self._pick_sponsor(acct, record["tier"], d)
        elif entity == "contributions":
            tier = record["tier"]
            if self.faults.child_before_parent:
                agent_id = acct.tables["agents"].allocate_id()
                acct.future_agents.append((agent_id, tier))
                agent = {"id": agents.encode(agent_id), "firstName": None, "lastName": None}
            else:
                agent_id = self._existing_agent(acct, d, tier)
                found = acct.tables["agents"].get(agent_id) or {}
                agent = {
                    "id": agents.encode(agent_id),
                    "firstName": found.get("firstName"),
                    "lastName": found.get("lastName"),
                }
            record.update(agent=agent, agentYentaId=agent["id"], closedAt=day(now), status="PENDING", missed=False)
        elif entity == "teams":
            record["status"] = "ACTIVE"
            record["leaderId"] = agents.encode(self._existing_agent(acct, d))

    @staticmethod
    def _changed(entity: str, record: dict, now: datetime, d: Draw) -> dict:
        if entity == "transactions":
            state = record["lifecycleState"]["state"]
            if state in TX_STATES["O"]:
                roll = d.below(100)
                if roll < 55:
                    record["lifecycleState"] = {"state": "CLOSED"}
                    record["closedAt"] = day(now)
                elif roll < 70:
                    record["lifecycleState"] = {"state": "TERMINATED"}
                else:
                    opened = TX_STATES["O"]
                    record["lifecycleState"] = {"state": opened[min(opened.index(state) + 1, len(opened) - 1)]}
                    record["price"] = {"amount": float(d.money(150_000, 1_500_000, 5_000)), "currency": "USD"}
            elif state in TX_STATES["C"]:
                record["lifecycleState"] = {"state": "SETTLED"}
            else:
                record["closingDateEstimated"] = day(now)
        elif entity == "listings":
            state = record["lifecycleState"]["state"]
            if state == "LISTING_ACTIVE":
                next_state = d.pick(("LISTING_IN_CONTRACT", "LISTING_ACTIVE", "TERMINATED"))
                record["lifecycleState"] = {"state": next_state}
                record["price"] = {"amount": float(d.money(150_000, 1_500_000, 5_000)), "currency": "USD"}
            elif state == "LISTING_IN_CONTRACT":
                record["lifecycleState"] = {"state": "LISTING_CLOSED"}
            else:
                record["listingExpirationDate"] = day(now + timedelta(days=90))
        elif entity == "agents":
            if d.chance(0.3):
                record["status"] = "INACTIVE" if record["status"] == "ACTIVE" else "ACTIVE"
            else:
                record["phoneNumber"] = phone(d)
        elif entity == "contributions":
            record["status"] = "PAID"
        elif entity == "teams":
            record["name"] = record["name"].split(" (")[0] + f" ({d.below(1000)})"
        return record

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name in self.accounts:
            self.mutate(name, "transactions", creates=math.ceil(hours), updates=math.ceil(hours * 2))
            self.mutate(name, "listings", creates=math.ceil(hours / 2), updates=math.ceil(hours / 2))
            self.mutate(name, "agents", creates=math.ceil(hours / 2), updates=math.ceil(hours / 4))
            self.mutate(name, "contributions", creates=math.ceil(hours * 2), updates=math.ceil(hours))

    # -- webhooks ------------------------------------------------------------------------------------

    def _notify(self, acct: RezenAccount, events: list[tuple[str, str, str]], now: datetime) -> None:
        targets = [s for s in self.subscriptions if s["account"] == acct.name]
        if not targets or not events:
            return
        for n, (entity, action, public_id) in enumerate(events):
            prefix, key = WEBHOOK_EVENTS[entity]
            event_type = f"{prefix}_{action}"
            event_id = str(
                uuid.UUID(
                    int=(stream_seed(self.seed, acct.name, acct.step, n, public_id, event_type) << 64) | acct.step
                )
            )
            payload = {"eventId": event_id, "eventType": event_type, "occurredAt": iso(now), key: public_id}
            for subscription in targets:
                if event_type not in subscription["eventTypes"]:
                    continue
                secret = subscription["secret"]
                self.emit(
                    subscription["url"],
                    payload,
                    lambda body, secret=secret, event_type=event_type, event_id=event_id: {
                        "X-Real-Signature": rezen_signature(body, secret),
                        "X-Real-Event-Type": event_type,
                        "X-Real-Event-Id": event_id,
                    },
                    event_id,
                )

    # -- HTTP: errors and auth -----------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        """The gateway's nested ApiError: auth failures, 429 and 5xx on both hosts, every yenta error."""
        body = {
            API_ERROR: {
                "status": HTTPStatus(status).name,
                "timestamp": iso(datetime.now(UTC)),
                "message": message,
                "debugMessage": None,
                "subErrors": None,
            }
        }
        return json_response(body, status)

    @staticmethod
    def arrakis_error(request: Request, status: int, message: str) -> Response:
        """arrakis' own 400/404 come in Spring Boot's default error body."""
        body = {
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "status": status,
            "error": HTTPStatus(status).phrase,
            "message": message,
            "path": request.url.path.removeprefix("/rezen/arrakis"),
        }
        return json_response(body, status)

    def credentials(self) -> dict[str, Any]:
        return {
            "header": "X-API-KEY",
            "accounts": {name: {"api_key": a.api_key, "yenta_id": a.owner_id} for name, a in self.accounts.items()},
        }

    def _authenticate(self, request: Request) -> RezenAccount | Response:
        key = request.headers.get("x-api-key", "").strip()
        if not key:
            return self.error(401, "Not authorized.")
        acct = self._by_key.get(key)
        if acct is None:
            return self.error(401, "Not authorized. Invalid API key.")
        if key in self.faults.revoked_keys:
            return self.error(401, "Not authorized. This API key has been revoked.")
        if self.faults.expired_credentials:
            return self.error(401, "Not authorized. This API key has expired.")
        if acct.name in self.faults.suspended_accounts:
            return self.error(403, "Access denied. This account is not active.")
        return acct

    async def _begin(self, request: Request) -> tuple[RezenAccount | None, Response | None, dict[str, str]]:
        acct = self._authenticate(request)
        if isinstance(acct, Response):
            return None, acct, {}
        failure, headers = await self.gate(acct.api_key, "global")
        if failure is not None:
            return None, failure, headers
        return acct, None, headers

    def _own_id(self, acct: RezenAccount, yenta_id: str) -> Response | None:
        if yenta_id.lower() != acct.owner_id:
            return self.error(403, "Not authorized.")
        return None

    # -- HTTP: serving records -----------------------------------------------------------------------

    def _serve(self, acct: RezenAccount, entity: str, record: dict, record_id: int) -> dict:
        if not self.faults.is_malformed(acct.tables[entity].stream, record_id):
            return record
        broken = dict(record)
        variant = record_id % 3
        if variant == 0:
            broken.pop("id", None)
        elif variant == 1:
            broken["createdAt"] = "not-a-timestamp"
        else:
            broken["updatedAt"] = None
        return broken

    def _records_json(self, acct: RezenAccount, entity: str, ids: list[int]) -> bytes:
        table = acct.tables[entity]
        if self.faults.malformed_rate > 0:
            return dumps([self._serve(acct, entity, table.get(r) or {}, r) for r in ids if table.exists(r)])
        return table.json_many(ids)

    def _view(self, acct: RezenAccount, entity: str, window: Window, cats: Iterable[str]) -> PatternView:
        table = acct.tables[entity]
        table.ties = self.faults.timestamp_ties
        return PatternView(table, window, acct.patterns[entity], cats, CLASSIFY[entity])

    @staticmethod
    def _paging(request: Request) -> tuple[int, int, bool]:
        page = _int_param(request, "pageNumber", 0)
        size = min(_int_param(request, "pageSize", DEFAULT_PAGE_SIZE, low=1), MAX_PAGE_SIZE)
        direction = (request.query_params.get("sortDirection") or "ASC").upper()
        if direction not in ("ASC", "DESC"):
            raise BadRequest(f"Invalid sortDirection {direction!r}: use ASC or DESC")
        return page, size, direction == "DESC"

    @staticmethod
    def _check_sort(request: Request, allowed: Sequence[str]) -> None:
        for value in _list_param(request, "sortBy"):
            if value.upper() not in allowed:
                raise BadRequest(f"Invalid sortBy {value!r}: one of {', '.join(allowed)}")

    @staticmethod
    def _spring_page(content: bytes, page: int, size: int, total: int, count: int, descending: bool) -> bytes:
        pages = -(-total // size) if total else 0
        sort = {"sorted": True, "unsorted": False, "empty": False}
        meta = {
            "pageable": {
                "pageNumber": page,
                "pageSize": size,
                "offset": page * size,
                "paged": True,
                "unpaged": False,
                "sort": sort,
            },
            "totalElements": total,
            "totalPages": pages,
            "last": page >= pages - 1,
            "first": page == 0,
            "size": size,
            "number": page,
            "numberOfElements": count,
            "sort": sort,
            "empty": count == 0,
            "sortDirection": "DESC" if descending else "ASC",
        }
        return b'{"content":' + content + b"," + dumps(meta)[1:]

    def _scan(self, acct: RezenAccount, entity: str, view: PatternView, keep: Callable[[dict], bool]) -> list[int]:
        """Filters the evidence names but no index can serve: exact, at the cost of reading the whole view."""
        table = acct.tables[entity]
        out = []
        for rid in view.all_ids():
            record = table.get(rid)
            if record is not None and keep(record):
                out.append(rid)
        return out

    # -- HTTP: arrakis -------------------------------------------------------------------------------

    async def participant_transactions(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        denied = self._own_id(acct, request.path_params["yenta_id"])
        if denied is not None:
            return denied
        group = request.path_params["group"].upper()
        listing_endpoint = request.url.path.split("/")[-2] == "listing-transactions"
        if group == "LIFECYCLE-GROUP-COUNTS":
            return self._group_counts(acct, "listings" if listing_endpoint else "transactions", headers)
        if listing_endpoint or group.startswith("LISTING_"):
            entity, groups = "listings", LISTING_GROUPS
        else:
            entity, groups = "transactions", TX_GROUPS
        if group not in groups:
            return self.arrakis_error(request, 400, f"Invalid lifecycle group {group!r}: one of {', '.join(groups)}")
        try:
            page, size, descending = self._paging(request)
            self._check_sort(request, ("CREATED_AT", "ID"))
            types = [t.upper() for t in _list_param(request, "transactionType")]
            unknown = [t for t in types if t not in TX_TYPE_LETTER]
            if unknown:
                raise BadRequest(f"Invalid transactionType {unknown[0]!r}")
        except BadRequest as exc:
            return self.arrakis_error(request, 400, str(exc))
        if entity == "transactions":
            letters = [TX_TYPE_LETTER[t] for t in types] or list(TX_TYPES)
            cats = {g + t for g in groups[group] for t in letters}
        else:
            cats = set(groups[group]) if not types or "SALE" in types else set()
        view = self._view(acct, entity, Window(), cats)
        search = (request.query_params.get("searchText") or "").strip().lower()
        if search:
            matches = self._scan(acct, entity, view, lambda r: search in _searchable(r))
            total = len(matches)
            ordered = list(reversed(matches)) if descending else matches
            ids = ordered[page * size : page * size + size]
        else:
            total = len(view)
            ids = view.page_ids(page * size, size, descending)
        body = self._spring_page(self._records_json(acct, entity, ids), page, size, total, len(ids), descending)
        response = raw_json(self.faults, body, headers)
        self.after_page(acct.name, entity, ids)
        return response

    def _group_counts(self, acct: RezenAccount, entity: str, headers: dict[str, str]) -> Response:
        groups = (
            TX_GROUPS
            if entity == "transactions"
            else {k: v for k, v in LISTING_GROUPS.items() if k in ("LISTING_ACTIVE", "CLOSED", "TERMINATED")}
        )
        counts = {}
        for name, letters in groups.items():
            cats = {g + t for g in letters for t in TX_TYPES} if entity == "transactions" else letters
            counts[name] = len(self._view(acct, entity, Window(), cats))
        return self.body(counts, headers=headers)

    def _find_transaction(self, acct: RezenAccount, public_id: str) -> tuple[str, int, dict] | None:
        for entity in ("transactions", "listings"):
            record_id = acct.codecs[entity].decode(public_id)
            if record_id is not None:
                record = acct.tables[entity].get(record_id)
                return (entity, record_id, record) if record is not None else None
        return None

    async def get_transaction(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        found = self._find_transaction(acct, request.path_params["transaction_id"])
        if found is None:
            return self.arrakis_error(request, 404, f"Transaction {request.path_params['transaction_id']} not found")
        entity, record_id, record = found
        return self.body(self._serve(acct, entity, record, record_id), headers=headers)

    async def get_transaction_by_code(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        code = request.path_params["code"]
        decoded = self._uncode(code)
        if decoded is not None and decoded[1] in (0, 1):
            entity = ("transactions", "listings")[decoded[1]]
            record = acct.tables[entity].get(decoded[0])
            if record is not None and record.get("code") == code.upper():
                return self.body(self._serve(acct, entity, record, decoded[0]), headers=headers)
        return self.arrakis_error(request, 404, f"Transaction with code {code} not found")

    async def contributions(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        denied = self._own_id(acct, request.path_params["yenta_id"])
        if denied is not None:
            return denied
        try:
            tier = int(request.path_params["tier"])
            if not 1 <= tier <= MAX_TIER:
                raise BadRequest(f"tier must be between 1 and {MAX_TIER}")
            page, size, descending = self._paging(request)
            window = _day_window(_date_param(request, "startDate"), _date_param(request, "endDate"), "created")
            missed = request.query_params.get("missed")
            if missed not in (None, "", "true", "false", "True", "False"):
                raise BadRequest("missed must be true or false")
        except (BadRequest, ValueError) as exc:
            return self.arrakis_error(request, 400, str(exc))
        flags = "MN" if missed in (None, "") else ("M" if missed.lower() == "true" else "N")
        view = self._view(acct, "contributions", window, {f"{tier}{f}" for f in flags})
        ids = view.page_ids(page * size, size, descending)
        body = b'{"contributions":' + self._records_json(acct, "contributions", ids) + b"}"
        response = raw_json(self.faults, body, headers)
        self.after_page(acct.name, "contributions", ids)
        return response

    async def webhooks(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        if request.method == "GET":
            mine = [self._public_subscription(s) for s in self.subscriptions if s["account"] == acct.name]
            return json_response(mine, headers=headers)
        try:
            body = orjson.loads(await request.body())
            url = body["url"]
            event_types = body.get("eventTypes") or sorted(EVENT_TYPES)
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError("url must be an absolute http(s) URL")
            if not isinstance(event_types, list) or any(e not in EVENT_TYPES for e in event_types):
                raise ValueError(f"eventTypes must be a list of: {', '.join(sorted(EVENT_TYPES))}")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return self.arrakis_error(request, 400, f"Invalid subscription: {exc}")
        with self._lock:
            number = self._next_webhook
            self._next_webhook += 1
        subscription = {
            "id": str(uuid.UUID(int=(stream_seed(self.seed, self.name, "webhook", number) << 64) | number)),
            "account": acct.name,
            "url": url,
            "eventTypes": list(event_types),
            "secret": "whsec_" + hashlib.sha256(f"{self.seed}:{acct.name}:{number}".encode()).hexdigest()[:40],
            "status": "ACTIVE",
            "createdAt": millis(self.now()),
        }
        self.subscriptions.append(subscription)
        # The secret is shown once, on creation, as signing secrets usually are.
        return json_response(
            {**self._public_subscription(subscription), "secret": subscription["secret"]}, 201, headers
        )

    async def delete_webhook(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        for subscription in list(self.subscriptions):
            if subscription["id"] == request.path_params["webhook_id"] and subscription["account"] == acct.name:
                self.subscriptions.remove(subscription)
                return Response(status_code=204, headers=headers)
        return self.arrakis_error(request, 404, "Webhook subscription not found")

    @staticmethod
    def _public_subscription(subscription: dict) -> dict:
        return {k: subscription[k] for k in ("id", "url", "eventTypes", "status", "createdAt")}

    # -- HTTP: yenta ---------------------------------------------------------------------------------

    def _find_agent(self, acct: RezenAccount, public_id: str) -> tuple[int, dict] | None:
        record_id = acct.codecs["agents"].decode(public_id)
        if record_id is None:
            return None
        if record_id == 0:
            return 0, acct.owner
        record = acct.tables["agents"].get(record_id)
        return (record_id, record) if record is not None else None

    async def me(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        return self.body(acct.owner, headers=headers)

    async def get_agent(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        found = self._find_agent(acct, request.path_params["agent_id"])
        if found is None:
            return self.error(404, f"Agent {request.path_params['agent_id']} not found.")
        record_id, record = found
        return self.body(self._serve(acct, "agents", record, record_id) if record_id else record, headers=headers)

    async def cap_info(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        found = self._find_agent(acct, request.path_params["agent_id"])
        if found is None:
            return self.error(404, f"Agent {request.path_params['agent_id']} not found.")
        _, record = found
        return self.body(self._cap(record), headers=headers)

    def _cap(self, agent: dict) -> dict:
        # The cap year runs from the agent's join anniversary; progress is a pure function of agent and date.
        now = self.now()
        joined = date.fromisoformat(agent["joinDate"])
        anniversary = joined.replace(year=now.year) if (joined.month, joined.day) != (2, 29) else date(now.year, 3, 1)
        if anniversary > now.date():
            anniversary = anniversary.replace(year=now.year - 1)
        d = Draw(stream_seed(agent["id"], anniversary.isoformat()), 0)
        # Real's standard cap is $12,000; team members carry reduced caps.
        cap = float(d.pick((12_000, 12_000, 12_000, 6_000, 4_000)))
        elapsed = (now.date() - anniversary).days / 365
        paid = round(min(cap, cap * elapsed * (0.5 + d.below(100) / 80)), 2)
        return {
            "agentId": agent["id"],
            "capStatus": "CAPPED" if paid >= cap else "NOT_CAPPED",
            "cap": {"amount": cap, "currency": "USD"},
            "capPaid": {"amount": paid, "currency": "USD"},
            "capRemaining": {"amount": round(cap - paid, 2), "currency": "USD"},
            "anniversaryDate": anniversary.isoformat(),
            "nextAnniversaryDate": anniversary.replace(year=anniversary.year + 1).isoformat(),
        }

    async def down_line(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        denied = self._own_id(acct, request.path_params["agent_id"])
        if denied is not None:
            return denied
        try:
            tier = int(request.path_params["tier"])
            if not 1 <= tier <= MAX_TIER:
                raise BadRequest(f"tier must be between 1 and {MAX_TIER}")
            page, size, descending = self._paging(request)
            window = _day_window(_date_param(request, "updatedAtFrom"), _date_param(request, "updatedAtTo"), "updated")
            statuses = [s.upper() for s in _list_param(request, "statusIn")] or ["ACTIVE"]
            unknown = [s for s in statuses if s not in AGENT_STATUS_LETTER]
            if unknown:
                raise BadRequest(f"Invalid statusIn {unknown[0]!r}")
        except (BadRequest, ValueError) as exc:
            return self.error(400, str(exc))
        view = self._view(acct, "agents", window, {f"{tier}{AGENT_STATUS_LETTER[s]}" for s in statuses})
        ids = view.page_ids(page * size, size, descending)
        total = len(view)
        meta = {
            "agentId": acct.owner_id,
            "tier": tier,
            "pageNumber": page,
            "pageSize": size,
            "totalCount": total,
            "hasNext": (page + 1) * size < total,
        }
        body = dumps(meta)[:-1] + b',"agents":' + self._records_json(acct, "agents", ids) + b"}"
        response = raw_json(self.faults, body, headers)
        self.after_page(acct.name, "agents", ids)
        return response

    async def front_line(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        denied = self._own_id(acct, request.path_params["agent_id"])
        if denied is not None:
            return denied
        view = self._view(acct, "agents", Window(), {"1A", "1I"})
        ids = list(view.all_ids())
        body = (
            dumps({"agentId": acct.owner_id})[:-1]
            + b',"frontLineAgents":'
            + self._records_json(acct, "agents", ids)
            + b"}"
        )
        return raw_json(self.faults, body, headers)

    async def network_size(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        denied = self._own_id(acct, request.path_params["agent_id"])
        if denied is not None:
            return denied
        sizes = [
            {"tier": tier, "networkSize": len(self._view(acct, "agents", Window(), {f"{tier}A"}))}
            for tier in range(1, TIERS + 1)
        ]
        body = {
            "agentId": acct.owner_id,
            "networkSizeByTier": sizes,
            "totalNetworkSize": sum(s["networkSize"] for s in sizes),
        }
        return self.body(body, headers=headers)

    async def search_active(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        try:
            page, size, descending = self._paging(request)
            self._check_sort(request, ("ID", "FIRST_NAME", "LAST_NAME", "EMAIL_ADDRESS", "ACCOUNT_COUNTRY"))
            for unsupported in ("phone", "country", "stateOrProvince", "nonReportable"):
                if request.query_params.get(unsupported):
                    raise BadRequest(f"The sandbox does not simulate the {unsupported} filter")
        except BadRequest as exc:
            return self.error(400, str(exc))
        view = self._view(acct, "agents", Window(), {f"{t}A" for t in range(1, TIERS + 1)})
        name = (request.query_params.get("name") or "").strip().lower()
        email = (request.query_params.get("email") or "").strip().lower()

        def keep(record: dict) -> bool:
            return (not name or name in record["displayName"].lower()) and (
                not email or email in record["emailAddress"].lower()
            )

        # The key owner is an active agent too and comes first (they joined before their network).
        owner_matches = keep(acct.owner)
        if name or email:
            ids = self._scan(acct, "agents", view, keep)
            total = len(ids) + owner_matches
        else:
            ids = None
            total = len(view) + 1
        order = (
            range(total - 1 - page * size, max(-1, total - 1 - page * size - size), -1)
            if descending
            else range(page * size, min(total, page * size + size))
        )
        positions = list(order)
        include_owner = owner_matches and 0 in positions
        table_positions = [p - 1 for p in positions if p > 0] if owner_matches else positions
        if ids is None:
            if table_positions:
                lo, hi = min(table_positions), max(table_positions)
                chunk = view.ids(lo, hi - lo + 1)
                page_ids = [chunk[p - lo] for p in table_positions]
            else:
                page_ids = []
        else:
            page_ids = [ids[p] for p in table_positions]
        records = self._records_json(acct, "agents", page_ids)
        if include_owner:
            owner = dumps(acct.owner)
            inner = records[1:-1]
            joined = [owner, inner] if not descending else [inner, owner]
            records = b"[" + b",".join(part for part in joined if part) + b"]"
        body = b'{"agents":' + records + b',"totalCount":' + str(total).encode() + b"}"
        response = raw_json(self.faults, body, headers)
        self.after_page(acct.name, "agents", page_ids)
        return response

    async def equity_plan(self, request: Request) -> Response:
        _, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        kind = request.path_params["kind"]
        plans = EQUITY_PLANS.get(kind)
        if plans is None:
            return self.error(404, f"Unknown plan type {kind}")
        for index, plan in enumerate(plans):
            if self._plan_id(kind, index) == request.path_params["plan_id"].lower():
                body = {
                    "id": self._plan_id(kind, index),
                    "type": kind.upper(),
                    **plan,
                    "createdAt": millis(HISTORY_START),
                }
                return self.body(body, headers=headers)
        return self.error(404, f"Plan {request.path_params['plan_id']} not found.")

    async def teams(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        try:
            page, size, descending = self._paging(request)
            self._check_sort(request, ("NAME", "CREATED_AT", "ID"))
            window = _day_window(
                _date_param(request, "createdAtStart"), _date_param(request, "createdAtEnd"), "created"
            )
            status = (request.query_params.get("status") or "").upper()
            team_type = (request.query_params.get("teamType") or "").upper()
            if status and status not in ("ACTIVE", "INACTIVE"):
                raise BadRequest(f"Invalid status {status!r}")
            if team_type and team_type not in TEAM_TYPE_LETTER:
                raise BadRequest(f"Invalid teamType {team_type!r}")
        except BadRequest as exc:
            return self.error(400, str(exc))
        types = [TEAM_TYPE_LETTER[team_type]] if team_type else list(TEAM_TYPES)
        statuses = ["A" if status == "ACTIVE" else "I"] if status else ["A", "I"]
        view = self._view(acct, "teams", window, {t + s for t in types for s in statuses})
        text = (request.query_params.get("name") or request.query_params.get("searchText") or "").strip().lower()
        if text:
            matches = self._scan(acct, "teams", view, lambda r: text in r["name"].lower())
            ordered = list(reversed(matches)) if descending else matches
            total, ids = len(matches), ordered[page * size : page * size + size]
        else:
            total, ids = len(view), view.page_ids(page * size, size, descending)
        body = self._spring_page(self._records_json(acct, "teams", ids), page, size, total, len(ids), descending)
        response = raw_json(self.faults, body, headers)
        self.after_page(acct.name, "teams", ids)
        return response

    def _roster(self, acct: RezenAccount, team: dict, record_id: int) -> list[dict]:
        """Members: the leader plus 2-8 agents who joined before the team was formed."""
        agents = acct.tables["agents"]
        sizes = acct.sizes
        d = Draw(acct.tables["teams"].stream ^ 0x7EA4, record_id)
        ceiling = max(1, min(agents.next_id - 1, (record_id * sizes["agents"]) // sizes["teams"] + 1))
        leader_id = acct.codecs["agents"].decode(team.get("leaderId") or "")
        chosen: list[tuple[int, str]] = [(leader_id, "LEADER")] if leader_id else []
        for _ in range(2 + d.below(7)):
            candidate = 1 + d.below(ceiling)
            if all(candidate != c for c, _ in chosen):
                chosen.append((candidate, "MEMBER"))
        members = []
        for agent_id, role in chosen:
            record = acct.owner if agent_id == 0 else agents.get(agent_id)
            if record is None:
                continue  # the agent left the network since the roster was formed
            members.append(
                {
                    "agentId": record["id"],
                    "name": record["displayName"],
                    "firstName": record["firstName"],
                    "lastName": record["lastName"],
                    "emailAddress": record["emailAddress"],
                    "role": role,
                    "roles": [role],
                }
            )
        return members

    async def team(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        record_id = acct.codecs["teams"].decode(request.path_params["team_id"])
        record = acct.tables["teams"].get(record_id) if record_id is not None else None
        if record is None or record_id is None:
            return self.error(404, f"Team {request.path_params['team_id']} not found.")
        members = self._roster(acct, record, record_id)
        if request.url.path.endswith("/members"):
            return self.body({"teamId": record["id"], "members": members}, headers=headers)
        if request.url.path.endswith("/without-agents"):
            return self.body(self._serve(acct, "teams", record, record_id), headers=headers)
        return self.body({**self._serve(acct, "teams", record, record_id), "agents": members}, headers=headers)

    def routes(self) -> list[BaseRoute]:
        arrakis = "/arrakis/api/v1"
        yenta = "/yenta/api/v1"
        return [
            Route(
                f"{arrakis}/transactions/participant/{{yenta_id}}/transactions/{{group}}", self.participant_transactions
            ),
            Route(
                f"{arrakis}/transactions/participant/{{yenta_id}}/listing-transactions/{{group}}",
                self.participant_transactions,
            ),
            Route(f"{arrakis}/transactions/code/{{code}}", self.get_transaction_by_code),
            Route(f"{arrakis}/transactions/{{transaction_id}}", self.get_transaction),
            Route(f"{arrakis}/revshares/{{yenta_id}}/contributions/{{tier}}", self.contributions),
            Route(f"{arrakis}/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route(f"{arrakis}/webhooks/{{webhook_id}}", self.delete_webhook, methods=["DELETE"]),
            Route(f"{yenta}/agents/me", self.me),
            Route(f"{yenta}/agents/search/active", self.search_active),
            Route(f"{yenta}/agents/plans/{{kind}}/{{plan_id}}", self.equity_plan),
            Route(f"{yenta}/agents/{{agent_id}}", self.get_agent),
            Route(f"{yenta}/agents/{{agent_id}}/cap-info", self.cap_info),
            Route(f"{yenta}/agents/{{agent_id}}/down-line/{{tier}}", self.down_line),
            Route(f"{yenta}/agents/{{agent_id}}/front-line-agents-info", self.front_line),
            Route(f"{yenta}/agents/{{agent_id}}/network-size-by-tier", self.network_size),
            Route(f"{yenta}/teams", self.teams),
            Route(f"{yenta}/teams/{{team_id}}", self.team),
            Route(f"{yenta}/teams/{{team_id}}/members", self.team),
            Route(f"{yenta}/teams/{{team_id}}/without-agents", self.team),
        ]


def _searchable(record: dict) -> str:
    address = record.get("address") or {}
    return " ".join(
        str(x) for x in (record.get("code"), address.get("street"), address.get("city"), address.get("zip")) if x
    ).lower()


__all__ = ["ACCOUNTS", "GuidCodec", "Pattern", "PatternView", "Rezen", "raw_json", "rezen_signature"]
