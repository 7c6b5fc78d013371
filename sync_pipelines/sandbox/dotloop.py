"""DotLoop simulator: the OAuth host at `/dotloop/oauth/...`, the Public API v2 at `/dotloop/public/v2/...`.

Three-legged OAuth2 with short-lived Bearer tokens and rotating refresh tokens, `batch_number`/`batch_size`
paging with `{meta: {total}, data}` envelopes, the loop `sort`/`filter` parameters, 100 requests per minute
per user, and subscription webhooks signed with HMAC-SHA1. Contract, evidence and assumptions:
docs/integrations/dotloop.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sync_pipelines.sandbox.base import Simulator, dumps, json_response
from sync_pipelines.sandbox.gen import (
    CITIES,
    EMAIL_DOMAINS,
    HISTORY_START,
    STREET_KINDS,
    STREET_NAMES,
    Composite,
    Draw,
    person_name,
    phone,
    record_hash,
    stream_seed,
)
from sync_pipelines.sandbox.ratelimit import Decision
from sync_pipelines.sandbox.store import VirtualTable, Window

CLIENT_ID = "dotloop_sandbox_client"
CLIENT_SECRET = "dotloop_sandbox_secret"
SCOPE = "account:read profile:* loop:* contact:* template:read"
ACCESS_TOKEN_TTL = 12 * 3600  # "tokens expire usually after 12 hours"
CODE_TTL = 600


@dataclass(frozen=True)
class UserSpec:
    account_id: int
    profiles: tuple[tuple[int, str, float], ...]  # (profile id, type, share of the sandbox scale in loops)
    contacts_share: float


# Two users of different size; acme has two profiles (agent and brokerage), so profile routing shows.
USERS: dict[str, UserSpec] = {
    "acme": UserSpec(2_000_101, ((4_001_001, "INDIVIDUAL", 1.0), (4_001_002, "COMPANY", 0.4)), 1.0),
    "summit": UserSpec(2_000_102, ((4_001_003, "INDIVIDUAL", 0.5),), 0.5),
}
ENTITIES = ("profiles", "loops", "participants", "contacts")
PARTICIPANTS_PER_LOOP = 3  # base participants; mutations add and remove more
EVENT_TYPES = (
    "LOOP_CREATED",
    "LOOP_UPDATED",
    "LOOP_MERGED",
    "LOOP_PARTICIPANT_CREATED",
    "LOOP_PARTICIPANT_UPDATED",
    "LOOP_PARTICIPANT_DELETED",
    "CONTACT_CREATED",
    "CONTACT_UPDATED",
    "CONTACT_DELETED",
    "PROFILE_UPDATED",
    "USER_PROFILE_ACTIVATED",
    "USER_PROFILE_DEACTIVATED",
    "USER_ADDED_TO_PROFILE",
    "USER_REMOVED_FROM_PROFILE",
    "SUBSCRIPTION_REMOVED",
    "SUBSCRIPTION_DISABLED",
)
TRANSACTION_STATUSES: dict[str, tuple[str, ...]] = {
    "PURCHASE_OFFER": ("PRE_OFFER", "UNDER_CONTRACT", "SOLD", "ARCHIVED"),
    "LISTING_FOR_SALE": (
        "PRE_LISTING",
        "PRIVATE_LISTING",
        "ACTIVE_LISTING",
        "UNDER_CONTRACT",
        "SOLD",
        "ARCHIVED",
    ),
    "LISTING_FOR_LEASE": ("PRE_LISTING", "ACTIVE_LISTING", "LEASED", "ARCHIVED"),
    "LEASE_OFFER": ("PRE_OFFER", "UNDER_CONTRACT", "LEASED", "ARCHIVED"),
    "REAL_ESTATE_OTHER": ("PRE_OFFER", "UNDER_CONTRACT", "SOLD", "ARCHIVED"),
}
TRANSACTION_TYPES = tuple(TRANSACTION_STATUSES)
PARTICIPANT_ROLES = (
    ("BUYER", "SELLER", "TENANT", "LANDLORD"),
    ("LISTING_AGENT", "BUYING_AGENT"),
    ("ESCROW_TITLE_REP", "LOAN_OFFICER", "LISTING_BROKER", "BUYING_BROKER", "OTHER"),
)
SUPPORTED_SORTS = ("default", "created", "updated")
# Documented sort keys the sandbox refuses: ordering on them would need a scan of every loop.
UNSUPPORTED_SORTS = (
    "address",
    "closing_date",
    "expiration_date",
    "listing_date",
    "purchase_price",
    "review_submission_date",
)
# Retry backoff after a failed delivery: 30 s, 1 m, 15 m, 30 m, 1 h, 2 h, 4 h, 8 h.
RETRY_DELAYS = (30.0, 60.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)


def dotloop_signature(body: bytes, signing_key: str) -> str:
    """X-DOTLOOP-SIGNATURE: lower-case hex HMAC-SHA1 of the raw request body, keyed with the signing key."""
    return hmac.new(signing_key.encode(), body, hashlib.sha1).hexdigest()


def parse_time(value: str, name: str) -> datetime:
    """A filter timestamp: ISO-8601 (Z, offset, or naive = UTC), a date, or epoch milliseconds."""
    text = value.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"Invalid {name}: {value!r}; expected an ISO-8601 timestamp") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def seeded_uuid(*parts: object) -> str:
    """A version-4-shaped UUID that is a pure function of its parts: the same seed replays the same ids."""
    return str(uuid.UUID(int=stream_seed(*parts, "hi") << 64 | stream_seed(*parts, "lo"), version=4))


class _Composite(Composite):
    """A Composite whose template a record's other views (loop detail) can read."""

    def template(self, h: int) -> dict:
        return self._slot(h)[0]


