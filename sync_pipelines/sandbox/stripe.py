"""Stripe simulator: `/stripe/v1/...` with Stripe's auth, cursor paging, filters, versions, errors, webhooks.

Point the official library at it with `stripe.api_base = sandbox_url + "/stripe"` (or
`StripeClient(key, base_addresses={"api": sandbox_url + "/stripe"})`). Contract, evidence and every
assumption: docs/integrations/stripe.md.

Records are built lazily from (seed, account, entity, index). Relations are arithmetic so that filters stay
O(1) at any volume: subscription j belongs to customer j*C//S, invoice i to subscription i*S//I and charge k
to invoice k*I//K, so a customer's children are one contiguous index range per entity.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import hmac
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sync_pipelines.sandbox.base import Simulator, dumps
from sync_pipelines.sandbox.gen import (
    CITIES,
    EMAIL_DOMAINS,
    HISTORY_END,
    HISTORY_SECONDS,
    HISTORY_START,
    STREET_KINDS,
    STREET_NAMES,
    Draw,
    person_name,
    phone,
    record_hash,
    stream_seed,
)
from sync_pipelines.sandbox.store import View, VirtualTable, Window

Headers = dict[str, str]
PendingEvent = tuple[str, str, dict, dict | None]  # (type, entity, canonical record, previous attributes)

# The version an account without a Stripe-Version header gets: the last dated version before Basil, whose
# shapes (invoice.subscription, charge.invoice, subscription.current_period_*) most integrations were built
# on.
DEFAULT_API_VERSION = "2024-06-20"
# From 2025-03-31.basil on, those three moved or went away (see to_basil).
BASIL = "2025-03-31"
VERSION_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.[a-z]+)?$")

# account -> (secret key, share of the sandbox scale, livemode): sizes differ so a key mix-up shows.
ACCOUNTS: dict[str, tuple[str, float, bool]] = {
    "acme": ("sk_test_sandboxAcme4eC39HqLyjWDarjtT1zdp7dc", 1.0, False),
    "summit": ("sk_test_sandboxSummit9Fq2MvX8pLwR4nTa7KcZ3h", 0.5, False),
    "harbor": ("sk_live_sandboxHarbor2Xc7QmN5vTy8pLk3WdRa6j", 0.25, True),
}
ENTITIES = ("customers", "subscriptions", "invoices", "charges")
# Every kind of id the simulator writes, by the entity (or sub-object) it names.
CODEC_PREFIXES = {
    "customers": "cus",
    "subscriptions": "sub",
    "invoices": "in",
    "charges": "ch",
    "items": "si",
    "prices": "price",
    "products": "prod",
    "payment_intents": "pi",
    "payment_methods": "pm",
    "balance_transactions": "txn",
    "events": "evt",
    "lines": "il",
    "invoice_items": "ii",
    "refunds": "re",
    "payouts": "po",
}
OBJECT_NAME = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
}
EVENT_TYPES = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.created",
    "invoice.updated",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.voided",
    "charge.succeeded",
    "charge.failed",
    "charge.pending",
    "charge.refunded",
    "charge.updated",
)
SUB_STATUSES = (
    "active",
    "canceled",
    "past_due",
    "trialing",
    "unpaid",
    "incomplete_expired",
    "incomplete",
    "paused",
)
SUB_STATUS_WEIGHTS = (60, 25, 5, 3, 2, 2, 1, 2)
SUB_STATUS_FILTERS = (*SUB_STATUSES, "all", "ended")
ENDED = ("canceled", "incomplete_expired")
INVOICE_STATUSES = ("paid", "open", "draft", "void", "uncollectible")
INVOICE_STATUS_WEIGHTS = (85, 6, 3, 3, 3)
LINKED_INVOICE = ("paid", "open", "uncollectible")  # statuses whose invoice was charged
CHARGE_STATUSES = ("succeeded", "failed", "pending")
CHARGE_STATUS_WEIGHTS = (90, 8, 2)
# (product name, unit amount in cents, interval, weight)
PLANS = (
    ("Starter", 1900, "month", 30),
    ("Team", 4900, "month", 30),
    ("Business", 14900, "month", 15),
    ("Starter (annual)", 19000, "year", 10),
    ("Team (annual)", 49000, "year", 10),
    ("Enterprise", 99900, "month", 5),
)
SEGMENTS = ("smb", "mid-market", "enterprise", "startup", "nonprofit")
CARD_BRANDS = (("visa", "credit"), ("mastercard", "credit"), ("amex", "credit"), ("visa", "debit"))
DECLINES = (
    ("card_declined", "generic_decline", "Your card was declined."),
    ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ("expired_card", "expired_card", "Your card has expired."),
)
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created"}
ALLOWED_PARAMS = {
    "customers": LIST_PARAMS | {"email"},
    "subscriptions": LIST_PARAMS | {"customer", "status"},
    "invoices": LIST_PARAMS | {"customer", "status", "subscription"},
    "charges": LIST_PARAMS | {"customer"},
    "events": LIST_PARAMS | {"type", "types"},
    "products": LIST_PARAMS | {"active"},
    "prices": LIST_PARAMS | {"active", "product"},
    "payment_intents": LIST_PARAMS | {"customer"},
    "refunds": LIST_PARAMS | {"charge", "payment_intent"},
    "payouts": LIST_PARAMS | {"status"},
    "webhook_endpoints": {"limit", "starting_after", "ending_before"},
}
CUSTOMER_CREATE_PARAMS = {"email", "name", "description", "phone", "metadata"}
ENDPOINT_PARAMS = {"url", "enabled_events", "api_version", "description", "metadata", "disabled"}
# Stripe retries live-mode webhooks with exponential backoff for up to 3 days, test-mode ones 3 times over a
# few hours; the intervals are not published, these are ours (divided by the emitter speed).
LIVE_RETRY_DELAYS = tuple(60.0 * 2**k for k in range(12))  # 1 min ... 34 h, 2.8 days in all
TEST_RETRY_DELAYS = (600.0, 3600.0, 10800.0)
EVENT_RETENTION = 50_000  # newest events kept per account, at most (memory)
EVENT_RETENTION_SECONDS = 30 * 86_400  # the events feed answers for the last 30 days, as Stripe's does
START_EPOCH = int(HISTORY_START.timestamp())
END_EPOCH = int(HISTORY_END.timestamp())
DAY = 86_400

# -- ids ----------------------------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_PAIRS = [a + b for a in ALPHABET for b in ALPHABET]
_SCRAMBLE = 0x9E3779B97F4A7C15  # odd, so multiplication mod 2^56 is a bijection
_MASK56 = (1 << 56) - 1
_UNSCRAMBLE = pow(_SCRAMBLE, -1, 1 << 56)
# Record ids are 56 scrambled bits in hex (C-speed: bytes.hex, str.translate) written with 16 mixed-case
# alphanumerics, so they read like Stripe's ids but cost a fraction of a microsecond each.
_ID_ALPHABET = "q7KdF2mXvB9hT4pZ"
_TO_ID = str.maketrans("0123456789abcdef", _ID_ALPHABET)
_FROM_ID = str.maketrans(_ID_ALPHABET, "0123456789abcdef")
_ID_CHARS = frozenset(_ID_ALPHABET)


def b62(n: int, width: int = 12) -> str:
    """Fixed-width base62 of n mod 62**width (tags, secrets, fingerprints)."""
    out = []
    for _ in range(width // 2):
        n, r = divmod(n, 3844)
        out.append(_PAIRS[r])
    if width % 2:
        out.append(ALPHABET[n % 62])
    return "".join(reversed(out))


def tag62(*parts: object, width: int = 10) -> str:
    """A stable random-looking base62 string: 256 hashed bits, so no leading zeros."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=32).digest()
    return b62(int.from_bytes(digest, "big"), width)


class IdCodec:
    """Stripe-looking ids that map to and from integer record ids, per account and object type.

    Integers are scrambled by an invertible 56-bit map so consecutive records get unrelated-looking ids, as
    Stripe's do: a client that sorts by id instead of `created` shows up at once. Lengths match Stripe's:
    `cus_` + 14 characters; `sub_`, `in_`, `ch_`, `evt_` + 24 ("1", a 9-character account tag, 14).
    """

    def __init__(self, prefix: str, tag: str, key: int, short: bool = False) -> None:
        self.prefix = prefix
        self.key = key & _MASK56
        self._head = f"{prefix}_" if short else f"{prefix}_1{tag[:9]}"
        self._length = len(self._head) + 14

    def encode(self, n: int) -> str:
        y = ((n ^ self.key) * _SCRAMBLE) & _MASK56
        return self._head + y.to_bytes(7, "big").hex().translate(_TO_ID)

    def decode(self, text: str) -> int | None:
        if len(text) != self._length or not text.startswith(self._head):
            return None
        body = text[len(self._head) :]
        if not _ID_CHARS.issuperset(body):
            return None
        y = int(body.translate(_FROM_ID), 16)
        return ((y * _UNSCRAMBLE) & _MASK56) ^ self.key


# -- small helpers ------------------------------------------------------------------------------------


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def child_range(parent_lo: int, parent_hi: int, n_parent: int, n_child: int) -> tuple[int, int]:
    """Base indices [lo, hi) of the children whose parent index is in [parent_lo, parent_hi)."""
    return ceil_div(parent_lo * n_child, n_parent), ceil_div(parent_hi * n_child, n_parent)


def epoch(ts: datetime) -> int:
    return int(ts.timestamp())


