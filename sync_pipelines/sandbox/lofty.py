"""Lofty (formerly Chime) simulator: `/lofty/v1.0/...` with Lofty's auth, paging, errors, limits and webhooks.

`Authorization: token <API_KEY>` (or `Bearer` from the client-credentials grant), int64 lead ids,
`limit`/`offset` plus a `scrollId` cursor under the `get_metadata` envelope of Lofty's published list-leads example,
a lead's calls, texts and emails at `/v2.0/leads/{leadId}/activities`, a per-app 60 s rate window, and webhooks
batched per subscription (listId) and posted to the subscription's callback URL as given: Lofty documents no
signature, so a receiver authenticates a batch by a secret it put in that URL. Contract, evidence and assumptions:
docs/integrations/lofty.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

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
    person_name,
    phone,
    stream_seed,
)
from sync_pipelines.sandbox.ratelimit import Decision
from sync_pipelines.sandbox.store import VirtualTable, Window

VENDOR_ID = 10_234
CLIENT_ID = "lofty_sandbox_client"
VENDOR_SECRET = "lofty_sandbox_vendor_secret"  # the OAuth client secret
TOKEN_TTL = 3600
ALL_SCOPES = frozenset({"leads", "members", "webhooks"})
MAX_RESULT_WINDOW = 10_000  # offset + limit beyond this must use scrollId


@dataclass(frozen=True)
class TeamSpec:
    team_id: int
    share: float  # of the sandbox scale, in leads
    lead_base: int  # leadId of the team's first lead: int64 ids well past 2**32
    user_base: int  # memberUserId of the team's first member


# Two teams of different size, so an account mix-up shows in counts.
TEAMS: dict[str, TeamSpec] = {
    "acme": TeamSpec(13_233_324, 1.0, 651_000_000_000_001, 1_100_000),
    "summit": TeamSpec(13_233_325, 0.5, 652_000_000_000_001, 2_100_000),
}
# API key -> (team, scopes). The leads-only key shows the 403/200100 answer to an out-of-scope call.
API_KEYS: dict[str, tuple[str, frozenset[str]]] = {
    "lofty_sandbox_key_acme": ("acme", ALL_SCOPES),
    "lofty_sandbox_key_summit": ("summit", ALL_SCOPES),
    "lofty_sandbox_key_acme_leads_only": ("acme", frozenset({"leads"})),
}
STAGES = ("New Lead", "Contacted", "Qualified", "Nurture", "Active", "Under Contract", "Closed", "Archived")
LEAD_TYPES = (2, 1, 5, 6, 8, 9, -1)  # Buyer, Seller, Renter, Investor, Homeowner, Landlord, Other
PROPERTY_TYPES = ("Single Family Home", "Condo", "Townhouse", "Multi-Family", "Land")
SORTS = {"default": "id", "createtime": "id", "updatetime": "updated", "lastactivity": "updated"}
LIST_IDS = range(1, 13)  # 1 Agent Info, 2 Lead Info, ..., 12 Pipeline Change
LEAD_INFO, PIPELINE_CHANGE, AGENT_INFO = 2, 12, 1
# A new activity is announced on its channel's list: 6 Call, 7 Email, 8 Text.
ACTIVITY_LISTS = {"call": 6, "email": 7, "text": 8}
CHANNELS = ("call", "text", "email")
CALL_OUTCOMES = ("Connected", "Left Voicemail", "No Answer", "Bad Number")
EMAIL_EVENTS = ("Sent", "Opened", "Clicked", "Replied")
# The published list-leads example's metadata says `"collection": "note"` for a list of leads; the sandbox sends the
# same (a client must not rely on it). Members, whose envelope is not published, name their own collection.
LEAD_COLLECTION = "note"
MAX_ACTIVITIES = 100  # per lead: an activity's id is leadId * 100 + its number
# Undocumented by Lofty; chosen here: 1 min, 5 min, 15 min, 1 h, 4 h.
RETRY_DELAYS = (60.0, 300.0, 900.0, 3600.0, 14400.0)


def seeded_uuid(*parts: object) -> str:
    """A version-4-shaped UUID that is a pure function of its parts: the same seed replays the same ids."""
    return str(uuid.UUID(int=stream_seed(*parts, "hi") << 64 | stream_seed(*parts, "lo"), version=4))


@dataclass
class Team:
    name: str
    spec: TeamSpec
    leads: VirtualTable
    members: VirtualTable
    step: int = 0
    future_members: list[int] = field(default_factory=list)  # assigned before they exist
    member_names: dict[int, str] = field(default_factory=dict)
    # Activities the clock or a mutation added, beyond each lead's generated ones: leadId -> records.
    added_activities: dict[int, list[dict]] = field(default_factory=dict)


@dataclass
class Token:
    team: str
    scopes: frozenset[str]
    api_key: str
    expires_at: datetime


class Lofty(Simulator):
    name = "lofty"
    # Per app, 60 s window: 500/min in production (100/min for an app in development mode).
    default_rate_limits = {"global": (500, 60.0)}
    webhook_retry_delays = RETRY_DELAYS

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.max_result_window = MAX_RESULT_WINDOW
        self.teams: dict[str, Team] = {}
        self._tokens: dict[str, Token] = {}
        self._next_subscription = 1
        for name, spec in TEAMS.items():
            leads = max(1, int(scale * spec.share))
            members = VirtualTable(
                "members",
                max(3, leads // 50),
                stream_seed(seed, self.name, name, "members"),
                self._member_builder(name, spec),
                dumps=dumps,
            )
            team = Team(name, spec, None, members)  # type: ignore[arg-type]
            team.leads = VirtualTable(
                "leads",
                leads,
                stream_seed(seed, self.name, name, "leads"),
                self._lead_builder(team),
                id_base=spec.lead_base,
                dumps=dumps,
            )
            self.teams[name] = team

    # -- data ----------------------------------------------------------------------------------

    @staticmethod
    def _member_builder(team: str, spec: TeamSpec) -> Callable[[int, Draw, datetime], dict]:
        def build(i: int, d: Draw, created: datetime) -> dict:
            first, last = person_name(d)
            city = CITIES[i % len(CITIES)][0]
            admin = i == 0
            return {
                "id": i + 1,
                "teamId": spec.team_id,
                "invitorUserId": spec.user_base,
                "memberUserId": spec.user_base + i,
                "role": 1 if admin else 0,
                "roleName": "Admin" if admin else "Agent",
                "firstLetter": first[0],
                "email": f"{first.lower()}.{last.lower()}{i}@{team}-realty.example",
                "firstName": first,
                "lastName": last,
                "phoneNumber": phone(d),
                "status": 1,
                "isAdmin": admin,
                "timeZoneId": "America/Chicago",
                "groupId": spec.team_id * 10 + i % 3,
                "groupName": f"{city} Office",
                "accountStatus": "ACTIVE",
            }

        return build

    def _member_name(self, team: Team, user_id: int) -> str:
        # Cached: every lead names its agent.
        name = team.member_names.get(user_id)
        if name is None:
            record = team.members.get(user_id - team.spec.user_base + 1)
            name = team.member_names[user_id] = f"{record['firstName']} {record['lastName']}" if record else ""
        return name

    def _lead_builder(self, team: Team) -> Composite:
        spec = team.spec
        members = team.members

        def template(d: Draw) -> dict:
            first, last = person_name(d)
            city, state, zip3 = d.pick(CITIES)
            stage = d.below(len(STAGES) - 1)
            source = d.below(len(LEAD_SOURCES))
            price_min = d.money(100_000, 900_000, 25_000)
            tags = sorted({d.below(len(TAGS)) for _ in range(d.below(3))})
            return {
                "cannotText": d.chance(0.05),
                "cannotCall": d.chance(0.05),
                "cannotEmail": d.chance(0.05),
                "firstName": first,
                "lastName": last,
                "birthday": None,
                "phones": [phone(d)] + ([phone(d)] if d.chance(0.3) else []),
                "leadSource": source + 1,
                "source": LEAD_SOURCES[source],
                "stageId": stage + 1,
                "stage": STAGES[stage],
                "lenderUserId": None,
                "score": d.below(101),
                "streetAddress": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "city": city,
                "state": state,
                "zipCode": f"{zip3}{d.below(100):02d}",
                "facebook": None,
                "twitter": None,
                "hiddenFlag": d.chance(0.03),
                "referredBy": None,
                "leadTypes": [d.pick(LEAD_TYPES)],
                "_inquiry": {
                    "priceMin": price_min,
                    "priceMax": price_min + d.money(50_000, 500_000, 25_000),
                    "propertyType": [d.pick(PROPERTY_TYPES)],
                    "bedroomsMin": 1 + d.below(4),
                    "bathroomsMin": str(1 + d.below(3)),
                    "locations": [{"city": city, "stateCode": state}],
                    "bedroomsMax": 5 + d.below(3),
                    "bathroomsMax": str(3 + d.below(2)),
                    "modifyByAgent": d.chance(0.2),
                    "defaultValue": True,
                },
                "_property": {
                    "price": d.money(150_000, 1_200_000, 5_000),
                    "state": state,
                    "city": city,
                    "streetAddress": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                    "zipCode": f"{zip3}{d.below(100):02d}",
                    "county": None,
                    "propertyType": d.pick(PROPERTY_TYPES),
                    "bedrooms": 1 + d.below(5),
                    "bathrooms": 1 + d.below(4),
                    "squareFeet": 700 + d.below(3300),
                    "lotSize": round(0.1 + d.below(200) / 100, 2),
                    "parkingSpace": d.below(3),
                    "floors": 1 + d.below(2),
                    "mailAddress": True,
                    "listingId": None,
                    "autoListingId": None,
                    "label": "Home",
                    "note": None,
                }
                if d.chance(0.4)
                else None,
                "_email": (f"{first.lower()}.{last.lower()}", d.pick(EMAIL_DOMAINS)),
                "_tags": tuple(tags),
            }

        def own(i: int, h: int, created: datetime, full: dict) -> dict:
            lead_id = spec.lead_base + i
            user_id = spec.user_base + (h >> 24) % members.count
            local, domain = full["_email"]
            lead_user_id = lead_id + 37_000_000_000_000
            inquiry = {**full["_inquiry"], "id": lead_id + 1, "leadUserId": lead_user_id, "createTime": created,
                       "updateTime": created}  # fmt: skip
            owned = full["_property"]
            properties = [{**owned, "id": lead_id + 2, "leadUserId": lead_user_id}] if owned else []
            return {
                "leadId": lead_id,
                "leadUserId": lead_user_id,
                "emails": [f"{local}{i}@{domain}"],
                "assignedUserId": user_id,
                "assignedUser": self._member_name(team, user_id),
                "tags": [self._tag(lead_id, t, created, user_id) for t in full["_tags"]],
                "teamId": spec.team_id,
                "createTime": created,
                "updateTime": created,
                "assignTime": created,
                "leadInquiry": inquiry,
                "leadPropertyList": properties,
            }

        return Composite(stream_seed(self.seed, self.name, team.name, "lead-templates"), template, own, dumps)

    @staticmethod
    def _tag(lead_id: int, tag: int, at: datetime, creator: int) -> dict:
        return {
            "leadId": lead_id,
            "tagId": 500 + tag,
            "createTime": at,
            "updateTime": at,
            "tagName": TAGS[tag],
            "creatorUserId": creator,
            "visibleType": 1,
        }

    # -- activities ----------------------------------------------------------------------------

    def _generated_activities(self, team: Team, lead: dict) -> list[dict]:
        """A lead's own calls, texts and emails (0-3), a pure function of the seed and the lead: minutes to days
        after it was created, by its agent."""
        lead_id = int(lead["leadId"])
        d = Draw(stream_seed(self.seed, self.name, team.name, "activities"), lead_id - team.spec.lead_base)
        created = self._time(lead.get("createTime"))
        out = []
        at = created
        for number in range(d.below(4)):
            at = at + timedelta(minutes=5 + d.below(3 * 24 * 60))
            out.append(self._activity(lead, number, d.pick(CHANNELS), at, d))
        return out

    @staticmethod
    def _time(value: object) -> datetime:
        if isinstance(value, datetime):
            return value
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    @staticmethod
    def _activity(lead: dict, number: int, channel: str, at: datetime, d: Draw) -> dict:
        outbound = d.chance(0.7)
        phones = lead.get("phones") if isinstance(lead.get("phones"), list) else []
        return {
            "id": int(lead["leadId"]) * MAX_ACTIVITIES + number,
            "leadId": lead["leadId"],
            "agentId": lead.get("assignedUserId"),
            "activityTime": at,
            "channel": channel,
            "communicationType": {"call": "Phone Call", "text": "SMS", "email": "Email"}[channel],
            "direction": "outbound" if outbound else "inbound",
            "callingOutcome": d.pick(CALL_OUTCOMES) if channel == "call" else None,
            "duration": 10 + d.below(900) if channel == "call" else None,
            "leadPhoneNumber": (phones[0] if phones else None) if channel != "email" else None,
            "emailEventType": d.pick(EMAIL_EVENTS) if channel == "email" else None,
            "emailSubject": "Following up on your home search" if channel == "email" else None,
            "note": None,
        }

    def activities_of(self, team: Team, lead_id: int) -> list[dict] | None:
        """Every activity of a lead in activityTime order (= id order), or None for a lead that is not there."""
        lead = team.leads.get(lead_id)
        if lead is None or "leadId" not in lead:
            return None
        return self._generated_activities(team, lead) + team.added_activities.get(lead_id, [])

    def activity_count(self, account: str) -> int:
        """Activities of the team's live leads (walks every lead: for tests and the demo, not for big scales)."""
        team = self.teams[account]
        view = team.leads.query(Window())
        return sum(len(self.activities_of(team, i) or []) for i in view.page_ids(0, len(view)))

    def tag_count(self, account: str) -> int:
        team = self.teams[account]
        view = team.leads.query(Window())
        return sum(len(r.get("tags") or []) for r in team.leads.get_many(view.page_ids(0, len(view))))

    def _add_activity(self, team: Team, lead_id: int, now: datetime, d: Draw) -> dict | None:
        lead = team.leads.get(lead_id)
        if lead is None:
            return None
        have = self.activities_of(team, lead_id) or []
        if len(have) >= MAX_ACTIVITIES:
            return None
        activity = self._activity(lead, len(have), d.pick(CHANNELS), now, d)
        team.added_activities.setdefault(lead_id, []).append(activity)
        # A new touch moves the lead up the LastActivity order.
        created = team.leads.times(lead_id)[0]  # type: ignore[index]
        team.leads.put(lead_id, {**lead, "updateTime": now}, created, now)
        return activity

    # -- counts and mutations ------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        window = Window()
        if period:
            start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
            end = (start + timedelta(days=32)).replace(day=1)
            window = Window(created_after=start - timedelta(microseconds=1), created_before=end)
        totals = {"leads": 0, "members": 0}
        for team in self.teams.values():
            if account and team.name != account:
                continue
            totals["leads"] += len(team.leads.query(window))
            totals["members"] += len(team.members.query(window))
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
        team = self.teams[account]
        if entity not in ("leads", "members", "activities"):
            raise KeyError(entity)
        activity_events: dict[int, list[dict]] = {}
        lead_events: list[dict] = []
        stage_events: list[dict] = []
        agent_events: list[dict] = []
        with self._lock:
            team.step += 1
            now = self.sandbox.clock.tick()
            d = Draw(stream_seed(self.seed, self.name, team.name, entity, "clock"), team.step)
            result: dict[str, list[int]] = {"created": [], "updated": [], "deleted": []}
            # Agents promised by an earlier child-before-parent step arrive now.
            for member_id in team.future_members:
                self._create_member(team, member_id, now)
                agent_events.append(self._agent_event(team, member_id, "CREATE", now))
            team.future_members = []
            if entity == "activities":
                # `creates` new calls, texts or emails on existing leads (`update_ids` chooses them).
                leads = list(update_ids or [])
                for _ in range(creates):
                    lead_id = self._pick(team.leads, d, leads, [])
                    activity = self._add_activity(team, lead_id, now, d) if lead_id is not None else None
                    if activity is not None:
                        result["created"].append(activity["id"])
                        activity_events.setdefault(ACTIVITY_LISTS[activity["channel"]], []).append(
                            {"leadId": lead_id, "activityId": activity["id"], "eventType": "CREATE",
                             "eventTime": now}
                        )  # fmt: skip
                creates = updates = deletes = 0
            table = team.members if entity == "members" else team.leads
            for _ in range(creates):
                record_id = table.allocate_id()
                if entity == "members":
                    self._create_member(team, record_id, now)
                    agent_events.append(self._agent_event(team, record_id, "CREATE", now))
                else:
                    self._create_lead(team, record_id, now)
                    lead_events.append({"leadId": record_id, "eventType": "CREATE", "eventTime": now})
                result["created"].append(record_id)
            candidates = list(update_ids or [])
            for _ in range(updates):
                record_id = self._pick(table, d, candidates, result["created"] + result["updated"])
                if record_id is None:
                    break
                current = table.get(record_id) or {}
                created = table.times(record_id)[0]  # type: ignore[index]
                if entity == "members":
                    table.put(record_id, {**current, "phoneNumber": phone(d)}, created, now)
                    agent_events.append(self._agent_event(team, record_id, "UPDATE", now))
                else:
                    changed = self._changed_lead(current, d, now)
                    table.put(record_id, changed, created, now)
                    lead_events.append({"leadId": record_id, "eventType": "UPDATE", "eventTime": now})
                    if d.chance(0.5):  # a stage move or a new tag often comes with a call
                        activity = self._add_activity(team, record_id, now, d)
                        if activity is not None:
                            activity_events.setdefault(ACTIVITY_LISTS[activity["channel"]], []).append(
                                {"leadId": record_id, "activityId": activity["id"], "eventType": "CREATE",
                                 "eventTime": now}
                            )  # fmt: skip
                    if changed["stageId"] != current.get("stageId"):
                        stage_events.append(
                            {
                                "leadId": record_id,
                                "oldStageId": current.get("stageId"),
                                "oldStage": current.get("stage"),
                                "newStageId": changed["stageId"],
                                "newStage": changed["stage"],
                                "eventTime": now,
                            }
                        )
                result["updated"].append(record_id)
            for _ in range(deletes if entity != "members" else 0):
                record_id = self._pick(table, d, [], result["deleted"])
                if record_id is None:
                    break
                table.delete(record_id)  # moved to the trash: gone from lists and 404 by id
                result["deleted"].append(record_id)
                lead_events.append({"leadId": record_id, "eventType": "DELETE", "eventTime": now})
            step = team.step
        self._notify(team, AGENT_INFO, agent_events, step)
        self._notify(team, LEAD_INFO, lead_events, step)
        self._notify(team, PIPELINE_CHANGE, stage_events, step)
        for list_id, events in activity_events.items():
            self._notify(team, list_id, events, step)
        return result

    def _create_lead(self, team: Team, lead_id: int, now: datetime) -> None:
        table = team.leads
        index = lead_id - table.id_base
        record = table.build(index, Draw(table.stream, index), now)
        if self.faults.child_before_parent:
            member_id = team.members.allocate_id()
            team.future_members.append(member_id)
            user_id = team.spec.user_base + member_id - 1
            record.update(assignedUserId=user_id, assignedUser="")
            record["tags"] = [{**tag, "creatorUserId": user_id} for tag in record["tags"]]
        table.put(lead_id, record, now, now)

    def _create_member(self, team: Team, member_id: int, now: datetime) -> None:
        table = team.members
        index = member_id - table.id_base
        table.put(member_id, table.build(index, Draw(table.stream, index), now), now, now)
        team.member_names.pop(team.spec.user_base + index, None)

    def _agent_event(self, team: Team, member_id: int, kind: str, now: datetime) -> dict:
        return {
            "memberUserId": team.spec.user_base + member_id - team.members.id_base,
            "eventType": kind,
            "eventTime": now,
        }

    @staticmethod
    def _pick(table: VirtualTable, d: Draw, candidates: list[int], taken: list[int]) -> int | None:
        for _ in range(50):
            record_id = candidates.pop(0) if candidates else table.id_base + d.below(table.next_id - table.id_base)
            if table.exists(record_id) and record_id not in taken:
                return record_id
        return None

    @staticmethod
    def _changed_lead(current: dict, d: Draw, now: datetime) -> dict:
        stage = d.below(len(STAGES))
        tags = list(current.get("tags") or [])
        tag = d.below(len(TAGS))
        if all(t.get("tagName") != TAGS[tag] for t in tags):
            tags.append(Lofty._tag(current["leadId"], tag, now, current.get("assignedUserId", 0)))
        return {
            **current,
            "stageId": stage + 1,
            "stage": STAGES[stage],
            "score": d.below(101),
            "tags": tags,
            "updateTime": now,
        }

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name in self.teams:
            self.mutate(
                name,
                "leads",
                creates=math.ceil(hours * 2),
                updates=math.ceil(hours * 3),
                deletes=1 if hours >= 1 else 0,
            )
            self.mutate(name, "activities", creates=math.ceil(hours * 4))

    # -- webhooks ------------------------------------------------------------------------------

    def _notify(self, team: Team, list_id: int, events: list[dict], step: int) -> None:
        if not events:
            return
        for subscription in list(self.subscriptions):
            if subscription["team"] != team.name or subscription["listId"] != list_id:
                continue
            size = subscription["limit"]
            for number, start in enumerate(range(0, len(events), size)):
                batch_id = seeded_uuid(self.seed, team.name, subscription["subscribeId"], list_id, step, number)
                payload = {
                    "teamId": team.spec.team_id,
                    "listId": list_id,
                    "subscribeId": subscription["subscribeId"],
                    "vendorId": VENDOR_ID,
                    "batchId": batch_id,
                    "events": events[start : start + size],
                }
                # Posted to the callback URL exactly as subscribed, with no signature header (none is documented):
                # the receiver knows a batch is ours by the secret it put in that URL.
                self.emit(subscription["callbackUrl"], payload, lambda body: {}, batch_id)

    # -- HTTP ----------------------------------------------------------------------------------

    def error(self, status: int, message: str) -> Response:
        if status == 429:
            return json_response({"message": "Too Many Requests"}, 429)
        code = {400: "INVALID_PARAMETER", 401: "BAD_CREDENTIALS", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
        return json_response({"code": code.get(status, status), "message": message}, status)

    def _fail(self, status: int, code: str | int, message: str, headers: dict[str, str]) -> Response:
        return json_response({"code": code, "message": message}, status, headers)

    def rate_headers(self, decision: Decision, context: str) -> dict[str, str]:
        # X-RateLimit-Reset is the UTC epoch second at which the window resets.
        reset = decision.reset_epoch or int(time.time()) + decision.retry_after
        return {
            "X-RateLimit-Limit": str(decision.limit),
            "X-RateLimit-Remaining": str(decision.remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def credentials(self) -> dict[str, Any]:
        return {
            "vendor_id": VENDOR_ID,
            "client_id": CLIENT_ID,
            "client_secret": VENDOR_SECRET,
            "webhook_secret": VENDOR_SECRET,
            "token_url": f"{self.base_url}/oauth/token",
            "accounts": {team: key for key, (team, scopes) in API_KEYS.items() if scopes == ALL_SCOPES},
            "limited_keys": {key: sorted(scopes) for key, (_, scopes) in API_KEYS.items() if scopes != ALL_SCOPES},
            "team_ids": {name: team.spec.team_id for name, team in self.teams.items()},
        }

    def _authenticate(self, request: Request) -> tuple[Team, frozenset[str]] | Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() == "token" and value in API_KEYS:
            team_name, scopes = API_KEYS[value]
            api_key = value
        elif scheme.lower() == "bearer" and value in self._tokens:
            token = self._tokens[value]
            if self.now() >= token.expires_at:
                return self.error(401, "The access token has expired")
            team_name, scopes, api_key = token.team, token.scopes, token.api_key
        elif not scheme:
            return self.error(401, "Missing Authorization header: send 'token <API_KEY>' or 'Bearer <token>'")
        else:
            return self.error(401, "Invalid API key or access token")
        if value in self.faults.revoked_keys or api_key in self.faults.revoked_keys:
            return self.error(401, "The API key or access token has been revoked")
        if self.faults.expired_credentials:
            return self.error(401, "The API key or access token has expired")
        if team_name in self.faults.suspended_accounts:
            return self.error(403, "This account is not active")
        return self.teams[team_name], scopes

    async def _begin(self, request: Request, scope: str) -> tuple[Team | None, Response | None, dict[str, str]]:
        found = self._authenticate(request)
        if isinstance(found, Response):
            return None, found, {}
        team, scopes = found
        if scope not in scopes:
            return (
                None,
                self._fail(403, 200100, "Sorry, the vendor does not have permission for this API.", {}),
                {},
            )
        # The limit is per app, not per account: every team's traffic shares one bucket.
        failure, headers = await self.gate(f"vendor:{VENDOR_ID}", "global")
        if failure is not None:
            return None, failure, headers
        return team, None, headers

    async def token(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        params = dict(request.query_params)
        raw = await request.body()
        if raw:
            params.update(parse_qsl(raw.decode(errors="replace")))
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = secret = ""
        if client_id != CLIENT_ID or not hmac.compare_digest(secret, VENDOR_SECRET):
            return json_response({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        if params.get("grant_type") != "client_credentials":
            body = {
                "error": "unsupported_grant_type",
                "error_description": "The sandbox supports client_credentials",
            }
            return json_response(body, 400)
        customer_key = params.get("customer_key", "")
        if customer_key not in API_KEYS or customer_key in self.faults.revoked_keys:
            return json_response({"error": "invalid_grant", "error_description": "Unknown customer_key"}, 400)
        team, scopes = API_KEYS[customer_key]
        ttl = 0 if self.faults.expired_credentials else TOKEN_TTL
        access = str(uuid.uuid4())
        self._tokens[access] = Token(team, scopes, customer_key, self.now() + timedelta(seconds=ttl))
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(scopes)),
        }
        return json_response(body, headers={"Cache-Control": "no-store"})

    def _serve(self, table: VirtualTable, record: dict, id_key: str) -> dict:
        if not self.faults.is_malformed(table.stream, record[id_key]):
            return record
        broken = dict(record)
        variant = record[id_key] % 3
        if variant == 0:
            broken.pop(id_key)
        elif variant == 1:
            broken["createTime" if "createTime" in broken else "email"] = "0000-00-00 00:00:00"
        else:
            broken["emails" if "emails" in broken else "memberUserId"] = "not-a-list"
        return broken

    def _page(self, request: Request, table: VirtualTable, sortable: bool) -> tuple[dict, list[int]] | str:
        """The page a list request asks for, as (get_metadata, ids), or the INVALID_PARAMETER message."""
        q = request.query_params
        try:
            limit = int(q.get("limit") or 10)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return "LIMIT_NOT_VALID"
        token = q.get("scrollId")
        if token:
            try:
                state = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
                sort, descending, last, served = (
                    state["s"],
                    bool(state["d"]),
                    int(state["k"]),
                    int(state["o"]),
                )
            except (ValueError, KeyError, TypeError, binascii.Error):
                return "Invalid scrollId"
            offset = 0
        else:
            try:
                offset = int(q.get("offset") or 0)
            except ValueError:
                return "offset must be an integer"
            if offset < 0:
                return "offset must not be negative"
            if offset + limit > self.max_result_window:
                return f"offset + limit must not exceed {self.max_result_window}; use scrollId for deep paging"
            sort = (q.get("sort") or "Default").lower() if sortable else "default"
            if sort not in SORTS:
                return f"Invalid sort {q.get('sort')!r}: use Default, CreateTime, UpdateTime or LastActivity"
            descending = (q.get("desc") or "true").lower() != "false" if sortable else False
            last, served = 0, 0
        order = SORTS[sort]
        window = Window()
        if token and order == "id":
            # A keyset on the id: records created or trashed during the walk do not shift the pages.
            window = Window(max_id=last - 1) if descending else Window(min_id=last + 1)
            start, before = 0, served
        elif token:
            start, before = last, 0  # an update-ordered scroll resumes at its position
        else:
            start, before = offset, 0
        table.ties = self.faults.timestamp_ties
        view = table.query(window, order)
        ids = view.page_ids(start, limit, descending)
        next_token = None
        if ids and len(view) - start - len(ids) > 0:
            key = ids[-1] if order == "id" else start + len(ids)
            state = {"s": sort, "d": descending, "k": key, "o": before + start + len(ids)}
            next_token = base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")
        metadata = {
            "collection": LEAD_COLLECTION if table.name == "leads" else table.name,
            "limit": limit,
            "offset": before + start,
            "total": before + len(view),
            "scrollId": next_token,
        }
        return metadata, ids

    async def _list(self, request: Request, scope: str, collection: str, id_key: str) -> Response:
        team, failure, headers = await self._begin(request, scope)
        if failure is not None:
            return failure
        assert team is not None
        table = team.leads if collection == "leads" else team.members
        page = self._page(request, table, sortable=collection == "leads")
        if isinstance(page, str):
            code = "LIMIT_NOT_VALID" if page == "LIMIT_NOT_VALID" else "INVALID_PARAMETER"
            message = "limit must be between 1 and 100" if page == "LIMIT_NOT_VALID" else page
            return self._fail(400, code, message, headers)
        metadata, ids = page
        if self.faults.malformed_rate > 0:
            records = [self._serve(table, r, id_key) for r in table.get_many(ids)]
            response = self.body({"get_metadata": metadata, collection: records}, headers=headers, listing=True)
        else:
            # The hot path: records spliced as JSON bytes, never built as dicts.
            raw = b"".join(
                (b'{"get_metadata":', dumps(metadata), b',"', collection.encode(), b'":[',
                 table.get_many_json(ids), b"]}")
            )  # fmt: skip
            response = self.raw_body(raw, headers=headers, listing=True)
        self.after_page(team.name, collection, ids)
        return response

    async def leads(self, request: Request) -> Response:
        return await self._list(request, "leads", "leads", "leadId")

    async def members(self, request: Request) -> Response:
        return await self._list(request, "members", "members", "id")

    async def lead(self, request: Request) -> Response:
        team, failure, headers = await self._begin(request, "leads")
        if failure is not None:
            return failure
        assert team is not None
        record = team.leads.get(request.path_params["lead_id"])
        if record is None:
            return self._fail(404, "LEAD_NOT_EXIST", "The lead does not exist or has been deleted", headers)
        return self.body({"lead": self._serve(team.leads, record, "leadId")}, headers=headers)

    async def activities(self, request: Request) -> Response:
        """`GET /v2.0/leads/{leadId}/activities?currentId&offset&limit`: `currentId` (the last id seen) wins over
        `offset`; `limit` 1-1000, default 10; `{"activities": [...]}` in activityTime order, no total."""
        team, failure, headers = await self._begin(request, "leads")
        if failure is not None:
            return failure
        assert team is not None
        q = request.query_params
        try:
            limit = int(q.get("limit") or 10)
            current = int(q.get("currentId") or 0)
            offset = int(q.get("offset") or 0)
        except ValueError:
            return self._fail(400, "INVALID_PARAMETER", "limit, currentId and offset must be integers", headers)
        if not 1 <= limit <= 1000:
            return self._fail(400, "LIMIT_NOT_VALID", "limit must be between 1 and 1000", headers)
        every = self.activities_of(team, request.path_params["lead_id"])
        if every is None:
            return self._fail(404, "LEAD_NOT_EXIST", "The lead does not exist or has been deleted", headers)
        chosen = [a for a in every if a["id"] > current] if current > 0 else every[max(offset, 0) :]
        return self.body({"activities": chosen[:limit]}, headers=headers)

    async def me(self, request: Request) -> Response:
        team, failure, headers = await self._begin(request, "members")
        if failure is not None:
            return failure
        assert team is not None
        return self.body(team.members.get(1), headers=headers)

    async def create_webhook(self, request: Request) -> Response:
        team, failure, headers = await self._begin(request, "webhooks")
        if failure is not None:
            return failure
        assert team is not None
        try:
            body = orjson.loads(await request.body())
            list_id, url = int(body["listId"]), str(body["callbackUrl"])
            limit = int(body.get("limit") or 100)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return self._fail(400, "MISSING_PARAMETER", "listId and callbackUrl are required", headers)
        if list_id not in LIST_IDS:
            return self._fail(400, "INVALID_PARAMETER", "listId must be between 1 and 12", headers)
        if not 1 <= limit <= 5000:
            return self._fail(400, "INVALID_PARAMETER", "limit must be between 1 and 5000", headers)
        parts = urlsplit(url)
        # Lofty rejects plain HTTP; the sandbox lets local receivers through.
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
            return self._fail(400, "INVALID_PARAMETER", "callbackUrl must use HTTPS", headers)
        with self._lock:
            subscription = {
                "subscribeId": self._next_subscription,
                "teamId": team.spec.team_id,
                "listId": list_id,
                "callbackUrl": url,
                "vendorId": VENDOR_ID,
                "limit": limit,
                "team": team.name,
            }
            self._next_subscription += 1
            self.subscriptions.append(subscription)
        return json_response(self._public(subscription), headers=headers)

    @staticmethod
    def _public(subscription: dict) -> dict:
        return {k: subscription[k] for k in ("subscribeId", "teamId", "listId", "callbackUrl", "vendorId", "limit")}

    async def list_webhooks(self, request: Request) -> Response:
        team, failure, headers = await self._begin(request, "webhooks")
        if failure is not None:
            return failure
        assert team is not None
        mine = [self._public(s) for s in self.subscriptions if s["team"] == team.name]
        return json_response(mine, headers=headers)

    async def delete_webhook(self, request: Request) -> Response:
        team, failure, headers = await self._begin(request, "webhooks")
        if failure is not None:
            return failure
        assert team is not None
        for subscription in list(self.subscriptions):
            if subscription["subscribeId"] == request.path_params["subscribe_id"] and subscription["team"] == team.name:
                self.subscriptions.remove(subscription)
                return json_response({}, headers=headers)
        return self._fail(404, "NOT_FOUND", "Webhook subscription not found", headers)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1.0/me", self.me),
            Route("/v1.0/members", self.members),
            Route("/v1.0/leads", self.leads),
            Route("/v1.0/leads/{lead_id:int}", self.lead),
            Route("/v2.0/leads/{lead_id:int}/activities", self.activities),
            Route("/v1.0/webhook", self.create_webhook, methods=["POST"]),
            Route("/v1.0/webhooks", self.list_webhooks),
            Route("/v1.0/webhook/{subscribe_id:int}", self.delete_webhook, methods=["DELETE"]),
        ]
