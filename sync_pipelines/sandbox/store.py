"""A table of records that exists mostly implicitly.

Base records (index 0..count-1) are built on demand from the seed; creation time is monotonic in the index
and `updated == created` until the clock changes a record. Records created, changed or deleted by the clock
live in a small overlay. Filters on created/updated and paging by offset, keyset or cursor are computed with
arithmetic and bisection, so a ten-million-record table costs no memory and any page costs the same.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sync_pipelines.sandbox.gen import HISTORY_SECONDS, HISTORY_START, MASK64, Draw, history_time, mix64

RecordBuilder = Callable[[int, Draw, datetime], dict]


@dataclass(frozen=True)
class Window:
    """Half-open bounds on creation and update time; None means unbounded. `after` is strict (>)."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    min_id: int | None = None  # inclusive
    max_id: int | None = None  # inclusive

    def admits(self, created: datetime, updated: datetime, record_id: int) -> bool:
        if self.created_after is not None and not created > self.created_after:
            return False
        if self.created_before is not None and not created < self.created_before:
            return False
        if self.updated_after is not None and not updated > self.updated_after:
            return False
        if self.updated_before is not None and not updated < self.updated_before:
            return False
        if self.min_id is not None and record_id < self.min_id:
            return False
        return not (self.max_id is not None and record_id > self.max_id)


