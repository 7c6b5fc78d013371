"""The webhook receiver: verify, dedupe, enqueue, answer. It never calls a source API.

    POST /webhooks/{integration}/{account}   account = the bridge.accounts name (or its id)
    GET  /healthz

Replies: 202 once the event is committed to bridge.webhook_events; 200 for an event id we already hold
(stored once); 401 bad or missing signature (nothing stored); 400 malformed JSON; 413 body over 1 MB (cut
off without reading it all); 404 unknown integration or account; 415 not JSON; 503 when the database is
unavailable, so the source redelivers later (FUB retries non-2xx for hours, Stripe for days). We never
answer 406 or 410: FUB deletes the subscription on those. FUB's registration needs nothing more than a
2xx to its deliveries; Stripe wants a fast 2xx and tolerates duplicates and reordering, which the queue
absorbs. Secrets and signatures never reach the logs or the stored headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import uvicorn
from sqlalchemy.engine import URL, make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sync_pipelines.lib import crypto, db, modes, webhooks

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
ACCOUNT_CACHE_SECONDS = 30.0
DEFAULT_POOL_SIZE = 8


@dataclass(frozen=True)
class Parsed:
    event_id: str
    event_type: str | None
    resource_key: str | None


@dataclass(frozen=True)
class Integration:
    name: str
    verify: Callable[[bytes, Mapping[str, str], str], bool]
    parse: Callable[[dict[str, Any], bytes], Parsed]
    # Which stored secret signs this source's webhooks, in order of preference.
    secret_keys: tuple[str, ...] = ("webhook_secret",)
    # An env var with a secret every account shares, tried after the stored ones.
    secret_env: str | None = None
    # The sandbox's demo secret, tried last and only in local mode: anyone can read it in this repository.
    default_secret: Callable[[], str | None] | None = None
    # A source that signs nothing is verified by its callback URL's query instead (Webhooks.verify_request).
    verify_request: Callable[[bytes, Mapping[str, str], Mapping[str, str], str], bool] | None = None
    # A source that posts batches: the payload -> its events, each queued on its own (Webhooks.split).
    split: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None

    def verified(self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str], secret: str) -> bool:
        if self.verify_request is not None:
            return self.verify_request(body, headers, query, secret)
        return self.verify(body, headers, secret)

    def fallback_secret(self) -> str | None:
        """The secret for an account that stored none: the shared one from the environment, else in local mode only
        the sandbox's demo secret."""
        if self.secret_env:
            shared = os.environ.get(self.secret_env, "").strip()
            if shared:
                return shared
        if self.default_secret is not None and modes.is_local():
            return self.default_secret()
        return None


def _declared() -> dict[str, Integration]:
    """The registered integrations that declare webhooks, as the receiver needs them."""
    from sync_pipelines import registry

    out: dict[str, Integration] = {}
    for declared in registry.INTEGRATIONS.values():
        hooks = declared.webhooks
        if hooks is None:
            continue
        identify = hooks.identify
        out[declared.name] = Integration(
            declared.name,
            hooks.verify,
            lambda payload, body, identify=identify: Parsed(*identify(payload, body)),
            hooks.secret_keys,
            hooks.secret_env,
            hooks.default_secret,
            verify_request=hooks.verify_request,
            split=hooks.split,
        )
    return out


# Every registered integration that declares webhooks; a source without a declaration has no receiver route.
INTEGRATIONS: dict[str, Integration] = _declared()


@dataclass(frozen=True)
class KnownAccount:
    id: uuid.UUID
    secret: str | None


