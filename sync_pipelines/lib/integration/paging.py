"""Paginators: the ways source APIs hand out a list a page at a time, named as dlt's `rest_api` names them.

Each paginator is a generator of `Page`s over one listing (a path plus query parameters) that knows:
- where the records sit in a response (`records_at`, a dotted path: "people", "content", "data");
- how to ask for the next page, and when the list has ended;
- what to save as the cursor with each page, so that a run that stops after committing page k resumes at
  page k + 1 (`resume`). A cursor is a string, stored in bridge.sync_state by the load path.

`get` is the client's `get_json(path, params) -> (body, headers)`, which already retries, paces and logs.
A paginator never depends on a deep offset: offset paging is only used where the API offers nothing else,
and each yields the total the source reports, where it reports one, for reconciliation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from sync_pipelines.lib.sync import Page

Get = Callable[[str, Mapping[str, Any] | None], tuple[Any, Mapping[str, str]]]
DONE = "done"


def records_at(body: Any, path: str | None) -> list[dict]:
    """The records in a response body: `path` is dotted ("_embedded.items"); None means the body is the list."""
    value = body
    for part in (path or "").split("."):
        if not part:
            continue
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, list) else []


def _state(resume: str | None) -> dict[str, Any] | None:
    if resume in (None, DONE):
        return None
    return orjson.loads(resume)  # type: ignore[arg-type]


def _cursor(state: Mapping[str, Any]) -> str:
    return orjson.dumps(state).decode()


def next_link(
    get: Get, path: str, params: Mapping[str, Any], *, records: str | None, link_at: str, resume: str | None = None
) -> Iterator[Page]:
    """A response names the absolute URL of the next page (`link_at`, dotted: "_metadata.nextLink", "links.next"),
    or nothing at the end. The cursor is that URL (a keyset cursor where the source builds it so)."""
    if resume == DONE:
        return
    body, _ = get(resume, None) if resume else get(path, params)
    while True:
        link = body
        for part in link_at.split("."):
            link = link.get(part) if isinstance(link, dict) else None
        yield Page(records_at(body, records), link or DONE)
        if not link:
            return
        body, _ = get(str(link), None)


def page_number(
    get: Get,
    path: str,
    params: Mapping[str, Any],
    *,
    records: str | None,
    page_param: str = "pageNumber",
    size_param: str = "pageSize",
    page_size: int = 100,
    first_page: int = 0,
    last_flag: str | None = None,
    resume: str | None = None,
) -> Iterator[Page]:
    """Numbered pages (`first_page` = 0 for Spring's `{content, totalElements, last}`, 1 for most others). The
    list ends at the page whose `last_flag` is true, or, without one, at a short or empty page. The cursor is
    the next page's number."""
    state = _state(resume)
    if resume == DONE:
        return
    number = int(state["page"]) if state else first_page
    while True:
        body, _ = get(path, {**params, page_param: number, size_param: page_size})
        page = records_at(body, records)
        ended = bool(body.get(last_flag)) if last_flag and isinstance(body, dict) else len(page) < page_size
        yield Page(page, DONE if ended else _cursor({"page": number + 1}))
        if ended:
            return
        number += 1


def offset_total(
    get: Get,
    path: str,
    params: Mapping[str, Any],
    *,
    records: str | None,
    total_at: str,
    limit: int = 100,
    resume: str | None = None,
) -> Iterator[Page]:
    """`offset`/`limit` until the reported total is reached, for sources with no cursor at all."""
    state = _state(resume)
    if resume == DONE:
        return
    offset = int(state["offset"]) if state else 0
    while True:
        body, _ = get(path, {**params, "offset": offset, "limit": limit})
        page = records_at(body, records)
        total: Any = body
        for part in total_at.split("."):
            total = total.get(part) if isinstance(total, dict) else None
        offset += len(page)
        ended = not page or (isinstance(total, int) and offset >= total)
        yield Page(page, DONE if ended else _cursor({"offset": offset}))
        if ended:
            return


def starting_after(
    get: Get,
    path: str,
    params: Mapping[str, Any],
    *,
    records: str | None = "data",
    id_field: str = "id",
    has_more: str = "has_more",
    limit: int = 100,
    resume: str | None = None,
) -> Iterator[Page]:
    """An id cursor: `starting_after=<last id>` while `has_more` (the billing APIs' style)."""
    state = _state(resume)
    if resume == DONE:
        return
    after = state["after"] if state else None
    while True:
        query = {**params, "limit": limit, **({"starting_after": after} if after else {})}
        body, _ = get(path, query)
        page = records_at(body, records)
        more = bool(body.get(has_more)) if isinstance(body, dict) else False
        if page:
            after = page[-1].get(id_field)
        ended = not more or not page
        yield Page(page, DONE if ended else _cursor({"after": after}))
        if ended:
            return


def scroll_id(
    get: Get,
    path: str,
    params: Mapping[str, Any],
    *,
    records: str | None,
    scroll_at: str,
    scroll_param: str = "scrollId",
    limit: int = 100,
    resume: str | None = None,
) -> Iterator[Page]:
    """A server-side scroll: each response names the scroll id that continues it, until a short page."""
    state = _state(resume)
    if resume == DONE:
        return
    scroll = state["scroll"] if state else None
    while True:
        query = {**params, "limit": limit, **({scroll_param: scroll} if scroll else {})}
        body, _ = get(path, query)
        page = records_at(body, records)
        value: Any = body
        for part in scroll_at.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        scroll = value
        ended = len(page) < limit or not scroll
        yield Page(page, DONE if ended else _cursor({"scroll": scroll}))
        if ended:
            return


def chained(listings: list[tuple[str, Callable[[str | None], Iterator[Page]]]], resume: str | None) -> Iterator[Page]:
    """Several listings read as one stream (one listing per lifecycle group, or per parent): the cursor
    names the listing and that listing's own cursor, so a resumed run skips the listings already read."""
    if resume == DONE:
        return
    state = _state(resume)
    start = 0
    inner: str | None = None
    if state:
        names = [name for name, _ in listings]
        start = names.index(state["listing"]) if state["listing"] in names else 0
        inner = state.get("cursor")
    for index in range(start, len(listings)):
        name, pages = listings[index]
        last = index == len(listings) - 1
        for page in pages(inner if index == start else None):
            if page.cursor == DONE:
                following = None if last else listings[index + 1][0]
                cursor = DONE if last else _cursor({"listing": following, "cursor": None})
            else:
                cursor = _cursor({"listing": name, "cursor": page.cursor})
            yield Page(page.records, cursor)
