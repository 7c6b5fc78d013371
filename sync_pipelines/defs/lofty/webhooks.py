"""Lofty's webhooks, declared for the kit's receiver and sensor.

Lofty posts batches: `{teamId, listId, subscribeId, vendorId, batchId, events: [...]}`, up to the subscription's
`limit` events each, one to five minutes after the changes, per list id (1 Agent Info, 2 Lead Info, 6 Call,
7 Email, 8 Text, 12 Pipeline Change). Lofty documents no signature. So we authenticate a batch by a secret of ours
in the callback URL we subscribe with: each subscription's URL carries

    token = hex HMAC-SHA256(account's webhook_secret, "lofty-subscription:<listId>")

and the receiver recomputes it from the batch's `listId`, compares in constant time, and answers 401 (storing
nothing) to a batch without it, with another list's token, or with a wrong one. The account's `webhook_secret` is
generated when the account is added and stored encrypted; it never travels itself, and a leaked callback URL opens
only its own list. The receiver takes the batch as one request and queues each event on its own (deduped by
`<batchId>:<n>`, so a redelivered batch is stored once); the sensor applies them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sync_pipelines.lib.integration.declaration import Change, Webhooks
from sync_pipelines.lib.webhooks import body_hash

TOKEN_PARAM = "token"
SECRET_ENV = "SYNC_LOFTY_WEBHOOK_SECRET"
# The lists we subscribe to, and what each event names.
AGENT_INFO, LEAD_INFO, CALL, EMAIL, TEXT, PIPELINE_CHANGE = 1, 2, 6, 7, 8, 12
LISTS = (AGENT_INFO, LEAD_INFO, CALL, EMAIL, TEXT, PIPELINE_CHANGE)
LIST_NAMES = {AGENT_INFO: "agent_info", LEAD_INFO: "lead_info", CALL: "call", EMAIL: "email", TEXT: "text",
              PIPELINE_CHANGE: "pipeline_change"}  # fmt: skip
_BATCH_FIELDS = ("teamId", "listId", "subscribeId", "batchId")


def subscription_token(secret: str, list_id: int | str) -> str:
    return hmac.new(secret.encode(), f"lofty-subscription:{int(list_id)}".encode(), hashlib.sha256).hexdigest()


def callback_url(receiver: str, account: str, secret: str, list_id: int) -> str:
    """The URL a subscription to `list_id` is made with: the receiver's route for the account, and its token."""
    query = urlencode({TOKEN_PARAM: subscription_token(secret, list_id)})
    return f"{receiver.rstrip('/')}/webhooks/lofty/{account}?{query}"


def _list_id(body: bytes) -> int | None:
    import orjson

    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = payload.get("listId") if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verify_request(body: bytes, headers: Mapping[str, str], query: Mapping[str, str], secret: str) -> bool:
    """The callback URL's token is the one for the batch's list (see the module docstring)."""
    given = query.get(TOKEN_PARAM) or ""
    list_id = _list_id(body)
    if not given or not secret or list_id is None:
        return False
    return hmac.compare_digest(subscription_token(secret, list_id).encode(), given.strip().lower().encode())


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Lofty signs nothing: a delivery is verified by its callback URL (verify_request), never by a header."""
    return False


def split(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch -> its events, each stored with the batch's team, list, subscription, batch id and its place."""
    events = payload.get("events")
    if not isinstance(events, list):
        return [payload]  # not a batch: stored as it came, so `changes` can say it names nothing
    batch = {k: payload.get(k) for k in _BATCH_FIELDS}
    return [{**batch, "index": n, "event": event} for n, event in enumerate(events)]


def identify(payload: dict[str, Any], body: bytes) -> tuple[str, str | None, str | None]:
    """`<batchId>:<n>` (a redelivered batch has the same id), `<list>:<eventType>`, and the record it names."""
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    batch_id, index = payload.get("batchId"), payload.get("index")
    event_id = f"{batch_id}:{index}" if batch_id is not None and index is not None else body_hash(body)
    list_name = LIST_NAMES.get(payload.get("listId"), str(payload.get("listId")))  # type: ignore[arg-type]
    kind = event.get("eventType")
    event_type = f"{list_name}:{kind}" if kind else list_name
    named = event.get("leadId") if event.get("leadId") is not None else event.get("memberUserId")
    return event_id, event_type, f"{list_name}:{named}" if named is not None else None


def changes(event_type: str | None, payload: dict[str, Any]) -> list[Change]:
    """Lead Info and Pipeline Change name a lead (and so its tags); a call, email or text names a lead whose
    activities (and last activity) changed; Agent Info names a member. A DELETE trashes the lead."""
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    list_id = payload.get("listId")
    if list_id == AGENT_INFO:
        member = event.get("memberUserId")
        return [Change("users", (str(member),))] if member is not None else []
    lead = event.get("leadId")
    if lead is None:
        return []
    ids = (str(lead),)
    if list_id == LEAD_INFO:
        deleted = event.get("eventType") == "DELETE"
        return [Change("leads", ids, deleted=deleted), Change("tags", ids)]
    if list_id == PIPELINE_CHANGE:
        return [Change("leads", ids)]
    if list_id in (CALL, EMAIL, TEXT):
        return [Change("leads", ids), Change("activities", ids)]
    return []


# The sandbox demo's secret: the receiver uses it only in local mode, for an account that stored none.
LOCAL_WEBHOOK_SECRET = "lofty_local_webhook_secret"


def default_secret() -> str | None:
    return LOCAL_WEBHOOK_SECRET


WEBHOOKS = Webhooks(
    verify=verify,
    identify=identify,
    changes=changes,
    secret_keys=("webhook_secret",),
    # SYNC_LOFTY_WEBHOOK_SECRET in every mode; the demo's only in local mode (lib/modes.py).
    secret_env=SECRET_ENV,
    default_secret=default_secret,
    verify_request=verify_request,
    split=split,
)
