"""reZEN API client: `X-API-KEY` on two hosts (arrakis: transactions, listings, revenue share; yenta: agents,
network, teams, plans, cap info), each service's own page shape, and the key owner's yenta id that most paths
name. It implements the kit's source-client protocol (lib/integration/declaration.py, `SourceClient`), keyed
by our entity names (entities.py).

Page shapes, read with the kit's paginators (lib/integration/paging.py):
- Spring pages `{content, totalElements, last, ...}` (transactions and listings per lifecycle group, teams):
  `page_number` from 0 until `last`;
- `{agentId, tier, totalCount, hasNext, agents}` (down-line per tier): `page_number` until a short page;
- `{contributions}` with no totals (revshare per tier): `page_number` until a short or empty page;
- single bodies (agents/me, front line, a team, a plan, cap info).
Several listings read as one stream (three lifecycle groups, seven tiers) are `chained`, so the cursor saved
with each page names the listing and its page, and a resumed run skips what it has read.

Every record gets `_created` and `_updated` (see `stamp`): reZEN's epoch-millisecond createdAt/updatedAt as
ISO 8601 UTC text, which is what the load path reads a period and a timestamptz from. Nothing else is changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync_pipelines.defs.rezen.lifecycle import CHANGEABLE_GROUPS, GROUPS
from sync_pipelines.lib.http import ApiClient, ApiError
from sync_pipelines.lib.integration.paging import DONE, chained, page_number
from sync_pipelines.lib.sync import Page

ARRAKIS_URL_ENV = "SYNC_REZEN_ARRAKIS_URL"
YENTA_URL_ENV = "SYNC_REZEN_YENTA_URL"
# The sandbox's hosts (sync-pipelines sandbox serve); production is arrakis. / yenta.therealbrokerage.com.
DEFAULT_ARRAKIS_URL = "http://127.0.0.1:8900/rezen/arrakis/api/v1"
DEFAULT_YENTA_URL = "http://127.0.0.1:8900/rezen/yenta/api/v1"
PRODUCTION_ARRAKIS_URL = "https://arrakis.therealbrokerage.com/api/v1"
PRODUCTION_YENTA_URL = "https://yenta.therealbrokerage.com/api/v1"

PAGE_SIZE = 100  # reZEN's largest page (a larger pageSize is clamped, docs/integrations/rezen.md)
TIERS = tuple(range(1, 8))  # revshare tiers 1-5 are used, 6 and 7 are valid (and empty)
AGENT_STATUSES = ("ACTIVE", "INACTIVE", "CANDIDATE", "REJECTED", "RESURRECTING")
# A contribution is PENDING for its first 30 days, then PAID: a delta reads the contributions created since
# this long before the cursor again, which covers every status change reZEN makes to them.
CONTRIBUTION_LOOKBACK = timedelta(days=45)
# Agent field naming a plan -> the plan's kind in agents/plans/{kind}/{planId}.
PLAN_FIELDS = {"equityPurchasePlanId": "equity_purchase", "equityAwardPlanId": "equity_award"}
CREATED_ORDER = {"sortBy": "CREATED_AT", "sortDirection": "ASC"}

Listing = Callable[[str | None], Iterator[Page]]


def fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(value: object) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC. Anything else is passed on as text, so the load path's validation
    refuses the record naming the value it got (a malformed record goes to the DLQ, the rest load)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return str(value)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def stamp(record: Any) -> Any:
    """Add `_created` / `_updated` (ISO text of createdAt / updatedAt) to a record, in place. A record without
    createdAt gets no `_created`, and the load path refuses it as missing its required created time."""
    if isinstance(record, dict):
        if "createdAt" in record:
            record["_created"] = iso_millis(record["createdAt"])
        if "updatedAt" in record:
            record["_updated"] = iso_millis(record["updatedAt"])
    return record


def _millis(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _inside(record: Any, after: datetime | None, before: datetime | None) -> bool:
    """Strictly inside (after, before) by createdAt; a record whose createdAt is unreadable is kept, for the
    load path to refuse with its reason (the source's day filter already placed it in this window)."""
    created = record.get("createdAt") if isinstance(record, dict) else None
    if not isinstance(created, int) or isinstance(created, bool):
        return True
    return (after is None or created > _millis(after)) and (before is None or created < _millis(before))


def _updated_at_least(record: Any, floor: int | None) -> bool:
    """Updated at or after `floor` (epoch ms); a record whose updatedAt is unreadable is kept, for the load path
    to refuse with its reason."""
    updated = record.get("updatedAt") if isinstance(record, dict) else None
    if floor is None or not isinstance(updated, int) or isinstance(updated, bool):
        return True
    return updated >= floor


def _days(after: datetime | None, before: datetime | None) -> tuple[date | None, date | None]:
    """reZEN's inclusive UTC day filters that cover the strict window (after, before): a superset, which the
    client then narrows to the exact window record by record."""
    start = after.astimezone(UTC).date() if after is not None else None
    end = before.astimezone(UTC).date() if before is not None else None
    return start, end


class RezenClient(ApiClient):
    """One reZEN API key: one agent's view (the key's owner) of their transactions, listings and network."""

    integration = "rezen"

    def __init__(
        self,
        arrakis_url: str,
        yenta_url: str,
        api_key: str,
        yenta_id: str | None = None,
        *,
        page_size: int = PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(arrakis_url, **kwargs)
        self.page_size = page_size
        self.arrakis_url = arrakis_url.rstrip("/")
        self.yenta_url = yenta_url.rstrip("/")
        self._api_key = api_key
        self._yenta_id = yenta_id
        self._owner: dict | None = None
        self._owner_lock = threading.Lock()

    def authorize(self, headers: dict[str, str]) -> None:
        headers["X-API-KEY"] = self._api_key

    def _arrakis(self, path: str) -> str:
        return f"{self.arrakis_url}/{path}"

    def _yenta(self, path: str) -> str:
        return f"{self.yenta_url}/{path}"

    # -- the key's owner ---------------------------------------------------------------------------------

    def owner(self) -> dict:
        """The key owner's agent record (yenta agents/me), read once per client: a key belongs to one agent, and
        most paths name that agent's yenta id. A copy, so that stamping it never touches the cached one."""
        with self._owner_lock:
            if self._owner is None:
                body, _ = self.get_json(self._yenta("agents/me"))
                self._owner = body
                if self._yenta_id is None:
                    self._yenta_id = str(body["id"])
            return dict(self._owner)

    @property
    def yenta_id(self) -> str:
        """The owner's yenta id: given (stored with the account), or discovered once through agents/me."""
        if self._yenta_id is None:
            self.owner()
        assert self._yenta_id is not None
        return self._yenta_id

    # -- listings ----------------------------------------------------------------------------------------

    def _get_or_none(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """A body, or None when the source answers 404 (the record is gone); other errors are raised."""
        try:
            body, _ = self.get_json(url, params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return body

    def _lifecycle_group(self, entity: str, group: str) -> Listing:
        kind = "transactions" if entity == "transactions" else "listing-transactions"
        url = self._arrakis(f"transactions/participant/{self.yenta_id}/{kind}/{group}")
        return lambda resume: page_number(
            self.get_json,
            url,
            CREATED_ORDER,
            records="content",
            last_flag="last",
            page_size=self.page_size,
            resume=resume,
        )

    def _groups(self, entity: str, groups: tuple[str, ...], resume: str | None) -> Iterator[Page]:
        return chained([(group, self._lifecycle_group(entity, group)) for group in groups], resume)

    def _downline_tier(self, tier: int, updated_from: date | None) -> Listing:
        url = self._yenta(f"agents/{self.yenta_id}/down-line/{tier}")
        # Every status: the default (ACTIVE) would hide the inactive agents whose contributions still count.
        params: dict[str, Any] = {"statusIn": list(AGENT_STATUSES)}
        if updated_from is not None:
            params["updatedAtFrom"] = updated_from.isoformat()
        return lambda resume: page_number(
            self.get_json, url, params, records="agents", page_size=self.page_size, resume=resume
        )

    def _downline(self, resume: str | None, updated_from: date | None = None) -> Iterator[Page]:
        return chained([(f"tier{t}", self._downline_tier(t, updated_from)) for t in TIERS], resume)

    def _owner_page(self, resume: str | None) -> Iterator[Page]:
        if resume != DONE:
            yield Page([self.owner()], DONE)

    def _agents(self, resume: str | None, updated_from: date | None = None) -> Iterator[Page]:
        """The key owner and the whole down-line, every status: every agent this key can see."""
        listings: list[tuple[str, Listing]] = [("owner", self._owner_page)]
        listings += [(f"tier{t}", self._downline_tier(t, updated_from)) for t in TIERS]
        return chained(listings, resume)

    def _frontline_agents(self) -> list[dict]:
        body, _ = self.get_json(self._yenta(f"agents/{self.yenta_id}/front-line-agents-info"))
        agents = body.get("frontLineAgents") if isinstance(body, dict) else None
        return agents if isinstance(agents, list) else []

    def _frontline(self, resume: str | None) -> Iterator[Page]:
        if resume != DONE:
            yield Page(self._frontline_agents(), DONE)

    def _team_details(self, teams: list[dict]) -> list[dict]:
        """Each team as teams/{id} answers it: the list's record plus `agents`, its members. A team deleted
        since the list page is skipped; a record without an id is kept for the load path to refuse."""
        out = []
        for team in teams:
            team_id = team.get("id") if isinstance(team, dict) else None
            if not team_id:
                out.append(team)
                continue
            detail = self._get_or_none(self._yenta(f"teams/{team_id}"))
            if detail is not None:
                out.append(detail)
        return out

    def _teams(
        self,
        resume: str | None,
        after: datetime | None = None,
        before: datetime | None = None,
        updated_since: datetime | None = None,
    ) -> Iterator[Page]:
        start, end = _days(after, before)
        params: dict[str, Any] = {}
        if start is not None:
            params["createdAtStart"] = start.isoformat()
        if end is not None:
            params["createdAtEnd"] = end.isoformat()
        url = self._yenta("teams")
        pages = page_number(
            self.get_json, url, params, records="content", last_flag="last", page_size=self.page_size, resume=resume
        )
        floor = _millis(updated_since) if updated_since is not None else None
        for page in pages:
            wanted = [t for t in page.records if _inside(t, after, before) and _updated_at_least(t, floor)]
            yield Page(self._team_details(wanted), page.cursor)

    def _contributions_tier(self, tier: int, start: date | None, end: date | None, descending: bool = False) -> Listing:
        url = self._arrakis(f"revshares/{self.yenta_id}/contributions/{tier}")
        params: dict[str, Any] = {"sortDirection": "DESC" if descending else "ASC"}
        if start is not None:
            params["startDate"] = start.isoformat()
        if end is not None:
            params["endDate"] = end.isoformat()
        return lambda resume: page_number(
            self.get_json, url, params, records="contributions", page_size=self.page_size, resume=resume
        )

    def _contributions(
        self, resume: str | None, after: datetime | None = None, before: datetime | None = None
    ) -> Iterator[Page]:
        start, end = _days(after, before)
        listings = [(f"tier{t}", self._contributions_tier(t, start, end)) for t in TIERS]
        for page in chained(listings, resume):
            yield Page([c for c in page.records if _inside(c, after, before)], page.cursor)

    def _plans(self, agents: list[dict]) -> list[dict]:
        """The equity plans these agents name, each read once (agents/plans/{kind}/{planId})."""
        wanted: dict[str, str] = {}
        for agent in agents:
            for field, kind in PLAN_FIELDS.items():
                plan_id = agent.get(field) if isinstance(agent, dict) else None
                if isinstance(plan_id, str) and plan_id:
                    wanted.setdefault(plan_id, kind)
        plans = []
        for plan_id, kind in sorted(wanted.items()):
            plan = self._get_or_none(self._yenta(f"agents/plans/{kind}/{plan_id}"))
            if plan is not None:
                plans.append(plan)
        return plans

    def _equity(self, resume: str | None, updated_from: date | None = None) -> Iterator[Page]:
        """reZEN lists no plans: they are found through the agents that name them (the owner and the network;
        for a delta, the owner and the agents changed since). One page at the end: a rerun reads them again."""
        if resume == DONE:
            return
        agents = [record for page in self._agents(None, updated_from) for record in page.records]
        yield Page(self._plans(agents), DONE)

    def _cap_of(self, agent_id: str) -> dict | None:
        body = self._get_or_none(self._yenta(f"agents/{agent_id}/cap-info"))
        if isinstance(body, dict):
            # Cap info has no createdAt: its created time is the start of the cap year it describes.
            anniversary = body.get("anniversaryDate")
            body["_created"] = f"{anniversary}T00:00:00Z" if isinstance(anniversary, str) else None
        return body

    def _cap_info(self, resume: str | None) -> Iterator[Page]:
        """Cap info of the key owner and of the front line (one request per agent, so not the whole network)."""
        if resume == DONE:
            return
        ids = [self.yenta_id] + [a["id"] for a in self._frontline_agents() if isinstance(a, dict) and a.get("id")]
        yield Page([c for c in (self._cap_of(i) for i in ids) if c is not None], DONE)

    # -- the kit's protocol --------------------------------------------------------------------------------

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """The whole list of `entity` for this key's agent, resumable from the cursor saved with each page.

        reZEN filters by creation time only for revshare contributions (startDate/endDate) and teams
        (createdAtStart/createdAtEnd), by inclusive UTC day: for those the bounds are honoured exactly (the day
        filter, then each record's createdAt). Every other list cannot be filtered by creation, and the bounds
        are ignored: those entities are partitioned by account only and read whole.
        Transactions and listings are read group by group, the open group first (records move from open to
        closed or terminated, so one that moves during the read is seen twice rather than missed)."""
        readers: dict[str, Callable[[], Iterator[Page]]] = {
            "transactions": lambda: self._groups("transactions", GROUPS["transactions"], resume),
            "listings": lambda: self._groups("listings", GROUPS["listings"], resume),
            "agents": lambda: self._agents(resume),
            "network_downline": lambda: self._downline(resume),
            "network_frontline": lambda: self._frontline(resume),
            "teams": lambda: self._teams(resume, created_after, created_before),
            "equity": lambda: self._equity(resume),
            "cap_info": lambda: self._cap_info(resume),
            "revshare_contributions": lambda: self._contributions(resume, created_after, created_before),
        }
        yield from self._stamped(self._reader(readers, entity)())

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta) -> Iterator[Page]:
        """What changed since `since` (minus `overlap`). The cursor saved with each page is `since` until the
        last, an empty page whose cursor is the newest updatedAt seen: a run that stops part way reads again
        from the same point.

        - agents, network_downline: the down-line's `updatedAtFrom` (an inclusive UTC day, so the day of
          `since` is read again; the change guard skips what did not change), and the owner (agents/me).
        - transactions, listings: no updated-after filter exists, so the groups whose records can still change
          (OPEN; LISTING_ACTIVE) are read again whole. Records that left such a group since the last read are
          not in it any more: lifecycle.close_departures fetches those by id after this walk. Changes to records
          already closed or terminated (CLOSED -> SETTLED) come by webhook or by the next full read.
        - revshare_contributions: no updated filter; the contributions created since `since` minus
          CONTRIBUTION_LOOKBACK (a contribution only changes while PENDING, its first 30 days).
        - teams: the team list (one request per 100 teams) and, for the teams updated since, their members.
          Roster changes of teams not updated themselves come with the next full read.
        - equity: the plans named by the owner and by the agents changed since.
        - network_frontline, cap_info: small, read whole (cap info moves with the clock, not with updatedAt).
        """
        lower = since - overlap
        day = lower.astimezone(UTC).date()
        readers: dict[str, Callable[[], Iterator[Page]]] = {
            "transactions": lambda: self._groups("transactions", CHANGEABLE_GROUPS["transactions"], None),
            "listings": lambda: self._groups("listings", CHANGEABLE_GROUPS["listings"], None),
            "agents": lambda: self._agents(None, day),
            "network_downline": lambda: self._downline(None, day),
            "network_frontline": lambda: self._frontline(None),
            "teams": lambda: self._teams(None, updated_since=lower),
            "equity": lambda: self._equity(None, day),
            "cap_info": lambda: self._cap_info(None),
            "revshare_contributions": lambda: self._contributions(None, lower - CONTRIBUTION_LOOKBACK, None),
        }
        pages = self._reader(readers, entity)()
        newest = since
        for page in self._stamped(pages):
            for record in page.records:
                updated = record.get("updatedAt") if isinstance(record, dict) else None
                if isinstance(updated, int) and not isinstance(updated, bool):
                    newest = max(newest, datetime.fromtimestamp(updated / 1000, UTC))
            yield Page(page.records, fmt_time(since))
        yield Page([], fmt_time(newest))

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None:
        """The count the source reports, for reconciliation; None where it reports none (revshare contributions
        and equity plans have no totals) or cannot count the window asked for (only teams filter by creation)."""
        bounded = created_after is not None or created_before is not None
        if entity == "teams":
            params: dict[str, Any] = {"pageSize": 1}
            if created_after is not None:
                # Exact for the kit's month windows: after = the month's start minus a second.
                params["createdAtStart"] = (created_after + timedelta(seconds=1)).astimezone(UTC).date().isoformat()
            if created_before is not None:
                params["createdAtEnd"] = (created_before - timedelta(microseconds=1)).astimezone(UTC).date().isoformat()
            body, _ = self.get_json(self._yenta("teams"), params)
            return int(body["totalElements"])
        if bounded or entity in ("revshare_contributions", "equity"):
            return None
        if entity == "transactions":
            return sum(self.transaction_counts_by_group().values())
        if entity == "listings":
            return sum(self.listing_counts_by_group().values())
        if entity in ("agents", "network_downline"):
            network = 0
            for tier in TIERS:
                body, _ = self.get_json(
                    self._yenta(f"agents/{self.yenta_id}/down-line/{tier}"),
                    {"statusIn": list(AGENT_STATUSES), "pageSize": 1},
                )
                network += int(body["totalCount"])
            return network + (1 if entity == "agents" else 0)
        if entity == "network_frontline":
            return len(self._frontline_agents())
        if entity == "cap_info":
            return 1 + len(self._frontline_agents())
        raise ValueError(f"reZEN has no entity {entity!r}")

    def transaction_counts_by_group(self) -> dict[str, int]:
        """The owner's transactions per lifecycle group (OPEN, CLOSED, TERMINATED), as reZEN counts them."""
        path = f"transactions/participant/{self.yenta_id}/transactions/lifecycle-group-counts"
        body, _ = self.get_json(self._arrakis(path))
        return {str(group): int(n) for group, n in body.items()}

    def listing_counts_by_group(self) -> dict[str, int]:
        """The owner's listings per lifecycle group (LISTING_ACTIVE, CLOSED, TERMINATED)."""
        path = f"transactions/participant/{self.yenta_id}/listing-transactions/lifecycle-group-counts"
        body, _ = self.get_json(self._arrakis(path))
        return {str(group): int(n) for group, n in body.items()}

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]:
        """Records by id (webhooks, `dlq retry`, records that left an open group); an id the source answers 404
        for is simply absent, which the caller takes as gone. One request per id: reZEN has no batch read."""
        if entity == "revshare_contributions":
            return [stamp(r) for r in self._find_contributions(ids)]
        out: list[dict] = []
        for record_id in dict.fromkeys(ids):
            record = self._fetch_one(entity, record_id)
            if isinstance(record, dict):
                out.append(stamp(record))
        return out

    def _fetch_one(self, entity: str, record_id: str) -> dict | None:
        if entity in ("transactions", "listings"):
            record = self._get_or_none(self._arrakis(f"transactions/{record_id}"))
            # One endpoint serves both: a transaction asked for as a listing (or the reverse) is not this entity's.
            is_listing = isinstance(record, dict) and record.get("listing") is True
            return record if record is not None and is_listing == (entity == "listings") else None
        if entity in ("agents", "network_downline", "network_frontline"):
            record = self._get_or_none(self._yenta(f"agents/{record_id}"))
            if not isinstance(record, dict):
                return None
            if entity != "agents" and record.get("id") == self.yenta_id:
                return None  # the owner heads the network and is no part of their own down-line
            if entity == "network_frontline" and record.get("tier") != 1:
                return None
            return record
        if entity == "teams":
            return self._get_or_none(self._yenta(f"teams/{record_id}"))
        if entity == "equity":
            for kind in PLAN_FIELDS.values():
                plan = self._get_or_none(self._yenta(f"agents/plans/{kind}/{record_id}"))
                if plan is not None:
                    return plan
            return None
        if entity == "cap_info":
            return self._cap_of(record_id)
        raise ValueError(f"reZEN has no entity {entity!r}")

    def _find_contributions(self, ids: list[str]) -> list[dict]:
        """reZEN reads contributions only as lists per tier: walk them newest first (a webhook names a recent
        one) and stop once every id is found; ids still missing after a whole walk are gone."""
        missing = set(ids)
        found: list[dict] = []
        for tier in TIERS:
            for page in self._contributions_tier(tier, None, None, descending=True)(None):
                for record in page.records:
                    if isinstance(record, dict) and record.get("id") in missing:
                        missing.discard(record["id"])
                        found.append(record)
                if not missing:
                    return found
        return found

    # -- plumbing ------------------------------------------------------------------------------------------

    @staticmethod
    def _reader(readers: dict[str, Callable[[], Iterator[Page]]], entity: str) -> Callable[[], Iterator[Page]]:
        try:
            return readers[entity]
        except KeyError:
            raise ValueError(f"reZEN has no entity {entity!r}; known: {', '.join(readers)}") from None

    @staticmethod
    def _stamped(pages: Iterator[Page]) -> Iterator[Page]:
        for page in pages:
            yield Page([stamp(r) for r in page.records], page.cursor)
