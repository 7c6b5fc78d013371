"""Faults a test or an operator switches on per source, at run time (admin API or CLI)."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sync_pipelines.sandbox.gen import Draw


@dataclass
class Faults:
    rate_limit_storm: int = 0  # the next N requests answer 429 with Retry-After
    retry_after_seconds: int = 1
    server_errors: int = 0  # the next N requests answer 500, 502, 503 in turn
    server_error_rate: float = 0.0  # fraction of requests answering 503, deterministic per request number
    slow_requests: int = 0  # the next N requests wait slow_seconds before answering
    slow_seconds: float = 0.0
    truncated_pages: int = 0  # the next N list responses are cut off mid-JSON
    malformed_rate: float = 0.0  # fraction of records served malformed (the same records every time)
    insert_between_pages: int = 0  # records created at the source after each list page is served
    change_between_pages: int = 0  # already-served records changed after each list page is served
    timestamp_ties: int = 1  # runs of N consecutive records share one created/updated timestamp
    child_before_parent: bool = False  # new children point at a parent created only at the next step
    webhook_duplicates: int = 0  # every webhook is delivered N extra times
    webhook_out_of_order: bool = False  # webhooks of one step are delivered newest first
    expired_credentials: bool = False  # every issued token or session is already expired
    session_max_requests: int = 0  # every issued token or session expires after answering N requests (0: off)
    control_bytes_rate: float = 0.0  # fraction of bulk-feed records served with raw control bytes in their JSON
    revoked_keys: list[str] = field(default_factory=list)  # keys answered with 401 (revoked)
    suspended_accounts: list[str] = field(default_factory=list)  # accounts answered with 403 (expired)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known faults: {', '.join(known)}")
            current = getattr(self, key)
            if isinstance(current, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, list):
                value = value if isinstance(value, list) else [v for v in str(value).split(",") if v]
            setattr(self, key, value)

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default_factory() if callable(f.default_factory) else f.default)  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault; True if it fired."""
        with self._lock:
            remaining = getattr(self, name)
            if remaining > 0:
                setattr(self, name, remaining - 1)
                return True
            return False

    def next_request_number(self) -> int:
        with self._lock:
            self._requests += 1
            return self._requests

    def random_server_error(self, request_number: int, stream: int) -> bool:
        return self.server_error_rate > 0 and Draw(stream, request_number).chance(self.server_error_rate)

    def is_malformed(self, stream: int, record_id: int) -> bool:
        return self.malformed_rate > 0 and Draw(stream ^ 0x5EED, record_id).chance(self.malformed_rate)

    def has_control_bytes(self, stream: int, record_id: int) -> bool:
        return self.control_bytes_rate > 0 and Draw(stream ^ 0xB17E, record_id).chance(self.control_bytes_rate)
