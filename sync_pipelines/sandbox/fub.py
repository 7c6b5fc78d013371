"""Follow Up Boss simulator: `/fub/v1/...` with FUB's auth, paging, filters, rate limits, errors, webhooks.

Contract and evidence: docs/integrations/fub.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sync_pipelines.defs.fub.client import DEFAULT_SYSTEM, SANDBOX_SYSTEM_KEY
from sync_pipelines.sandbox.base import Simulator, dumps, json_response
from sync_pipelines.sandbox.gen import (
    CITIES,
    EMAIL_DOMAINS,
    LEAD_SOURCES,
    STREET_KINDS,
    STREET_NAMES,
    TAGS,
    Composite,
    Draw,
    address,
    person_name,
    phone,
    stream_seed,
)
from sync_pipelines.sandbox.store import VirtualTable, Window

# Our registered system and the demo key the sandbox accepts: defined by the client (production code never
# imports the sandbox), named here too so the simulator, its tests and the benchmarks read them in one place.
SYSTEM = DEFAULT_SYSTEM
SYSTEM_KEY = SANDBOX_SYSTEM_KEY
# FUB enforces the `next` cursor "if you are going deep into result sets with high offset values" (reference/
# pagination) without saying how deep: the sandbox refuses an offset from here on (docs/integrations/fub.md).
MAX_OFFSET = 2000
# account name -> (API key, share of the sandbox scale): two accounts of different size, so a mix-up shows.
ACCOUNTS: dict[str, tuple[str, float]] = {
    "acme": ("fub_sandbox_key_acme", 1.0),
    "summit": ("fub_sandbox_key_summit", 0.5),
}
STAGES = ("Lead", "Prospect", "Active Client", "Under Contract", "Closed", "Past Client", "Sphere", "Trash")
EVENT_TYPES = (
    "Registration",
    "Property Inquiry",
    "Seller Inquiry",
    "General Inquiry",
    "Viewed Property",
    "Saved Property",
    "Property Search",
    "Visited Website",
    "Visited Open House",
    "Incoming Call",
)
CALL_OUTCOMES = ("Interested", "Not Interested", "Left Message", "No Answer", "Bad Number")
ROLES = ("Broker", "Agent", "Agent", "Agent", "Lender")
COLLECTIONS = (
    "people",
    "deals",
    "stages",
    "events",
    "calls",
    "textMessages",
    "appointments",
    "users",
    "groups",
)
# The webhook event prefix per collection (FUB names stage events in the singular).
WEBHOOK_PREFIX = {
    "people": "people",
    "deals": "deals",
    "calls": "calls",
    "textMessages": "textMessages",
    "appointments": "appointments",
    "events": "events",
    "stages": "stage",
}
CHILD_COLLECTIONS = ("deals", "events", "calls", "textMessages", "appointments")
SINGULAR = {
    "people": "Person",
    "deals": "Deal",
    "stages": "Stage",
    "events": "Event",
    "calls": "Call",
    "textMessages": "Text message",
    "appointments": "Appointment",
    "users": "User",
    "groups": "Group",
}


def fub_signature(body: bytes, system_key: str = SYSTEM_KEY) -> str:
    """FUB-Signature: hex HMAC-SHA256, keyed with the X-System-Key, over base64 of the raw body."""
    return hmac.new(system_key.encode(), base64.b64encode(body), hashlib.sha256).hexdigest()


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"Invalid value for {name}: expected an ISO-8601 date like 2024-01-31T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError(f"Invalid value for {name}: a time zone (Z) is required")
    return parsed


@dataclass
class FubAccount:
    name: str
    api_key: str
    sizes: dict[str, int]
    tables: dict[str, VirtualTable] = field(default_factory=dict)
    step: int = 0
    future_parents: list[int] = field(default_factory=list)  # person ids referenced before they exist
    user_names: dict[int, str] = field(default_factory=dict)


class FollowUpBoss(Simulator):
    name = "fub"
    # FUB's documented defaults for a registered system: global 250 and GET /v1/events 20 per 10 s.
    default_rate_limits = {
        "global": (250, 10.0),
        "events": (20, 10.0),
        "global_unregistered": (125, 10.0),
        "events_unregistered": (10, 10.0),
    }
    webhook_retry_delays = (60.0, 300.0, 300.0, 600.0, 1800.0)

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.accounts: dict[str, FubAccount] = {}
        self._by_key: dict[str, FubAccount] = {}
        for name, (key, share) in ACCOUNTS.items():
            self.add_account(name, key, max(1, int(scale * share)))
        self._next_webhook_id = 1

    # -- data ----------------------------------------------------------------------------------

    def add_account(self, name: str, api_key: str, people: int) -> FubAccount:
        users = max(3, people // 100)
        sizes = {
            "people": people,
            "users": users,
            "groups": max(2, users // 4),
            "stages": len(STAGES),
            "deals": max(1, people // 4),
            "events": people,
            "calls": max(1, people // 2),
            "textMessages": max(1, people // 2),
            "appointments": max(1, people // 8),
        }
        account = FubAccount(name, api_key, sizes)
        for collection in COLLECTIONS:
            builder = self._builder(account, collection)
            stream = stream_seed(self.seed, self.name, name, collection)
            account.tables[collection] = VirtualTable(collection, sizes[collection], stream, builder, dumps=dumps)
        self.accounts[name] = account
        self._by_key[api_key] = account
        return account

    def _user_name(self, account: FubAccount, user_id: int) -> str:
        # Names as generated: cached, because every person and deal names its agent.
        name = account.user_names.get(user_id)
        if name is None:
            table = account.tables["users"]
            record = table.get(user_id)
            name = account.user_names[user_id] = record["name"] if record else ""
        return name

    def _builder(self, account: FubAccount, collection: str) -> Callable[[int, Draw, datetime], dict]:
        sizes = account.sizes
        pool_stream = stream_seed(self.seed, self.name, account.name, collection, "templates")
        users_count = sizes["users"]

        def composite(template: Callable[[Draw], dict], own: Callable[[int, int, datetime, dict], dict]) -> Composite:
            return Composite(pool_stream, template, own, dumps)

        def parent(h: int, index: int, count: int) -> int:
            # A child created at fraction f of history points at a person created no later than it.
            people = sizes["people"]
            ceiling = min(people, (index * people) // max(count, 1) + 1)
            return 1 + (h >> 8) % max(ceiling, 1)

        def person_template(d: Draw) -> dict:
            first, last = person_name(d)
            stage_index = d.below(len(STAGES) - 1)
            return {
                "createdVia": "API",
                "name": f"{first} {last}",
                "firstName": first,
                "lastName": last,
                "stage": STAGES[stage_index],
                "stageId": stage_index + 1,
                "source": d.pick(LEAD_SOURCES),
                "sourceUrl": None,
                "price": d.money(150_000, 1_500_000, 5_000),
                "contacted": d.chance(0.6),
                "tags": [d.pick(TAGS)] if d.chance(0.7) else [],
                "_email": (f"{first.lower()}.{last.lower()}", d.pick(EMAIL_DOMAINS)),
                "phones": [{"value": phone(d), "type": "mobile", "status": "Valid", "isPrimary": 1}],
                "addresses": [{**address(d), "type": "home"}],
                "background": None,
            }

        def person_own(i: int, h: int, created: datetime, template: dict) -> dict:
            user, domain = template["_email"]
            user_id = 1 + (h >> 24) % users_count
            return {
                "id": i + 1,
                "created": created,
                "updated": created,
                "lastActivity": created,
                "assignedUserId": user_id,
                "assignedTo": self._user_name(account, user_id),
                "emails": [{"value": f"{user}{i + 1}@{domain}", "type": "home", "status": "Valid", "isPrimary": 1}],
            }

        people = composite(person_template, person_own)

        def users(i: int, d: Draw, created: datetime) -> dict:
            first, last = person_name(d)
            stamp = created
            return {
                "id": i + 1,
                "created": stamp,
                "updated": stamp,
                "name": f"{first} {last}",
                "firstName": first,
                "lastName": last,
                "email": f"{first.lower()}.{last.lower()}{i + 1}@{account.name}-realty.example",
                "phone": phone(d),
                "role": "Broker" if i == 0 else d.pick(ROLES),
                "status": "Active",
                "timezone": "America/Chicago",
            }

        def groups(i: int, d: Draw, created: datetime) -> dict:
            city = CITIES[i % len(CITIES)][0]
            members = sorted({1 + d.below(users_count) for _ in range(3)})
            stamp = created
            return {
                "id": i + 1,
                "created": stamp,
                "updated": stamp,
                "name": f"{city} Team {i + 1}",
                "type": "Agent",
                "users": [{"id": u} for u in members],
            }

        def stages(i: int, d: Draw, created: datetime) -> dict:
            stamp = created
            return {
                "id": i + 1,
                "created": stamp,
                "updated": stamp,
                "name": STAGES[i % len(STAGES)],
                "orderWeight": (i + 1) * 1000,
                "isProtected": i == 0,
            }

        def deal_template(d: Draw) -> dict:
            price = d.money(150_000, 2_000_000, 5_000)
            return {
                "name": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "stageId": 1 + d.below(6),
                "pipelineId": 1 + d.below(2),
                "price": price,
                "commissionValue": round(price * 0.03, 2),
                "_close_days": 30 + d.below(90),
            }

        def deal_own(i: int, h: int, created: datetime, template: dict) -> dict:
            user_id = 1 + (h >> 24) % users_count
            return {
                "id": i + 1,
                "created": created,
                "updated": created,
                "projectedCloseDate": (created + timedelta(days=template["_close_days"])).date().isoformat(),
                "people": [{"id": parent(h, i, sizes["deals"])}],
                "users": [{"id": user_id, "name": self._user_name(account, user_id)}],
            }

        deals = composite(deal_template, deal_own)

        def event_template(d: Draw) -> dict:
            city, state, zip3 = d.pick(CITIES)
            return {
                "type": d.pick(EVENT_TYPES),
                "source": d.pick(LEAD_SOURCES),
                "message": "I'd like more information about this property.",
                "description": None,
                "property": {
                    "street": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                    "city": city,
                    "state": state,
                    "code": f"{zip3}{d.below(100):02d}",
                    "mlsNumber": str(10_000_000 + d.below(89_999_999)),
                    "price": d.money(150_000, 1_500_000, 5_000),
                    "forRent": False,
                    "type": "Single-Family Home",
                    "bedrooms": 1 + d.below(6),
                    "bathrooms": 1 + d.below(4),
                    "area": 800 + d.below(4200),
                },
            }

        events = composite(
            event_template,
            lambda i, h, created, _: {
                "id": i + 1,
                "created": created,
                "updated": created,
                "personId": parent(h, i, sizes["events"]),
            },
        )

        def call_template(d: Draw) -> dict:
            return {
                "phone": phone(d),
                "isIncoming": d.chance(0.4),
                "duration": d.below(1800),
                "outcome": d.pick(CALL_OUTCOMES),
                "note": None,
            }

        def child_own(count: int) -> Callable[[int, int, datetime, dict], dict]:
            def own(i: int, h: int, created: datetime, _: dict) -> dict:
                return {
                    "id": i + 1,
                    "created": created,
                    "updated": created,
                    "personId": parent(h, i, count),
                    "userId": 1 + (h >> 24) % users_count,
                }

            return own

        calls = composite(call_template, child_own(sizes["calls"]))

        def text_template(d: Draw) -> dict:
            return {
                "message": d.pick(
                    (
                        "Sounds good!",
                        "Can we see it Saturday?",
                        "Thanks, talk soon.",
                        "Is the price negotiable?",
                        "Sent you the listing.",
                    )
                ),
                "isIncoming": d.chance(0.5),
                "fromNumber": phone(d),
                "toNumber": phone(d),
                "status": "Delivered",
            }

        text_messages = composite(text_template, child_own(sizes["textMessages"]))

        def appointment_template(d: Draw) -> dict:
            return {
                "title": d.pick(("Showing", "Listing appointment", "Buyer consultation", "Closing")),
                "location": address(d)["street"],
                "_start": (1 + d.below(14), 9 + d.below(8)),
            }

        def appointment_own(i: int, h: int, created: datetime, template: dict) -> dict:
            days, hour = template["_start"]
            start = created + timedelta(days=days, hours=hour)
            return {
                "id": i + 1,
                "created": created,
                "updated": created,
                "start": start,
                "end": start + timedelta(hours=1),
                "invitees": [
                    {"personId": parent(h, i, sizes["appointments"])},
                    {"userId": 1 + (h >> 24) % users_count},
                ],
            }

        appointments = composite(appointment_template, appointment_own)

        return {
            "people": people,
            "users": users,
            "groups": groups,
            "stages": stages,
            "deals": deals,
            "events": events,
            "calls": calls,
            "textMessages": text_messages,
            "appointments": appointments,
        }[collection]

    # -- counts and mutations ------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        window = Window()
        if period:
            start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
            end = (start + timedelta(days=32)).replace(day=1)
            window = Window(created_after=start - timedelta(seconds=1), created_before=end)
        totals = dict.fromkeys(COLLECTIONS, 0)
        for acct in self.accounts.values():
            if account and acct.name != account:
                continue
            for collection, table in acct.tables.items():
                totals[collection] += len(table.query(window))
        return totals

    def mutate(
        self,
        account: str,
        entity: str,
        creates: int = 0,
        updates: int = 0,
        deletes: int = 0,
        update_ids: list[int] | None = None,
    ) -> dict:
        acct = self.accounts[account]
        table = acct.tables[entity]
        with self._lock:
            acct.step += 1
            now = self.sandbox.clock.tick()
            d = Draw(table.stream ^ 0xC10C, acct.step)
            result: dict[str, list[int]] = {"created": [], "updated": [], "deleted": []}
            # Parents promised by an earlier child-before-parent step arrive now.
            if acct.future_parents and entity != "people":
                self._create_people(acct, acct.future_parents, now, d)
                self._notify(acct, "people", "Created", acct.future_parents)
                acct.future_parents = []
            for _ in range(creates):
                record_id = table.allocate_id()
                index = record_id - 1
                record = table.build(index, Draw(table.stream, index), now)
                record["created"] = record["updated"] = now
                if entity in CHILD_COLLECTIONS:
                    self._point_at_parent(acct, record, d)
                table.put(record_id, record, now, now)
                result["created"].append(record_id)
            candidates = list(update_ids or [])
            attempts = 0
            while len(result["updated"]) < updates and attempts < updates * 20 + 20:
                attempts += 1
                record_id = candidates.pop(0) if candidates else 1 + d.below(max(table.next_id - 1, 1))
                current = table.get(record_id)
                if current is None or record_id in result["updated"] or record_id in result["created"]:
                    continue
                changed = self._changed(entity, dict(current), d)
                changed["updated"] = now
                created = table.times(record_id)[0]  # type: ignore[index]
                table.put(record_id, changed, created, now)
                result["updated"].append(record_id)
            attempts = 0
            while len(result["deleted"]) < deletes and attempts < deletes * 20 + 20:
                attempts += 1
                record_id = 1 + d.below(max(table.next_id - 1, 1))
                if table.delete(record_id):
                    result["deleted"].append(record_id)
        for action, key in (("Created", "created"), ("Updated", "updated"), ("Deleted", "deleted")):
            if result[key]:
                self._notify(acct, entity, action, result[key])
        # The step's time: the `updated` (and `created`) of every record it touched, and the webhooks'
        # eventCreated. Benchmarks use it to tell when that version of a record reached the warehouse.
        return {**result, "at": now}

    def _create_people(self, acct: FubAccount, ids: list[int], now: datetime, d: Draw) -> None:
        table = acct.tables["people"]
        for record_id in ids:
            record = table.build(record_id - 1, Draw(table.stream, record_id - 1), now)
            record["created"] = record["updated"] = now
            table.put(record_id, record, now, now)

    def _point_at_parent(self, acct: FubAccount, record: dict, d: Draw) -> None:
        people = acct.tables["people"]
        if self.faults.child_before_parent:
            person_id = people.allocate_id()
            acct.future_parents.append(person_id)
        else:
            person_id = 0
            for _ in range(50):
                candidate = 1 + d.below(max(people.next_id - 1, 1))
                if people.exists(candidate):
                    person_id = candidate
                    break
        if "personId" in record:
            record["personId"] = person_id
        if "people" in record:
            record["people"] = [{"id": person_id}]
        if "invitees" in record:
            record["invitees"][0] = {"personId": person_id}

    @staticmethod
    def _changed(entity: str, record: dict, d: Draw) -> dict:
        if entity == "people":
            stage_index = d.below(len(STAGES) - 1)
            record.update(
                stage=STAGES[stage_index],
                stageId=stage_index + 1,
                price=d.money(150_000, 1_500_000, 5_000),
                contacted=True,
                tags=sorted({*record.get("tags", []), d.pick(TAGS)}),
            )
        elif entity == "deals":
            record.update(stageId=1 + d.below(6), price=d.money(150_000, 2_000_000, 5_000))
        elif entity in ("users", "groups", "stages"):
            record["name"] = f"{record.get('name', '')}".split(" (")[0] + f" ({d.below(1000)})"
        else:
            key = "note" if entity == "calls" else "message" if entity in ("textMessages", "events") else "title"
            record[key] = f"Updated {d.below(100000)}"
        return record

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name in self.accounts:
            self.mutate(
                name,
                "people",
                creates=math.ceil(hours * 2),
                updates=math.ceil(hours * 3),
                deletes=1 if hours >= 1 else 0,
            )
            self.mutate(name, "calls", creates=math.ceil(hours * 2))
            self.mutate(name, "deals", creates=math.ceil(hours / 2), updates=math.ceil(hours))
            self.mutate(name, "events", creates=math.ceil(hours))
            self.mutate(name, "textMessages", creates=math.ceil(hours))

    # -- webhooks ------------------------------------------------------------------------------

    def _notify(self, acct: FubAccount, collection: str, action: str, ids: list[int]) -> None:
        prefix = WEBHOOK_PREFIX.get(collection)
        if prefix is None or (collection == "events" and action != "Created"):
            return
        event = f"{prefix}{action}"
        targets = [s for s in self.subscriptions if s["account"] == acct.name and s["event"] == event]
        if not targets:
            return
        now = self.sandbox.clock.now()
        payload = {
            "eventId": str(uuid.UUID(int=stream_seed(self.seed, acct.name, event, *ids) << 64 | acct.step)),
            "eventCreated": now.isoformat(),
            "event": event,
            "resourceIds": ids,
            "uri": f"{self.base_url}/v1/{collection}?id={','.join(map(str, ids))}",
        }
        for subscription in targets:
            self.emit(
                subscription["url"],
                payload,
                lambda body: {"FUB-Signature": fub_signature(body)},
                payload["eventId"],
            )

    # -- HTTP ----------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        return json_response({"errorMessage": message}, status)

    def credentials(self) -> dict[str, Any]:
        return {
            "system": SYSTEM,
            "system_key": SYSTEM_KEY,
            "accounts": {name: acct.api_key for name, acct in self.accounts.items()},
        }

    def _authenticate(self, request: Request) -> FubAccount | Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return self.error(401, "Unauthorized: send your API key as the Basic auth username")
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return self.error(401, "Unauthorized: malformed Basic auth header")
        key = decoded.split(":", 1)[0]
        account = self._by_key.get(key)
        if account is None:
            return self.error(401, "Unauthorized: invalid API key")
        if key in self.faults.revoked_keys:
            return self.error(401, "Unauthorized: this API key has been revoked")
        if account.name in self.faults.suspended_accounts:
            return self.error(403, "Forbidden: this account is not active")
        return account

    def _registered(self, request: Request) -> bool:
        return request.headers.get("x-system") == SYSTEM and hmac.compare_digest(
            request.headers.get("x-system-key", ""), SYSTEM_KEY
        )

    async def _begin(self, request: Request, context: str) -> tuple[FubAccount | None, Response | None, dict]:
        account = self._authenticate(request)
        if isinstance(account, Response):
            return None, account, {}
        if not self._registered(request):
            context = f"{context}_unregistered"
        failure, headers = await self.gate(account.api_key, context)
        if failure is not None:
            return None, failure, headers
        return account, None, headers

    def _serve(self, account: FubAccount, collection: str, record: dict) -> dict:
        if not self.faults.is_malformed(account.tables[collection].stream, record["id"]):
            return record
        broken = dict(record)
        variant = record["id"] % 3
        if variant == 0:
            broken.pop("id")
        elif variant == 1:
            broken["created"] = "not-a-date"
        else:
            broken["updated"] = 12345
        return broken

    async def list_collection(self, request: Request) -> Response:
        collection = request.path_params["collection"]
        if collection not in COLLECTIONS:
            return self.error(404, f"Unknown resource /v1/{collection}")
        account, failure, headers = await self._begin(request, "events" if collection == "events" else "global")
        if failure is not None:
            return failure
        assert account is not None
        table = account.tables[collection]
        table.ties = self.faults.timestamp_ties
        q = request.query_params
        try:
            limit = min(max(int(q.get("limit") or 10), 1), 100)
            offset = max(int(q.get("offset") or 0), 0)
            token = q.get("next")
            params = dict(q)
            if token:
                try:
                    state = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
                except (ValueError, binascii.Error):
                    return self.error(400, "Invalid value for next")
                params = {**state["filters"], "sort": state["sort"]}
                offset = 0
            sort = params.get("sort") or "-id"
            if sort not in ("id", "-id", "created", "-created", "updated", "-updated"):
                return self.error(400, f"Invalid sort {sort!r}: use id, created or updated, optionally with -")
            min_id = int(params["idGreaterThan"]) + 1 if params.get("idGreaterThan") else None
            max_id = int(params["idLessThan"]) - 1 if params.get("idLessThan") else None
            if token:
                since = int(state["sinceId"])
                if sort.startswith("-"):
                    max_id = since - 1 if max_id is None else min(max_id, since - 1)
                else:
                    min_id = since + 1 if min_id is None else max(min_id, since + 1)
            window = Window(
                created_after=parse_time(params.get("createdAfter"), "createdAfter"),
                created_before=parse_time(params.get("createdBefore"), "createdBefore"),
                updated_after=parse_time(params.get("updatedAfter"), "updatedAfter"),
                updated_before=parse_time(params.get("updatedBefore"), "updatedBefore"),
                min_id=min_id,
                max_id=max_id,
            )
        except ValueError as exc:
            return self.error(400, str(exc))
        if params.get("id"):
            try:
                wanted = [int(x) for x in str(params["id"]).split(",") if x.strip()]
            except ValueError:
                return self.error(400, "Invalid value for id: expected comma-separated integers")
            records = [r for r in (table.get(i) for i in wanted) if r is not None]
            body = {
                "_metadata": {
                    "collection": collection,
                    "offset": 0,
                    "limit": len(records),
                    "total": len(records),
                    "next": None,
                    "nextLink": None,
                },
                collection: [self._serve(account, collection, r) for r in records],
            }
            return self.body(body, headers=headers, listing=True)
        if offset >= MAX_OFFSET:
            # Every order, `updated` included: which orders FUB can page by keyset is not published, so the
            # sandbox takes the strictest reading and a client that works here cannot depend on a deep offset.
            return self.error(
                400,
                f"Offset {offset} is too deep: offsets of {MAX_OFFSET} or more are not allowed, "
                "use the next parameter (_metadata.nextLink) to page further",
            )
        by_updated = sort.lstrip("-") == "updated"
        view = table.query(window, "updated" if by_updated else "id")
        page_ids = view.page_ids(offset, limit, descending=sort.startswith("-"))
        next_token = None
        if not by_updated and page_ids and len(page_ids) == limit and offset + limit < len(view):
            filters = {k: v for k, v in params.items() if k not in ("limit", "offset", "next", "sort")}
            state = {"sinceId": page_ids[-1], "sort": sort, "filters": filters}
            next_token = base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")
        metadata = {
            "collection": collection,
            "offset": offset,
            "limit": limit,
            "total": len(view),
            "next": next_token,
            "nextLink": f"{self.base_url}/v1/{collection}?limit={limit}&next={next_token}" if next_token else None,
        }
        if self.faults.malformed_rate > 0:
            served = [self._serve(account, collection, r) for r in table.get_many(page_ids)]
            response = self.body({"_metadata": metadata, collection: served}, headers=headers, listing=True)
        else:
            # The hot path: records spliced as JSON bytes, never built as dicts.
            raw = b"".join(
                (b'{"_metadata":', dumps(metadata), b',"', collection.encode(), b'":[',
                 table.get_many_json(page_ids), b"]}")
            )  # fmt: skip
            response = self.raw_body(raw, headers=headers, listing=True)
        self.after_page(account.name, collection, page_ids)
        return response

    async def get_one(self, request: Request) -> Response:
        collection = request.path_params["collection"]
        if collection not in COLLECTIONS:
            return self.error(404, f"Unknown resource /v1/{collection}")
        account, failure, headers = await self._begin(request, "global")
        if failure is not None:
            return failure
        assert account is not None
        try:
            record_id = int(request.path_params["record_id"])
        except ValueError:
            return self.error(400, "Invalid id")
        record = account.tables[collection].get(record_id)
        if record is None:
            return self.error(404, f"{SINGULAR[collection]} not found")
        return self.body(self._serve(account, collection, record), headers=headers)

    async def webhooks(self, request: Request) -> Response:
        account, failure, headers = await self._begin(request, "global")
        if failure is not None:
            return failure
        assert account is not None
        if not self._registered(request):
            return self.error(403, "Forbidden: webhooks need a registered X-System and X-System-Key")
        if request.method == "GET":
            mine = [self._public(s) for s in self.subscriptions if s["account"] == account.name]
            return json_response(
                {"_metadata": {"collection": "webhooks", "total": len(mine)}, "webhooks": mine},
                headers=headers,
            )
        try:
            body = orjson.loads(await request.body())
            event, url = body["event"], body["url"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self.error(400, "Expected a JSON body with event and url")
        known = {f"{p}{a}" for p in WEBHOOK_PREFIX.values() for a in ("Created", "Updated", "Deleted")}
        if event not in known:
            return self.error(400, f"Invalid event {event!r}")
        same = [s for s in self.subscriptions if s["account"] == account.name and s["event"] == event]
        if len(same) >= 2:
            return self.error(400, f"A system may register at most 2 webhooks for {event}")
        subscription = {
            "id": self._next_webhook_id,
            "account": account.name,
            "event": event,
            "url": url,
            "status": "Active",
            "system": SYSTEM,
        }
        self._next_webhook_id += 1
        self.subscriptions.append(subscription)
        return json_response(self._public(subscription), 201, headers)

    async def delete_webhook(self, request: Request) -> Response:
        account, failure, headers = await self._begin(request, "global")
        if failure is not None:
            return failure
        assert account is not None
        webhook_id = int(request.path_params["webhook_id"])
        for subscription in list(self.subscriptions):
            if subscription["id"] == webhook_id and subscription["account"] == account.name:
                self.subscriptions.remove(subscription)
                return Response(status_code=204, headers=headers)
        return self.error(404, "Webhook not found")

    @staticmethod
    def _public(subscription: dict) -> dict:
        return {k: subscription[k] for k in ("id", "event", "url", "status", "system")}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route("/v1/webhooks/{webhook_id:int}", self.delete_webhook, methods=["DELETE"]),
            Route("/v1/{collection}", self.list_collection),
            Route("/v1/{collection}/{record_id}", self.get_one),
        ]
