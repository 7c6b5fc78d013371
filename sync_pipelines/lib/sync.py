"""Drive a stream of pages into the load path: fetch ahead on a thread, batch, commit with the cursor.

A source's client yields Page objects; each carries the cursor value that is safe to save once this page
and every page before it are committed. The queue between fetcher and loader is bounded, so memory stays
flat whatever the volume, and Postgres loads one batch while the next pages are being fetched.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
    prefetch: int = 64,
    on_batch: Callable[[SyncResult], None] | None = None,
    second: psycopg.Connection | None = None,
    records_before: int = 0,
) -> SyncResult:
    """Load every page; commit every `batch_size` records together with the latest safe cursor.

    With a `second` connection, batches alternate between the two: batch k+1 is copied into staging (and, on
    the load path's temp-table path, normalised and validated) while batch k is upserted, and it touches core
    only once k has committed.
    Each batch stays one transaction and they commit in order, so the cursor never passes a batch that is
    not committed; Postgres works on two cores where the load would otherwise use one.
    `records_before` is what the cursor already covered (a resumed pass): the cursor's records_synced counts on
    from there, so it is the whole pass's total, not the last attempt's.
    """
    started = time.monotonic()
    result = SyncResult()
    pending: list[dict] = []
    pending_cursor: str | None = None
    have_pending_page = False
    connections = [conn] if second is None else [conn, second]
    in_flight: deque[tuple[Future, str | None]] = deque()
    submitted = records_submitted = 0

    def collect() -> None:
        future, cursor = in_flight.popleft()
        batch_id, counts = future.result()
        result.batch_ids.append(batch_id)
        result.counts.add(counts)
        result.last_cursor = cursor
        if on_batch is not None:
            on_batch(result)

    def flush(lanes: ThreadPoolExecutor) -> None:
        nonlocal pending, have_pending_page, submitted, records_submitted
        if len(in_flight) == len(connections):
            collect()  # frees the connection this batch is about to use
        calls = client.drain_calls() if client is not None else None
        previous = in_flight[-1][0] if in_flight else None

        def after_previous() -> None:
            if previous is not None:
                previous.result()  # raises if it failed: this batch then rolls back too

        future = lanes.submit(
            load_batch,
            connections[submitted % len(connections)],
            spec,
            ctx,
            pending,
            cursor=(cursor_key, pending_cursor),
            calls=calls,
            records_synced=records_before + records_submitted + len(pending),
            before_apply=after_previous,
        )
        records_submitted += len(pending)
        submitted += 1
        in_flight.append((future, pending_cursor))
        pending = []
        have_pending_page = False

    with ThreadPoolExecutor(max_workers=len(connections), thread_name_prefix="load-lane") as lanes:
        try:
            for page in _prefetch(pages, prefetch):
                result.pages += 1
                pending.extend(page.records)
                pending_cursor = page.cursor
                have_pending_page = True
                if len(pending) >= batch_size:
                    flush(lanes)
            if have_pending_page:
                flush(lanes)
            while in_flight:
                collect()
        finally:
            # On an error, the batches still in flight finish (or roll back) before the connections are reused.
            wait([future for future, _ in in_flight])
    result.duration_seconds = time.monotonic() - started
    return result
