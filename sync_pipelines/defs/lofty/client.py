"""Lofty API client: `Authorization: token <key>`, the lead list read two ways, a lead's activities, members.

Lofty's lead list has no created-after or updated-after filter. What it has is `sort` (CreateTime, UpdateTime,
LastActivity) with `desc`, `limit`/`offset` up to a result window, and `scrollId` for reading past it:

- **Deep reads** (a backfill, the full re-walk) follow `scrollId` over `sort=CreateTime&desc=true`: a keyset on the
  id, so a 100k-lead account is read whole whatever the offset limit, and leads created during the walk cannot
  shift its pages. A creation window is read by walking down from the newest lead and stopping below the window.
- **Shallow reads** (the delta) page by `offset` over `sort=LastActivity&desc=true` and stop at the first lead
  untouched since the cursor: a delta is usually one page. A delta larger than the offset window carries on by the
  scroll the last page handed out.

Tags ride on the lead records (objects with their own ids and times) and are flattened into one record per tag on
a lead. Activities (calls, texts, emails) are listed per lead (`/v2.0/leads/{id}/activities`): a backfill asks for
every lead's, a delta only for the leads whose last activity moved.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import orjson

from sync_pipelines.lib.http import ApiClient, ApiError
from sync_pipelines.lib.sync import Page

PAGE_SIZE = 100  # the lead list's maximum
ACTIVITY_PAGE = 1000  # the activities list's maximum
DONE = "done"
BASE_URL_ENV = "SYNC_LOFTY_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8900/lofty"
# The usual result window for `offset + limit`; past it (or at a 400 before it) the delta carries on by scrollId.
OFFSET_WINDOW = 10_000
# A delta re-reads this many leads of the page before at each page boundary: a lead trashed above the current
# offset while we page shifts the rest up by one, and without the overlap the lead at the boundary would be missed.
OVERLAP_ROWS = 5
TAG_KEY = "_key"  # the flattened tag's id: "<leadId>:<tagId>"


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def flatten_tags(leads: list[dict]) -> list[dict]:
    """One record per tag on a lead, keyed `<leadId>:<tagId>`, with its lead's id."""
    out = []
    for lead in leads:
        lead_id = lead.get("leadId") if isinstance(lead, dict) else None
        tags = lead.get("tags") if isinstance(lead, dict) else None
        if lead_id is None or not isinstance(tags, list):
            continue
        for tag in tags:
            if isinstance(tag, dict):
                out.append({**tag, TAG_KEY: f"{lead_id}:{tag.get('tagId')}", "leadId": lead_id})
    return out


