"""Follow Up Boss API client: auth, and the two ways we page (creation windows and updated-since)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta

from sync_pipelines.lib.http import ApiClient
from sync_pipelines.lib.sync import Page

PAGE_SIZE = 100
DONE = "done"
# The X-System name we are registered under, and the X-System-Key the local sandbox accepts: the offline
# defaults of the resource (SYNC_FUB_SYSTEM, SYNC_FUB_SYSTEM_KEY). They live here, not in the sandbox, because
# production code never imports the sandbox; the sandbox reads them from here.
DEFAULT_SYSTEM = "SyncPipelines"
SANDBOX_SYSTEM_KEY = "fub_sandbox_system_key"


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def fmt_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _newest(records: list[dict], newest: datetime) -> datetime:
    for record in records:
        updated = record.get("updated")
        if isinstance(updated, str):
            try:
                newest = max(newest, parse_time(updated))
            except ValueError:
                pass  # a malformed record: the load path sends it to the DLQ
    return newest


def _last_updated(records: list[dict]) -> datetime | None:
    """The last readable `updated` of a page in `updated` order (a malformed record has none)."""
    for record in reversed(records):
        updated = record.get("updated")
        if isinstance(updated, str):
            try:
                return parse_time(updated)
            except ValueError:
                continue
    return None


class FubClient(ApiClient):
    integration = "fub"

    def __init__(self, base_url: str, api_key: str, system: str, system_key: str, **kwargs: object) -> None:
        super().__init__(base_url, **kwargs)  # type: ignore[arg-type]
        self._auth = "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()
        self._system = system
        self._system_key = system_key

    def authorize(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._auth
        headers["X-System"] = self._system
        headers["X-System-Key"] = self._system_key

    def window_pages(
        self, collection: str, created_after: datetime | None, created_before: datetime | None, resume: str | None
    ) -> Iterator[Page]:
        """Every record created in (after, before), by FUB's `next` cursor (a keyset on id), so records
        inserted or changed while we page can neither be skipped nor shift the pages. The cursor saved
        with each page is the nextLink to continue from."""
        if resume == DONE:
            return
        if resume:
            body, _ = self.get_json(resume)
        else:
            params: dict[str, object] = {"limit": PAGE_SIZE, "sort": "id"}
            if created_after is not None:
                params["createdAfter"] = fmt_time(created_after)
            if created_before is not None:
                params["createdBefore"] = fmt_time(created_before)
            body, _ = self.get_json(f"v1/{collection}", params)
        while True:
            next_link = body["_metadata"].get("nextLink")
            yield Page(body[collection], next_link or DONE)
            if not next_link:
                return
            body, _ = self.get_json(next_link)

    def updated_pages(
        self, collection: str, since: datetime, overlap: timedelta = timedelta(seconds=5)
    ) -> Iterator[Page]:
        """Everything updated after `since` (minus an overlap), as a keyset on `updated`.

        Each request restarts at the last timestamp seen minus one second (FUB's filter is strict and its
        clock has second resolution), so records that share a timestamp across a page boundary are read
        again rather than skipped, and a record updated while we page moves to the end where we reach it.
        A run of more than a page of equal timestamps is walked by a keyset on id within that second, then
        the keyset on `updated` carries on after it: no request ever has an offset, which FUB refuses past an
        unpublished depth. The cursor saved with a page is the lower bound we would restart from.
        """
        lower = since - overlap
        newest = since
        while True:
            body, _ = self.get_json(
                f"v1/{collection}", {"updatedAfter": fmt_time(lower), "sort": "updated", "limit": PAGE_SIZE}
            )
            records = body[collection]
            if len(records) < PAGE_SIZE:
                newest = _newest(records, newest)
                yield Page(records, fmt_time(newest))
                return
            last = _last_updated(records)
            if last is not None and last - timedelta(seconds=1) > lower:
                lower = last - timedelta(seconds=1)
                newest = _newest(records, newest)
                yield Page(records, fmt_time(lower))
                continue
            # A full page updated after `lower` (strictly, to the second) and not after lower + 1 s: one second
            # holds more ties than a page. Walk that second whole by id (this page included, so it is not
            # loaded twice), then go on strictly after it. Should the page's last timestamp be unreadable, the
            # same two steps still cover everything after `lower`, and `lower` still moves on by a second.
            tied = lower.replace(microsecond=0) + timedelta(seconds=1)
            for page in self._one_second_by_id(collection, tied):
                newest = _newest(page, newest)
                yield Page(page, fmt_time(lower))
            lower = tied

    def _one_second_by_id(self, collection: str, second: datetime) -> Iterator[list[dict]]:
        """Every record whose `updated` is `second`, by FUB's `next` cursor (a keyset on id that carries the
        filters): however many share that second, no page is deeper than the first."""
        params = {
            "updatedAfter": fmt_time(second - timedelta(seconds=1)),
            "updatedBefore": fmt_time(second + timedelta(seconds=1)),
            "sort": "id",
            "limit": PAGE_SIZE,
        }
        body, _ = self.get_json(f"v1/{collection}", params)
        while True:
            yield body[collection]
            next_link = body["_metadata"].get("nextLink")
            if not next_link:
                return
            body, _ = self.get_json(next_link)

    def total(self, collection: str, created_after: datetime | None, created_before: datetime | None) -> int:
        params: dict[str, object] = {"limit": 1}
        if created_after is not None:
            params["createdAfter"] = fmt_time(created_after)
        if created_before is not None:
            params["createdBefore"] = fmt_time(created_before)
        body, _ = self.get_json(f"v1/{collection}", params)
        return int(body["_metadata"]["total"])

    def fetch_ids(self, collection: str, ids: list[str]) -> list[dict]:
        """Records by id (what a webhook's uri names); ids the source no longer has are simply absent."""
        out: list[dict] = []
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = ids[start : start + PAGE_SIZE]
            body, _ = self.get_json(f"v1/{collection}", {"id": ",".join(chunk), "limit": PAGE_SIZE})
            out.extend(body[collection])
        return out