class _ConnectionPool:
    """A few autocommit async connections, opened on demand and reused; a broken one is dropped."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._size = size
        self._idle: list[psycopg.AsyncConnection] = []
        self._open = 0
        self._cond: asyncio.Condition | None = None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            while not self._idle and self._open >= self._size:
                await self._cond.wait()
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._open += 1
        if conn is None:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=db.CONNECT_TIMEOUT_SECONDS
                )
            except BaseException:
                await self._release(None)
                raise
        try:
            yield conn
        except BaseException:
            await conn.close()
            await self._release(None)
            raise
        else:
            await self._release(None if conn.closed else conn)

    async def _release(self, conn: psycopg.AsyncConnection | None) -> None:
        assert self._cond is not None
        async with self._cond:
            if conn is None:
                self._open -= 1
            else:
                self._idle.append(conn)
            self._cond.notify()

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


class _GroupCommit:
    """Inserts of concurrent requests share one statement and one commit: while a batch is in flight the next
    one gathers. Each request still waits for the commit of its own row before it is answered."""

    def __init__(self, pool: _ConnectionPool, writers: int, max_batch: int = 500) -> None:
        self._pool = pool
        self._writers = writers
        self._max_batch = max_batch
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] = []
        self._active = 0

    async def insert(self, params: tuple[Any, ...]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((params, future))
        if self._active < self._writers:
            self._active += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                await self._write(batch)
        finally:
            self._active -= 1

    async def _write(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[bool]]]) -> None:
        rows = [params for params, _ in batch]
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(webhooks.INSERT_MANY_SQL, webhooks.insert_many_params(rows))
                flags = webhooks.new_flags(rows, [(r[0], r[1]) for r in await cur.fetchall()])
        except psycopg.DataError:
            if len(batch) > 1:  # one payload Postgres refuses: store the others, refuse only that one
                for item in batch:
                    await self._write([item])
                return
            _settle(batch, error=sys.exc_info()[1])
            return
        except Exception as exc:
            _settle(batch, error=exc)
            return
        for (_, future), new in zip(batch, flags, strict=True):
            if not future.done():
                future.set_result(new)


def _settle(batch: list[tuple[tuple[Any, ...], asyncio.Future[bool]]], error: BaseException | None) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error or RuntimeError("insert failed"))


class Receiver:
    """The ASGI app's state: where the queue is, which accounts exist (cached briefly), the pool."""

    def __init__(
        self, database_url: URL | str | None = None, pool_size: int = DEFAULT_POOL_SIZE, freeze_gc: bool = False
    ) -> None:
        from sync_pipelines import settings

        # In production the receiver starts only with every setting there (no demo secret to fall back on).
        settings.check("the webhook receiver")
        url = make_url(database_url) if isinstance(database_url, str) else (database_url or db.warehouse_url())
        self._freeze_gc = freeze_gc
        self._pool = _ConnectionPool(db.libpq_uri(url), pool_size)
        self._writer = _GroupCommit(self._pool, writers=max(1, pool_size // 2))
        self._accounts: dict[tuple[str, str], tuple[float, KnownAccount | None]] = {}

    async def _account(self, integration: Integration, name: str) -> KnownAccount | None:
        key = (integration.name, name)
        cached = self._accounts.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            as_id: uuid.UUID | None = uuid.UUID(name)
        except ValueError:
            as_id = None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """
                SELECT a.id, c.secret_ciphertext FROM bridge.accounts a
                LEFT JOIN bridge.credentials c ON c.account_id = a.id AND c.active AND c.kind = 'api'
                WHERE a.integration = %s AND a.active AND (a.name = %s OR a.id = %s)
                ORDER BY a.name = %s DESC LIMIT 1
                """,
                (integration.name, name, as_id, name),
            )
            row = await cur.fetchone()
        if row is None:
            return None  # not cached: an account added a moment later is found at once
        secrets: dict[str, Any] = orjson.loads(crypto.decrypt(row[1])) if row[1] is not None else {}
        secret = next((str(secrets[k]) for k in integration.secret_keys if secrets.get(k)), None)
        if secret is None:
            secret = integration.fallback_secret()
        account = KnownAccount(row[0], secret)
        self._accounts[key] = (time.monotonic() + ACCOUNT_CACHE_SECONDS, account)
        return account

    async def receive(self, request: Request) -> Response:
        integration = INTEGRATIONS.get(request.path_params["integration"])
        if integration is None:
            return _error(404, "unknown integration")
        try:
            account = await self._account(integration, request.path_params["account"])
        except (psycopg.Error, OSError) as exc:
            log.error("webhook receiver: database unavailable (%s)", type(exc).__name__)
            return _error(503, "temporarily unavailable", {"Retry-After": "5"})
        except db.ConfigError as exc:  # e.g. credentials stored under another SYNC_SECRET_KEY: fix, then redeliver
            log.error("webhook receiver: %s", exc)
            return _error(503, "temporarily unavailable", {"Retry-After": "60"})
        if account is None:
            return _error(404, "unknown account")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return _error(415, "expected Content-Type: application/json")
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > MAX_BODY_BYTES:
                    return _error(413, "body over 1 MB", close=True)
            except ValueError:
                return _error(400, "bad Content-Length")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _error(413, "body over 1 MB", close=True)
            chunks.append(chunk)
        body = b"".join(chunks)
        if account.secret is None or not integration.verified(
            body, request.headers, request.query_params, account.secret
        ):
            log.warning("webhook %s/%s: signature rejected", integration.name, account.id)
            return _error(401, "bad signature")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "malformed JSON")
        if not isinstance(payload, dict):
            return _error(400, "expected a JSON object")
        if integration.split is not None:
            return await self._receive_batch(integration, account, payload, request.headers)
        parsed = integration.parse(payload, body)
        params = webhooks.insert_params(
            integration.name, account.id, parsed.event_id, parsed.event_type, parsed.resource_key, body,
            request.headers,
        )  # fmt: skip
        try:
            new = await self._writer.insert(params)
        except psycopg.DataError:
            return _error(400, "payload cannot be stored as JSON")
        except (psycopg.Error, OSError) as exc:
            log.error("webhook receiver: could not store event (%s)", type(exc).__name__)
            return _error(503, "temporarily unavailable", {"Retry-After": "5"})
        if new:
            return _json({"status": "accepted", "event_id": parsed.event_id}, 202)
        return _json({"status": "duplicate", "event_id": parsed.event_id}, 200)

    async def _receive_batch(
        self, integration: Integration, account: KnownAccount, payload: dict[str, Any], headers: Mapping[str, str]
    ) -> Response:
        """A verified batch: each event queued on its own row, all in one statement and commit (the inserts are
        submitted together, so the group commit takes them as one batch); 202 once every row is committed. A
        redelivered batch finds its events already held: 200."""
        assert integration.split is not None
        events = [e for e in integration.split(payload) if isinstance(e, dict)]
        if not events:
            return _json({"status": "accepted", "events": 0, "new": 0}, 202)
        rows = []
        for event in events:
            event_body = orjson.dumps(event)
            parsed = integration.parse(event, event_body)
            params = (parsed.event_id, parsed.event_type, parsed.resource_key, event_body, headers)
            rows.append(webhooks.insert_params(integration.name, account.id, *params))
        try:
            flags = await asyncio.gather(*(self._writer.insert(row) for row in rows))
        except psycopg.DataError:
            return _error(400, "payload cannot be stored as JSON")
        except (psycopg.Error, OSError) as exc:
            log.error("webhook receiver: could not store a batch (%s)", type(exc).__name__)
            return _error(503, "temporarily unavailable", {"Retry-After": "5"})
        new = sum(1 for flag in flags if flag)
        body = {"status": "accepted" if new else "duplicate", "events": len(rows), "new": new}
        return _json(body, 202 if new else 200)

    async def healthz(self, request: Request) -> Response:
        try:
            async with self._pool.connection() as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, OSError):
            return _json({"status": "database unavailable"}, 503)
        return _json({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self._freeze_gc:
            # Everything imported and built until the server starts lives as long as the process. Frozen, the
            # cyclic GC stops re-scanning those ~60k objects: a full collection then paused every request in
            # flight for tens of ms, which was the receiver's whole p99 tail (bench/bench_webhooks.py).
            gc.collect()
            gc.freeze()
        yield
        await self._pool.close()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhooks/{integration}/{account}", self.receive, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON reply serialised by orjson (starlette's JSONResponse goes through the stdlib encoder)."""
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None, close: bool = False) -> Response:
    extra = dict(headers or {})
    if close:
        extra["Connection"] = "close"
    return _json({"error": message}, status, headers=extra)


def create_app(
    database_url: URL | str | None = None, pool_size: int = DEFAULT_POOL_SIZE, freeze_gc: bool = False
) -> Starlette:
    """`freeze_gc`: the receiver owns its process (`serve`), so at startup it may move what is loaded into the
    GC's permanent generation; an app embedded in another process (tests) leaves that process's GC alone."""
    return Receiver(database_url, pool_size, freeze_gc).app()


class ReceiverServer:
    """The receiver on real HTTP from a background thread (tests, dev), like the sandbox's server."""

    def __init__(
        self, database_url: URL | str | None = None, host: str = "127.0.0.1", port: int = 0, pool_size: int = 8
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(database_url, pool_size), log_level="warning", access_log=False, timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReceiverServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ReceiverServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1", port: int = 8800, database_url: URL | str | None = None, log_level: str = "info"
) -> None:
    """Serve in the foreground until interrupted (`sync-pipelines webhooks serve`; bench/bench_webhooks.py runs
    exactly this). uvicorn picks uvloop and httptools when installed (dagster-webserver brings both); no access
    log line per delivery; the GC frozen at startup (see Receiver.lifespan)."""
    uvicorn.run(create_app(database_url, freeze_gc=True), host=host, port=port, log_level=log_level, access_log=False)