class LoftyClient(ApiClient):
    integration = "lofty"

    def __init__(self, base_url: str, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._auth = f"token {api_key}"

    def authorize(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._auth

    # -- the lead list -------------------------------------------------------------------------

    def _scroll(self, path: str, records: str, params: dict[str, Any], resume: str | None) -> Iterator[Page]:
        """Every record of a list by `scrollId`; the cursor saved with a page is the scroll that continues after it.
        A scroll the source no longer honours (a 400 on resume) restarts the walk: loads are idempotent."""
        if resume == DONE:
            return
        state = orjson.loads(resume) if resume else None
        scroll = state.get("scroll") if isinstance(state, dict) else None
        while True:
            query = {**params, "limit": PAGE_SIZE, **({"scrollId": scroll} if scroll else {})}
            try:
                body, _ = self.get_json(path, query)
            except ApiError as exc:
                if scroll and exc.status == 400:
                    scroll = None
                    continue
                raise
            page = body.get(records) or []
            scroll = (body.get("get_metadata") or {}).get("scrollId")
            ended = not scroll or len(page) < PAGE_SIZE
            yield Page(page, DONE if ended else orjson.dumps({"scroll": scroll}).decode())
            if ended:
                return

    def _leads_created(self, after: datetime | None, before: datetime | None, resume: str | None) -> Iterator[Page]:
        """Leads created in (after, before), newest first, by scroll: the walk stops at the first page that reaches
        below `after`. A lead whose createTime cannot be read is kept (the load path sends it to the DLQ)."""
        params = {"sort": "CreateTime", "desc": "true"}
        for page in self._scroll("v1.0/leads", "leads", params, resume):
            kept, below = [], False
            for lead in page.records:
                created = parse_time(lead.get("createTime")) if isinstance(lead, dict) else None
                if created is None:
                    kept.append(lead)
                elif after is not None and created <= after:
                    below = True
                elif before is None or created < before:
                    kept.append(lead)
            yield Page(kept, DONE if below else page.cursor)
            if below:
                return

    def _leads_changed(self, since: datetime, overlap: timedelta) -> Iterator[Page]:
        """Leads whose last activity is after `since` (minus `overlap`), newest first, by offset; past the offset
        window by the scroll the last page handed out. Every page but the last saves `since` as the cursor (a run
        that stops restarts from the same point); the last saves the newest time it saw."""
        lower = since - overlap
        newest = since
        offset, scroll, handed = 0, None, None
        while True:
            if scroll:
                body, _ = self.get_json("v1.0/leads", {"limit": PAGE_SIZE, "scrollId": scroll})
            else:
                try:
                    body, _ = self.get_json(
                        "v1.0/leads", {"sort": "LastActivity", "desc": "true", "limit": PAGE_SIZE, "offset": offset}
                    )
                except ApiError as exc:
                    # An account's window may be smaller than the published one: carry on by the last scroll.
                    if exc.status != 400 or not handed:
                        raise
                    scroll = handed
                    continue
            page = body.get("leads") or []
            handed = (body.get("get_metadata") or {}).get("scrollId")
            kept, reached = [], False
            for lead in page:
                updated = parse_time(lead.get("updateTime")) if isinstance(lead, dict) else None
                if updated is not None and updated < lower:
                    reached = True
                    break
                kept.append(lead)
                if updated is not None and updated > newest:
                    newest = updated
            ended = reached or len(page) < PAGE_SIZE
            yield Page(kept, fmt_time(newest) if ended else fmt_time(since))
            if ended:
                return
            if offset + len(page) - OVERLAP_ROWS + PAGE_SIZE <= OFFSET_WINDOW and not scroll:
                offset += len(page) - OVERLAP_ROWS
            else:
                scroll = handed
                if not scroll:
                    return

    # -- activities ----------------------------------------------------------------------------

    def activities_of(self, lead_id: object) -> list[dict]:
        """Every call, text and email of a lead, by `currentId`; a lead trashed meanwhile has none."""
        out: list[dict] = []
        current = 0
        while True:
            try:
                body, _ = self.get_json(
                    f"v2.0/leads/{lead_id}/activities", {"limit": ACTIVITY_PAGE, "currentId": current}
                )
            except ApiError as exc:
                if exc.status == 404:
                    return out
                raise
            page = body.get("activities") or []
            out.extend(page)
            ids = [a.get("id") for a in page if isinstance(a, dict) and isinstance(a.get("id"), int)]
            if len(page) < ACTIVITY_PAGE or not ids:
                return out
            current = max(ids)

    def _activities(self, pages: Iterator[Page]) -> Iterator[Page]:
        """Each page of leads becomes the page of their activities, with the lead page's cursor: a run that stops
        resumes at the next page of leads."""
        for page in pages:
            records: list[dict] = []
            for lead in page.records:
                lead_id = lead.get("leadId") if isinstance(lead, dict) else None
                if isinstance(lead_id, int):
                    records.extend(self.activities_of(lead_id))
            yield Page(records, page.cursor)

    # -- what the kit asks -----------------------------------------------------------------------

    def window_pages(
        self, entity: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        if entity == "members":
            return self._scroll("v1.0/members", "members", {}, resume)
        if entity == "leads":
            return self._leads_created(created_after, created_before, resume)
        if entity == "tags":
            leads = self._leads_created(created_after, created_before, resume)
            return (Page(flatten_tags(p.records), p.cursor) for p in leads)
        if entity == "activities":
            return self._activities(self._leads_created(created_after, created_before, resume))
        raise KeyError(f"lofty has no entity {entity!r}")

    def updated_pages(self, entity: str, since: datetime, overlap: timedelta = timedelta(seconds=5)) -> Iterator[Page]:
        if entity == "members":
            # A short list with no time to sort by: read again whole, the change guard skips what did not change.
            return (Page(p.records, fmt_time(since)) for p in self._scroll("v1.0/members", "members", {}, None))
        if entity == "leads":
            return self._leads_changed(since, overlap)
        if entity == "tags":
            return (Page(flatten_tags(p.records), p.cursor) for p in self._leads_changed(since, overlap))
        if entity == "activities":
            return self._activities(self._leads_changed(since, overlap))
        raise KeyError(f"lofty has no entity {entity!r}")

    def total(self, entity: str, created_after: datetime | None, created_before: datetime | None) -> int | None:
        """The list's own total where one request gives it: members, and leads read whole. A month of leads (no
        filter) or the tags and activities of every lead would cost a walk, so they report none."""
        if entity not in ("members", "leads") or created_after is not None or created_before is not None:
            return None
        body, _ = self.get_json(f"v1.0/{entity}", {"limit": 1})
        total = (body.get("get_metadata") or {}).get("total")
        return int(total) if isinstance(total, int) else None

    def fetch_ids(self, entity: str, ids: list[str]) -> list[dict]:
        """Records by id: leads one by one (a trashed lead answers 404 and is absent); tags and activities by their
        lead (a webhook names the lead; a tag's key starts with it). Members are read whole: a short list."""
        if entity == "members":
            wanted = set(ids)
            pages = self._scroll("v1.0/members", "members", {}, None)
            return [m for p in pages for m in p.records if str(m.get("memberUserId")) in wanted]
        lead_ids = sorted({str(i).split(":", 1)[0] for i in ids}, key=lambda i: (len(i), i))
        leads = [lead for lead in (self._lead(i) for i in lead_ids) if lead is not None]
        if entity == "leads":
            return leads
        if entity == "tags":
            wanted_tags = {i for i in ids if ":" in str(i)}
            tags = flatten_tags(leads)
            return [t for t in tags if t[TAG_KEY] in wanted_tags] if wanted_tags else tags
        if entity == "activities":
            return [a for lead in leads for a in self.activities_of(lead.get("leadId"))]
        raise KeyError(f"lofty has no entity {entity!r}")

    def _lead(self, lead_id: str) -> dict | None:
        try:
            body, _ = self.get_json(f"v1.0/leads/{lead_id}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        lead = body.get("lead") if isinstance(body, dict) else None
        return lead if isinstance(lead, dict) else None