@dataclass
class Profile:
    id: int
    user: str
    record: dict
    loops: VirtualTable
    participants: VirtualTable
    loop_builder: _Composite
    extra_participants: dict[int, list[int]] = field(default_factory=dict)  # loop id -> participant ids
    participant_loop: dict[int, int] = field(default_factory=dict)  # participants not at their base loop
    merged_into: dict[int, int] = field(default_factory=dict)  # merged loop id -> surviving loop id
    future_loops: list[int] = field(default_factory=list)  # referenced by participants before they exist

    def loop_of(self, participant_id: int) -> int:
        moved = self.participant_loop.get(participant_id)
        if moved is not None:
            return moved
        index = participant_id - self.participants.id_base
        return self.loops.id_base + index // PARTICIPANTS_PER_LOOP


@dataclass
class User:
    name: str
    account_id: int
    record: dict
    profiles: dict[int, Profile]
    contacts: VirtualTable
    step: int = 0

    @property
    def default_profile(self) -> Profile:
        return next(iter(self.profiles.values()))


@dataclass
class Grant:
    """One authorization of the client by a user: the current access token and refresh token."""

    user: str
    client_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str
    revoked: bool = False


@dataclass
class Code:
    user: str
    client_id: str
    redirect_uri: str
    expires_at: datetime


