"""Outbound webhooks: each source's payloads, signed its way, delivered with its redelivery policy.

Deliveries run on a few background threads (`delivery_threads`, default 4), as a source's webhook sender posts
several at once: a burst of changes reaches the receiver as fast as it answers, not one request after another, and
two events due at nearly the same moment may arrive in either order (as the real APIs warn). Redelivery delays are
the source's real ones divided by `speed`, so a test can watch FUB's +1/+5/+5/+10/+30-minute schedule play out in
well under a second.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

log = logging.getLogger(__name__)

Signer = Callable[[bytes], dict[str, str]]


@dataclass(order=True)
class Delivery:
    due: float
    sequence: int
    source: str = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    sign: Signer = field(compare=False)
    retry_delays: tuple[float, ...] = field(compare=False)
    attempt: int = field(default=0, compare=False)
    event_id: str = field(default="", compare=False)


@dataclass
class DeliveryRecord:
    source: str
    event_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    at: float


class WebhookEmitter:
    def __init__(self, speed: float = 1.0, timeout: float = 10.0, delivery_threads: int = 4) -> None:
        self.speed = speed
        self.timeout = timeout
        self.log: list[DeliveryRecord] = []
        self._queue: list[Delivery] = []
        self._sequence = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._in_flight = 0
        self._local = threading.local()
        self._threads = [
            threading.Thread(target=self._run, name=f"sandbox-webhooks-{n}", daemon=True)
            for n in range(max(1, delivery_threads))
        ]
        for thread in self._threads:
            thread.start()

    def send(
        self,
        source: str,
        url: str,
        body: bytes,
        sign: Signer,
        retry_delays: tuple[float, ...],
        event_id: str = "",
        delay: float = 0.0,
    ) -> None:
        with self._cond:
            self._sequence += 1
            heapq.heappush(
                self._queue,
                Delivery(
                    time.monotonic() + delay,
                    self._sequence,
                    source,
                    url,
                    body,
                    sign,
                    retry_delays,
                    event_id=event_id,
                ),
            )
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue and not self._in_flight:
                    return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._queue or self._queue[0].due > time.monotonic()):
                    wait = self._queue[0].due - time.monotonic() if self._queue else None
                    self._cond.wait(timeout=wait)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._queue)
                self._in_flight += 1
            try:
                self._deliver(delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _deliver(self, delivery: Delivery) -> None:
        # Sign at send time: a redelivery carries a fresh timestamp, as Stripe's does.
        headers = {"Content-Type": "application/json", **delivery.sign(delivery.body)}
        status: int | None = None
        error: str | None = None
        try:
            response = self._session().post(delivery.url, data=delivery.body, headers=headers, timeout=self.timeout)
            status = response.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        self.log.append(
            DeliveryRecord(
                delivery.source, delivery.event_id, delivery.url, delivery.attempt, status, error, time.time()
            )
        )
        if status is not None and 200 <= status < 300:
            return
        if status in (406, 410):
            return  # the receiver asked us to stop (FUB deletes the subscription on these)
        if delivery.attempt < len(delivery.retry_delays):
            retry = Delivery(
                time.monotonic() + delivery.retry_delays[delivery.attempt] / max(self.speed, 1e-9),
                0,
                delivery.source,
                delivery.url,
                delivery.body,
                delivery.sign,
                delivery.retry_delays,
                delivery.attempt + 1,
                delivery.event_id,
            )
            with self._cond:
                self._sequence += 1
                retry.sequence = self._sequence
                heapq.heappush(self._queue, retry)
                self._cond.notify()
        else:
            log.warning(
                "webhook %s to %s given up after %d attempts",
                delivery.event_id,
                delivery.url,
                delivery.attempt + 1,
            )
