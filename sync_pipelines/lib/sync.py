"""Drive a stream of pages into the load path: fetch ahead on a thread, batch, commit with the cursor.

A source's client yields Page objects; each carries the cursor value that is safe to save once this page
and every page before it are committed. The queue between fetcher and loader is bounded, so memory stays
flat whatever the volume, and Postgres loads one batch while the next pages are being fetched.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg

from sync_pipelines.lib.http import ApiClient
from sync_pipelines.lib.load import BatchCounts, EntitySpec, LoadContext, load_batch


@dataclass
class Page:
    records: list[dict]
    cursor: str | None  # safe to save once this page is committed


@dataclass
class SyncResult:
    counts: BatchCounts = field(default_factory=BatchCounts)
    batch_ids: list = field(default_factory=list)
    pages: int = 0
    duration_seconds: float = 0.0
    last_cursor: str | None = None


_DONE = object()


def _prefetch(pages: Iterator[Page], depth: int) -> Iterator[Page]:
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            buffer.put(exc)

    thread = threading.Thread(target=produce, name="page-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(5)


def run_pages(
    conn: psycopg.Connection,
    spec: EntitySpec,
    ctx: LoadContext,
    pages: Iterator[Page],
    *,
    cursor_key: str,
    client: ApiClient | None = None,
    batch_size: int = 2000,
    prefetch: int = 8,
    on_batch: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Load every page; commit every `batch_size` records together with the latest safe cursor."""
    started = time.monotonic()
    result = SyncResult()
    pending: list[dict] = []
    pending_cursor: str | None = None
    have_pending_page = False

    def flush() -> None:
        nonlocal pending, have_pending_page
        calls = client.drain_calls() if client is not None else None
        batch_id, counts = load_batch(
            conn,
            spec,
            ctx,
            pending,
            cursor=(cursor_key, pending_cursor),
            calls=calls,
            records_synced=result.counts.fetched + len(pending),
        )
        result.batch_ids.append(batch_id)
        result.counts.add(counts)
        result.last_cursor = pending_cursor
        pending = []
        have_pending_page = False
        if on_batch is not None:
            on_batch(result)

    for page in _prefetch(pages, prefetch):
        result.pages += 1
        pending.extend(page.records)
        pending_cursor = page.cursor
        have_pending_page = True
        if len(pending) >= batch_size:
            flush()
    if have_pending_page:
        flush()
    result.duration_seconds = time.monotonic() - started
    return result
