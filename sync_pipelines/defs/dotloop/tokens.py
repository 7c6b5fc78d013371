"""DotLoop's OAuth2 tokens: the exchange at `/oauth/token`, where an account's tokens are kept, and how they rotate.

DotLoop (docs/integrations/dotloop.md) issues a Bearer access token that lives about 12 hours and a refresh token
that is good for one refresh: refreshing returns a new pair and kills the old one at once. So the only usable
refresh token is the one from the latest refresh, and a process that refreshes and then dies before saving it
locks the account out. `StoredTokens.rotate` therefore takes a row lock on the account's bridge.credentials row,
refreshes, writes the new pair and commits, and only then hands the new access token out: a crash at any later
point leaves a usable pair in the warehouse, and two processes that find the token expired at the same moment
refresh once (the second waits on the lock, then finds the pair already replaced and takes it).

What no client can survive under strict rotation is a crash (or a response lost on the network) in the
milliseconds between DotLoop answering the refresh and our commit: the new pair then exists nowhere. The account
is marked in error the next time it is used (`invalid_grant`) and is reconnected with `accounts add`.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import requests
import sqlalchemy as sa

from sync_pipelines.lib import crypto, schema
from sync_pipelines.lib.errors import OperatorError

# The sandbox's demo OAuth client (sync-pipelines sandbox serve prints it): the resource's offline default. It
# lives here, not in the sandbox, because production code never imports the sandbox.
SANDBOX_CLIENT_ID = "dotloop_sandbox_client"
SANDBOX_CLIENT_SECRET = "dotloop_sandbox_secret"
TOKEN_PATH = "oauth/token"
# "Access tokens expire usually after 12 hours": assumed when a token response names no lifetime.
DEFAULT_LIFETIME = timedelta(hours=12)
TOKEN_KEYS = ("access_token", "refresh_token", "expires_at")
# How many times a refresh is sent again when DotLoop's token endpoint answers 5xx or cannot be reached.
TOKEN_ATTEMPTS = 3

# (method, url, status or None, started (monotonic), error or None, sent_at): a token call, for the call log.
CallObserver = Callable[[str, str, int | None, float, str | None, datetime], None]


class OAuthError(Exception):
    """The token endpoint refused (RFC 6749 `{error, error_description}`), or could not be reached (status None)."""

    def __init__(self, status: int | None, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}" if status is None else f"HTTP {status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    @property
    def refused(self) -> bool:
        """The grant or the client is not accepted (as opposed to an outage): asking again will not help."""
        return self.status is not None and 400 <= self.status < 500


@dataclass(frozen=True)
class Tokens:
    # Never in a repr: a pair that reaches a log or a traceback stays out of it.
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # UTC, our clock: when we received the token plus its `expires_in`

    @classmethod
    def from_response(cls, body: Any, received_at: datetime) -> Tokens:
        if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
            raise OAuthError(200, "invalid_response", "the token response has no access_token or refresh_token")
        lifetime = body.get("expires_in")
        seconds = timedelta(seconds=int(lifetime)) if isinstance(lifetime, int | float) else DEFAULT_LIFETIME
        return cls(str(body["access_token"]), str(body["refresh_token"]), received_at + seconds)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any]) -> Tokens:
        missing = [k for k in ("access_token", "refresh_token") if not secrets.get(k)]
        if missing:
            raise OperatorError(
                f"dotloop account: no {' or '.join(missing)} stored; connect it with `sync-pipelines accounts add "
                "dotloop --name NAME --secret code=<authorization code>`"
            )
        expires = secrets.get("expires_at")
        # No stored expiry: treat it as due, so the first use refreshes it (a 401 would too).
        expires_at = datetime.fromisoformat(str(expires)) if expires else datetime(1970, 1, 1, tzinfo=UTC)
        return cls(str(secrets["access_token"]), str(secrets["refresh_token"]), expires_at)

    def as_secrets(self) -> dict[str, str]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.astimezone(UTC).isoformat(),
        }


class TokenEndpoint:
    """DotLoop's `POST /oauth/token` with HTTP Basic client credentials (`client_id:client_secret`)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, timeout: float = 30.0) -> None:
        self.token_url = token_url
        self._basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self.timeout = timeout

    def exchange_code(
        self,
        code: str,
        redirect_uri: str | None = None,
        *,
        session: requests.Session | None = None,
        observe: CallObserver | None = None,
    ) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code}
        if redirect_uri:
            form["redirect_uri"] = redirect_uri
        # A code is single-use: sending it again after a lost answer could only be refused.
        return self._post(form, session, observe, attempts=1)

    def refresh(
        self, refresh_token: str, *, session: requests.Session | None = None, observe: CallObserver | None = None
    ) -> Tokens:
        return self._post({"grant_type": "refresh_token", "refresh_token": refresh_token}, session, observe)

    def _post(
        self,
        form: dict[str, str],
        session: requests.Session | None,
        observe: CallObserver | None,
        attempts: int = TOKEN_ATTEMPTS,
    ) -> Tokens:
        http = session or requests
        headers = {"Authorization": self._basic, "Accept": "application/json"}
        for attempt in range(1, attempts + 1):
            sent_at, started = datetime.now(UTC), time.monotonic()
            try:
                response = http.post(self.token_url, data=form, headers=headers, timeout=self.timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                if observe is not None:
                    observe("POST", self.token_url, None, started, type(exc).__name__, sent_at)
                failure = OAuthError(None, "unreachable", f"{type(exc).__name__} calling {self.token_url}")
            else:
                error = None if response.status_code == 200 else _oauth_error(response)
                if observe is not None:
                    observe("POST", self.token_url, response.status_code, started, error and str(error), sent_at)
                if error is None:
                    return Tokens.from_response(_json(response), sent_at)
                if error.refused:
                    raise error
                failure = error
            if attempt < attempts:
                time.sleep(0.5 * 2 ** (attempt - 1))
        raise failure


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _oauth_error(response: requests.Response) -> OAuthError:
    body = _json(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return OAuthError(response.status_code, body["error"], str(body.get("error_description") or ""))
    return OAuthError(response.status_code, "http_error", response.text[:200])


class TokenStore(Protocol):
    """Where one account's current pair lives, and how it is replaced by a refresh."""

    def current(self) -> Tokens: ...

    # The pair after a refresh of the one whose access token is `stale`: `refresh` (refresh token -> new pair) is
    # called at most once, and not at all when the stored pair has already moved on (another process refreshed).
    def rotate(self, stale_access_token: str, refresh: Callable[[str], Tokens]) -> Tokens: ...


class MemoryTokens:
    """A pair held in memory only: for the benchmark and tools that sync nothing into the warehouse."""

    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens
        self._lock = threading.Lock()

    def current(self) -> Tokens:
        return self._tokens

    def rotate(self, stale_access_token: str, refresh: Callable[[str], Tokens]) -> Tokens:
        with self._lock:
            if self._tokens.access_token == stale_access_token:
                self._tokens = refresh(self._tokens.refresh_token)
            return self._tokens


class StoredTokens:
    """The pair in bridge.credentials (encrypted with the account's other secrets, e.g. its webhook signing key)."""

    def __init__(self, engine: sa.Engine, account_id: uuid.UUID) -> None:
        self.engine = engine
        self.account_id = account_id

    def _row(self, conn: sa.Connection, lock: bool) -> tuple[dict[str, Any], Any]:
        table = schema.credentials
        query = sa.select(table.c.id, table.c.secret_ciphertext).where(
            table.c.account_id == self.account_id, table.c.kind == "api", table.c.active
        )
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise OperatorError(f"dotloop account {self.account_id} has no active credentials: add it again")
        return orjson.loads(crypto.decrypt(row.secret_ciphertext)), row.id

    def current(self) -> Tokens:
        with self.engine.connect() as conn:
            return Tokens.from_secrets(self._row(conn, lock=False)[0])

    def rotate(self, stale_access_token: str, refresh: Callable[[str], Tokens]) -> Tokens:
        # One transaction: lock, refresh, write, commit. Should `refresh` raise, nothing is written and the lock
        # goes with the rollback.
        with self.engine.begin() as conn:
            secrets, row_id = self._row(conn, lock=True)
            stored = Tokens.from_secrets(secrets)
            if stored.access_token != stale_access_token:
                return stored  # refreshed by someone else while we waited for the lock: theirs is the live pair
            fresh = refresh(stored.refresh_token)
            secrets.update(fresh.as_secrets())
            conn.execute(
                sa.update(schema.credentials)
                .where(schema.credentials.c.id == row_id)
                .values(
                    secret_ciphertext=crypto.encrypt(orjson.dumps(secrets).decode()),
                    # The same fingerprint rule as lib/accounts.upsert_account, so a listing tells pairs apart.
                    fingerprint=crypto.fingerprint(orjson.dumps(sorted(secrets.items())).decode()),
                    expires_at=fresh.expires_at,
                    updated_at=sa.func.now(),
                )
            )
        return fresh


# What `accounts add dotloop` may be given besides the grant itself, and keeps (the webhook signing key).
GRANT_KEYS = ("code", "refresh_token", "redirect_uri", "api_key")


def connect(resource: Any, given: dict[str, str]) -> dict[str, str]:
    """`sync-pipelines accounts add dotloop`: an authorization code (`--secret code=...`, with `--secret
    redirect_uri=...` if the code was issued for one) or a refresh token (`--secret refresh_token=...`) is exchanged
    at DotLoop's token endpoint for the pair to store. Every other secret given (the webhook signing key) is kept."""
    code = (given.get("code") or "").strip()
    refresh_token = (given.get("refresh_token") or "").strip()
    if not code and not refresh_token:
        raise OperatorError(
            "dotloop account: expected --secret code=<authorization code> (and --secret redirect_uri=<the URI it "
            "was issued for>, if any) or --secret refresh_token=<refresh token>"
        )
    endpoint: TokenEndpoint = resource.token_endpoint()
    what = "authorization code" if code else "refresh token"
    try:
        tokens = (
            endpoint.exchange_code(code, (given.get("redirect_uri") or "").strip() or None)
            if code
            else endpoint.refresh(refresh_token)
        )
    except OAuthError as exc:
        raise OperatorError(
            f"dotloop account: {endpoint.token_url} did not accept the {what} ({exc}); "
            + ("get a new code (codes are single-use and expire after 10 minutes)" if code else "reconnect with a code")
        ) from None
    kept = {k: v for k, v in given.items() if k not in GRANT_KEYS and v}
    return {**kept, **tokens.as_secrets()}
