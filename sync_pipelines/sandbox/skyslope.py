"""SkySlope Transaction Management API simulator: `/skyslope/auth/login` and `/skyslope/api/...`.

HMAC-signed login returning a `Session` token, the bulk export (`/api/files`, default window the last 7
days), paged sales and listings with `links[rel=next]`, users and offices. Dates carry no time zone and
milliseconds as .NET writes them (`2020-10-13T18:38:42.997`). No webhooks: the TM API has none.
Contract, evidence and assumptions: docs/integrations/skyslope.md.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import heapq
import hmac
import math
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sync_pipelines.sandbox.base import Simulator, dumps, json_response
from sync_pipelines.sandbox.gen import (
    CITIES,
    EMAIL_DOMAINS,
    HISTORY_END,
    HISTORY_START,
    STREET_KINDS,
    STREET_NAMES,
    Draw,
    history_time,
    person_name,
    phone,
    stream_seed,
)
from sync_pipelines.sandbox.rezen import Builder, FastTable, GuidCodec
from sync_pipelines.sandbox.store import Window

CLIENT_ID = "skyslope_sandbox_client_id"
CLIENT_SECRET = "skyslope_sandbox_client_secret"
# account (brokerage) -> (broker's access key, access secret, share of the sandbox scale)
ACCOUNTS: dict[str, tuple[str, str, float]] = {
    "harbor": ("ss_sandbox_access_harbor", "ss_sandbox_secret_harbor_5f1c0e", 1.0),
    "canyon": ("ss_sandbox_access_canyon", "ss_sandbox_secret_canyon_9a27d4", 0.4),
}
ENTITIES = ("sales", "listings", "users", "offices")
PAGE_SIZE = 100  # not published; the sales and listings pages carry no page-size parameter
TIMESTAMP_SKEW = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=1)
DEFAULT_EXPORT_WINDOW = timedelta(days=7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NULL_DATE = "0001-01-01T00:00:00"  # .NET's DateTime.MinValue, as seen in real bulk-export output

SALE_STATUSES = {  # status -> statusId (59 "Incomplete" is in the evidence; the rest are assumptions)
    "Incomplete": 59,
    "Active": 60,
    "Pending": 61,
    "Closed": 62,
    "Canceled": 63,
    "Archived": 64,
}
LISTING_STATUSES = ("Incomplete", "Active", "Pending", "Expired", "Withdrawn", "Closed")
DEAL_TYPES = ("Purchase / Tenant", "Purchase / Tenant", "Listing / Landlord", "Dual Agent")
CHECKLIST_TYPES = ("Residential", "Residential", "Condo", "Land", "Commercial", "Other")
LISTING_TYPES = ("New", "New", "Reactivated", "Renewal")
STAGES = ((1, "Pre-Contract"), (2, "Under Contract"), (3, "Closing"), (4, "Closed"), (5, "Archived"))
# Shared, read-only stage objects: a change replaces a file's stage, never edits it.
STAGE = [{"id": number, "name": name} for number, name in STAGES]
SOURCES = (None, None, "Zillow", "Sphere of Influence", "Sign Call", "Open House", "Website")
USER_TYPES = ("Agent", "Agent", "Agent", "Agent", "Transaction Coordinator", "Broker")


def ms_of(epoch_second: int) -> int:
    """Milliseconds of every record stamped in that second: a pure function of the second, so adding them
    keeps creation times monotonic in the record index (the store's windows rely on that)."""
    return ((epoch_second * 0x9E3779B1) >> 13) % 1000


def with_ms(ts: datetime) -> datetime:
    return ts + timedelta(milliseconds=ms_of(int(ts.timestamp())))


@functools.lru_cache(maxsize=8192)
def _day_text(epoch_day: int) -> str:
    return (EPOCH + timedelta(days=epoch_day)).strftime("%Y-%m-%d")


def net_time(ts: datetime) -> str:
    """A naive UTC time as .NET serialises it: milliseconds with trailing zeros dropped, none if zero.

    Built from the epoch second with a per-day cache: strftime per field would dominate a page's cost.
    """
    day, rest = divmod(int(ts.timestamp()), 86400)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    text = f"{_day_text(day)}T{hour:02d}:{minute:02d}:{second:02d}"
    ms = ts.microsecond // 1000
    return f"{text}.{ms:03d}".rstrip("0") if ms else text


def net_date(ts: datetime | int, plus_days: int = 0) -> str:
    """Midnight of a day (a date-only field), from a time or an epoch second."""
    seconds = ts if isinstance(ts, int) else int(ts.timestamp())
    return f"{_day_text(seconds // 86400 + plus_days)}T00:00:00"


def parse_time(value: str | None, name: str) -> datetime | None:
    """`2024-01-31`, `2024-01-31T12:00:00`, `...12:00:00.5`, with or without Z/offset; naive means UTC."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))  # type: ignore[union-attr]
    except ValueError:
        raise ValueError(f"The value '{value}' is not valid for {name}.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def login_signature(access_secret: str, client_id: str, client_secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key=accessSecret, msg="clientId:clientSecret:timestamp")), as SkySlope's sample."""
    digest = hmac.new(access_secret.encode(), f"{client_id}:{client_secret}:{timestamp}".encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


class MsTable(FastTable):
    """Creation times with SkySlope's milliseconds (monotonic: the offset depends only on the second)."""

    def created_at(self, index: int) -> datetime:
        return with_ms(history_time(index, self.count, self.ties))


@dataclass
class Session:
    account: str
    access_key: str
    expires: datetime  # wall clock: clients check Expiration against their own clock
    answered: int = 0  # requests answered with it (the session_max_requests fault)


@dataclass
class SkyAccount:
    name: str
    access_key: str
    access_secret: str
    sizes: dict[str, int]
    tables: dict[str, MsTable] = field(default_factory=dict)
    codecs: dict[str, GuidCodec] = field(default_factory=dict)
    step: int = 0
    future_listings: list[int] = field(default_factory=list)  # listing ids referenced before they exist


class SkySlope(Simulator):
    name = "skyslope"
    # Not published: 120 requests per 60 s per access key, and 10 logins per 60 s (sandbox assumption).
    default_rate_limits = {"global": (120, 60.0), "login": (10, 60.0)}

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.accounts: dict[str, SkyAccount] = {}
        self._by_key: dict[str, SkyAccount] = {}
        self.sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        for name, (key, secret, share) in ACCOUNTS.items():
            self.add_account(name, key, secret, max(10, int(scale * share)))

    # -- data ----------------------------------------------------------------------------------------

    def add_account(self, name: str, access_key: str, access_secret: str, size: int) -> SkyAccount:
        users = max(3, size // 20)
        sizes = {"sales": size, "listings": max(3, size // 2), "users": users, "offices": max(2, users // 10)}
        acct = SkyAccount(name, access_key, access_secret, sizes)
        for entity in ENTITIES:
            acct.codecs[entity] = GuidCodec(self.seed, self.name, name, entity)
        # Built in dependency order: offices, users, listings, sales (a file names its agent and office).
        for entity in ("offices", "users", "listings", "sales"):
            stream = stream_seed(self.seed, self.name, name, entity)
            acct.tables[entity] = MsTable(entity, sizes[entity], stream, self._builder(acct, entity), dumps=dumps)
        self.accounts[name] = acct
        self._by_key[access_key] = acct
        return acct

    def _builder(self, acct: SkyAccount, entity: str) -> Builder:
        sizes = acct.sizes
        pool = stream_seed(self.seed, self.name, acct.name, entity, "templates")
        codec = acct.codecs[entity]
        domain = f"{acct.name}realty.example"
        contacts = GuidCodec(pool, "contact")
        # Base records' status is relative to the end of the generated history, not to the moving clock.
        sale_cutoff = HISTORY_END - timedelta(days=120)
        listing_cutoff = HISTORY_END - timedelta(days=180)

        def office_of(user_hash: int) -> int:
            return 1 + (user_hash >> 8) % sizes["offices"]

        # SkySlope's integer office id beside the guid (the evidence shows e.g. 12421).
        office_id_base = 10_000 + (stream_seed(self.seed, acct.name, "office-id") % 5_000) * 3

        def office_id(office: int) -> int:
            return office_id_base + office

        @functools.lru_cache(maxsize=65536)
        def user_ref(user: int) -> tuple[dict, int]:
            """An agent as embedded in a file, and their office: from the user's template, no record build.

            Cached (files of one agent repeat), so the dict is shared: nothing may mutate it in place.
            """
            table = acct.tables["users"]
            h = table.hash_of(user)
            t = table.build.template_of(h)  # type: ignore[attr-defined]
            agent = {
                "userGuid": acct.codecs["users"].encode(user),
                "firstName": t["firstName"],
                "lastName": t["lastName"],
                "email": f"{t['_email']}{user}@{domain}",
                "phone": t["phone"],
            }
            return agent, office_of(h)

        def pick_user(h: int, index: int, count: int) -> int:
            # A file's agent joined no later than the file was opened.
            ceiling = min(sizes["users"], (index * sizes["users"]) // max(count, 1) + 1)
            return 1 + (h >> 20) % max(ceiling, 1)

        def property_of(d: Draw) -> dict:
            city, state, zip3 = d.pick(CITIES)
            street = f"{d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}"
            return {
                "streetNumber": str(1 + d.below(9899)),
                "direction": d.pick((None, None, None, "N", "S", "E", "W")),
                "streetAddress": street,
                "unit": f"#{1 + d.below(40)}" if d.chance(0.12) else None,
                "city": city,
                "state": state,
                "zip": f"{zip3}{d.below(100):02d}",
                "county": f"{city} County",
                "yearBuilt": 1940 + d.below(85),
                "areasqft": 700 + d.below(4300),
            }

        def contact(d: Draw) -> dict:
            first, last = person_name(d)
            return {
                "contactGuid": contacts.encode(1 + d.below(1 << 40)),
                "firstName": first,
                "lastName": last,
                "email": f"{first.lower()}.{last.lower()}@{d.pick(EMAIL_DOMAINS)}",
                "phoneNumber": phone(d),
                "alternatePhone": None,
                "company": None,
                "isTrustCompanyOrOtherEntity": False,
            }

        def file_common(d: Draw) -> dict:
            price = d.money(150_000, 1_500_000, 5_000)
            return {
                "mlsNumber": str(10_000_000 + d.below(89_999_999)) if d.chance(0.8) else "",
                "checklistType": d.pick(CHECKLIST_TYPES),
                "source": d.pick(SOURCES),
                "otherSource": None,
                "property": property_of(d),
                "sellers": [contact(d)] if d.chance(0.7) else [],
                "commercialLease": None,
                "miscContact": None,
                "coAgentGuids": None,
                "coAgents": None,
                "customFields": {"leadSource": d.pick(("Referral", "Online", "Past Client", "Open House"))},
                "_price": price,
                "_days": (5 + d.below(20), 25 + d.below(45)),
                "_roll": d.below(100),
                "_has_office": d.chance(0.9),
            }

        @functools.lru_cache(maxsize=65536)
        def office_fields(office: int, has_office: bool) -> dict:
            if not has_office:
                return {"officeId": None, "officeGuid": None}
            return {"officeId": office_id(office), "officeGuid": acct.codecs["offices"].encode(office)}

        def sale_template(d: Draw) -> dict:
            base = file_common(d)
            price = base["_price"]
            rate = d.pick((0.025, 0.03, 0.03))
            base.update(
                dealType=d.pick(DEAL_TYPES),
                isOfficeLead=d.chance(0.05),
                coBrokerCompany=d.pick((None, "Keller Williams", "RE/MAX", "Compass", "eXp Realty")),
                buyers=[contact(d)] if d.chance(0.8) else [],
                titleContact=None,
                escrowContact=None,
                attorneyContact=[],
                lenderContact=None,
                otherSideAgentContact=None,
                homeWarrantyContact=None,
                commission={"commissionAmount": round(price * rate, 2), "commissionPercent": rate * 100},
                commissionBreakdowns=[],
                commissionReferral=None,
                earnestMoneyDeposit={"amount": float(price // 100), "heldBy": "Title Company"},
                _listing=d.chance(0.4),
                _null_acceptance=d.chance(0.05),
            )
            return base

        def sale_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            user, office = user_ref(pick_user(h, i, sizes["sales"]))
            accept_days, close_days = t["_days"]
            age = (created - HISTORY_START).days
            closed = t["_roll"] < 85 and created < sale_cutoff
            if closed:
                status = "Closed"
            elif t["_roll"] >= 92:
                status = "Canceled"
            else:
                status = ("Incomplete", "Active", "Pending")[t["_roll"] % 3]
            price = t["_price"]
            listing = None
            if t["_listing"] and sizes["listings"]:
                ceiling = min(sizes["listings"], (i * sizes["listings"]) // sizes["sales"] + 1)
                listing = acct.codecs["listings"].encode(1 + (h >> 12) % ceiling)
            stamp = net_time(created)
            stage = STAGE[3] if closed else STAGE[(age + t["_roll"]) % 3]
            return {
                "objectType": "sale",
                "saleGuid": codec.encode(i + 1),
                "listingGuid": listing,
                "agentGuid": user["userGuid"],
                "createdByGuid": user["userGuid"],
                "escrowNumber": f"ESC-{(h >> 30) % 1_000_000:06d}" if t["_roll"] % 4 else "",
                "statusId": SALE_STATUSES[status],
                "status": status,
                **office_fields(office, t["_has_office"]),
                "escrowClosingDate": net_date(sec, close_days),
                "actualClosingDate": net_date(sec, close_days) if closed else None,
                "contractAcceptanceDate": NULL_DATE if t["_null_acceptance"] else net_date(sec, accept_days),
                "modifiedOn": stamp,
                "listingPrice": price + 10_000 if listing else 0,
                "salePrice": price,
                "email": f"{user['firstName'][:1]}{user['lastName'][:2]}{(h >> 40) % 10_000}@skyslope.com",
                "commissionSplits": [
                    {"agentGuid": user["userGuid"], "amount": round(price * 0.03 * 0.7, 2), "percentage": 70.0}
                ],
                "stage": stage,
                "agent": user,
                "createdOn": stamp,
            }

        def listing_template(d: Draw) -> dict:
            base = file_common(d)
            base.update(
                type=d.pick(LISTING_TYPES),
                fileId="",
                company=None,
                homeWarranty=None,
                commission={"listingCommissionPercent": d.pick((2.5, 3.0)), "buyerCommissionPercent": 2.5},
                _expires=90 + d.below(180),
            )
            return base

        def listing_own(i: int, h: int, created: datetime, t: dict) -> dict:
            sec = int(created.timestamp())
            user, office = user_ref(pick_user(h, i, sizes["listings"]))
            old = created < listing_cutoff
            roll = t["_roll"]
            if old:
                status = "Closed" if roll < 60 else ("Expired" if roll < 85 else "Withdrawn")
            else:
                status = ("Incomplete", "Active", "Active", "Pending")[roll % 4]
            stamp = net_time(created)
            stage = STAGE[3] if status == "Closed" else STAGE[0]
            return {
                "objectType": "listing",
                "listingGuid": codec.encode(i + 1),
                "agentGuid": user["userGuid"],
                "createdByGuid": user["userGuid"],
                "coListingAgentGuid": None,
                "referringAgentGuid": None,
                "status": status,
                "modifiedOn": stamp,
                **office_fields(office, t["_has_office"]),
                "listingDate": net_date(sec),
                "expirationDate": net_date(sec, t["_expires"]),
                "listingPrice": t["_price"],
                "email": f"{user['firstName'][:1]}{user['lastName'][:2]}{(h >> 40) % 10_000}@skyslope.com",
                "stage": stage,
                "agent": user,
                "createdOn": stamp,
            }

        def user_template(d: Draw) -> dict:
            first, last = person_name(d)
            city, state, zip3 = d.pick(CITIES)
            return {
                "firstName": first,
                "lastName": last,
                "_email": f"{first.lower()}.{last.lower()}",
                "phone": phone(d),
                "alternatePhone": phone(d) if d.chance(0.2) else None,
                "streetNumber": str(1 + d.below(9899)),
                "streetName": f"{d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "city": city,
                "state": state,
                "zipCode": f"{zip3}{d.below(100):02d}",
                "_type": d.pick(USER_TYPES),
            }

        def user_own(i: int, h: int, created: datetime, t: dict) -> dict:
            stamp = net_time(created)
            office = office_of(h)
            return {
                "userGuid": codec.encode(i + 1),
                "email": f"{t['_email']}{i + 1}@{domain}",
                "publicId": f"{t['firstName'][:1]}{t['lastName'][:3]}{i + 1:05d}".upper(),
                "userType": "Broker" if i == 0 else t["_type"],
                "officeGuid": acct.codecs["offices"].encode(office),
                # Every eighth user has left the brokerage (their files stay): a fixed share at any scale.
                "isActive": i % 8 != 5,
                "createdOn": stamp,
                "modifiedOn": stamp,
            }

        def office_template(d: Draw) -> dict:
            city, state, zip3 = d.pick(CITIES)
            return {
                "city": city,
                "state": state,
                "zip": f"{zip3}{d.below(100):02d}",
                "streetAddress": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "phone": phone(d),
            }

        def office_own(i: int, h: int, created: datetime, t: dict) -> dict:
            stamp = net_time(created)
            return {
                "officeGuid": codec.encode(i + 1),
                "officeId": office_id(i + 1),
                "officeName": f"{acct.name.title()} Realty - {t['city']}{'' if i == 0 else f' {i + 1}'}",
                "createdOn": stamp,
                "modifiedOn": stamp,
            }

        parts: dict[str, tuple[Callable[[Draw], dict], Callable[[int, int, datetime, dict], dict]]] = {
            "sales": (sale_template, sale_own),
            "listings": (listing_template, listing_own),
            "users": (user_template, user_own),
            "offices": (office_template, office_own),
        }
        template, own = parts[entity]
        return Builder(pool, template, own)

    # -- counts and mutations ------------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        window = Window()
        if period:
            start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
            end = (start + timedelta(days=32)).replace(day=1)
            window = Window(created_after=start - timedelta(microseconds=1), created_before=end)
        totals = dict.fromkeys(ENTITIES, 0)
        for acct in self.accounts.values():
            if account and acct.name != account:
                continue
            for entity, table in acct.tables.items():
                totals[entity] += len(table.query(window))
        return totals

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
        with self._lock:
            acct.step += 1
            now = with_ms(self.sandbox.clock.tick())
            d = Draw(table.stream ^ 0xC10C, acct.step)
            result: dict[str, list[int]] = {"created": [], "updated": [], "deleted": []}
            if acct.future_listings:
                # Listings promised by an earlier child-before-parent step are opened now.
                listings = acct.tables["listings"]
                for listing_id in acct.future_listings:
                    record = listings.build(listing_id - 1, Draw(listings.stream, listing_id - 1), now)
                    self._fresh(acct, "listings", record, now, d)
                    listings.put(listing_id, record, now, now)
                acct.future_listings = []
            for _ in range(creates):
                record_id = table.allocate_id()
                record = table.build(record_id - 1, Draw(table.stream, record_id - 1), now)
                self._fresh(acct, entity, record, now, d)
                table.put(record_id, record, now, now)
                result["created"].append(record_id)
            candidates = [
                r for r in ((v if isinstance(v, int) else codec.decode(v)) for v in (update_ids or [])) if r is not None
            ]
            attempts = 0
            while len(result["updated"]) < updates and attempts < updates * 20 + 20:
                attempts += 1
                record_id = candidates.pop(0) if candidates else 1 + d.below(max(table.next_id - 1, 1))
                current = table.get(record_id)
                if current is None or record_id in result["updated"] or record_id in result["created"]:
                    continue
                changed = self._changed(entity, dict(current), now, d)
                changed["modifiedOn"] = net_time(now)
                created = table.times(record_id)[0]  # type: ignore[index]
                table.put(record_id, changed, created, now)
                result["updated"].append(record_id)
            attempts = 0
            while len(result["deleted"]) < deletes and attempts < deletes * 20 + 20:
                attempts += 1
                record_id = 1 + d.below(max(table.next_id - 1, 1))
                # The broker's own user and the main office are never removed: files point at them.
                if entity in ("users", "offices") and record_id == 1:
                    continue
                if table.delete(record_id):
                    result["deleted"].append(record_id)
        return {key: [codec.encode(r) for r in ids] for key, ids in result.items()}

    def _existing(self, acct: SkyAccount, entity: str, d: Draw) -> int:
        table = acct.tables[entity]
        for _ in range(100):
            candidate = 1 + d.below(max(table.next_id - 1, 1))
            if table.exists(candidate):
                return candidate
        return 1

    def _fresh(self, acct: SkyAccount, entity: str, record: dict, now: datetime, d: Draw) -> None:
        stamp = net_time(now)
        if "createdOn" in record:
            record["createdOn"] = record["modifiedOn"] = stamp
        if entity == "sales":
            record.update(status="Incomplete", statusId=SALE_STATUSES["Incomplete"], actualClosingDate=None)
            record["contractAcceptanceDate"] = net_date(now)
            record["escrowClosingDate"] = net_date(now, 30 + d.below(30))
            record["stage"] = {"id": STAGES[0][0], "name": STAGES[0][1]}
            if self.faults.child_before_parent:
                listing_id = acct.tables["listings"].allocate_id()
                acct.future_listings.append(listing_id)
                record["listingGuid"] = acct.codecs["listings"].encode(listing_id)
            elif record.get("listingGuid"):
                record["listingGuid"] = acct.codecs["listings"].encode(self._existing(acct, "listings", d))
        elif entity == "listings":
            record.update(status="Active", listingDate=net_date(now), expirationDate=net_date(now, 180))
            record["stage"] = {"id": STAGES[0][0], "name": STAGES[0][1]}
        elif entity == "users":
            record["isActive"] = True

    @staticmethod
    def _changed(entity: str, record: dict, now: datetime, d: Draw) -> dict:
        if entity == "sales":
            order = ("Incomplete", "Active", "Pending", "Closed")
            status = record.get("status", "Incomplete")
            if status in order[:-1]:
                status = order[order.index(status) + 1]
            record.update(status=status, statusId=SALE_STATUSES.get(status, 59))
            if status == "Closed":
                record["actualClosingDate"] = net_date(now)
                record["stage"] = {"id": STAGES[3][0], "name": STAGES[3][1]}
            else:
                record["salePrice"] = d.money(150_000, 1_500_000, 5_000)
        elif entity == "listings":
            status = record.get("status", "Active")
            record["status"] = {"Incomplete": "Active", "Active": "Pending", "Pending": "Closed"}.get(status, status)
            record["listingPrice"] = d.money(150_000, 1_500_000, 5_000)
        elif entity == "users":
            record["phone"] = phone(d)
        elif entity == "offices":
            record["officeName"] = record["officeName"].split(" (")[0] + f" ({d.below(1000)})"
        return record

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name in self.accounts:
            self.mutate(name, "listings", creates=math.ceil(hours / 2), updates=math.ceil(hours / 2))
            self.mutate(name, "sales", creates=math.ceil(hours / 2), updates=math.ceil(hours))
            if hours >= 24:
                self.mutate(name, "users", creates=math.ceil(hours / 24))

    # -- HTTP: errors and auth -----------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        # The body format is not published; ASP.NET Web API's default ({"Message": ...}) is the assumption.
        return json_response({"Message": message}, status)

    def credentials(self) -> dict[str, Any]:
        # The client id and secret are the integrator's, the same for every brokerage; each account's entry still
        # carries them, since a connection needs all four (what `accounts add skyslope` stores).
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "accounts": {
                name: {
                    "access_key": a.access_key,
                    "access_secret": a.access_secret,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                }
                for name, a in self.accounts.items()
            },
        }

    async def login(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        access_key, _, signature = credentials.strip().partition(":")
        if scheme.upper() != "SS" or not access_key or not signature:
            return self.error(401, "Authorization has been denied for this request. Expected 'SS accessKey:hmac'.")
        failure, headers = await self.gate(f"login:{access_key}", "login")
        if failure is not None:
            return failure
        acct = self._by_key.get(access_key)
        if acct is None:
            return self.error(401, "Authorization has been denied for this request. Unknown access key.")
        if access_key in self.faults.revoked_keys:
            return self.error(401, "Authorization has been denied for this request. The access key was revoked.")
        stamp = request.headers.get("timestamp", "")
        try:
            sent = parse_time(stamp, "Timestamp")
        except ValueError:
            sent = None
        if sent is None or not stamp.endswith("Z"):
            return self.error(401, "Authorization has been denied for this request. Invalid Timestamp header.")
        wall = datetime.now(UTC)
        if abs(wall - sent) > TIMESTAMP_SKEW:
            return self.error(401, "Authorization has been denied for this request. The Timestamp is out of range.")
        try:
            body = orjson.loads(await request.body())
            fields = {k.lower(): v for k, v in body.items()}
            client_id, client_secret = fields["clientid"], fields["clientsecret"]
        except (orjson.JSONDecodeError, AttributeError, KeyError):
            return self.error(400, 'The request body must be {"ClientId": ..., "ClientSecret": ...}.')
        if not (
            hmac.compare_digest(str(client_id), CLIENT_ID) and hmac.compare_digest(str(client_secret), CLIENT_SECRET)
        ):
            return self.error(401, "Authorization has been denied for this request. Invalid client credentials.")
        expected = base64.b64decode(login_signature(acct.access_secret, client_id, client_secret, stamp))
        try:
            valid = hmac.compare_digest(base64.b64decode(signature, validate=True), expected)
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            return self.error(401, "Authorization has been denied for this request. Invalid signature.")
        if acct.name in self.faults.suspended_accounts:
            return self.error(403, "This brokerage's API access is not active.")
        token = secrets.token_urlsafe(32)
        expires = wall - timedelta(seconds=1) if self.faults.expired_credentials else wall + SESSION_LIFETIME
        with self._sessions_lock:
            for stale in [t for t, s in self.sessions.items() if s.expires < wall - SESSION_LIFETIME]:
                del self.sessions[stale]
            self.sessions[token] = Session(acct.name, acct.access_key, expires)
        expiration = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return json_response({"Session": token, "Expiration": expiration}, headers=headers)

    async def _begin(self, request: Request) -> tuple[SkyAccount | None, Response | None, dict[str, str]]:
        token = request.headers.get("session", "")
        if not token:
            return None, self.error(401, "Authorization has been denied for this request. Session header missing."), {}
        wall = datetime.now(UTC)
        with self._sessions_lock:
            session = self.sessions.get(token)
            if session is not None and session.expires > wall:
                limit = self.faults.session_max_requests
                if limit > 0 and session.answered >= limit:
                    session.expires = wall  # used up: from now on it is an expired session like any other
                else:
                    session.answered += 1
        if session is None:
            return None, self.error(401, "Authorization has been denied for this request. Invalid session."), {}
        if session.expires <= wall:
            return None, self.error(401, "Authorization has been denied for this request. Session expired."), {}
        if session.access_key in self.faults.revoked_keys:
            return (
                None,
                self.error(401, "Authorization has been denied for this request. The access key was revoked."),
                {},
            )
        if session.account in self.faults.suspended_accounts:
            return None, self.error(403, "This brokerage's API access is not active."), {}
        failure, headers = await self.gate(session.access_key, "global")
        if failure is not None:
            return None, failure, headers
        return self.accounts[session.account], None, headers

    # -- HTTP: records -------------------------------------------------------------------------------

    def _serve(self, acct: SkyAccount, entity: str, record: dict, record_id: int) -> dict:
        if not self.faults.is_malformed(acct.tables[entity].stream, record_id):
            return record
        broken = dict(record)
        variant = record_id % 3
        if variant == 0:
            broken.pop(
                {"sales": "saleGuid", "listings": "listingGuid", "users": "userGuid"}.get(entity, "officeGuid"), None
            )
        elif variant == 1:
            broken["createdOn"] = "not-a-date"
        else:
            broken["modifiedOn"] = None
        return broken

    def _record_json(self, acct: SkyAccount, entity: str, ids: list[int]) -> bytes:
        """The records as the items of a JSON array (no brackets)."""
        table = acct.tables[entity]
        if self.faults.control_bytes_rate > 0:
            items = [self._record_json_plain(acct, entity, [rid]) for rid in ids]
            return b",".join(
                with_control_bytes(item, rid) if self.faults.has_control_bytes(table.stream, rid) else item
                for rid, item in zip(ids, items, strict=True)
                if item
            )
        return self._record_json_plain(acct, entity, ids)

    def _record_json_plain(self, acct: SkyAccount, entity: str, ids: list[int]) -> bytes:
        table = acct.tables[entity]
        if self.faults.malformed_rate > 0:
            served = [self._serve(acct, entity, r, rid) for rid in ids if (r := table.get(rid)) is not None]
            return dumps(served)[1:-1]
        return table.json_many(ids)[1:-1]

    async def bulk_export(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        q = request.query_params
        try:
            bounds = {
                name: parse_time(q.get(name), name)
                for name in (
                    "createdAfter",
                    "createdBefore",
                    "modifiedAfter",
                    "modifiedBefore",
                    "closedAfter",
                    "closedBefore",
                )
            }
        except ValueError as exc:
            return self.error(400, str(exc))
        if all(value is None for value in bounds.values()):
            # The documented default: files created within the last seven days (of the sandbox clock).
            bounds["createdAfter"] = self.now() - DEFAULT_EXPORT_WINDOW
        window = Window(
            created_after=bounds["createdAfter"],
            created_before=bounds["createdBefore"],
            updated_after=bounds["modifiedAfter"],
            updated_before=bounds["modifiedBefore"],
        )
        kind = (q.get("type") or "").lower()
        if kind not in ("", "sale", "sales", "listing", "listings"):
            return self.error(400, f"The value '{q.get('type')}' is not valid for type.")
        entities = [e for e in ("sales", "listings") if not kind or e.startswith(kind.rstrip("s"))]
        status = (q.get("status") or "").lower()
        email = (q.get("email") or "").lower()
        address = (q.get("propertyAddress") or "").lower()
        closed_after, closed_before = bounds["closedAfter"], bounds["closedBefore"]

        def keep(record: dict) -> bool:
            if status and str(record.get("status", "")).lower() != status:
                return False
            if email and email not in {
                str(record.get("email", "")).lower(),
                str((record.get("agent") or {}).get("email", "")).lower(),
            }:
                return False
            if address and address not in one_line_address(record).lower():
                return False
            if closed_after or closed_before:
                closing = record.get("actualClosingDate")
                if not closing:
                    return False
                when = datetime.fromisoformat(closing).replace(tzinfo=UTC)
                if (closed_after and not when > closed_after) or (closed_before and not when < closed_before):
                    return False
            return True

        post_filter = bool(status or email or address or closed_after or closed_before)
        views = {entity: acct.tables[entity].query(window) for entity in entities}
        total = sum(len(v) for v in views.values())
        truncate_at = total // 2 if self.faults.take("truncated_pages") else None
        return StreamingResponse(
            self._export_stream(acct, views, keep if post_filter else None, truncate_at),
            headers=headers,
            media_type="application/json",
        )

    async def _export_stream(
        self,
        acct: SkyAccount,
        views: dict[str, Any],
        keep: Callable[[dict], bool] | None,
        truncate_at: int | None,
    ) -> AsyncIterator[bytes]:
        """`{"value":[...]}`, sales and listings merged by creation time, built and sent a chunk at a time."""

        def ordered(entity: str) -> Any:
            table, view = acct.tables[entity], views[entity]
            offset = 0
            while True:
                ids = view.ids(offset, 500)
                for rid in ids:
                    times = table.times(rid)
                    if times is not None:
                        yield times[0], entity, rid
                if len(ids) < 500:
                    return
                offset += 500

        yield b'{"value":['
        sent = 0
        flushed = False
        batch: list[bytes] = []
        for _, entity, rid in heapq.merge(*(ordered(e) for e in views)):
            if truncate_at is not None and sent >= truncate_at:
                yield (b"," if flushed and batch else b"") + b",".join(batch)
                return  # cut off mid-body, never closed: the truncated-JSON fault
            if keep is not None:
                record = acct.tables[entity].get(rid)
                if record is None or not keep(record):
                    continue
            item = self._record_json(acct, entity, [rid])
            if not item:
                continue
            batch.append(item)
            sent += 1
            if len(batch) >= 500:
                yield (b"," if flushed else b"") + b",".join(batch)
                flushed, batch = True, []
        if batch:
            yield (b"," if flushed else b"") + b",".join(batch)
        yield b"]}"

    async def file_pages(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        entity = request.path_params["kind"]
        if entity not in ("sales", "listings"):
            return self.error(404, "No HTTP resource was found that matches the request URI.")
        q = request.query_params
        try:
            page = int(q.get("pageNumber") or 1)
            if page < 1:
                raise ValueError("pageNumber must be 1 or greater.")
            earliest = parse_time(q.get("earliestDate"), "earliestDate")
            latest = parse_time(q.get("latestDate"), "latestDate")
        except ValueError as exc:
            return self.error(400, str(exc))
        if latest is not None:
            # Inclusive: a date means the whole day, a time means that instant.
            date_only = "T" not in (q.get("latestDate") or "")
            latest = latest + (timedelta(days=1) if date_only else timedelta(microseconds=1))
        window = Window(created_after=earliest - timedelta(microseconds=1) if earliest else None, created_before=latest)
        table = acct.tables[entity]
        table.ties = self.faults.timestamp_ties
        view = table.query(window)
        agent_guid = (q.get("agentGuid") or "").lower()
        created_by = (q.get("createdByGuid") or "").lower()
        if agent_guid or created_by:
            # No index serves these: exact, at the cost of reading the window.
            matched = []
            for offset in range(0, len(view), 1000):
                for rid in view.ids(offset, 1000):
                    record = table.get(rid)
                    if record is None:
                        continue
                    if agent_guid and str(record.get("agentGuid", "")).lower() != agent_guid:
                        continue
                    if created_by and str(record.get("createdByGuid", "")).lower() != created_by:
                        continue
                    matched.append(rid)
            total = len(matched)
            ids = matched[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        else:
            total = len(view)
            ids = view.ids((page - 1) * PAGE_SIZE, PAGE_SIZE)
        items = []
        for rid in ids:
            record = table.get(rid)
            if record is not None:
                items.append(self._summary(acct, entity, self._serve(acct, entity, record, rid)))
        params = {k: v for k, v in q.items() if k != "pageNumber"}

        def link(number: int, rel: str) -> dict:
            query = urlencode({**params, "pageNumber": number})
            return {"href": f"{self.base_url}/api/files/{entity}?{query}", "method": "GET", "rel": rel}

        links = [link(page, "self")]
        if page > 1:
            links.append(link(page - 1, "prev"))
        if page * PAGE_SIZE < total:
            links.append(link(page + 1, "next"))
        response = self.body({"value": {entity: items}, "links": links}, headers=headers, listing=True)
        self.after_page(acct.name, entity, ids)
        return response

    def _summary(self, acct: SkyAccount, entity: str, record: dict) -> dict:
        """A page item: the file's summary and a link to the whole file (the Ruby client's `all` scope)."""
        key = "saleGuid" if entity == "sales" else "listingGuid"
        guid = record.get(key)
        summary: dict[str, Any] = {
            key: guid,
            "agentGuid": record.get("agentGuid"),
            "status": record.get("status"),
            "propertyAddress": one_line_address(record),
        }
        if entity == "sales":
            summary.update(
                listingGuid=record.get("listingGuid"),
                escrowClosingDate=record.get("escrowClosingDate"),
                actualClosingDate=record.get("actualClosingDate"),
            )
        else:
            summary.update(listingDate=record.get("listingDate"), expirationDate=record.get("expirationDate"))
        summary.update(createdOn=record.get("createdOn"), modifiedOn=record.get("modifiedOn"))
        summary["link"] = {"href": f"{self.base_url}/api/files/{entity}/{guid}", "method": "GET", "rel": "self"}
        return summary

    async def file(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        entity = request.path_params["kind"]
        if entity not in ("sales", "listings"):
            return self.error(404, "No HTTP resource was found that matches the request URI.")
        record_id = acct.codecs[entity].decode(request.path_params["guid"])
        record = acct.tables[entity].get(record_id) if record_id is not None else None
        if record is None or record_id is None:
            return self.error(404, f"The {entity[:-1]} was not found.")
        return self.body({"value": {entity[:-1]: self._serve(acct, entity, record, record_id)}}, headers=headers)

    async def users(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        q = request.query_params
        include_deactivated = (q.get("includeDeactivated") or "false").lower() == "true"
        office = (q.get("officeGuid") or "").lower()
        table = acct.tables["users"]
        view = table.query(Window())
        items = []
        for offset in range(0, len(view), 1000):
            ids = view.ids(offset, 1000)
            for rid, record in zip(ids, table.get_many(ids), strict=False):
                if not include_deactivated and not record.get("isActive", True):
                    continue
                if office and str(record.get("officeGuid", "")).lower() != office:
                    continue
                items.append(self._serve(acct, "users", record, rid))
        return self.body({"value": {"users": items}}, headers=headers, listing=True)

    async def user(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        record_id = acct.codecs["users"].decode(request.path_params["guid"])
        record = acct.tables["users"].get(record_id) if record_id is not None else None
        if record is None or record_id is None:
            return self.error(404, "The user was not found.")
        return self.body({"value": {"user": self._serve(acct, "users", record, record_id)}}, headers=headers)

    async def offices(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        table = acct.tables["offices"]
        view = table.query(Window())
        items = []
        for offset in range(0, len(view), 1000):
            items.extend(table.get_many(view.ids(offset, 1000)))
        return self.body({"value": {"offices": items}}, headers=headers, listing=True)

    async def office(self, request: Request) -> Response:
        acct, failure, headers = await self._begin(request)
        if failure is not None:
            return failure
        assert acct is not None
        record_id = acct.codecs["offices"].decode(request.path_params["guid"])
        record = acct.tables["offices"].get(record_id) if record_id is not None else None
        if record is None or record_id is None:
            return self.error(404, "The office was not found.")
        # A single office comes back as {guid, name, ...} (the Ruby client's `read` scope).
        single = {"guid": record["officeGuid"], "name": record["officeName"], **record}
        return self.body({"value": {"office": single}}, headers=headers)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/api/files", self.bulk_export),
            Route("/api/files/{kind}", self.file_pages),
            Route("/api/files/{kind}/{guid}", self.file),
            Route("/api/users", self.users),
            Route("/api/users/{guid}", self.user),
            Route("/api/offices", self.offices),
            Route("/api/offices/{guid}", self.office),
        ]


def with_control_bytes(item: bytes, record_id: int) -> bytes:
    """One bulk-export record with the raw bytes SkySlope's Ruby client strips before parsing the feed (it turns
    SOH into a line break and SUB into a space, drops NUL and every non-ASCII byte), by record:
    - SOH between two members, where a line break would be;
    - SUB for the space in the street and a trailing NUL, inside the `streetAddress` string;
    - 0x92 before the street (Windows-1252's apostrophe, a C1 control byte in Latin-1), which is not UTF-8.
    None of them is valid JSON: a strict parser refuses the whole document."""
    variant = record_id % 3
    if variant == 0:
        return item.replace(b",", b",\x01", 1)
    key = b'"streetAddress":"'
    start = item.find(key)
    if start < 0:
        return item.replace(b",", b",\x01", 1)  # a record without a street (malformed) still gets its byte
    start += len(key)
    end = item.index(b'"', start)
    street = item[start:end]
    dirty = street.replace(b" ", b"\x1a", 1) + b"\x00" if variant == 1 else b"\x92" + street
    return item[:start] + dirty + item[end:]


def one_line_address(record: dict) -> str:
    p = record.get("property") or {}
    street = " ".join(
        str(x) for x in (p.get("streetNumber"), p.get("direction"), p.get("streetAddress"), p.get("unit")) if x
    )
    return ", ".join(x for x in (street, p.get("city"), f"{p.get('state', '')} {p.get('zip', '')}".strip()) if x)


__all__ = ["ACCOUNTS", "CLIENT_ID", "CLIENT_SECRET", "SkySlope", "login_signature"]