# Epochs of the first instant of every month 2000-01 .. 2099-12: calendar arithmetic without datetimes,
# which matters because every subscription and invoice served needs a few of them.
_MONTHS = [int(datetime(2000 + m // 12, m % 12 + 1, 1, tzinfo=UTC).timestamp()) for m in range(1201)]


def add_months(ts: int, months: int) -> int:
    """ts moved by whole calendar months, the day clamped to the target month's length (Jan 31 -> Feb 28)."""
    m = bisect.bisect_right(_MONTHS, ts) - 1
    offset = ts - _MONTHS[m]
    day, clock = divmod(offset, DAY)
    target = m + months
    length = (_MONTHS[target + 1] - _MONTHS[target]) // DAY
    return _MONTHS[target] + min(day, length - 1) * DAY + clock


def period_around(anchor: int, months: int, at: int) -> tuple[int, int]:
    """The billing period [start, end) of a subscription anchored at `anchor` that contains `at`."""
    k = max(0, (bisect.bisect_right(_MONTHS, at) - bisect.bisect_right(_MONTHS, anchor)) // months)
    start = add_months(anchor, k * months)
    if start > at and k > 0:
        k -= 1
        start = add_months(anchor, k * months)
    return start, add_months(anchor, (k + 1) * months)


def is_refunded(charge_id: int) -> bool:
    """Whether a succeeded charge was refunded in full: one in sixteen, by record number, so the refunds list is
    the charges list filtered without building anything else (a refund is created a day after its charge)."""
    return charge_id % 16 == 3


def pays_out(charge_id: int) -> bool:
    """Whether a charge's slot carries a payout (one in twenty), two days after that charge."""
    return charge_id % 20 == 1


# Objects derived one-to-one from charges: (seconds after the charge, which charges have one).
DERIVED_FROM_CHARGES: dict[str, tuple[int, Callable[[int], bool] | None]] = {
    "payment_intents": (0, None),
    "refunds": (DAY, is_refunded),
    "payouts": (2 * DAY, pays_out),
}
DERIVED_OBJECT = {"payment_intents": "payment_intent", "refunds": "refund", "payouts": "payout"}
PI_STATUS = {"succeeded": "succeeded", "failed": "requires_payment_method", "pending": "processing"}
CATALOG_OBJECT = {"products": "product", "prices": "price"}


def redact(key: str) -> str:
    head = key[: key.find("_", 3) + 1] if key.count("_") >= 2 else key[:3]
    return head + "*" * max(0, len(key) - len(head) - 4) + key[-4:]


def stripe_signature(secret: str, body: bytes, timestamp: int) -> str:
    """Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 keyed with the endpoint secret over "t.body">."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def parse_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form and query encoding: `a[b]=1` is a dict, `a[]=x` and `a[0]=x` are a list."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        key, _, rest = raw_key.partition("[")
        if not rest:
            out[key] = value
            continue
        sub = rest.rstrip("]")
        if sub == "" or sub.isdigit():
            current = out.setdefault(key, [])
            if isinstance(current, list):
                current.append(value)
            else:
                out[key] = [value]
        else:
            current = out.setdefault(key, {})
            if isinstance(current, dict):
                current[sub] = value
            else:
                out[key] = {sub: value}
    return out


class StripeError(Exception):
    """An API error, raised inside a handler and answered with Stripe's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


def unknown_param(name: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


# -- basil shapes ---------------------------------------------------------------------------------------

LEGACY_ONLY: dict[str, frozenset[str]] = {
    "subscriptions": frozenset({"current_period_start", "current_period_end"}),
    "invoices": frozenset(
        {
            "subscription",
            "subscription_details",
            "quote",
            "charge",
            "payment_intent",
            "paid",
            "paid_out_of_band",
            "transfer_data",
            "application_fee_amount",
            "subscription_proration_date",
            "total_tax_amounts",
            "tax",
        }
    ),
    "charges": frozenset({"invoice"}),
}
LEGACY_LINE_ONLY = frozenset(
    {
        "type",
        "subscription",
        "subscription_item",
        "invoice_item",
        "proration",
        "proration_details",
        "plan",
        "price",
        "tax_amounts",
        "amount_excluding_tax",
        "unit_amount_excluding_tax",
    }
)


def _line_to_basil(line: dict) -> dict:
    out = {k: v for k, v in line.items() if k not in LEGACY_LINE_ONLY}
    price = line.get("price") or {}
    if line.get("subscription"):
        out["parent"] = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": line["subscription"],
                "subscription_item": line.get("subscription_item"),
            },
            "type": "subscription_item_details",
        }
    else:
        out["parent"] = {
            "invoice_item_details": {
                "invoice_item": line.get("invoice_item"),
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    out["pricing"] = {
        "price_details": {"price": price.get("id"), "product": price.get("product")} if price else None,
        "type": "price_details",
        "unit_amount_decimal": str(line.get("amount", 0) // max(line.get("quantity") or 1, 1)),
    }
    out["taxes"] = []
    return out


def to_basil(entity: str, record: dict) -> dict:
    """A canonical (2024-06-20) record, or part of one, as API versions from 2025-03-31.basil render it.

    Works on the template part and the record's own part separately, which is what lets list pages splice
    a pre-serialised template for either version.
    """
    dropped = LEGACY_ONLY.get(entity)
    if dropped is None:
        return record
    out = {k: v for k, v in record.items() if k not in dropped}
    if entity == "subscriptions" and "items" in record and "current_period_start" in record:
        items = record["items"]
        periods = {
            "current_period_start": record["current_period_start"],
            "current_period_end": record["current_period_end"],
        }
        out["items"] = {**items, "data": [{**item, **periods} for item in items["data"]]}
    elif entity == "invoices":
        if "subscription" in record:
            subscription = record["subscription"]
            out["parent"] = (
                {
                    "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": subscription},
                    "type": "subscription_details",
                }
                if subscription
                else None
            )
        if "lines" in record:
            lines = record["lines"]
            out["lines"] = {**lines, "data": [_line_to_basil(line) for line in lines["data"]]}
        if "total_tax_amounts" in record:
            out["total_taxes"] = []
            out["amount_overpaid"] = 0
    return out


def is_basil(version: str) -> bool:
    return version[:10] >= BASIL


class Shape:
    """One entity's record builder: a shared template picked by hash plus the record's own fields.

    The template's JSON is cached for both API shapes, so a list page serialises only each record's own
    fields (gen.Composite, extended with a second, version-dependent fragment). `own(index, h, created,
    template, basil, fast)` builds those fields in the requested shape; `fast` lets it use pre-serialised
    orjson Fragments, which only the list path may (every other caller needs plain dicts).
    """

    def __init__(
        self,
        entity: str,
        stream: int,
        template: Callable[[Draw], dict],
        own: Callable[[int, int, int, dict, bool, bool], dict],
        size: int = 4096,
    ) -> None:
        self.entity = entity
        self._stream = stream
        self._template = template
        self._own = own
        self._slots: list[tuple[dict, dict, bytes, bytes] | None] = [None] * size
        self.size = size

    def slot(self, h: int) -> tuple[dict, dict, bytes, bytes]:
        k = h % self.size
        slot = self._slots[k]
        if slot is None:
            full = self._template(Draw(self._stream, k))
            public = {key: value for key, value in full.items() if not key.startswith("_")}
            basil = to_basil(self.entity, public)
            slot = self._slots[k] = (full, public, dumps(public)[1:-1], dumps(basil)[1:-1])
        return slot

    def template(self, h: int) -> dict:
        return self.slot(h)[0]

    def __call__(self, index: int, d: Draw, created: datetime) -> dict:
        """The canonical (2024-06-20) record: what the table stores and webhooks render."""
        h = d.state
        full, public, _, _ = self.slot(h)
        return {**self._own(index, h, epoch(created), full, False, False), **public}

    def write_json(self, out: list[bytes], index: int, h: int, created: int, basil: bool) -> None:
        full, _, legacy_fragment, basil_fragment = self.slot(h)
        raw = dumps(self._own(index, h, created, full, basil, True))
        fragment = basil_fragment if basil else legacy_fragment
        if fragment:
            out.extend((raw[:-1], b",", fragment, b"}"))
        else:
            out.append(raw)


def _table(choices: tuple[str, ...], weights: tuple[int, ...]) -> tuple[str, ...]:
    """A 100-entry lookup table: a weighted pick is one index by hash."""
    table = tuple(choice for choice, weight in zip(choices, weights, strict=True) for _ in range(weight))
    assert len(table) == 100
    return table


SUB_STATUS_TABLE = _table(SUB_STATUSES, SUB_STATUS_WEIGHTS)
INVOICE_STATUS_TABLE = _table(INVOICE_STATUSES, INVOICE_STATUS_WEIGHTS)
CHARGE_STATUS_TABLE = _table(CHARGE_STATUSES, CHARGE_STATUS_WEIGHTS)
PLAN_MONTHS = tuple(12 if plan[2] == "year" else 1 for plan in PLANS)
# Stripe's line description after the quantity, multiplication sign included.
PLAN_LINE_DESCRIPTIONS = tuple(f"\u00d7 {name} (at ${unit / 100:.2f} / {every})" for name, unit, every, _ in PLANS)
INVOICE_DESCRIPTIONS = (
    "Onboarding package",
    "Extra seats (prorated)",
    "Consulting hours",
    "Data migration",
    "Priority support",
)


def _weighted_plan(d: Draw) -> int:
    point = d.below(sum(p[3] for p in PLANS))
    for n, plan in enumerate(PLANS):
        if point < plan[3]:
            return n
        point -= plan[3]
    return 0


class Relations:
    """Facts about an account's base records computed from indices and hashes alone, never by building them.

    Subscription j belongs to customer j*C//S, invoice i to subscription i*S//I, charge k to invoice k*I//K
    (sizes C, S, I, K): a parent is never created after its child, and a parent's children are one index
    range, which is what makes `customer=` and `subscription=` filters O(1) at any volume.
    """

    def __init__(self, acct: StripeAccount, streams: dict[str, int]) -> None:
        self.acct = acct
        self.n_cus, self.n_sub, self.n_inv, self.n_ch = (acct.sizes[e] for e in ENTITIES)
        self.streams = streams

    def hash(self, entity: str, index: int) -> int:
        return record_hash(self.streams[entity], index)

    def template(self, entity: str, index: int) -> dict:
        return self.acct.shapes[entity].template(record_hash(self.streams[entity], index))

    def customer_of_subscription(self, j: int) -> int:
        return j * self.n_cus // self.n_sub

    def subscription_of_invoice(self, i: int) -> int:
        return i * self.n_sub // self.n_inv

    def invoice_of_charge(self, k: int) -> int:
        return k * self.n_inv // self.n_ch

    def invoices_of_subscription(self, j: int) -> tuple[int, int]:
        return child_range(j, j + 1, self.n_sub, self.n_inv)

    def charges_of_invoice(self, i: int) -> tuple[int, int]:
        return child_range(i, i + 1, self.n_inv, self.n_ch)

    def customer_ranges(self, c: int) -> dict[str, tuple[int, int]]:
        """Base index ranges of customer c's subscriptions, invoices and charges."""
        s = child_range(c, c + 1, self.n_cus, self.n_sub)
        i = child_range(s[0], s[1], self.n_sub, self.n_inv)
        return {"subscriptions": s, "invoices": i, "charges": child_range(i[0], i[1], self.n_inv, self.n_ch)}

    def subscription_status(self, j: int, h: int | None = None) -> str:
        return SUB_STATUS_TABLE[((self.hash("subscriptions", j) if h is None else h) >> 16) % 100]

    def invoice_status(self, i: int, h: int | None = None) -> str:
        return INVOICE_STATUS_TABLE[((self.hash("invoices", i) if h is None else h) >> 16) % 100]

    def is_one_off(self, i: int, h: int | None = None, first: int | None = None) -> bool:
        """A manual invoice of the subscription's customer; a subscription's first invoice never is."""
        if first is None:
            first = self.invoices_of_subscription(self.subscription_of_invoice(i))[0]
        if i == first:
            return False
        return ((self.hash("invoices", i) if h is None else h) >> 40) % 8 == 0

    def latest_invoice(self, j: int) -> int | None:
        lo, hi = self.invoices_of_subscription(j)
        stream = self.streams["invoices"]
        for i in range(hi - 1, lo, -1):
            if (record_hash(stream, i) >> 40) % 8:
                return i
        return lo if lo < hi else None

    def first_invoice_of_customer(self, c: int) -> int:
        return ceil_div(ceil_div(c * self.n_sub, self.n_cus) * self.n_inv, self.n_sub)

    def invoice_amount(self, i: int, h: int) -> tuple[int, int | None, int, int]:
        """(amount, subscription index or None for a one-off, plan, quantity) of base invoice i."""
        j = self.subscription_of_invoice(i)
        if self.is_one_off(i, h, ceil_div(j * self.n_inv, self.n_sub)):
            return self.acct.shapes["invoices"].template(h)["_amount"], None, 0, 1
        sub = self.template("subscriptions", j)
        plan, quantity = sub["_plan"], sub["quantity"]
        return PLANS[plan][1] * quantity, j, plan, quantity


class Builders:
    """The four entity shapes of one account: templates (shared) and own fields (per record)."""

    def __init__(self, acct: StripeAccount, rel: Relations, seed: int) -> None:
        self.acct = acct
        self.rel = rel
        self.seed = seed
        codecs = acct.codecs
        self.cus_id, self.sub_id, self.inv_id, self.ch_id = (codecs[e].encode for e in ENTITIES)
        self.item_id = codecs["items"].encode
        self.line_id = codecs["lines"].encode
        self.invoice_item_id = codecs["invoice_items"].encode
        self.pi_id = codecs["payment_intents"].encode
        self.pm_id = codecs["payment_methods"].encode
        self.txn_id = codecs["balance_transactions"].encode

    def shape(self, entity: str) -> Shape:
        pool = stream_seed(self.seed, "stripe", self.acct.name, entity, "templates")
        template, own = {
            "customers": (self.customer_template, self.customer_own),
            "subscriptions": (self.subscription_template, self.subscription_own),
            "invoices": (self.invoice_template, self.invoice_own),
            "charges": (self.charge_template, self.charge_own),
        }[entity]
        return Shape(entity, pool, template, own)

    # -- customers -----------------------------------------------------------------------------------

    def customer_template(self, d: Draw) -> dict:
        first, last = person_name(d)
        city, state, zip3 = d.pick(CITIES)
        return {
            "address": {
                "city": city,
                "country": "US",
                "line1": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
                "line2": None,
                "postal_code": f"{zip3}{d.below(100):02d}",
                "state": state,
            },
            "balance": -d.money(500, 5000, 500) if d.chance(0.05) else 0,
            "currency": "usd",
            "default_source": None,
            "delinquent": d.chance(0.04),
            "description": d.pick((None, None, None, "Imported from legacy billing", "Referred by partner")),
            "discount": None,
            "invoice_prefix": f"{d.next() & 0xFFFFFFFF:08X}",
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": self.acct.livemode,
            "metadata": {"segment": d.pick(SEGMENTS)} if d.chance(0.6) else {},
            "name": f"{first} {last}",
            "next_invoice_sequence": 1 + d.below(40),
            "phone": phone(d) if d.chance(0.5) else None,
            "preferred_locales": ["en-US"] if d.chance(0.3) else [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
            "_email": (f"{first.lower()}.{last.lower()}", d.pick(EMAIL_DOMAINS)),
        }

    def customer_email(self, c: int, template: dict) -> str:
        # The customer's number is in its address, so an `email=` filter finds it without a scan.
        user, domain = template["_email"]
        return f"{user}{c + 1}@{domain}"

    def customer_own(self, c: int, h: int, created: int, t: dict, basil: bool, fast: bool) -> dict:
        return {
            "id": self.cus_id(c + 1),
            "object": "customer",
            "created": created,
            "email": self.customer_email(c, t),
        }

    # -- subscriptions -------------------------------------------------------------------------------

    def subscription_template(self, d: Draw) -> dict:
        plan = _weighted_plan(d)
        send_invoice = d.chance(0.15)
        return {
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None},
            "billing_thresholds": None,
            "cancel_at": None,
            "collection_method": "send_invoice" if send_invoice else "charge_automatically",
            "currency": "usd",
            "days_until_due": 30 if send_invoice else None,
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discount": None,
            "discounts": [],
            "livemode": self.acct.livemode,
            "metadata": {"seats_source": "app"} if d.chance(0.3) else {},
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "quantity": 1 if plan in (0, 3) else 1 + d.below(25),
            "schedule": None,
            "test_clock": None,
            "transfer_data": None,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "_plan": plan,
            "_cancel_days": 30 + d.below(900),
            "_feedback": d.pick((None, "too_expensive", "switched_service", "unused", "missing_features")),
        }

    def items(
        self,
        j: int,
        sid: str,
        created: int,
        plan: int,
        quantity: int,
        periods: tuple[int, int] | None = None,
        fast: bool = False,
    ) -> dict:
        """A subscription's `items` list; `periods` (start, end) go on the item from 2025-03-31.basil."""
        acct = self.acct
        item = {
            "id": self.item_id(j + 1),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": created,
            "discounts": [],
            "metadata": {},
            "plan": acct.plan_fragments[plan] if fast else acct.plans[plan],
            "price": acct.price_fragments[plan] if fast else acct.prices[plan],
            "quantity": quantity,
            "subscription": sid,
            "tax_rates": [],
        }
        if periods is not None:
            item["current_period_start"], item["current_period_end"] = periods
        return {
            "object": "list",
            "data": [item],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/subscription_items?subscription={sid}",
        }

    def subscription_own(self, j: int, h: int, created: int, t: dict, basil: bool, fast: bool) -> dict:
        rel = self.rel
        status = rel.subscription_status(j, h)
        ended = status in ENDED
        at = max(created, min(created + t["_cancel_days"] * DAY, END_EPOCH - DAY)) if ended else END_EPOCH
        start, end = period_around(created, PLAN_MONTHS[t["_plan"]], at)
        sid = self.sub_id(j + 1)
        latest = rel.latest_invoice(j)
        trial = status == "trialing"
        record = {
            "id": sid,
            "object": "subscription",
            "billing_cycle_anchor": created,
            "cancel_at_period_end": False,
            "canceled_at": at if ended else None,
            "cancellation_details": {
                "comment": None,
                "feedback": t["_feedback"] if ended else None,
                "reason": "cancellation_requested" if ended else None,
            },
            "created": created,
            "customer": self.cus_id(rel.customer_of_subscription(j) + 1),
            "ended_at": at if ended else None,
            "items": self.items(j, sid, created, t["_plan"], t["quantity"], (start, end) if basil else None, fast),
            "latest_invoice": None if latest is None else self.inv_id(latest + 1),
            "start_date": created,
            "status": status,
            "trial_end": end if trial else None,
            "trial_start": start if trial else None,
        }
        if not basil:
            record["current_period_end"] = end
            record["current_period_start"] = start
        return record

    # -- invoices ------------------------------------------------------------------------------------

    def invoice_template(self, d: Draw) -> dict:
        return {
            "account_country": "US",
            "account_name": f"{self.acct.name.title()} Inc.",
            "account_tax_ids": None,
            "amount_shipping": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "collection_method": "charge_automatically",
            "currency": "usd",
            "custom_fields": None,
            "customer_address": None,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": None,
            "default_source": None,
            "default_tax_rates": [],
            "description": None,
            "discount": None,
            "discounts": [],
            "due_date": None,
            "footer": None,
            "from_invoice": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "livemode": self.acct.livemode,
            "metadata": {},
            "next_payment_attempt": None,
            "on_behalf_of": None,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "quote": None,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "subscription_details": {"metadata": {}},
            "tax": None,
            "test_clock": None,
            "total_discount_amounts": [],
            "total_tax_amounts": [],
            "transfer_data": None,
            "_amount": d.money(1000, 250_000, 500),
            "_description": d.pick(INVOICE_DESCRIPTIONS),
        }

    def lines(
        self,
        iid: str,
        i: int,
        amount: int,
        sub: tuple[str, str, int, int] | None,
        created: int,
        start: int,
        description: str,
        basil: bool = False,
        fast: bool = False,
    ) -> dict:
        """An invoice's `lines`; `sub` is (subscription id, item id, plan, quantity) for a renewal."""
        acct = self.acct
        sid: str | None = None
        item: str | None = None
        line: dict[str, Any] = {
            "id": self.line_id(i + 1),
            "object": "line_item",
            "amount": amount,
            "currency": "usd",
            "description": description,
            "discount_amounts": [],
            "discountable": True,
            "discounts": [],
            "invoice": iid,
            "livemode": acct.livemode,
            "metadata": {},
            "period": {"end": created, "start": start if sub else created},
            "quantity": 1,
            "tax_rates": [],
        }
        unit = amount
        plan = 0
        if sub is not None:
            sid, item, plan, quantity = sub
            unit = PLANS[plan][1]
            line["description"] = f"{quantity} {PLAN_LINE_DESCRIPTIONS[plan]}"
            line["quantity"] = quantity
        if basil:
            details = {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
            }
            if sub is not None:
                line["parent"] = {
                    "invoice_item_details": None,
                    "subscription_item_details": {**details, "subscription": sid, "subscription_item": item},
                    "type": "subscription_item_details",
                }
            else:
                line["parent"] = {
                    "invoice_item_details": {
                        **details,
                        "invoice_item": self.invoice_item_id(i + 1),
                        "subscription": None,
                    },
                    "subscription_item_details": None,
                    "type": "invoice_item_details",
                }
            price = acct.prices[plan]
            line["pricing"] = {
                "price_details": {"price": price["id"], "product": price["product"]} if sub else None,
                "type": "price_details",
                "unit_amount_decimal": str(unit),
            }
            line["taxes"] = []
        else:
            line.update(
                amount_excluding_tax=amount,
                invoice_item=None if sub else self.invoice_item_id(i + 1),
                plan=(acct.plan_fragments[plan] if fast else acct.plans[plan]) if sub else None,
                price=(acct.price_fragments[plan] if fast else acct.prices[plan]) if sub else None,
                proration=False,
                proration_details={"credited_items": None},
                subscription=sid if sub else None,
                subscription_item=item if sub else None,
                tax_amounts=[],
                type="subscription" if sub else "invoiceitem",
                unit_amount_excluding_tax=str(unit),
            )
        return {
            "object": "list",
            "data": [line],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{iid}/lines",
        }

    def invoice_own(self, i: int, h: int, created: int, t: dict, basil: bool, fast: bool) -> dict:
        rel = self.rel
        amount, j, plan, quantity = rel.invoice_amount(i, h)
        c = rel.customer_of_subscription(rel.subscription_of_invoice(i))
        status = rel.invoice_status(i, h)
        ch_lo, ch_hi = rel.charges_of_invoice(i)
        charged = status in LINKED_INVOICE and ch_lo < ch_hi
        customer = rel.template("customers", c)
        first_invoice = rel.first_invoice_of_customer(c)
        sid = None if j is None else self.sub_id(j + 1)
        line_sub = None if j is None or sid is None else (sid, self.item_id(j + 1), plan, quantity)
        start = add_months(created, -PLAN_MONTHS[plan]) if sid else created
        iid = self.inv_id(i + 1)
        paid = status == "paid"
        draft = status == "draft"
        url = f"acct_1{self.acct.tag}/{self.acct.mode}_{iid[3:]}"
        if j is None:
            reason = "manual"
        else:
            reason = "subscription_create" if i == rel.invoices_of_subscription(j)[0] else "subscription_cycle"
        record = {
            "id": iid,
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid or status == "void" else amount,
            "attempt_count": 1 if charged else 0,
            "attempted": charged,
            "auto_advance": status in ("draft", "open"),
            "billing_reason": reason,
            "created": created,
            "customer": self.cus_id(c + 1),
            "customer_email": self.customer_email(c, customer),
            "customer_name": customer["name"],
            "effective_at": None if draft else created + 3600,
            "ending_balance": None if draft else 0,
            "hosted_invoice_url": None if draft else f"https://invoice.stripe.com/i/{url}",
            "invoice_pdf": None if draft else f"https://pay.stripe.com/invoice/{url}/pdf",
            "lines": self.lines(iid, i, amount, line_sub, created, start, t["_description"], basil, fast),
            "number": None if draft else f"{customer['invoice_prefix']}-{i - first_invoice + 1:04d}",
            "period_end": created,
            "period_start": start,
            "status": status,
            "status_transitions": {
                "finalized_at": None if draft else created + 3600,
                "marked_uncollectible_at": created + 30 * DAY if status == "uncollectible" else None,
                "paid_at": created + 7200 if paid else None,
                "voided_at": created + 5 * DAY if status == "void" else None,
            },
            "subtotal": amount,
            "subtotal_excluding_tax": amount,
            "total": amount,
            "total_excluding_tax": amount,
            "webhooks_delivered_at": created,
        }
        if basil:
            record["parent"] = (
                {
                    "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": sid},
                    "type": "subscription_details",
                }
                if sid
                else None
            )
        else:
            record["charge"] = self.ch_id(ch_lo + 1) if charged else None
            record["paid"] = paid
            # Paid without a charge of ours: marked paid outside Stripe.
            record["paid_out_of_band"] = paid and not charged
            record["payment_intent"] = self.pi_id(ch_lo + 1) if charged else None
            record["subscription"] = sid
        return record

    # -- charges -------------------------------------------------------------------------------------

    def charge_template(self, d: Draw) -> dict:
        brand, funding = d.pick(CARD_BRANDS)
        first, last = person_name(d)
        return {
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "billing_details": {
                "address": {
                    "city": None,
                    "country": None,
                    "line1": None,
                    "line2": None,
                    "postal_code": f"{d.below(100000):05d}",
                    "state": None,
                },
                "email": None,
                "name": f"{first} {last}",
                "phone": None,
            },
            "calculated_statement_descriptor": f"{self.acct.name.upper()}.EXAMPLE",
            "currency": "usd",
            "destination": None,
            "dispute": None,
            "disputed": False,
            "failure_balance_transaction": None,
            "fraud_details": {},
            "livemode": self.acct.livemode,
            "metadata": {},
            "on_behalf_of": None,
            "payment_method_details": {
                "card": {
                    "amount_authorized": None,
                    "brand": brand,
                    "checks": {
                        "address_line1_check": None,
                        "address_postal_code_check": "pass",
                        "cvc_check": "pass",
                    },
                    "country": "US",
                    "exp_month": 1 + d.below(12),
                    "exp_year": 2027 + d.below(6),
                    "fingerprint": b62(d.next() << 64 | d.next(), 16),
                    "funding": funding,
                    "installments": None,
                    "last4": f"{d.below(10000):04d}",
                    "mandate": None,
                    "network": brand,
                    "three_d_secure": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": None,
            "receipt_number": None,
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "transfer_data": None,
            "transfer_group": None,
            "_amount": d.money(500, 50_000, 100),
            "_decline": d.below(len(DECLINES)),
            "_risk": d.below(65),
        }

    def charge_fields(
        self,
        k: int,
        created: int,
        t: dict,
        amount: int,
        status: str,
        customer: str | None,
        invoice: str | None,
        basil: bool = False,
    ) -> dict:
        succeeded = status == "succeeded"
        failed = status == "failed"
        code, decline, message = DECLINES[t["_decline"]]
        cid = self.ch_id(k + 1)
        refunded = succeeded and is_refunded(k + 1)
        record = {
            "id": cid,
            "object": "charge",
            "amount": amount,
            "amount_refunded": amount if refunded else 0,
            "refunded": refunded,
            "amount_captured": amount if succeeded else 0,
            "balance_transaction": self.txn_id(k + 1) if succeeded else None,
            "captured": succeeded,
            "created": created,
            "customer": customer,
            "description": "Subscription update" if invoice else "Payment",
            "failure_code": code if failed else None,
            "failure_message": message if failed else None,
            "outcome": {
                "network_status": "declined_by_network" if failed else "approved_by_network",
                "reason": decline if failed else None,
                "risk_level": "normal",
                "risk_score": t["_risk"],
                "seller_message": (
                    "The bank did not return any further details with this decline." if failed else "Payment complete."
                ),
                "type": "issuer_declined" if failed else "authorized",
            },
            "paid": succeeded,
            "payment_intent": self.pi_id(k + 1),
            "payment_method": self.pm_id(k + 1),
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{cid[3:]}" if succeeded else None,
            "status": status,
        }
        if not basil:
            record["invoice"] = invoice
        return record

    def charge_own(self, k: int, h: int, created: int, t: dict, basil: bool, fast: bool) -> dict:
        rel = self.rel
        i = rel.invoice_of_charge(k)
        invoice_hash = rel.hash("invoices", i)
        invoice_status = rel.invoice_status(i, invoice_hash)
        c = rel.customer_of_subscription(rel.subscription_of_invoice(i))
        # An invoice's first charge is its payment attempt; the rest of the range are standalone charges.
        linked = invoice_status in LINKED_INVOICE and rel.charges_of_invoice(i)[0] == k
        if linked:
            amount = rel.invoice_amount(i, invoice_hash)[0]
            status = "succeeded" if invoice_status == "paid" else "failed"
        else:
            amount, status = t["_amount"], CHARGE_STATUS_TABLE[(h >> 16) % 100]
        invoice = self.inv_id(i + 1) if linked else None
        return self.charge_fields(k, created, t, amount, status, self.cus_id(c + 1), invoice, basil)


# -- accounts -------------------------------------------------------------------------------------------


@dataclass
class StoredEvent:
    index: int
    id: str
    type: str
    created: int
    entity: str
    record: dict  # canonical object at the time of the event
    previous: dict | None
    request_id: str | None
    idempotency_key: str | None
    pending_webhooks: int


@dataclass
class StripeAccount:
    name: str
    key: str
    livemode: bool
    sizes: dict[str, int]
    tag: str
    codecs: dict[str, IdCodec] = field(default_factory=dict)
    shapes: dict[str, Shape] = field(default_factory=dict)
    tables: dict[str, VirtualTable] = field(default_factory=dict)
    touched: dict[str, set[int]] = field(default_factory=dict)  # ids in the overlay (changed or deleted)
    prices: list[dict] = field(default_factory=list)
    plans: list[dict] = field(default_factory=list)
    products: list[dict] = field(default_factory=list)
    # The same, pre-serialised: list pages splice them instead of serialising them per record.
    price_fragments: list[orjson.Fragment] = field(default_factory=list)
    plan_fragments: list[orjson.Fragment] = field(default_factory=list)
    rel: Relations = field(init=False)
    builders: Builders = field(init=False)
    step: int = 0
    future_customers: list[int] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)
    events_dropped: int = 0
    idempotency: dict[str, tuple[bytes, int, bytes]] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"


class Stripe(Simulator):
    name = "stripe"
    # docs.stripe.com/rate-limits: per account, 100 operations/s in live mode and 25/s in test mode.
    default_rate_limits = {
        "live_read": (100, 1.0),
        "live_write": (100, 1.0),
        "test_read": (25, 1.0),
        "test_write": (25, 1.0),
    }
    webhook_retry_delays = TEST_RETRY_DELAYS

    def __init__(self, sandbox: Any, seed: int, scale: int) -> None:
        super().__init__(sandbox, seed, scale)
        self.accounts: dict[str, StripeAccount] = {}
        self._by_key: dict[str, StripeAccount] = {}
        self._request_counter = 0
        self._emit_lock = threading.Lock()
        self._endpoints_made = 0  # never decreases: a deleted endpoint's id is never handed out again
        self._endpoint_codec = IdCodec("we", tag62(seed, "stripe", "we", width=10), stream_seed(seed, "we"))
        self._request_codec = IdCodec("req", "", stream_seed(seed, "req"), short=True)
        for name, (key, share, livemode) in ACCOUNTS.items():
            self.add_account(name, key, max(1, int(scale * share)), livemode)

    # -- data ----------------------------------------------------------------------------------

    def add_account(self, name: str, key: str, customers: int, livemode: bool = False) -> StripeAccount:
        subscriptions = max(1, customers * 3 // 5)
        invoices = max(1, subscriptions * 3)
        sizes = {
            "customers": customers,
            "subscriptions": subscriptions,
            "invoices": invoices,
            "charges": max(1, invoices * 9 // 10),
        }
        tag = tag62(self.seed, self.name, name, "account")
        acct = StripeAccount(name, key, livemode, sizes, tag)
        for entity, prefix in CODEC_PREFIXES.items():
            short = entity in ("customers", "items", "products")
            key_seed = stream_seed(self.seed, self.name, name, entity, "ids")
            acct.codecs[entity] = IdCodec(prefix, tag, key_seed, short)
        self._build_catalog(acct)
        streams = {entity: stream_seed(self.seed, self.name, name, entity) for entity in ENTITIES}
        acct.rel = Relations(acct, streams)
        builders = Builders(acct, acct.rel, self.seed)
        for entity in ENTITIES:
            shape = builders.shape(entity)
            acct.shapes[entity] = shape
            acct.tables[entity] = VirtualTable(entity, sizes[entity], streams[entity], shape, dumps=dumps)
            acct.touched[entity] = set()
        acct.builders = builders
        self.accounts[name] = acct
        self._by_key[key] = acct
        return acct

    def _build_catalog(self, acct: StripeAccount) -> None:
        for n, (product, amount, interval, _) in enumerate(PLANS):
            price_id = acct.codecs["prices"].encode(n + 1)
            product_id = acct.codecs["products"].encode(n + 1)
            acct.products.append(
                {
                    "id": product_id,
                    "object": "product",
                    "active": True,
                    "created": START_EPOCH + n,
                    "default_price": price_id,
                    "description": None,
                    "images": [],
                    "livemode": acct.livemode,
                    "metadata": {},
                    "name": product,
                    "package_dimensions": None,
                    "shippable": None,
                    "statement_descriptor": None,
                    "tax_code": None,
                    "type": "service",
                    "unit_label": None,
                    "updated": START_EPOCH,
                    "url": None,
                }
            )
            acct.prices.append(
                {
                    "id": price_id,
                    "object": "price",
                    "active": True,
                    "billing_scheme": "per_unit",
                    "created": START_EPOCH + n,
                    "currency": "usd",
                    "custom_unit_amount": None,
                    "livemode": acct.livemode,
                    "lookup_key": None,
                    "metadata": {},
                    "nickname": product,
                    "product": product_id,
                    "recurring": {
                        "aggregate_usage": None,
                        "interval": interval,
                        "interval_count": 1,
                        "meter": None,
                        "trial_period_days": None,
                        "usage_type": "licensed",
                    },
                    "tax_behavior": "unspecified",
                    "tiers_mode": None,
                    "transform_quantity": None,
                    "type": "recurring",
                    "unit_amount": amount,
                    "unit_amount_decimal": str(amount),
                }
            )
            acct.plans.append(
                {
                    "id": price_id,
                    "object": "plan",
                    "active": True,
                    "aggregate_usage": None,
                    "amount": amount,
                    "amount_decimal": str(amount),
                    "billing_scheme": "per_unit",
                    "created": START_EPOCH,
                    "currency": "usd",
                    "interval": interval,
                    "interval_count": 1,
                    "livemode": acct.livemode,
                    "metadata": {},
                    "meter": None,
                    "nickname": product,
                    "product": product_id,
                    "tiers_mode": None,
                    "transform_usage": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                }
            )
        acct.price_fragments = [orjson.Fragment(dumps(price)) for price in acct.prices]
        acct.plan_fragments = [orjson.Fragment(dumps(plan)) for plan in acct.plans]

    # -- counts and mutations ------------------------------------------------------------------

    def counts(self, account: str | None = None, period: str | None = None) -> dict[str, int]:
        window = Window()
        if period:
            start = datetime.fromisoformat(f"{period}-01T00:00:00+00:00")
            end = (start + timedelta(days=32)).replace(day=1)
            window = Window(created_after=start - timedelta(seconds=1), created_before=end)
        totals = dict.fromkeys(ENTITIES, 0)
        for acct in self.accounts.values():
            if account and acct.name != account:
                continue
            self._apply_ties(acct)
            for entity, table in acct.tables.items():
                totals[entity] += len(table.query(window))
        return totals

    def _now(self, tick: bool = True) -> int:
        moment = self.sandbox.clock.tick() if tick else self.sandbox.clock.now()
        return epoch(moment.replace(microsecond=0))

    def _put(self, acct: StripeAccount, entity: str, record_id: int, record: dict, created: int) -> None:
        acct.touched[entity].add(record_id)
        moment = datetime.fromtimestamp(created, UTC)
        acct.tables[entity].put(record_id, record, moment, moment)

    def _id_of(self, acct: StripeAccount, entity: str, value: int | str) -> int | None:
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return acct.codecs[entity].decode(value)

    def _random_existing(
        self, acct: StripeAccount, entity: str, d: Draw, accept: Callable[[dict], bool]
    ) -> dict | None:
        table = acct.tables[entity]
        for _ in range(60):
            candidate = table.get(1 + d.below(max(table.next_id - 1, 1)))
            if candidate is not None and accept(candidate):
                return candidate
        return None

    def mutate(
        self,
        account: str,
        entity: str,
        creates: int = 0,
        updates: int = 0,
        deletes: int = 0,
        update_ids: list[int] | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict:
        acct = self.accounts[account]
        if entity not in ENTITIES:
            raise KeyError(entity)
        events: list[PendingEvent] = []
        table = acct.tables[entity]
        with self._lock:
            acct.step += 1
            now = self._now()
            d = Draw(table.stream ^ 0xC10C, acct.step)
            result: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
            # Customers promised by a child-before-parent step arrive now, one step after their children.
            if acct.future_customers:
                for record_id in acct.future_customers:
                    record = self._new_customer(acct, record_id, now, {})
                    events.append(("customer.created", "customers", record, None))
                acct.future_customers = []
            for _ in range(creates):
                record_id = table.allocate_id()
                record = self._create(acct, entity, record_id, now, d, events)
                result["created"].append(record["id"])
            candidates = [rid for rid in (self._id_of(acct, entity, v) for v in update_ids or []) if rid]
            if entity == "invoices" and not candidates:
                # Invoices the clock opened get paid by later steps, as Stripe's auto-advance would.
                for rid in sorted(acct.touched["invoices"]):
                    record = table.get(rid)
                    if record is not None and record["status"] in ("draft", "open"):
                        candidates.append(rid)
                candidates = candidates[:updates]
            attempts = 0
            changed: set[int] = set()
            while len(changed) < updates and attempts < updates * 20 + 20:
                attempts += 1
                record_id = candidates.pop(0) if candidates else 1 + d.below(max(table.next_id - 1, 1))
                current = table.get(record_id)
                if current is None or record_id in changed or current["id"] in result["created"]:
                    continue
                self._update(acct, entity, record_id, current, now, d, events)
                changed.add(record_id)
                result["updated"].append(current["id"])
            attempts = 0
            removed = 0
            while removed < deletes and attempts < deletes * 20 + 20:
                attempts += 1
                record_id = 1 + d.below(max(table.next_id - 1, 1))
                current = table.get(record_id)
                if current is None or entity == "charges":
                    continue
                if entity == "subscriptions" and current["status"] in ENDED:
                    continue
                outcome = self._delete(acct, entity, record_id, current, now, events)
                result.setdefault(outcome, []).append(current["id"])
                removed += 1
        self._publish(acct, events, request_id, idempotency_key)
        return result

    def _new_customer(self, acct: StripeAccount, record_id: int, now: int, params: dict[str, Any]) -> dict:
        table = acct.tables["customers"]
        index = record_id - 1
        record = acct.shapes["customers"](index, Draw(table.stream, index), datetime.fromtimestamp(now, UTC))
        record.update({k: v for k, v in params.items() if k in ("email", "name", "description", "phone")})
        if "metadata" in params:
            record["metadata"] = {k: v for k, v in params["metadata"].items() if v != ""}
        self._put(acct, "customers", record_id, record, now)
        return record

    def _pick_customer(self, acct: StripeAccount, d: Draw) -> str:
        customers = acct.tables["customers"]
        if self.faults.child_before_parent:
            record_id = customers.allocate_id()
            acct.future_customers.append(record_id)
            return acct.codecs["customers"].encode(record_id)
        found = self._random_existing(acct, "customers", d, lambda r: True)
        return found["id"] if found else acct.codecs["customers"].encode(1)

    def _create(
        self,
        acct: StripeAccount,
        entity: str,
        record_id: int,
        now: int,
        d: Draw,
        events: list[PendingEvent],
    ) -> dict:
        if entity == "customers":
            record = self._new_customer(acct, record_id, now, {})
            events.append(("customer.created", entity, record, None))
            return record
        table = acct.tables[entity]
        index = record_id - 1
        shape = acct.shapes[entity]
        h = record_hash(table.stream, index)
        template = shape.template(h)
        if entity == "subscriptions":
            plan, quantity = template["_plan"], template["quantity"]
            sid = acct.codecs["subscriptions"].encode(record_id)
            months = 12 if PLANS[plan][2] == "year" else 1
            record = shape(index, Draw(table.stream, index), datetime.fromtimestamp(now, UTC))
            record.update(
                customer=self._pick_customer(acct, d),
                status="active",
                canceled_at=None,
                ended_at=None,
                cancellation_details={"comment": None, "feedback": None, "reason": None},
                latest_invoice=None,
                current_period_start=now,
                current_period_end=add_months(now, months),
                billing_cycle_anchor=now,
                start_date=now,
                trial_start=None,
                trial_end=None,
                items=acct.builders.items(index, sid, now, plan, quantity),
            )
            self._put(acct, entity, record_id, record, now)
            events.append(("customer.subscription.created", entity, record, None))
            return record
        if entity == "invoices":
            sub = None
            if not self.faults.child_before_parent:
                sub = self._random_existing(acct, "subscriptions", d, lambda r: r["status"] not in ENDED)
            customer = sub["customer"] if sub else self._pick_customer(acct, d)
            line_sub = None
            amount = template["_amount"]
            if sub:
                item = sub["items"]["data"][0]
                plan = next(n for n, p in enumerate(acct.prices) if p["id"] == item["price"]["id"])
                line_sub = (sub["id"], item["id"], plan, item["quantity"])
                amount = item["price"]["unit_amount"] * item["quantity"]
            record = shape(index, Draw(table.stream, index), datetime.fromtimestamp(now, UTC))
            iid = record["id"]
            months = 12 if line_sub and PLANS[line_sub[2]][2] == "year" else 1
            start = add_months(now, -months) if sub else now
            record.update(
                amount_due=amount,
                amount_paid=0,
                amount_remaining=amount,
                attempt_count=0,
                attempted=False,
                auto_advance=True,
                billing_reason="subscription_cycle" if sub else "manual",
                charge=None,
                customer=customer,
                customer_email=self._customer_field(acct, customer, "email"),
                customer_name=self._customer_field(acct, customer, "name"),
                effective_at=now,
                ending_balance=0,
                hosted_invoice_url=f"https://invoice.stripe.com/i/acct_1{acct.tag}/{acct.mode}_{iid[3:]}",
                invoice_pdf=f"https://pay.stripe.com/invoice/acct_1{acct.tag}/{acct.mode}_{iid[3:]}/pdf",
                number=f"{acct.tag[:8].upper()}-{record_id:04d}",
                paid=False,
                paid_out_of_band=False,
                payment_intent=None,
                period_end=now,
                period_start=start,
                status="open",
                subscription=sub["id"] if sub else None,
                subtotal=amount,
                subtotal_excluding_tax=amount,
                total=amount,
                total_excluding_tax=amount,
                status_transitions={
                    "finalized_at": now,
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
                lines=acct.builders.lines(iid, index, amount, line_sub, now, start, template["_description"]),
                webhooks_delivered_at=now,
            )
            self._put(acct, entity, record_id, record, now)
            events.append(("invoice.created", entity, record, None))
            events.append(("invoice.finalized", entity, record, None))
            sub_record_id = acct.codecs["subscriptions"].decode(sub["id"]) if sub else None
            if sub and sub_record_id is not None:
                updated = {**sub, "latest_invoice": iid}
                times = acct.tables["subscriptions"].times(sub_record_id)
                self._put(acct, "subscriptions", sub_record_id, updated, epoch(times[0]) if times else now)
                previous = {"latest_invoice": sub["latest_invoice"]}
                events.append(("customer.subscription.updated", "subscriptions", updated, previous))
            return record
        # A standalone charge (invoice charges come from paying an invoice).
        return self._new_charge(acct, record_id, now, template["_amount"], self._pick_customer(acct, d), None, events)

    def _new_charge(
        self,
        acct: StripeAccount,
        record_id: int,
        now: int,
        amount: int,
        customer: str,
        invoice: str | None,
        events: list[PendingEvent],
    ) -> dict:
        table = acct.tables["charges"]
        index = record_id - 1
        shape = acct.shapes["charges"]
        template = shape.template(record_hash(table.stream, index))
        record = {
            **acct.builders.charge_fields(index, now, template, amount, "succeeded", customer, invoice),
            **shape.slot(record_hash(table.stream, index))[1],
        }
        self._put(acct, "charges", record_id, record, now)
        events.append(("charge.succeeded", "charges", record, None))
        return record

    def _customer_field(self, acct: StripeAccount, customer: str, key: str) -> str | None:
        record_id = acct.codecs["customers"].decode(customer)
        record = acct.tables["customers"].get(record_id) if record_id else None
        return record.get(key) if record else None

    def _update(
        self,
        acct: StripeAccount,
        entity: str,
        record_id: int,
        current: dict,
        now: int,
        d: Draw,
        events: list[PendingEvent],
    ) -> None:
        record = dict(current)
        types: list[str]
        if entity == "customers":
            first, last = person_name(d)
            choice = d.below(3)
            if choice == 0:
                record["email"] = f"{first.lower()}.{last.lower()}{record_id}@{d.pick(EMAIL_DOMAINS)}"
            elif choice == 1:
                record["name"] = f"{first} {last}"
            else:
                record["metadata"] = {**record.get("metadata", {}), "segment": d.pick(SEGMENTS)}
            types = ["customer.updated"]
        elif entity == "subscriptions":
            status = record["status"]
            if status in ("active", "trialing", "incomplete", "paused") and d.chance(0.5):
                record["status"] = "past_due" if status == "active" else "active"
            elif status in ("past_due", "unpaid"):
                record["status"] = "active"
            else:
                items = record["items"]
                item = {**items["data"][0], "quantity": items["data"][0]["quantity"] + 1}
                record["items"] = {**items, "data": [item]}
            types = ["customer.subscription.updated"]
        elif entity == "invoices":
            status = record["status"]
            types = ["invoice.updated"]
            if status == "draft":
                record.update(
                    status="open",
                    number=record["number"] or f"{acct.tag[:8].upper()}-{record_id:04d}",
                    effective_at=now,
                    status_transitions={**record["status_transitions"], "finalized_at": now},
                )
                types = ["invoice.finalized", "invoice.updated"]
            elif status == "open":
                charges = acct.tables["charges"]
                charge = self._new_charge(
                    acct,
                    charges.allocate_id(),
                    now,
                    record["amount_due"],
                    record["customer"],
                    record["id"],
                    events,
                )
                record.update(
                    status="paid",
                    paid=True,
                    amount_paid=record["amount_due"],
                    amount_remaining=0,
                    attempted=True,
                    attempt_count=record["attempt_count"] + 1,
                    charge=charge["id"],
                    payment_intent=charge["payment_intent"],
                    auto_advance=False,
                    status_transitions={**record["status_transitions"], "paid_at": now},
                )
                types = ["invoice.paid", "invoice.payment_succeeded", "invoice.updated"]
            else:
                record["metadata"] = {**record.get("metadata", {}), "reviewed": str(d.below(1000))}
        else:
            if record["status"] == "succeeded" and not record["refunded"]:
                record.update(refunded=True, amount_refunded=record["amount"])
                types = ["charge.refunded"]
            else:
                record["description"] = f"{record.get('description') or 'Payment'} (note {d.below(1000)})"
                types = ["charge.updated"]
        previous = {k: current.get(k) for k in record if record[k] != current.get(k)}
        times = acct.tables[entity].times(record_id)
        self._put(acct, entity, record_id, record, epoch(times[0]) if times else now)
        for event_type in types:
            events.append((event_type, entity, record, previous if event_type.endswith(".updated") else None))

    def _delete(
        self,
        acct: StripeAccount,
        entity: str,
        record_id: int,
        current: dict,
        now: int,
        events: list[PendingEvent],
    ) -> str:
        table = acct.tables[entity]
        times = table.times(record_id)
        created = epoch(times[0]) if times else now
        if entity == "customers":
            acct.touched[entity].add(record_id)
            table.delete(record_id)
            events.append(("customer.deleted", entity, current, None))
            # Stripe cancels a deleted customer's subscriptions at once.
            for sub_record_id in self._subscriptions_of(acct, current["id"], record_id):
                sub = acct.tables["subscriptions"].get(sub_record_id)
                if sub is not None and sub["status"] not in ENDED:
                    self._delete(acct, "subscriptions", sub_record_id, sub, now, events)
            return "deleted"
        if entity == "subscriptions":
            record = {
                **current,
                "status": "canceled",
                "canceled_at": now,
                "ended_at": now,
                "cancellation_details": {
                    "comment": None,
                    "feedback": None,
                    "reason": "cancellation_requested",
                },
            }
            self._put(acct, entity, record_id, record, created)
            events.append(("customer.subscription.deleted", entity, record, None))
            return "canceled"
        if current["status"] == "draft":
            acct.touched[entity].add(record_id)
            table.delete(record_id)
            events.append(("invoice.deleted", entity, current, None))
            return "deleted"
        record = {
            **current,
            "status": "void",
            "amount_remaining": 0,
            "auto_advance": False,
            "status_transitions": {**current["status_transitions"], "voided_at": now},
        }
        self._put(acct, entity, record_id, record, created)
        events.append(("invoice.voided", entity, record, None))
        events.append(("invoice.updated", entity, record, {"status": current["status"]}))
        return "voided"

    def _subscriptions_of(self, acct: StripeAccount, customer: str, record_id: int) -> list[int]:
        ids: list[int] = []
        if acct.tables["customers"].is_base(record_id):
            lo, hi = acct.rel.customer_ranges(record_id - 1)["subscriptions"]
            ids.extend(range(lo + 1, hi + 1))
        table = acct.tables["subscriptions"]
        for rid in sorted(acct.touched["subscriptions"]):
            if rid not in ids and not table.is_base(rid):
                record = table.get(rid)
                if record is not None and record["customer"] == customer:
                    ids.append(rid)
        return ids

    def advance(self, seconds: float) -> None:
        hours = seconds / 3600
        for name in self.accounts:
            self.mutate(
                name,
                "customers",
                creates=math.ceil(hours * 2),
                updates=math.ceil(hours),
                deletes=1 if hours >= 24 else 0,
            )
            self.mutate(
                name,
                "subscriptions",
                creates=math.ceil(hours),
                updates=math.ceil(hours / 2),
                deletes=1 if hours >= 6 else 0,
            )
            self.mutate(name, "invoices", creates=math.ceil(hours * 2), updates=math.ceil(hours * 2))
            self.mutate(name, "charges", creates=math.ceil(hours / 2), updates=math.ceil(hours / 4))

    # -- events and webhooks -------------------------------------------------------------------

    def _publish(
        self,
        acct: StripeAccount,
        events: list[PendingEvent],
        request_id: str | None,
        idempotency_key: str | None,
    ) -> None:
        for event_type, entity, record, previous in events:
            with self._lock:
                targets = [
                    s
                    for s in self.subscriptions
                    if s["account"] == acct.name
                    and s["status"] == "enabled"
                    and ("*" in s["enabled_events"] or event_type in s["enabled_events"])
                ]
                index = acct.events_dropped + len(acct.events) + 1
                stored = StoredEvent(
                    index,
                    acct.codecs["events"].encode(index),
                    event_type,
                    self._now(tick=False),
                    entity,
                    record,
                    previous,
                    request_id,
                    idempotency_key,
                    len(targets),
                )
                acct.events.append(stored)
                if len(acct.events) > EVENT_RETENTION:
                    drop = len(acct.events) - EVENT_RETENTION
                    del acct.events[:drop]
                    acct.events_dropped += drop
            for endpoint in targets:
                self._deliver(acct, endpoint, stored)

    def _render(self, entity: str, record: dict, version: str) -> dict:
        return to_basil(entity, record) if is_basil(version) else record

    def _event_payload(self, acct: StripeAccount, event: StoredEvent, version: str) -> dict:
        data: dict[str, Any] = {"object": self._render(event.entity, event.record, version)}
        if event.previous is not None:
            previous = event.previous
            if is_basil(version):
                previous = {k: v for k, v in previous.items() if k not in LEGACY_ONLY.get(event.entity, ())}
            data["previous_attributes"] = previous
        return {
            "id": event.id,
            "object": "event",
            "api_version": version,
            "created": event.created,
            "data": data,
            "livemode": acct.livemode,
            "pending_webhooks": event.pending_webhooks,
            "request": {"id": event.request_id, "idempotency_key": event.idempotency_key},
            "type": event.type,
        }

    def _deliver(self, acct: StripeAccount, endpoint: dict, event: StoredEvent) -> None:
        payload = self._event_payload(acct, event, endpoint["api_version"] or DEFAULT_API_VERSION)
        secret = endpoint["secret"]

        def sign(body: bytes) -> dict[str, str]:
            # Signed when sent, with the real clock: receivers check t against their own time.
            return {
                "Stripe-Signature": stripe_signature(secret, body, int(time.time())),
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }

        with self._emit_lock:
            # emit() reads the class-wide schedule; live and test accounts retry on different ones.
            self.webhook_retry_delays = LIVE_RETRY_DELAYS if acct.livemode else TEST_RETRY_DELAYS  # type: ignore[misc]
            self.emit(endpoint["url"], payload, sign, event.id)

    # -- HTTP plumbing ---------------------------------------------------------------------------

    def _request_id(self) -> str:
        with self._lock:
            self._request_counter += 1
            return self._request_codec.encode(self._request_counter)

    def _error_response(self, exc: StripeError, headers: dict[str, str] | None = None, mode: str = "test") -> Response:
        request_id = (headers or {}).get("Request-Id") or self._request_id()
        body: dict[str, Any] = {"message": exc.message, "type": exc.type}
        if exc.code:
            body["code"] = exc.code
            body["doc_url"] = f"https://stripe.com/docs/error-codes/{exc.code.replace('_', '-')}"
        if exc.param:
            body["param"] = exc.param
        if exc.status < 500:
            body["request_log_url"] = f"https://dashboard.stripe.com/{mode}/logs/{request_id}"
        out = {**(headers or {}), "Request-Id": request_id}
        if exc.status == 401:
            out["WWW-Authenticate"] = 'Basic realm="Stripe"'
        return Response(dumps({"error": body}), status_code=exc.status, headers=out, media_type="application/json")

    def error(self, status: int, message: str) -> Response:
        if status >= 500:
            return self._error_response(StripeError(status, message, "api_error"))
        return self._error_response(StripeError(status, message))

    def rate_headers(self, decision: Any, context: str) -> dict[str, str]:
        return {}  # Stripe sends no rate-limit headers

    def too_many_requests(self, headers: dict[str, str]) -> Response:
        exc = StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
        return self._error_response(exc, headers)

    def credentials(self) -> dict[str, Any]:
        return {
            "api_base": self.base_url,
            "api_version": DEFAULT_API_VERSION,
            "accounts": {name: acct.key for name, acct in self.accounts.items()},
            "modes": {name: acct.mode for name, acct in self.accounts.items()},
        }

    def _authenticate(self, request: Request) -> StripeAccount:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip(), validate=True).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at "
                "https://support.stripe.com/.",
            )
        if key.startswith("pk_"):
            raise StripeError(
                401,
                "This API call cannot be made with a publishable API key. Please use a secret API key.",
                code="secret_key_required",
            )
        acct = self._by_key.get(key)
        if acct is None:
            raise StripeError(401, f"Invalid API Key provided: {redact(key)}")
        if key in self.faults.revoked_keys or self.faults.expired_credentials:
            raise StripeError(401, f"Expired API Key provided: {redact(key)}", code="api_key_expired")
        if acct.name in self.faults.suspended_accounts:
            raise StripeError(
                403,
                f"The provided key '{redact(key)}' does not have access to this account: it was deactivated.",
            )
        return acct

    def _version(self, request: Request) -> str:
        version = request.headers.get("stripe-version")
        if not version:
            return DEFAULT_API_VERSION
        if not VERSION_RE.match(version):
            raise StripeError(400, f"Invalid Stripe API version: {version}")
        return version

    async def _handle(self, request: Request, handler: Callable[..., Any], write: bool = False) -> Response:
        request_id = self._request_id()
        headers = {"Request-Id": request_id}
        mode = "test"
        try:
            acct = self._authenticate(request)
            mode = acct.mode
            self._apply_ties(acct)
            version = self._version(request)
            failure, _ = await self.gate(acct.name, f"{acct.mode}_{'write' if write else 'read'}")
            if failure is not None:
                failure.headers["Request-Id"] = request_id
                return failure
            headers["Stripe-Version"] = version
            return await handler(request, acct, version, headers)
        except StripeError as exc:
            return self._error_response(exc, headers, mode)

    def _apply_ties(self, acct: StripeAccount) -> None:
        # The fault is switched at run time; creation times of base records follow it everywhere at once.
        for table in acct.tables.values():
            table.ties = self.faults.timestamp_ties

    def _ok(self, raw: bytes, headers: dict[str, str], listing: bool = False) -> Response:
        return self.raw_body(raw, headers=headers, listing=listing)

    # -- reading -------------------------------------------------------------------------------

    def _serve(self, acct: StripeAccount, entity: str, record: dict, version: str) -> dict:
        rendered = self._render(entity, record, version)
        record_id = acct.codecs[entity].decode(record.get("id", ""))
        if record_id is None or not self.faults.is_malformed(acct.tables[entity].stream, record_id):
            return rendered
        broken = dict(rendered)
        variant = record_id % 3
        if variant == 0:
            broken.pop("id")
        elif variant == 1:
            broken["created"] = datetime.fromtimestamp(record["created"], UTC).isoformat()
        else:
            broken["livemode"] = "false"
        return broken

    def _page_json(self, acct: StripeAccount, entity: str, ids: list[int], version: str) -> bytes:
        """A page's records as the body of a JSON array: base records spliced, touched ones serialised."""
        table = acct.tables[entity]
        touched = acct.touched[entity]
        if self.faults.malformed_rate > 0:
            records = [r for r in (table.get(i) for i in ids) if r is not None]
            return b",".join(dumps(self._serve(acct, entity, r, version)) for r in records)
        shape = acct.shapes[entity]
        basil = is_basil(version)
        count, stream, ties = table.count, table.stream, table.ties
        parts: list[bytes] = []
        for record_id in ids:
            if record_id in touched:
                record = table.get(record_id)
                if record is None:
                    continue
                if parts:
                    parts.append(b",")
                parts.append(dumps(self._render(entity, record, version)))
                continue
            index = record_id - 1
            if not 0 <= index < count:
                continue
            if parts:
                parts.append(b",")
            tied = index - index % ties if ties > 1 else index
            shape.write_json(
                parts, index, record_hash(stream, index), START_EPOCH + tied * HISTORY_SECONDS // count, basil
            )
        return b"".join(parts)

    def _created_window(self, params: dict[str, Any]) -> Window:
        raw = params.get("created")
        if raw is None:
            return Window()
        bounds = raw if isinstance(raw, dict) else {"eq": raw}
        after: int | None = None
        before: int | None = None
        for op, value in bounds.items():
            name = "created" if op == "eq" else f"created[{op}]"
            if op not in ("eq", "gt", "gte", "lt", "lte"):
                raise unknown_param(name)
            try:
                ts = int(value)
            except (TypeError, ValueError):
                raise StripeError(
                    400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name
                ) from None
            low = {"gt": ts, "gte": ts - 1, "eq": ts - 1}.get(op)
            high = {"lt": ts, "lte": ts + 1, "eq": ts + 1}.get(op)
            if low is not None:
                after = low if after is None else max(after, low)
            if high is not None:
                before = high if before is None else min(before, high)
        return Window(
            created_after=None if after is None else datetime.fromtimestamp(after, UTC),
            created_before=None if before is None else datetime.fromtimestamp(before, UTC),
        )

    def _list_args(self, request: Request, entity: str) -> tuple[dict[str, Any], int, str | None, str | None]:
        params = parse_params(request.query_params.multi_items())
        allowed = ALLOWED_PARAMS[entity]
        for name in params:
            if name == "expand":
                raise StripeError(
                    400,
                    "The sandbox does not simulate `expand`: fetch related objects by id.",
                    param="expand",
                )
            if name not in allowed:
                raise unknown_param(name)
        raw_limit = params.get("limit", "10")
        try:
            limit = int(raw_limit)
        except (TypeError, ValueError):
            raise StripeError(
                400, f"Invalid integer: {raw_limit}", code="parameter_invalid_integer", param="limit"
            ) from None
        if limit < 1:
            raise StripeError(400, "This value must be greater than or equal to 1.", param="limit")
        if limit > 100:
            raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
        after, before = params.get("starting_after"), params.get("ending_before")
        if after and before:
            raise StripeError(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                code="parameters_exclusive",
                param="ending_before",
            )
        return params, limit, after or None, before or None

    def _lookup(self, acct: StripeAccount, entity: str, value: str, param: str) -> int:
        """The record id behind an id given in a parameter; it must have existed (it may be deleted)."""
        record_id = acct.codecs[entity].decode(value) if isinstance(value, str) else None
        if record_id is None or not 1 <= record_id < acct.tables[entity].next_id:
            raise StripeError(400, f"No such {OBJECT_NAME[entity]}: '{value}'", code="resource_missing", param=param)
        return record_id

    def _filtered_view(
        self,
        acct: StripeAccount,
        entity: str,
        window: Window,
        base: tuple[int, int] | None,
        fields: dict[str, str],
    ) -> View:
        """Records in `window` among base indices [lo, hi), plus the new records whose `fields` match."""
        table = acct.tables[entity]
        if base is None:
            return table.query(window)
        lo, hi = base
        parts = (
            [table.query(Window(window.created_after, window.created_before, min_id=lo + 1, max_id=hi))]
            if lo < hi
            else []
        )
        new = table.query(Window(window.created_after, window.created_before, min_id=table.count + 1))
        extra = []
        for record_id in new.overlay:
            record = table.get(record_id)
            if record is not None and all(record.get(k) == v for k, v in fields.items()):
                extra.append(record_id)
        if parts:
            view = parts[0]
            return View(table, view.lo, view.hi, view.holes, sorted(view.overlay + extra), merged=True)
        return View(table, 1, 1, [], extra, merged=True)

    @staticmethod
    def _rank_below(view: View, record_id: int) -> int:
        clamped = min(max(record_id, view.lo), view.hi)
        base = (clamped - view.lo) - bisect.bisect_left(view.holes, clamped)
        return base + bisect.bisect_left(view.overlay, record_id)

    def _walk(
        self,
        view: View,
        after: int | None,
        before: int | None,
        limit: int,
        keep: Callable[[int], bool] | None,
    ) -> tuple[list[int], bool]:
        """One page in Stripe's order (newest first), from a starting_after/ending_before cursor."""
        total = len(view)
        if before is not None:  # newer than the cursor: ascending from it, served newest first
            start = self._rank_below(view, before + 1)
            if keep is None:
                ids = view.ids(start, limit)
                return list(reversed(ids)), start + limit < total
            found: list[int] = []
            position = start
            while position < total and len(found) <= limit:
                chunk = view.ids(position, 200)
                position += len(chunk)
                found.extend(rid for rid in chunk if keep(rid))
            return list(reversed(found[:limit])), len(found) > limit
        end = self._rank_below(view, after) if after is not None else total
        if keep is None:
            start = max(0, end - limit)
            return list(reversed(view.ids(start, end - start))), start > 0
        found = []
        position = end
        while position > 0 and len(found) <= limit:
            start = max(0, position - 200)
            chunk = view.ids(start, position - start)
            position = start
            found.extend(rid for rid in reversed(chunk) if keep(rid))
        return found[:limit], len(found) > limit

    def _status_keep(
        self,
        acct: StripeAccount,
        entity: str,
        wanted: tuple[str, ...] | None,
        excluded: tuple[str, ...] = (),
        needs_subscription: str | None = None,
    ) -> Callable[[int], bool] | None:
        if wanted is None and not excluded and needs_subscription is None:
            return None
        table = acct.tables[entity]
        touched = acct.touched[entity]
        rel = acct.rel

        def keep(record_id: int) -> bool:
            if record_id in touched or not table.is_base(record_id):
                record = table.get(record_id)
                if record is None:
                    return False
                status = record["status"]
                if needs_subscription is not None and record.get("subscription") != needs_subscription:
                    return False
            else:
                index = record_id - 1
                if entity == "subscriptions":
                    status = rel.subscription_status(index)
                else:
                    status = rel.invoice_status(index)
                    if needs_subscription is not None and rel.is_one_off(index):
                        return False
            if wanted is not None and status not in wanted:
                return False
            return status not in excluded

        return keep

    async def list_objects(self, request: Request) -> Response:
        entity = request.path_params["entity"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            params, limit, after_text, before_text = self._list_args(request, entity)
            window = self._created_window(params)
            after = self._lookup(acct, entity, after_text, "starting_after") if after_text else None
            before = self._lookup(acct, entity, before_text, "ending_before") if before_text else None
            base: tuple[int, int] | None = None
            fields: dict[str, str] = {}
            wanted: tuple[str, ...] | None = None
            excluded: tuple[str, ...] = ()
            needs_subscription: str | None = None
            if entity == "customers" and params.get("email") is not None:
                view = self._email_view(acct, str(params["email"]), window)
            else:
                if params.get("customer") is not None:
                    customer = str(params["customer"])
                    record_id = self._lookup(acct, "customers", customer, "customer")
                    base = (0, 0)
                    if acct.tables["customers"].is_base(record_id):
                        base = acct.rel.customer_ranges(record_id - 1)[entity]
                    fields["customer"] = customer
                if params.get("subscription") is not None:
                    subscription = str(params["subscription"])
                    record_id = self._lookup(acct, "subscriptions", subscription, "subscription")
                    sub_range = (0, 0)
                    if acct.tables["subscriptions"].is_base(record_id):
                        sizes = acct.sizes
                        sub_range = child_range(record_id - 1, record_id, sizes["subscriptions"], sizes["invoices"])
                    base = sub_range if base is None else (max(base[0], sub_range[0]), min(base[1], sub_range[1]))
                    fields["subscription"] = subscription
                    needs_subscription = subscription
                view = self._filtered_view(acct, entity, window, base, fields)
            status = params.get("status")
            if entity == "subscriptions":
                if status is None:
                    excluded = ("canceled",)
                elif status not in SUB_STATUS_FILTERS:
                    raise StripeError(
                        400, f"Invalid status: must be one of {', '.join(SUB_STATUS_FILTERS)}", param="status"
                    )
                elif status == "ended":
                    wanted = ENDED
                elif status != "all":
                    wanted = (str(status),)
            elif entity == "invoices" and status is not None:
                if status not in INVOICE_STATUSES:
                    raise StripeError(
                        400, f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}", param="status"
                    )
                wanted = (str(status),)
            keep = self._status_keep(acct, entity, wanted, excluded, needs_subscription)
            ids, has_more = self._walk(view, after, before, limit, keep)
            raw = b"".join(
                (
                    b'{"object":"list","data":[',
                    self._page_json(acct, entity, ids, version),
                    b'],"has_more":',
                    b"true" if has_more else b"false",
                    b',"url":"/v1/',
                    entity.encode(),
                    b'"}',
                )
            )
            response = self._ok(raw, headers, listing=True)
            self.after_page(acct.name, entity, ids)
            return response

        return await self._handle(request, handler)

    def _email_view(self, acct: StripeAccount, email: str, window: Window) -> View:
        table = acct.tables["customers"]
        candidates: set[int] = set(acct.touched["customers"])
        found = re.search(r"(\d+)@", email)
        if found:
            candidates.add(int(found.group(1)))
        ids = []
        for record_id in sorted(candidates):
            record = table.get(record_id)
            times = table.times(record_id)
            if record is not None and times and record.get("email") == email and window.admits(*times, record_id):
                ids.append(record_id)
        return View(table, 1, 1, [], ids, merged=True)

    async def retrieve_object(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            table = acct.tables[entity]
            record_id = acct.codecs[entity].decode(object_id)
            missing = StripeError(
                404, f"No such {OBJECT_NAME[entity]}: '{object_id}'", code="resource_missing", param="id"
            )
            if record_id is None or not 1 <= record_id < table.next_id:
                raise missing
            record = table.get(record_id)
            if record is None:
                if entity == "customers" and record_id in acct.touched["customers"]:
                    # Stripe still answers for a deleted customer, with `deleted: true`.
                    return self._ok(dumps({"id": object_id, "object": "customer", "deleted": True}), headers)
                raise missing
            return self._ok(dumps(self._serve(acct, entity, record, version)), headers)

        return await self._handle(request, handler)

    # -- the catalog and the objects derived from charges ----------------------------------------

    def _list_body(self, entity: str, records: list[dict], has_more: bool) -> bytes:
        return dumps({"object": "list", "data": records, "has_more": has_more, "url": f"/v1/{entity}"})

    async def list_catalog(self, request: Request) -> Response:
        """Products and prices: a handful per account, newest first, paged like every list."""
        entity = request.path_params["entity"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            params, limit, after_text, before_text = self._list_args(request, entity)
            window = self._created_window(params)
            records = [
                r
                for r in (acct.products if entity == "products" else acct.prices)
                if window.admits(*(datetime.fromtimestamp(r["created"], UTC),) * 2, 0)
                and (params.get("active") is None or str(r["active"]).lower() == str(params["active"]).lower())
                and (params.get("product") is None or r.get("product") == params["product"])
            ]
            records.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
            ids = [r["id"] for r in records]
            cursor = after_text or before_text
            if cursor:
                catalog = acct.products if entity == "products" else acct.prices
                if cursor not in {r["id"] for r in catalog}:
                    raise StripeError(
                        400,
                        f"No such {CATALOG_OBJECT[entity]}: '{cursor}'",
                        code="resource_missing",
                        param="starting_after" if after_text else "ending_before",
                    )
                position = ids.index(cursor) if cursor in ids else len(ids)
                if after_text:
                    records = records[position + 1 :]
                    page, has_more = records[:limit], len(records) > limit
                else:
                    newer = records[:position]
                    page, has_more = newer[-limit:], len(newer) > limit
            else:
                page, has_more = records[:limit], len(records) > limit
            return self._ok(self._list_body(entity, page, has_more), headers, listing=True)

        return await self._handle(request, handler)

    async def retrieve_catalog(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            catalog = acct.products if entity == "products" else acct.prices
            found = next((r for r in catalog if r["id"] == object_id), None)
            if found is None:
                raise StripeError(
                    404, f"No such {CATALOG_OBJECT[entity]}: '{object_id}'", code="resource_missing", param="id"
                )
            return self._ok(dumps(found), headers)

        return await self._handle(request, handler)

    def _derive(self, acct: StripeAccount, entity: str, charge: dict, charge_id: int) -> dict | None:
        """The payment intent, refund or payout that charge `charge_id` carries (None: it carries none)."""
        shift, has = DERIVED_FROM_CHARGES[entity]
        created = charge["created"] + shift if isinstance(charge.get("created"), int) else charge.get("created")
        if entity == "payment_intents":
            status = charge["status"]
            return {
                "id": acct.codecs["payment_intents"].encode(charge_id),
                "object": "payment_intent",
                "amount": charge["amount"],
                "amount_capturable": 0,
                "amount_received": charge["amount"] if status == "succeeded" else 0,
                "capture_method": "automatic",
                "confirmation_method": "automatic",
                "created": created,
                "currency": "usd",
                "customer": charge.get("customer"),
                "description": charge.get("description"),
                "invoice": charge.get("invoice"),
                "last_payment_error": None
                if status != "failed"
                else {
                    "code": charge.get("failure_code"),
                    "message": charge.get("failure_message"),
                    "type": "card_error",
                },
                "latest_charge": charge["id"],
                "livemode": acct.livemode,
                "metadata": {},
                "payment_method": charge.get("payment_method"),
                "payment_method_types": ["card"],
                "status": PI_STATUS.get(status, "processing"),
            }
        if has is not None and not has(charge_id):
            return None
        if entity == "refunds":
            if not charge.get("refunded"):
                return None
            return {
                "id": acct.codecs["refunds"].encode(charge_id),
                "object": "refund",
                "amount": charge["amount"],
                "balance_transaction": acct.codecs["balance_transactions"].encode(10**9 + charge_id),
                "charge": charge["id"],
                "created": created,
                "currency": "usd",
                "metadata": {},
                "payment_intent": charge.get("payment_intent"),
                "reason": "requested_by_customer",
                "receipt_number": None,
                "status": "succeeded",
            }
        arrival = created + DAY if isinstance(created, int) else created
        return {
            "id": acct.codecs["payouts"].encode(charge_id),
            "object": "payout",
            "amount": 1_000 + charge_id * 7919 % 5_000_000,
            "arrival_date": arrival,
            "automatic": True,
            "balance_transaction": acct.codecs["balance_transactions"].encode(2 * 10**9 + charge_id),
            "created": created,
            "currency": "usd",
            "description": "STRIPE PAYOUT",
            "destination": "ba_1" + acct.tag[:9] + "Bank",
            "failure_code": None,
            "failure_message": None,
            "livemode": acct.livemode,
            "metadata": {},
            "method": "standard",
            "source_type": "card",
            "statement_descriptor": None,
            "status": "paid" if isinstance(arrival, int) and arrival <= self._now(tick=False) else "in_transit",
            "type": "bank_account",
        }

    async def list_derived(self, request: Request) -> Response:
        """Payment intents, refunds and payouts: the charges list, shifted in time and filtered, so they page and
        filter by `created` at any volume like the lists they come from."""
        entity = request.path_params["entity"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            params, limit, after_text, before_text = self._list_args(request, entity)
            shift, has = DERIVED_FROM_CHARGES[entity]
            window = self._created_window(params)
            moved = timedelta(seconds=shift)
            charges_window = Window(
                None if window.created_after is None else window.created_after - moved,
                None if window.created_before is None else window.created_before - moved,
            )
            table = acct.tables["charges"]

            def cursor(text: str | None, param: str) -> int | None:
                if not text:
                    return None
                record_id = acct.codecs[entity].decode(text)
                if record_id is None or not 1 <= record_id < table.next_id:
                    raise StripeError(
                        400, f"No such {DERIVED_OBJECT[entity]}: '{text}'", code="resource_missing", param=param
                    )
                return record_id

            after = cursor(after_text, "starting_after")
            before = cursor(before_text, "ending_before")
            charge_filter = params.get("charge")
            customer = params.get("customer")
            pi_filter = params.get("payment_intent")

            def derived(record_id: int) -> dict | None:
                charge = table.get(record_id)
                if charge is None:
                    return None
                if charge_filter is not None and charge["id"] != charge_filter:
                    return None
                if customer is not None and charge.get("customer") != customer:
                    return None
                if pi_filter is not None and charge.get("payment_intent") != pi_filter:
                    return None
                return self._derive(acct, entity, charge, record_id)

            cheap = has is None and charge_filter is None and customer is None and pi_filter is None
            keep = None if cheap else (lambda rid: (has is None or has(rid)) and derived(rid) is not None)
            view = table.query(charges_window)
            ids, has_more = self._walk(view, after, before, limit, keep)
            records = [r for r in (derived(rid) for rid in ids) if r is not None]
            if params.get("status") is not None:
                records = [r for r in records if r.get("status") == params["status"]]
            response = self._ok(self._list_body(entity, records, has_more), headers, listing=True)
            self.after_page(acct.name, "charges", ids)  # the faults change what these are derived from
            return response

        return await self._handle(request, handler)

    async def retrieve_derived(self, request: Request) -> Response:
        entity = request.path_params["entity"]
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            record_id = acct.codecs[entity].decode(object_id)
            charge = acct.tables["charges"].get(record_id) if record_id else None
            found = self._derive(acct, entity, charge, record_id) if charge is not None and record_id else None
            if found is None:
                raise StripeError(
                    404, f"No such {DERIVED_OBJECT[entity]}: '{object_id}'", code="resource_missing", param="id"
                )
            return self._ok(dumps(found), headers)

        return await self._handle(request, handler)

    # -- writing ---------------------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, Any]:
        body = (await request.body()).decode("utf-8", "replace")
        return parse_params([*request.query_params.multi_items(), *parse_qsl(body, keep_blank_values=True)])

    def _idempotent(
        self,
        acct: StripeAccount,
        request: Request,
        params: dict[str, Any],
        run: Callable[[], tuple[int, bytes]],
        headers: dict[str, str],
    ) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            status, raw = run()
            return Response(raw, status_code=status, headers=headers, media_type="application/json")
        fingerprint = dumps([request.url.path, sorted(params.items(), key=lambda kv: kv[0])])
        headers["Idempotency-Key"] = key
        with self._lock:
            previous = acct.idempotency.get(key)
        if previous is not None:
            if previous[0] != fingerprint:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    type_="idempotency_error",
                )
            return Response(
                previous[2],
                status_code=previous[1],
                headers={**headers, "Idempotent-Replayed": "true"},
                media_type="application/json",
            )
        status, raw = run()
        with self._lock:
            acct.idempotency[key] = (fingerprint, status, raw)
        return Response(raw, status_code=status, headers=headers, media_type="application/json")

    async def customers_root(self, request: Request) -> Response:
        if request.method == "GET":
            request.path_params["entity"] = "customers"
            return await self.list_objects(request)

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            params = await self._form(request)
            for name in params:
                if name not in CUSTOMER_CREATE_PARAMS:
                    raise unknown_param(name)
            if "metadata" in params and not isinstance(params["metadata"], dict):
                raise StripeError(400, "Invalid object", param="metadata")

            def run() -> tuple[int, bytes]:
                with self._lock:
                    acct.step += 1
                    now = self._now()
                    table = acct.tables["customers"]
                    record = self._new_customer(acct, table.allocate_id(), now, params)
                self._publish(
                    acct,
                    [("customer.created", "customers", record, None)],
                    headers["Request-Id"],
                    request.headers.get("idempotency-key"),
                )
                return 200, dumps(self._render("customers", record, version))

            return self._idempotent(acct, request, params, run, headers)

        return await self._handle(request, handler, write=True)

    async def customer_one(self, request: Request) -> Response:
        if request.method == "GET":
            request.path_params["entity"] = "customers"
            return await self.retrieve_object(request)
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            record_id = acct.codecs["customers"].decode(object_id)
            table = acct.tables["customers"]
            record = table.get(record_id) if record_id else None
            if record is None or record_id is None:
                raise StripeError(404, f"No such customer: '{object_id}'", code="resource_missing", param="id")
            events: list[PendingEvent] = []
            with self._lock:
                acct.step += 1
                self._delete(acct, "customers", record_id, record, self._now(), events)
            self._publish(acct, events, headers["Request-Id"], request.headers.get("idempotency-key"))
            return self._ok(dumps({"id": object_id, "object": "customer", "deleted": True}), headers)

        return await self._handle(request, handler, write=True)

    # -- events and webhook endpoints ------------------------------------------------------------

    async def list_events(self, request: Request) -> Response:
        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            params, limit, after_text, before_text = self._list_args(request, "events")
            window = self._created_window(params)
            types: list[str] = []
            if params.get("type") is not None:
                types.append(str(params["type"]))
            if params.get("types") is not None:
                if params.get("type") is not None:
                    raise StripeError(
                        400,
                        "You may only specify one of these parameters: type, types.",
                        code="parameters_exclusive",
                        param="types",
                    )
                types.extend(params["types"] if isinstance(params["types"], list) else [params["types"]])

            oldest = self._now(tick=False) - EVENT_RETENTION_SECONDS

            def matches(event: StoredEvent) -> bool:
                if event.created < oldest:
                    return False
                if types and not any(
                    event.type == t or (t.endswith(".*") and event.type.startswith(t[:-1])) for t in types
                ):
                    return False
                moment = datetime.fromtimestamp(event.created, UTC)
                return window.admits(moment, moment, event.index)

            with self._lock:
                events = [e for e in acct.events if matches(e)]
            cursor_text = after_text or before_text
            cursor: int | None = None
            if cursor_text:
                cursor = acct.codecs["events"].decode(cursor_text)
                if cursor is None or not 1 <= cursor <= acct.events_dropped + len(acct.events):
                    raise StripeError(
                        400,
                        f"No such event: '{cursor_text}'",
                        code="resource_missing",
                        param="starting_after" if after_text else "ending_before",
                    )
            if before_text and cursor is not None:
                start = next((n for n, e in enumerate(events) if e.index > cursor), len(events))
                page = events[start : start + limit][::-1]
                has_more = start + limit < len(events)
            else:
                end = (
                    len(events)
                    if cursor is None
                    else next((n for n, e in enumerate(events) if e.index >= cursor), len(events))
                )
                page = events[max(0, end - limit) : end][::-1]
                has_more = end - limit > 0
            data = [self._event_payload(acct, e, DEFAULT_API_VERSION) for e in page]
            body = {"object": "list", "data": data, "has_more": has_more, "url": "/v1/events"}
            return self._ok(dumps(body), headers, listing=True)

        return await self._handle(request, handler)

    async def retrieve_event(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            index = acct.codecs["events"].decode(object_id)
            with self._lock:
                position = None if index is None else index - acct.events_dropped - 1
                if position is None or not 0 <= position < len(acct.events):
                    raise StripeError(404, f"No such event: '{object_id}'", code="resource_missing", param="id")
                event = acct.events[position]
            return self._ok(dumps(self._event_payload(acct, event, DEFAULT_API_VERSION)), headers)

        return await self._handle(request, handler)

    @staticmethod
    def _endpoint_public(endpoint: dict, with_secret: bool = False) -> dict:
        keys = (
            "id",
            "object",
            "api_version",
            "application",
            "created",
            "description",
            "enabled_events",
            "livemode",
            "metadata",
            "status",
            "url",
        )
        out = {k: endpoint[k] for k in keys}
        if with_secret:
            out["secret"] = endpoint["secret"]
        return out

    def _endpoint_params(self, params: dict[str, Any], creating: bool) -> dict[str, Any]:
        for name in params:
            if name not in ENDPOINT_PARAMS or (creating and name == "disabled"):
                raise unknown_param(name)
        if creating:
            for name in ("url", "enabled_events"):
                if not params.get(name):
                    raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        if "url" in params and not re.match(r"^https?://[^\s/]+", str(params["url"])):
            raise StripeError(400, "Invalid URL: must be an absolute http(s) URL.", code="url_invalid", param="url")
        if "enabled_events" in params:
            events = params["enabled_events"]
            events = events if isinstance(events, list) else [events]
            for n, event in enumerate(events):
                if event != "*" and event not in EVENT_TYPES:
                    raise StripeError(
                        400,
                        f"Invalid enabled_events[{n}]: must be one of {', '.join(EVENT_TYPES)} or *",
                        param=f"enabled_events[{n}]",
                    )
            params["enabled_events"] = events
        if params.get("api_version") and not VERSION_RE.match(str(params["api_version"])):
            raise StripeError(400, f"Invalid api_version: {params['api_version']}", param="api_version")
        return params

    async def webhook_endpoints(self, request: Request) -> Response:
        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            if request.method == "GET":
                _, limit, after_text, before_text = self._list_args(request, "webhook_endpoints")
                with self._lock:
                    mine = [s for s in self.subscriptions if s["account"] == acct.name]
                mine.sort(key=lambda s: s["_n"], reverse=True)
                cursor = after_text or before_text
                if cursor:
                    position = next((n for n, s in enumerate(mine) if s["id"] == cursor), None)
                    if position is None:
                        raise StripeError(
                            400,
                            f"No such webhook endpoint: '{cursor}'",
                            code="resource_missing",
                            param="starting_after" if after_text else "ending_before",
                        )
                    mine = mine[position + 1 :] if after_text else mine[:position][-limit:]
                data = [self._endpoint_public(s) for s in mine[:limit]]
                body = {
                    "object": "list",
                    "data": data,
                    "has_more": len(mine) > limit,
                    "url": "/v1/webhook_endpoints",
                }
                return self._ok(dumps(body), headers)
            params = self._endpoint_params(await self._form(request), creating=True)

            def run() -> tuple[int, bytes]:
                with self._lock:
                    self._endpoints_made += 1
                    n = self._endpoints_made
                    digest = hashlib.sha256(f"{self.seed}:{acct.name}:{n}:whsec".encode()).digest()
                    endpoint = {
                        "id": self._endpoint_codec.encode(n),
                        "object": "webhook_endpoint",
                        "api_version": params.get("api_version") or None,
                        "application": None,
                        "created": self._now(tick=False),
                        "description": params.get("description"),
                        "enabled_events": list(params["enabled_events"]),
                        "livemode": acct.livemode,
                        "metadata": params.get("metadata") or {},
                        "status": "enabled",
                        "url": str(params["url"]),
                        "secret": "whsec_" + b62(int.from_bytes(digest, "big"), 32),
                        "account": acct.name,
                        "_n": n,
                    }
                    self.subscriptions.append(endpoint)
                return 200, dumps(self._endpoint_public(endpoint, with_secret=True))

            return self._idempotent(acct, request, params, run, headers)

        return await self._handle(request, handler, write=request.method != "GET")

    async def webhook_endpoint(self, request: Request) -> Response:
        object_id = request.path_params["object_id"]

        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            with self._lock:
                endpoint = next(
                    (s for s in self.subscriptions if s["id"] == object_id and s["account"] == acct.name),
                    None,
                )
            if endpoint is None:
                raise StripeError(404, f"No such webhook endpoint: '{object_id}'", code="resource_missing", param="id")
            if request.method == "DELETE":
                with self._lock:
                    self.subscriptions.remove(endpoint)
                return self._ok(dumps({"id": object_id, "object": "webhook_endpoint", "deleted": True}), headers)
            if request.method == "POST":
                params = self._endpoint_params(await self._form(request), creating=False)
                with self._lock:
                    for key in ("url", "enabled_events", "description"):
                        if key in params:
                            endpoint[key] = params[key]
                    if "metadata" in params:
                        endpoint["metadata"] = {**endpoint["metadata"], **params["metadata"]}
                    if "disabled" in params:
                        endpoint["status"] = "disabled" if str(params["disabled"]) == "true" else "enabled"
            return self._ok(dumps(self._endpoint_public(endpoint)), headers)

        return await self._handle(request, handler, write=request.method != "GET")

    async def unrecognized(self, request: Request) -> Response:
        async def handler(req: Request, acct: StripeAccount, version: str, headers: Headers) -> Response:
            raise StripeError(
                404,
                f"Unrecognized request URL ({request.method}: {request.url.path.removeprefix('/stripe')}). "
                "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )

        return await self._handle(request, handler)

    def routes(self) -> list[BaseRoute]:
        any_method = ["GET", "POST", "DELETE"]

        def only(method: str, endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
            async def dispatch(request: Request) -> Response:
                if request.method != method:
                    return await self.unrecognized(request)
                return await endpoint(request)

            return dispatch

        def entity_route(path: str, endpoint: Callable[[Request], Any], entity: str) -> Route:
            async def dispatch(request: Request) -> Response:
                if request.method != "GET":
                    return await self.unrecognized(request)
                request.path_params["entity"] = entity
                if request.path_params.get("object_id") == "search":
                    return await self.unrecognized(request)
                return await endpoint(request)

            return Route(path, dispatch, methods=any_method)

        async def customers_one(request: Request) -> Response:
            if request.method not in ("GET", "DELETE") or request.path_params["object_id"] == "search":
                return await self.unrecognized(request)
            return await self.customer_one(request)

        async def customers_root(request: Request) -> Response:
            return await self.customers_root(request)

        async def webhook_endpoints(request: Request) -> Response:
            if request.method == "DELETE":
                return await self.unrecognized(request)
            return await self.webhook_endpoints(request)

        return [
            Route("/v1/customers", customers_root, methods=any_method),
            Route("/v1/customers/{object_id}", customers_one, methods=any_method),
            *(
                route
                for entity in ENTITIES[1:]
                for route in (
                    entity_route(f"/v1/{entity}", self.list_objects, entity),
                    entity_route(f"/v1/{entity}/{{object_id}}", self.retrieve_object, entity),
                )
            ),
            *(
                route
                for entity in ("products", "prices")
                for route in (
                    entity_route(f"/v1/{entity}", self.list_catalog, entity),
                    entity_route(f"/v1/{entity}/{{object_id}}", self.retrieve_catalog, entity),
                )
            ),
            *(
                route
                for entity in DERIVED_FROM_CHARGES
                for route in (
                    entity_route(f"/v1/{entity}", self.list_derived, entity),
                    entity_route(f"/v1/{entity}/{{object_id}}", self.retrieve_derived, entity),
                )
            ),
            Route("/v1/events", only("GET", self.list_events), methods=any_method),
            Route("/v1/events/{object_id}", only("GET", self.retrieve_event), methods=any_method),
            Route("/v1/webhook_endpoints", webhook_endpoints, methods=any_method),
            Route("/v1/webhook_endpoints/{object_id}", self.webhook_endpoint, methods=any_method),
            Route("/{path:path}", self.unrecognized, methods=any_method),
        ]