class VirtualTable:
    def __init__(
        self,
        name: str,
        count: int,
        stream: int,
        build: RecordBuilder,
        *,
        id_base: int = 1,
        ties: int = 1,
        dumps: Callable[[object], bytes] | None = None,
    ) -> None:
        self.name = name
        self.dumps = dumps
        self.count = count
        self.stream = stream
        self.build = build
        self.id_base = id_base
        self.ties = ties
        self.next_id = id_base + count
        self._lock = threading.RLock()
        self._overlay: dict[int, dict] = {}
        self._meta: dict[int, tuple[datetime, datetime]] = {}
        self._overlay_ids: list[int] = []  # sorted
        self._holes: list[int] = []  # sorted base ids that are changed or deleted
        self._deleted: set[int] = set()

    # -- single records ------------------------------------------------------------------------

    def created_at(self, index: int) -> datetime:
        return history_time(index, self.count, self.ties)

    def _base(self, record_id: int) -> dict:
        index = record_id - self.id_base
        return self.build(index, Draw(self.stream, index), self.created_at(index))

    def is_base(self, record_id: int) -> bool:
        return self.id_base <= record_id < self.id_base + self.count

    def get(self, record_id: int) -> dict | None:
        with self._lock:
            if record_id in self._deleted:
                return None
            if record_id in self._overlay:
                return self._overlay[record_id]
        return self._base(record_id) if self.is_base(record_id) else None

    def get_many(self, record_ids: list[int]) -> list[dict]:
        with self._lock:
            found = [(rid, self._overlay.get(rid)) for rid in record_ids if rid not in self._deleted]
        return [
            record if record is not None else self._base(rid)
            for rid, record in found
            if record is not None or self.is_base(rid)
        ]

    def get_many_json(self, record_ids: list[int]) -> bytes:
        """The records as the comma-separated body of a JSON array, in order: what a list page sends."""
        dumps = self.dumps
        if dumps is None:
            raise ValueError(f"table {self.name} was built without a JSON encoder")
        with self._lock:
            found = [(rid, self._overlay.get(rid)) for rid in record_ids if rid not in self._deleted]
        writer = getattr(self.build, "write_json", None)
        parts: list[bytes] = []
        id_base, count, stream, ties = self.id_base, self.count, self.stream, self.ties
        # The hot loop of every list page: the hash and the creation time are inlined (see gen.py).
        span, start, mix, multiplier, mask = HISTORY_SECONDS, HISTORY_START, mix64, 0xD1B54A32D192ED03, MASK64
        for rid, record in found:
            if parts:
                parts.append(b",")
            if record is not None:
                parts.append(dumps(record))
                continue
            index = rid - id_base
            if not 0 <= index < count:
                if parts:
                    parts.pop()
                continue
            if ties > 1:
                created = history_time(index, count, ties)
            else:
                created = start + timedelta(seconds=(index * span) // count)
            if writer is not None:
                writer(parts, index, mix(stream ^ (index * multiplier & mask)), created)
            else:
                parts.append(dumps(self.build(index, Draw(stream, index), created)))
        return b"".join(parts)

    def times(self, record_id: int) -> tuple[datetime, datetime] | None:
        with self._lock:
            if record_id in self._meta:
                return self._meta[record_id]
        if self.is_base(record_id):
            created = self.created_at(record_id - self.id_base)
            return created, created
        return None

    def exists(self, record_id: int) -> bool:
        with self._lock:
            if record_id in self._deleted:
                return False
            return record_id in self._overlay or self.is_base(record_id)

    # -- mutations (the clock) -----------------------------------------------------------------

    def _hole(self, record_id: int) -> None:
        if self.is_base(record_id):
            position = bisect.bisect_left(self._holes, record_id)
            if position == len(self._holes) or self._holes[position] != record_id:
                self._holes.insert(position, record_id)

    def put(self, record_id: int, record: dict, created: datetime, updated: datetime) -> None:
        with self._lock:
            self._hole(record_id)
            if record_id not in self._overlay:
                bisect.insort(self._overlay_ids, record_id)
            self._overlay[record_id] = record
            self._meta[record_id] = (created, updated)
            self._deleted.discard(record_id)

    def allocate_id(self) -> int:
        with self._lock:
            record_id = self.next_id
            self.next_id += 1
            return record_id

    def delete(self, record_id: int) -> bool:
        with self._lock:
            if not self.exists(record_id):
                return False
            self._hole(record_id)
            if record_id in self._overlay:
                del self._overlay[record_id]
                del self._meta[record_id]
                self._overlay_ids.remove(record_id)
            self._deleted.add(record_id)
            return True

    # -- queries -------------------------------------------------------------------------------

    def _first_index_where(self, predicate: Callable[[int], bool]) -> int:
        """Smallest base index for which a monotone predicate holds (count if none)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if predicate(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _base_range(self, window: Window) -> tuple[int, int]:
        """Base ids [lo, hi) whose unchanged record the window admits (updated == created for them)."""
        lo, hi = 0, self.count
        for after in (window.created_after, window.updated_after):
            if after is not None:
                lo = max(lo, self._first_index_where(lambda i, a=after: self.created_at(i) > a))
        for before in (window.created_before, window.updated_before):
            if before is not None:
                hi = min(hi, self._first_index_where(lambda i, b=before: self.created_at(i) >= b))
        lo_id, hi_id = self.id_base + lo, self.id_base + max(lo, hi)
        if window.min_id is not None:
            lo_id = max(lo_id, window.min_id)
        if window.max_id is not None:
            hi_id = min(hi_id, window.max_id + 1)
        return lo_id, max(lo_id, hi_id)

    def query(self, window: Window = Window(), order: str = "id") -> View:
        """Records the window admits, in `order` ('id' (== creation order) or 'updated'), ascending."""
        with self._lock:
            lo, hi = self._base_range(window)
            holes = self._holes[bisect.bisect_left(self._holes, lo) : bisect.bisect_left(self._holes, hi)]
            overlay = [rid for rid in self._overlay_ids if window.admits(*self._meta[rid], rid)]
            if order == "updated":
                overlay.sort(key=lambda rid: (self._meta[rid][1], rid))
            return View(self, lo, hi, holes, overlay, merged=order != "updated")


class View:
    """An ordered, immutable snapshot of a query: len(), pages by offset, and rank of an id."""

    def __init__(self, table: VirtualTable, lo: int, hi: int, holes: list[int], overlay: list[int], merged: bool):
        self.table = table
        self.lo, self.hi = lo, hi
        self.holes = holes
        self.overlay = overlay
        self.merged = merged  # True: overlay ids interleave with base ids by id; False: overlay follows base
        self.base_len = (hi - lo) - len(holes)

    def __len__(self) -> int:
        return self.base_len + len(self.overlay)

    def _base_below(self, x: int) -> int:
        clamped = min(max(x, self.lo), self.hi)
        return (clamped - self.lo) - bisect.bisect_left(self.holes, clamped)

    def _rank_below(self, x: int) -> int:
        """How many members of the view have an id < x (merged order only)."""
        return self._base_below(x) + bisect.bisect_left(self.overlay, x)

    def _base_from(self, start: int) -> Iterator[int]:
        hole = bisect.bisect_left(self.holes, start)
        current = max(start, self.lo)
        while current < self.hi:
            if hole < len(self.holes) and self.holes[hole] == current:
                hole += 1
            else:
                yield current
            current += 1

    def _kth_base(self, k: int) -> int:
        lo, hi = self.lo, self.hi
        while lo < hi:  # smallest x with base_below(x + 1) > k
            mid = (lo + hi) // 2
            if self._base_below(mid + 1) > k:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def ids(self, offset: int, limit: int) -> list[int]:
        """Ids at ascending ranks [offset, offset + limit)."""
        if offset >= len(self) or limit <= 0:
            return []
        if not self.holes and not self.overlay:  # an untouched range: ids are plain arithmetic
            return list(range(self.lo + offset, min(self.hi, self.lo + offset + limit)))
        if not self.merged:
            out: list[int] = []
            if offset < self.base_len:
                start = self._kth_base(offset)
                for rid in self._base_from(start):
                    out.append(rid)
                    if len(out) == limit:
                        return out
            overlay_start = max(0, offset - self.base_len)
            out.extend(self.overlay[overlay_start : overlay_start + limit - len(out)])
            return out
        # Merged by id: find the id at rank `offset`, then merge forward.
        top = max(self.hi, (self.overlay[-1] + 1) if self.overlay else 0)
        low = min(self.lo, self.overlay[0] if self.overlay else self.lo)
        lo, hi = low, top
        while lo < hi:
            mid = (lo + hi) // 2
            if self._rank_below(mid + 1) > offset:
                hi = mid
            else:
                lo = mid + 1
        out = []
        base_iter = self._base_from(lo)
        next_base = next(base_iter, None)
        o = bisect.bisect_left(self.overlay, lo)
        while len(out) < limit and (next_base is not None or o < len(self.overlay)):
            if o < len(self.overlay) and (next_base is None or self.overlay[o] < next_base):
                out.append(self.overlay[o])
                o += 1
            else:
                out.append(next_base)  # type: ignore[arg-type]
                next_base = next(base_iter, None)
        return out

    def page_ids(self, offset: int, limit: int, descending: bool = False) -> list[int]:
        if descending:
            end = len(self) - offset
            start = max(0, end - limit)
            return list(reversed(self.ids(start, end - start))) if end > 0 else []
        return self.ids(offset, limit)

    def page(self, offset: int, limit: int, descending: bool = False) -> list[dict]:
        return self.table.get_many(self.page_ids(offset, limit, descending))

    def rank_of(self, record_id: int) -> int | None:
        """Ascending rank of an id in a merged view, or None if it is not a member."""
        if not self.merged:
            raise ValueError("rank_of needs an id-ordered view")
        rank = self._rank_below(record_id)
        if rank < len(self) and self.ids(rank, 1) == [record_id]:
            return rank
        return None