class DotLoop(Simulator):
    name = "dotloop"
    # "100 requests per minute for a user", per client application.
    default_rate_limits = {"global": (100, 60.0)}
    webhook_retry_delays = RETRY_DELAYS

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.access_token_ttl = ACCESS_TOKEN_TTL  # seconds of the sandbox clock; tests may shorten it
        self.users: dict[str, User] = {}
        self._profiles: dict[int, Profile] = {}
        self._codes: dict[str, Code] = {}
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._spent_refresh: set[str] = set()  # rotated out: answered invalid_grant, not "unknown"
        self._next_subscription = 0
        profile_number = 0
        for user_number, (name, spec) in enumerate(USERS.items(), start=1):
            profiles: dict[int, Profile] = {}
            for profile_id, kind, share in spec.profiles:
                profile_number += 1
                profiles[profile_id] = self._make_profile(
                    name, profile_id, kind, profile_number, max(1, int(scale * share)), len(profiles) == 0
                )
            contact_base = 1_500_000_000 + user_number * 100_000_000 + 1
            contacts = VirtualTable(
                "contacts",
                max(1, int(scale * spec.contacts_share)),
                stream_seed(seed, self.name, name, "contacts"),
                self._contact_builder(name, contact_base),
                id_base=contact_base,
                dumps=dumps,
            )
            d = Draw(stream_seed(seed, self.name, name, "account"), 0)
            first, last = person_name(d)
            account = {
                "id": spec.account_id,
                "firstName": first,
                "lastName": last,
                "email": f"{first.lower()}.{last.lower()}@{name}-realty.example",
                "defaultProfileId": spec.profiles[0][0],
            }
            self.users[name] = User(name, spec.account_id, account, profiles, contacts)
            self._profiles.update(profiles)

    # -- data ----------------------------------------------------------------------------------

    def _make_profile(
        self, user: str, profile_id: int, kind: str, number: int, loops: int, is_default: bool
    ) -> Profile:
        d = Draw(stream_seed(self.seed, self.name, "profile", profile_id), 0)
        first, last = person_name(d)
        city, state, zip3 = d.pick(CITIES)
        company = f"{user.title()} Realty"
        record = {
            "id": profile_id,
            "name": f"{first} {last}" if kind == "INDIVIDUAL" else company,
            "type": kind,
            "company": company,
            "phone": phone(d),
            "fax": phone(d),
            "address": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
            "city": city,
            "state": state,
            "zipCode": f"{zip3}{d.below(100):02d}",
            "default": is_default,
            "requiresTemplate": kind == "COMPANY",
        }
        loop_base = number * 100_000_000 + 1
        loop_stream = stream_seed(self.seed, self.name, profile_id, "loops")
        builder = self._loop_builder(profile_id, loop_base)
        loops_table = VirtualTable("loops", loops, loop_stream, builder, id_base=loop_base, dumps=dumps)
        participants = VirtualTable(
            "participants",
            loops * PARTICIPANTS_PER_LOOP,
            stream_seed(self.seed, self.name, profile_id, "participants"),
            self._participant_builder(1_000_000_000 + number * 100_000_000 + 1),
            id_base=1_000_000_000 + number * 100_000_000 + 1,
            dumps=dumps,
        )
        return Profile(profile_id, user, record, loops_table, participants, builder)

    def _loop_builder(self, profile_id: int, loop_base: int) -> _Composite:
        def template(d: Draw) -> dict:
            first, last = person_name(d)
            city, state, zip3 = d.pick(CITIES)
            number = str(1 + d.below(9899))
            street = f"{d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}"
            zip_code = f"{zip3}{d.below(100):02d}"
            kind = d.pick(TRANSACTION_TYPES)
            total_tasks = 3 + d.below(20)
            return {
                "name": f"{first} {last}, {number} {street}, {city}, {state} {zip_code}",
                "status": d.pick(TRANSACTION_STATUSES[kind]),
                "transactionType": kind,
                "totalTaskCount": total_tasks,
                "completedTaskCount": d.below(total_tasks + 1),
                "_address": (number, street, city, state, zip_code, f"{city} County"),
                "_price": d.money(150_000, 2_000_000, 5_000),
                "_mls": str(10_000_000 + d.below(89_999_999)),
                "_close_days": 30 + d.below(60),
            }

        def own(i: int, h: int, created: datetime, _: dict) -> dict:
            loop_id = loop_base + i
            return {
                "id": loop_id,
                "updated": created,
                "created": created,
                "loopUrl": f"https://www.dotloop.com/m/loop?viewId={loop_id}",
            }

        return _Composite(stream_seed(self.seed, self.name, profile_id, "loop-templates"), template, own, dumps)

    @staticmethod
    def _participant_builder(id_base: int) -> Callable[[int, Draw, datetime], dict]:
        def build(i: int, d: Draw, created: datetime) -> dict:
            first, last = person_name(d)
            return {
                "id": id_base + i,
                "fullName": f"{first} {last}",
                "email": f"{first.lower()}.{last.lower()}{i % 997}@{d.pick(EMAIL_DOMAINS)}",
                "role": d.pick(PARTICIPANT_ROLES[i % PARTICIPANTS_PER_LOOP]),
                "phone": phone(d),
            }

        return build

    def _contact_builder(self, user: str, id_base: int) -> Composite:

        def template(d: Draw) -> dict:
            first, last = person_name(d)
            city, state, zip3 = d.pick(CITIES)
            return {
                "firstName": first,
                "lastName": last,
                "home": phone(d),
                "office": phone(d),
                "fax": phone(d),
                "address": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "city": city,
                "zipCode": f"{zip3}{d.below(100):02d}",
                "state": state,
                "country": "US",
                "_email": (f"{first.lower()}.{last.lower()}", d.pick(EMAIL_DOMAINS)),
            }

        def own(i: int, h: int, created: datetime, full: dict) -> dict:
            local, domain = full["_email"]
            return {"id": id_base + i, "email": f"{local}{i}@{domain}", "updated": created}

        return Composite(stream_seed(self.seed, self.name, user, "contact-templates"), template, own, dumps)

    def loop_detail(self, profile: Profile, loop_id: int) -> dict:
        """The loop's `/detail` sections: display names as keys, every value a string."""
        index = loop_id - profile.loops.id_base
        full = profile.loop_builder.template(record_hash(profile.loops.stream, index))
        created = profile.loops.times(loop_id)[0]  # type: ignore[index]
        number, street, city, state, zip_code, county = full["_address"]
        closing = created + timedelta(days=full["_close_days"])
        return {
            "Property Address": {
                "Street Number": number,
                "Street Name": street,
                "City": city,
                "State/Prov": state,
                "Zip/Postal Code": zip_code,
                "County": county,
                "MLS Number": full["_mls"],
            },
            "Financials": {"Purchase/Sale Price": str(full["_price"])},
            "Contract Dates": {
                "Contract Agreement Date": created.strftime("%m/%d/%Y"),
                "Closing Date": closing.strftime("%m/%d/%Y"),
            },
            "Contract Info": {"Transaction Number": f"TX-{loop_id}"},
        }

    def participant_ids(self, profile: Profile, loop_id: int) -> list[int]:
        ids: list[int] = []
        index = loop_id - profile.loops.id_base
        if 0 <= index < profile.loops.count:
            first = profile.participants.id_base + index * PARTICIPANTS_PER_LOOP
            ids.extend(range(first, first + PARTICIPANTS_PER_LOOP))
        ids.extend(profile.extra_participants.get(loop_id, ()))
        return [pid for pid in ids if profile.loop_of(pid) == loop_id and profile.participants.exists(pid)]

    # -- counts and mutations ------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        """Live records per entity; `account` is a user name, or `user:profileId` for one profile's loops."""
        window = Window()
        if period:
            start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
            end = (start + timedelta(days=32)).replace(day=1)
            window = Window(created_after=start - timedelta(microseconds=1), created_before=end)
        totals = dict.fromkeys(ENTITIES, 0)
        name, _, only_profile = (account or "").partition(":")
        for user in self.users.values():
            if name and user.name != name:
                continue
            totals["contacts"] += len(user.contacts.query(window))
            for profile in user.profiles.values():
                if only_profile and str(profile.id) != only_profile:
                    continue
                # Profiles carry no creation time; they count in the month the history starts.
                if window.admits(HISTORY_START, HISTORY_START, profile.id):
                    totals["profiles"] += 1
                totals["loops"] += len(profile.loops.query(window))
                totals["participants"] += len(profile.participants.query(window))
        return totals

    def _resolve(self, account: str) -> tuple[User, Profile]:
        """`user` or `user:profileId`: loops and participants live in a profile, contacts in the user."""
        name, _, profile_id = account.partition(":")
        user = self.users[name]
        if not profile_id:
            return user, user.default_profile
        if not profile_id.isdigit() or int(profile_id) not in user.profiles:
            raise KeyError(account)
        return user, user.profiles[int(profile_id)]

    def mutate(
        self,
        account: str,
        entity: str,
        creates: int = 0,
        updates: int = 0,
        deletes: int = 0,
        update_ids: list[int] | None = None,
    ) -> dict:
        if entity not in ("loops", "participants", "contacts"):
            raise KeyError(entity)
        user, profile = self._resolve(account)
        events: list[tuple[Profile | None, str, dict]] = []
        with self._lock:
            user.step += 1
            now = self.sandbox.clock.tick()
            d = Draw(stream_seed(self.seed, self.name, user.name, entity, "clock"), user.step)
            result: dict[str, Any] = {"created": [], "updated": [], "deleted": []}
            # Loops promised by an earlier child-before-parent step arrive now.
            for pending in user.profiles.values():
                for loop_id in pending.future_loops:
                    self._create_loop(pending, loop_id, now)
                    events.append((pending, "LOOP_CREATED", {"id": loop_id, "profileId": pending.id}))
                pending.future_loops = []
            if entity == "loops":
                self._mutate_loops(profile, creates, updates, deletes, update_ids, now, d, result, events)
            elif entity == "participants":
                self._mutate_participants(profile, creates, updates, deletes, update_ids, now, d, result, events)
            else:
                self._mutate_contacts(user, creates, updates, deletes, update_ids, now, d, result, events)
        for target, event_type, event in events:
            self._notify(user, target, event_type, event)
        return result

    def _create_loop(self, profile: Profile, loop_id: int, now: datetime) -> None:
        table = profile.loops
        index = loop_id - table.id_base
        record = table.build(index, Draw(table.stream, index), now)
        table.put(loop_id, record, now, now)

    def _touch_loop(self, profile: Profile, loop_id: int, now: datetime, changes: dict | None = None) -> None:
        """A participant change moves its loop's `updated`, so `updated_min` finds the loop again."""
        table = profile.loops
        current = table.get(loop_id)
        times = table.times(loop_id)
        if current is None or times is None:
            return
        table.put(loop_id, {**current, **(changes or {}), "updated": now}, times[0], now)

    @staticmethod
    def _pick(table: VirtualTable, d: Draw, candidates: list[int], taken: list[int]) -> int | None:
        for _ in range(50):
            record_id = candidates.pop(0) if candidates else table.id_base + d.below(table.next_id - table.id_base)
            if table.exists(record_id) and record_id not in taken:
                return record_id
        return None

    def _mutate_loops(
        self,
        profile: Profile,
        creates: int,
        updates: int,
        deletes: int,
        update_ids: list[int] | None,
        now: datetime,
        d: Draw,
        result: dict[str, Any],
        events: list[tuple[Profile | None, str, dict]],
    ) -> None:
        table = profile.loops
        for _ in range(creates):
            loop_id = table.allocate_id()
            self._create_loop(profile, loop_id, now)
            result["created"].append(loop_id)
            events.append((profile, "LOOP_CREATED", {"id": loop_id, "profileId": profile.id}))
        candidates = list(update_ids or [])
        for _ in range(updates):
            loop_id = self._pick(table, d, candidates, result["created"] + result["updated"])
            if loop_id is None:
                break
            current = table.get(loop_id) or {}
            kind = current.get("transactionType", "PURCHASE_OFFER")
            total = int(current.get("totalTaskCount", 5))
            self._touch_loop(
                profile,
                loop_id,
                now,
                {
                    "status": d.pick(TRANSACTION_STATUSES.get(kind, ("ARCHIVED",))),
                    "completedTaskCount": d.below(total + 1),
                },
            )
            result["updated"].append(loop_id)
            events.append((profile, "LOOP_UPDATED", {"id": loop_id, "profileId": profile.id}))
        # DotLoop has no loop deletion; a loop leaves the list when it is merged into another one.
        result["merged_into"] = []
        for _ in range(deletes):
            source = self._pick(table, d, [], result["deleted"])
            target = self._pick(table, d, [], [*result["deleted"], source or 0])
            if source is None or target is None:
                break
            for participant_id in self.participant_ids(profile, source):
                profile.participant_loop[participant_id] = target
                profile.extra_participants.setdefault(target, []).append(participant_id)
            table.delete(source)
            profile.merged_into[source] = target
            self._touch_loop(profile, target, now)
            result["deleted"].append(source)
            result["merged_into"].append([source, target])
            event = {"id": target, "profileId": profile.id, "fromId": source, "toId": target}
            events.append((profile, "LOOP_MERGED", event))

    def _mutate_participants(
        self,
        profile: Profile,
        creates: int,
        updates: int,
        deletes: int,
        update_ids: list[int] | None,
        now: datetime,
        d: Draw,
        result: dict[str, Any],
        events: list[tuple[Profile | None, str, dict]],
    ) -> None:
        table, loops = profile.participants, profile.loops
        for _ in range(creates):
            if self.faults.child_before_parent:
                loop_id = loops.allocate_id()
                profile.future_loops.append(loop_id)
            else:
                found = self._pick(loops, d, [], [])
                if found is None:
                    break
                loop_id = found
            participant_id = table.allocate_id()
            index = participant_id - table.id_base
            table.put(participant_id, table.build(index, Draw(table.stream, index), now), now, now)
            profile.participant_loop[participant_id] = loop_id
            profile.extra_participants.setdefault(loop_id, []).append(participant_id)
            self._touch_loop(profile, loop_id, now)
            result["created"].append(participant_id)
            event = {"id": participant_id, "loopId": loop_id, "profileId": profile.id}
            events.append((profile, "LOOP_PARTICIPANT_CREATED", event))
        candidates = list(update_ids or [])
        for _ in range(updates):
            participant_id = self._pick(table, d, candidates, result["created"] + result["updated"])
            if participant_id is None:
                break
            current = dict(table.get(participant_id) or {})
            current.update(role=d.pick(PARTICIPANT_ROLES[d.below(len(PARTICIPANT_ROLES))]), phone=phone(d))
            created = table.times(participant_id)[0]  # type: ignore[index]
            table.put(participant_id, current, created, now)
            loop_id = profile.loop_of(participant_id)
            self._touch_loop(profile, loop_id, now)
            result["updated"].append(participant_id)
            event = {"id": participant_id, "loopId": loop_id, "profileId": profile.id}
            events.append((profile, "LOOP_PARTICIPANT_UPDATED", event))
        for _ in range(deletes):
            participant_id = self._pick(table, d, [], result["deleted"])
            if participant_id is None:
                break
            loop_id = profile.loop_of(participant_id)
            table.delete(participant_id)
            self._touch_loop(profile, loop_id, now)
            result["deleted"].append(participant_id)
            event = {"id": participant_id, "loopId": loop_id, "profileId": profile.id}
            events.append((profile, "LOOP_PARTICIPANT_DELETED", event))

    def _mutate_contacts(
        self,
        user: User,
        creates: int,
        updates: int,
        deletes: int,
        update_ids: list[int] | None,
        now: datetime,
        d: Draw,
        result: dict[str, Any],
        events: list[tuple[Profile | None, str, dict]],
    ) -> None:
        table = user.contacts
        for _ in range(creates):
            contact_id = table.allocate_id()
            index = contact_id - table.id_base
            table.put(contact_id, table.build(index, Draw(table.stream, index), now), now, now)
            result["created"].append(contact_id)
            events.append((None, "CONTACT_CREATED", {"id": contact_id}))
        candidates = list(update_ids or [])
        for _ in range(updates):
            contact_id = self._pick(table, d, candidates, result["created"] + result["updated"])
            if contact_id is None:
                break
            current = table.get(contact_id) or {}
            changed = {**current, "office": phone(d), "city": d.pick(CITIES)[0], "updated": now}
            table.put(contact_id, changed, table.times(contact_id)[0], now)  # type: ignore[index]
            result["updated"].append(contact_id)
            events.append((None, "CONTACT_UPDATED", {"id": contact_id}))
        for _ in range(deletes):
            contact_id = self._pick(table, d, [], result["deleted"])
            if contact_id is None:
                break
            table.delete(contact_id)
            result["deleted"].append(contact_id)
            events.append((None, "CONTACT_DELETED", {"id": contact_id}))

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name, user in self.users.items():
            for profile_id in user.profiles:
                account = f"{name}:{profile_id}"
                self.mutate(account, "loops", creates=math.ceil(hours), updates=math.ceil(hours * 2))
                self.mutate(account, "participants", creates=math.ceil(hours), updates=math.ceil(hours / 2))
            self.mutate(
                name,
                "contacts",
                creates=math.ceil(hours),
                updates=math.ceil(hours / 2),
                deletes=int(hours >= 4),
            )

    # -- OAuth ---------------------------------------------------------------------------------

    def issue_code(self, user: str, redirect_uri: str = "", client_id: str = CLIENT_ID) -> str:
        """An authorization code as if `user` had approved the client (the tests' and CLI's way in)."""
        if user not in self.users:
            raise KeyError(user)
        code = secrets.token_urlsafe(24)
        self._codes[code] = Code(user, client_id, redirect_uri, self.now() + timedelta(seconds=CODE_TTL))
        return code

    def _issue_grant(self, user: str, client_id: str) -> Grant:
        ttl = 0 if self.faults.expired_credentials else self.access_token_ttl
        grant = Grant(user, client_id, str(uuid.uuid4()), str(uuid.uuid4()), self.now() + timedelta(seconds=ttl), SCOPE)
        self._access[grant.access_token] = grant
        self._refresh[grant.refresh_token] = grant
        return grant

    def _token_body(self, grant: Grant) -> Response:
        expires_in = max(0, int((grant.expires_at - self.now()).total_seconds()))
        body = {
            "access_token": grant.access_token,
            "token_type": "Bearer",
            "refresh_token": grant.refresh_token,
            "expires_in": expires_in,
            "scope": grant.scope,
        }
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> Response:
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="dotloop"'
        return json_response({"error": error, "error_description": description}, status, headers)

    def _client(self, request: Request) -> str | Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return self._oauth_error(401, "unauthorized", "Full authentication is required to access this resource")
        try:
            client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._oauth_error(401, "invalid_client", "Malformed Basic authorization header")
        if client_id != CLIENT_ID or not hmac.compare_digest(secret, CLIENT_SECRET):
            return self._oauth_error(401, "invalid_client", "Bad client credentials")
        if client_id in self.faults.revoked_keys:
            return self._oauth_error(401, "invalid_client", "Client access has been revoked")
        return client_id

    @staticmethod
    async def _params(request: Request) -> dict[str, str]:
        # Clients send the token parameters either as a form body or in the query string.
        params = dict(request.query_params)
        raw = await request.body()
        if raw and "json" in request.headers.get("content-type", ""):
            try:
                params.update({k: str(v) for k, v in orjson.loads(raw).items()})
            except (orjson.JSONDecodeError, AttributeError):
                pass
        elif raw:
            params.update(parse_qsl(raw.decode(errors="replace")))
        return params

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri") or ""
        if q.get("client_id") != CLIENT_ID:
            return self._oauth_error(400, "invalid_client", "Unknown client_id")
        if not redirect_uri:
            return self._oauth_error(400, "invalid_request", "redirect_uri is required")
        params: dict[str, str] = {}
        user = q.get("user") or next(iter(self.users))  # sandbox only: which user approves
        if q.get("response_type") != "code":
            params["error"] = "unsupported_response_type"
        elif user not in self.users:
            return self._oauth_error(400, "invalid_request", f"Unknown sandbox user {user!r}")
        elif user in self.faults.suspended_accounts:
            params["error"] = "access_denied"
        else:
            params["code"] = self.issue_code(user, redirect_uri)
        if q.get("state"):
            params["state"] = q["state"]
        parts = urlsplit(redirect_uri)
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)

    async def sandbox_code(self, request: Request) -> Response:
        client = self._client(request)
        if isinstance(client, Response):
            return client
        params = await self._params(request)
        user = params.get("user") or next(iter(self.users))
        if user not in self.users:
            return self._oauth_error(400, "invalid_request", f"Unknown sandbox user {user!r}")
        redirect_uri = params.get("redirect_uri", "")
        return json_response({"code": self.issue_code(user, redirect_uri, client), "user": user})

    async def token(self, request: Request) -> Response:
        client = self._client(request)
        if isinstance(client, Response):
            return client
        params = await self._params(request)
        grant_type = params.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                code = self._codes.pop(params.get("code", ""), None)
                if code is None or code.client_id != client or self.now() >= code.expires_at:
                    return self._oauth_error(400, "invalid_grant", "Invalid authorization code")
                if code.redirect_uri and params.get("redirect_uri") != code.redirect_uri:
                    return self._oauth_error(400, "invalid_grant", "Redirect URI mismatch")
                if code.user in self.faults.revoked_keys:
                    return self._oauth_error(400, "invalid_grant", "The user has revoked access")
                return self._token_body(self._issue_grant(code.user, client))
            if grant_type == "refresh_token":
                refresh = params.get("refresh_token", "")
                grant = self._refresh.get(refresh)
                if refresh in self._spent_refresh:
                    return self._oauth_error(400, "invalid_grant", "Refresh token has already been used")
                if grant is None or grant.revoked or grant.client_id != client:
                    return self._oauth_error(400, "invalid_grant", "Invalid refresh token")
                if refresh in self.faults.revoked_keys or grant.user in self.faults.revoked_keys:
                    return self._oauth_error(400, "invalid_grant", "Refresh token has been revoked")
                # Rotation: the old pair dies with the refresh.
                del self._refresh[refresh]
                self._access.pop(grant.access_token, None)
                self._spent_refresh.add(refresh)
                return self._token_body(self._issue_grant(grant.user, client))
        return self._oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")

    async def revoke(self, request: Request) -> Response:
        client = self._client(request)
        if isinstance(client, Response):
            return client
        token = (await self._params(request)).get("token", "")
        with self._lock:
            grant = self._access.get(token) or self._refresh.get(token)
            if grant is not None and grant.client_id == client:
                grant.revoked = True
                self._access.pop(grant.access_token, None)
                self._refresh.pop(grant.refresh_token, None)
        return json_response({})

    # -- API -----------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        return json_response({"status": status, "error": HTTPStatus(status).phrase, "message": message}, status)

    @staticmethod
    def _bearer_error(error: str, description: str) -> Response:
        challenge = f'Bearer realm="dotloop", error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
        return json_response(body, 401, {"WWW-Authenticate": challenge})

    def rate_headers(self, decision: Decision, context: str) -> dict[str, str]:
        # X-RateLimit-Reset is the time left in the window, in milliseconds.
        if not decision.allowed:
            reset_ms = decision.retry_after * 1000
        else:
            reset_ms = max(0, int((decision.reset_epoch - time.time()) * 1000))
        return {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(reset_ms),
        }

    def _authenticate(self, request: Request) -> User | Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            body = {
                "error": "unauthorized",
                "error_description": "Full authentication is required to access this resource",
            }
            return json_response(body, 401, {"WWW-Authenticate": 'Bearer realm="dotloop"'})
        token = header[7:].strip()
        grant = self._access.get(token)
        if grant is None or grant.revoked:
            return self._bearer_error("invalid_token", "Invalid access token")
        revoked = self.faults.revoked_keys
        if token in revoked or grant.refresh_token in revoked or grant.client_id in revoked or grant.user in revoked:
            return self._bearer_error("invalid_token", "Access token has been revoked")
        if self.faults.expired_credentials or self.now() >= grant.expires_at:
            return self._bearer_error("invalid_token", "Access token expired")
        if grant.user in self.faults.suspended_accounts:
            return self.error(403, "Access is denied: this account is not active")
        return self.users[grant.user]

    async def _begin(self, request: Request) -> tuple[User | None, Response | None, dict[str, str]]:
        user = self._authenticate(request)
        if isinstance(user, Response):
            return None, user, {}
        failure, headers = await self.gate(user.name, "global")
        if failure is not None:
            return None, failure, headers
        return user, None, headers

    def _profile(self, user: User, profile_id: int, headers: dict[str, str]) -> Profile | Response:
        profile = self._profiles.get(profile_id)
        if profile is None:
            return self._with(self.error(404, f"Profile {profile_id} not found"), headers)
        if profile.user != user.name:
            return self._with(self.error(403, "Access is denied"), headers)
        return profile

    @staticmethod
    def _with(response: Response, headers: dict[str, str]) -> Response:
        response.headers.update(headers)
        return response

    def _batch(self, request: Request) -> tuple[int, int]:
        q = request.query_params
        try:
            number = int(q.get("batch_number") or 1)
            size = int(q.get("batch_size") or 20)
        except ValueError:
            raise ValueError("batch_number and batch_size must be integers") from None
        if number < 1:
            raise ValueError("batch_number must be 1 or more")
        if not 1 <= size <= 100:
            raise ValueError("batch_size must be between 1 and 100")
        return (number - 1) * size, size

    def _serve(self, table: VirtualTable, record: dict) -> dict:
        record_id = record.get("id")
        if not isinstance(record_id, int) or not self.faults.is_malformed(table.stream, record_id):
            return record
        broken = dict(record)
        variant = record_id % 3
        if variant == 0:
            broken.pop("id")
        elif variant == 1 and "updated" in broken:
            broken["updated"] = "not-a-date"
        elif "created" in broken:
            broken["created"] = _ms(record["created"]) if isinstance(record["created"], datetime) else 0
        else:
            broken["email"] = 12345
        return broken

    def _listing(
        self,
        table: VirtualTable,
        ids: list[int],
        total: int,
        headers: dict[str, str],
        extra: Callable | None = None,
    ) -> Response:
        if self.faults.malformed_rate > 0 or extra is not None:
            records = [self._serve(table, r) for r in table.get_many(ids)]
            if extra is not None:
                records = [{**r, **extra(r)} if "id" in r else r for r in records]
            return self.body({"meta": {"total": total}, "data": records}, headers=headers, listing=True)
        # The hot path: records spliced as JSON bytes, never built as dicts.
        raw = b"".join((b'{"meta":{"total":', str(total).encode(), b'},"data":[', table.get_many_json(ids), b"]}"))
        return self.raw_body(raw, headers=headers, listing=True)

    async def account(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        return json_response({"data": user.record}, headers=headers)

    async def profiles(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        data = [p.record for p in user.profiles.values()]
        return self.body({"meta": {"total": len(data)}, "data": data}, headers=headers, listing=True)

    async def profile(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        profile = self._profile(user, request.path_params["pid"], headers)
        if isinstance(profile, Response):
            return profile
        return json_response({"data": profile.record}, headers=headers)

    def _loop_query(self, request: Request) -> tuple[Window, str, bool]:
        sort = request.query_params.get("sort") or "default"
        key, _, direction = sort.partition(":")
        if key in UNSUPPORTED_SORTS:
            raise ValueError(f"sort key {key!r} is not supported by the sandbox; use created or updated")
        if key not in SUPPORTED_SORTS or direction not in ("", "asc", "desc"):
            raise ValueError(f"Invalid sort {sort!r}: expected <key>:<asc|desc>")
        descending = direction == "desc" or (key == "default" and direction == "")
        order = "id" if key == "created" else "updated"
        created_min = updated_min = None
        for pair in filter(None, (request.query_params.get("filter") or "").split(",")):
            name, _, value = pair.partition("=")
            name = name.strip()
            if name == "updated_min":
                updated_min = parse_time(value, name) - timedelta(microseconds=1)
            elif name == "created_min":
                created_min = parse_time(value, name) - timedelta(microseconds=1)
            elif name in ("transaction_type", "transaction_status"):
                raise ValueError(f"filter {name} is not supported by the sandbox")
            else:
                raise ValueError(f"Invalid filter {name!r}")
        return Window(created_after=created_min, updated_after=updated_min), order, descending

    async def loops(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        profile = self._profile(user, request.path_params["pid"], headers)
        if isinstance(profile, Response):
            return profile
        try:
            offset, size = self._batch(request)
            window, order, descending = self._loop_query(request)
        except ValueError as exc:
            return self._with(self.error(400, str(exc)), headers)
        table = profile.loops
        table.ties = self.faults.timestamp_ties
        view = table.query(window, order)
        ids = view.page_ids(offset, size, descending)
        include = (request.query_params.get("include_details") or "").lower() == "true"
        extra = (lambda record: {"details": self.loop_detail(profile, record["id"])}) if include else None
        response = self._listing(table, ids, len(view), headers, extra)
        self.after_page(f"{user.name}:{profile.id}", "loops", ids)
        return response

    def _loop(self, user: User, request: Request, headers: dict[str, str]) -> tuple[Profile, int] | Response:
        profile = self._profile(user, request.path_params["pid"], headers)
        if isinstance(profile, Response):
            return profile
        loop_id = request.path_params["lid"]
        if loop_id in profile.merged_into:
            target = profile.merged_into[loop_id]
            while target in profile.merged_into:
                target = profile.merged_into[target]
            location = str(request.url).replace(f"/loop/{loop_id}", f"/loop/{target}", 1)
            return self._with(RedirectResponse(location, status_code=301), headers)
        if not profile.loops.exists(loop_id):
            return self._with(self.error(404, f"Loop {loop_id} not found"), headers)
        return profile, loop_id

    async def loop(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        found = self._loop(user, request, headers)
        if isinstance(found, Response):
            return found
        profile, loop_id = found
        record = self._serve(profile.loops, profile.loops.get(loop_id))  # type: ignore[arg-type]
        return self.body({"data": record}, headers=headers)

    async def loop_detail_route(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        found = self._loop(user, request, headers)
        if isinstance(found, Response):
            return found
        profile, loop_id = found
        return self.body({"data": self.loop_detail(profile, loop_id)}, headers=headers)

    async def participants(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        found = self._loop(user, request, headers)
        if isinstance(found, Response):
            return found
        profile, loop_id = found
        ids = self.participant_ids(profile, loop_id)
        records = [self._serve(profile.participants, r) for r in profile.participants.get_many(ids)]
        return self.body({"meta": {"total": len(records)}, "data": records}, headers=headers, listing=True)

    async def participant(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        found = self._loop(user, request, headers)
        if isinstance(found, Response):
            return found
        profile, loop_id = found
        participant_id = request.path_params["ptid"]
        if participant_id not in self.participant_ids(profile, loop_id):
            return self._with(self.error(404, f"Participant {participant_id} not found"), headers)
        record = profile.participants.get(participant_id)
        return self.body({"data": self._serve(profile.participants, record)}, headers=headers)  # type: ignore[arg-type]

    async def contacts(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        try:
            offset, size = self._batch(request)
        except ValueError as exc:
            return self._with(self.error(400, str(exc)), headers)
        table = user.contacts
        table.ties = self.faults.timestamp_ties
        view = table.query(Window(), "id")
        ids = view.page_ids(offset, size)
        response = self._listing(table, ids, len(view), headers)
        self.after_page(user.name, "contacts", ids)
        return response

    async def contact(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        record = user.contacts.get(request.path_params["cid"])
        if record is None:
            return self._with(self.error(404, "Contact not found"), headers)
        return self.body({"data": self._serve(user.contacts, record)}, headers=headers)

    # -- webhooks ------------------------------------------------------------------------------

    def _notify(self, user: User, profile: Profile | None, event_type: str, event: dict) -> None:
        now = self.now()
        for subscription in list(self.subscriptions):
            if (
                subscription["user"] != user.name
                or not subscription["enabled"]
                or event_type not in subscription["eventTypes"]
                or (
                    subscription["targetType"] == "PROFILE"
                    and (profile is None or subscription["targetId"] != profile.id)
                )
            ):
                continue
            event_id = seeded_uuid(self.seed, subscription["id"], event_type, user.step, *event.values())
            payload: dict[str, Any] = {
                "eventId": event_id,
                "eventType": event_type,
                "timestamp": _ms(now),
                "subscriptionExternalId": subscription.get("externalId"),
            }
            if profile is not None:
                payload["profileId"] = profile.id
            payload["event"] = event
            subscription["_events"].append(
                {"id": event_id, "eventType": event_type, "createdOn": now, "eventData": event}
            )
            self.emit(subscription["url"], payload, self._signer(subscription.get("signingKey")), event_id)

    @staticmethod
    def _signer(signing_key: str | None) -> Callable[[bytes], dict[str, str]]:
        def sign(body: bytes) -> dict[str, str]:
            headers = {"X-DOTLOOP-TIMESTAMP": str(int(time.time() * 1000))}
            if signing_key:
                headers["X-DOTLOOP-SIGNATURE"] = dotloop_signature(body, signing_key)
            return headers

        return sign

    @staticmethod
    def _public(subscription: dict) -> dict:
        keys = ("id", "targetType", "targetId", "url", "eventTypes", "externalId", "enabled")
        return {k: subscription[k] for k in keys if subscription.get(k) is not None}

    def _validate_subscription(self, user: User, body: dict, partial: bool) -> str | None:
        if not partial or "targetType" in body or "targetId" in body:
            if body.get("targetType") not in ("PROFILE", "USER"):
                return "targetType must be PROFILE or USER"
            try:
                target = int(body.get("targetId"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return "targetId is required"
            if body["targetType"] == "PROFILE" and target not in user.profiles:
                return f"Profile {target} is not accessible"
            if body["targetType"] == "USER" and target != user.account_id:
                return f"User {target} is not accessible"
        url = body.get("url")
        if (not partial or "url" in body) and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            return "url must be an http(s) URL"
        if not partial or "eventTypes" in body:
            types = body.get("eventTypes")
            if not isinstance(types, list) or not types or not set(types) <= set(EVENT_TYPES):
                return f"eventTypes must be a non-empty list of {', '.join(EVENT_TYPES)}"
        return None

    async def subscriptions_route(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        if request.method == "GET":
            mine = [self._public(s) for s in self.subscriptions if s["user"] == user.name]
            return json_response({"meta": {"total": len(mine)}, "data": mine}, headers=headers)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return self._with(self.error(400, "Expected a JSON body"), headers)
        problem = self._validate_subscription(user, body, partial=False) if isinstance(body, dict) else "bad body"
        if problem:
            return self._with(self.error(400, problem), headers)
        subscription = {
            "id": seeded_uuid(self.seed, self.name, "subscription", self._next_subscription),
            "user": user.name,
            "targetType": body["targetType"],
            "targetId": int(body["targetId"]),
            "url": body["url"],
            "eventTypes": list(body["eventTypes"]),
            "externalId": body.get("externalId"),
            "signingKey": body.get("signingKey"),
            "enabled": bool(body.get("enabled", True)),
            "_events": [],
        }
        self._next_subscription += 1
        self.subscriptions.append(subscription)
        return json_response({"data": self._public(subscription)}, 201, headers)

    def _subscription(self, user: User, request: Request, headers: dict[str, str]) -> dict | Response:
        for subscription in self.subscriptions:
            if subscription["id"] == request.path_params["sid"] and subscription["user"] == user.name:
                return subscription
        return self._with(self.error(404, "Subscription not found"), headers)

    async def subscription_route(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        subscription = self._subscription(user, request, headers)
        if isinstance(subscription, Response):
            return subscription
        if request.method == "DELETE":
            self.subscriptions.remove(subscription)
            return Response(status_code=204, headers=headers)
        if request.method == "PATCH":
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                return self._with(self.error(400, "Expected a JSON body"), headers)
            problem = self._validate_subscription(user, body, partial=True) if isinstance(body, dict) else "bad body"
            if problem:
                return self._with(self.error(400, problem), headers)
            for key in ("targetType", "url", "eventTypes", "externalId", "signingKey", "enabled"):
                if key in body:
                    subscription[key] = body[key]
            if "targetId" in body:
                subscription["targetId"] = int(body["targetId"])
        return json_response({"data": self._public(subscription)}, headers=headers)

    async def subscription_events(self, request: Request) -> Response:
        user, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert user is not None
        subscription = self._subscription(user, request, headers)
        if isinstance(subscription, Response):
            return subscription
        attempts: dict[str, list[int | None]] = {}
        for record in list(self.sandbox.emitter.log):
            if record.source == self.name and record.url == subscription["url"]:
                attempts.setdefault(record.event_id, []).append(record.status)
        data = []
        for event in subscription["_events"]:
            statuses = attempts.get(event["id"], [])
            if any(s is not None and 200 <= s < 300 for s in statuses):
                status = "SUCCESS"
            elif len(statuses) > len(RETRY_DELAYS):
                status = "FAILED"
            else:
                status = "PENDING"
            data.append({**event, "deliveryStatus": status, "deliveryAttempts": len(statuses)})
        return json_response({"meta": {"total": len(data)}, "data": data}, headers=headers)

    # -- HTTP ----------------------------------------------------------------------------------

    def credentials(self) -> dict[str, Any]:
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorize_url": f"{self.base_url}/oauth/authorize",
            "token_url": f"{self.base_url}/oauth/token",
            "revoke_url": f"{self.base_url}/oauth/token/revoke",
            "sandbox_code_url": f"{self.base_url}/oauth/_sandbox/code",
            "api_base_url": f"{self.base_url}/public/v2",
            "users": {
                name: {"account_id": user.account_id, "profile_ids": list(user.profiles)}
                for name, user in self.users.items()
            },
            # What `sync-pipelines accounts add dotloop` takes for each user, as the other sources' "accounts" give
            # their keys: a fresh authorization code on every call (single-use, 10 minutes of sandbox time).
            "accounts": {name: {"code": self.issue_code(name)} for name in self.users},
        }

    def routes(self) -> list[BaseRoute]:
        api = "/public/v2"
        loop = api + "/profile/{pid:int}/loop/{lid:int}"
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/token/revoke", self.revoke, methods=["POST"]),
            Route("/oauth/_sandbox/code", self.sandbox_code, methods=["POST"]),
            Route(api + "/account", self.account),
            Route(api + "/profile", self.profiles),
            Route(api + "/profile/{pid:int}", self.profile),
            Route(api + "/profile/{pid:int}/loop", self.loops),
            Route(loop, self.loop),
            Route(loop + "/detail", self.loop_detail_route),
            Route(loop + "/participant", self.participants),
            Route(loop + "/participant/{ptid:int}", self.participant),
            Route(api + "/contact", self.contacts),
            Route(api + "/contact/{cid:int}", self.contact),
            Route(api + "/subscription", self.subscriptions_route, methods=["GET", "POST"]),
            Route(api + "/subscription/{sid}", self.subscription_route, methods=["GET", "PATCH", "DELETE"]),
            Route(api + "/subscription/{sid}/event", self.subscription_events),
        ]
