"""What SkySlope's records need before the load path can read them: the date rule and the control-byte rule.
Both are documented for operators in docs/integrations/skyslope.md; pure functions, no HTTP.

**Dates.** SkySlope writes .NET DateTimes without a zone (`2020-10-13T18:38:42.997`), and `0001-01-01T00:00:00`
(.NET's DateTime.MinValue) where a file has no date; its .NET stack can equally write DateTime.MaxValue
(`9999-12-31T23:59:59.9999999`) for "no end". The rule:
- a time without a zone is UTC (SkySlope publishes no zone, and its bulk-export filters read the same way);
  one with a zone is converted to UTC;
- a value in year 1 or year 9999 is "no date": NULL, never a date two thousand years off;
- the date-only fields (closing, acceptance, listing and expiration dates: midnight values) are calendar dates
  and keep the day written, with no zone shift;
- anything that is not a date is passed on as written, so the load path refuses the record naming the value
  (the record goes to the DLQ, the batch goes on).
`stamp` adds the results beside the record's own fields: `_created`, `_updated` (ISO 8601 UTC text) and `_dates`
(the date-only fields as `YYYY-MM-DD`). The record as received is otherwise untouched.

**Control bytes.** SkySlope's bulk export (`GET /api/files`) is known to carry raw bytes that are not valid JSON:
SkySlope's Ruby client (bostonlogic/skyslope, transaction_resource.rb) turns SOH into a line break and SUB into a
space, drops NUL, and strips every non-ASCII byte before parsing it. A strict parser refuses the whole document,
so one bad byte would fail every retry of the window. The rule (`readable_feed`):
1. A document with no such byte (no C0 control byte other than tab, line feed and carriage return, and valid
   UTF-8) is left as it is: the common case costs one scan.
2. A document that ends before its array closes is truncated: it is left as it is, and the HTTP layer retries it
   like any truncated page.
3. Otherwise its bytes are read as SkySlope's own client reads them: NUL is dropped (Postgres cannot store it
   anyway), SOH becomes a line break and SUB a space; a control character left inside a string is read as the
   character it is (JSON only asks that it be escaped). Non-ASCII text is kept: stripping it, as the Ruby client
   does, would destroy every accented name. The whole document is read so in one pass; if that fails (a record's
   structure is broken), it is split into its records (a scan that follows strings and nesting, so no byte
   inside a string can split one) and each is read on its own.
4. A record that still cannot be read (bytes that are not UTF-8, such as Windows-1252's 0x92, or a broken
   structure) becomes a stand-in carrying its GUID when one can be found in its text, its text itself and the
   reason. The load path sends it to the DLQ (its `_created` says why it cannot be read), every other record of the
   document loads, and `dlq retry` fetches the record by GUID from the single-file endpoint.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson

# Fields of sales and listings that are calendar dates (SkySlope writes them as midnight).
DATE_FIELDS = ("escrowClosingDate", "actualClosingDate", "contractAcceptanceDate", "listingDate", "expirationDate")
NO_DATE_YEARS = (1, 9999)  # .NET's DateTime.MinValue and MaxValue
# A bulk-export record's id field by its objectType.
ID_FIELDS = {"sale": "saleGuid", "listing": "listingGuid"}

_SUSPECT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_OUTSIDE = re.compile(rb'["\[\]{},]')
_INSIDE = re.compile(rb'["\\]')
_FRACTION = re.compile(r"(\.\d{6})\d+")  # .NET writes up to seven fractional digits; Python reads six
_OBJECT_TYPE = re.compile(rb'"objectType"\s*:\s*"(sale|listing)"')
_EDGES = b" \t\r\n\x00\x01\x1a"


# -- dates ---------------------------------------------------------------------------------------------


def _parse(value: str) -> datetime | None:
    """A SkySlope date, or None when the text is not one."""
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    except ValueError:
        return None


def utc_time(value: Any) -> str | None:
    """A SkySlope time as ISO 8601 UTC text, None for no date, or the value as written when it is not a date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return str(value)
    parsed = _parse(value)
    if parsed is None:
        return value
    if parsed.year in NO_DATE_YEARS:
        return None
    moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def calendar_date(value: Any) -> str | None:
    """A date-only field as `YYYY-MM-DD` (the day as written), None for no date, or the value when not a date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return str(value)
    parsed = _parse(value)
    if parsed is None:
        return value
    return None if parsed.year in NO_DATE_YEARS else parsed.date().isoformat()


def stamp(record: Any) -> Any:
    """Add `_created`, `_updated` and `_dates` to a record, in place (see the date rule above). A file never
    modified may carry no modifiedOn (or "no date"): it was last changed when it was created. A record without
    createdOn gets no `_created`, and the load path refuses it as missing its required created time."""
    if not isinstance(record, dict) or "_unreadable" in record:
        return record
    if "createdOn" in record:
        record["_created"] = utc_time(record["createdOn"])
    updated = utc_time(record.get("modifiedOn"))
    record["_updated"] = updated if updated is not None else record.get("_created")
    dates = {name: calendar_date(record[name]) for name in DATE_FIELDS if name in record}
    if dates:
        record["_dates"] = dates
    return record


# -- control bytes -------------------------------------------------------------------------------------


def _suspect(body: bytes) -> bool:
    if _SUSPECT.search(body) is not None:
        return True
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _items(body: bytes) -> list[bytes] | None:
    """The raw records of the document's array (`{"value": [...]}`), or None when the document ends before the
    array and the root close (truncated). Strings are skipped whole, escapes included, so the bytes inside them,
    whatever they are, never split or end a record."""
    items: list[bytes] = []
    depth = 0
    start: int | None = None
    closed = False
    pos = 0
    while True:
        found = _OUTSIDE.search(body, pos)
        if found is None:
            break
        char, pos = body[found.start()], found.end()
        if char == 0x22:  # a string: to its closing quote
            while True:
                inner = _INSIDE.search(body, pos)
                if inner is None:
                    return None
                pos = inner.end()
                if body[inner.start()] == 0x5C:  # a backslash escapes the next byte
                    pos += 1
                    continue
                break
        elif char in b"[{":
            depth += 1
            if depth == 2 and char == 0x5B and start is None and not closed:
                start = pos
        elif char in b"]}":
            if depth == 2 and char == 0x5D and start is not None and not closed:
                if body[start : found.start()].strip(_EDGES):
                    items.append(body[start : found.start()])
                closed = True
            depth -= 1
        elif char == 0x2C and depth == 2 and start is not None and not closed:
            items.append(body[start : found.start()])
            start = pos
    return items if closed and depth == 0 else None


def _unreadable(raw: bytes, reason: str, kind: str | None) -> dict[str, Any]:
    """A stand-in for a record that cannot be read: its GUID when its text names one, its text and the reason."""
    found = _OBJECT_TYPE.search(raw)
    kind = found.group(1).decode() if found else kind
    record: dict[str, Any] = {"objectType": kind, "_unreadable": reason, "_text": raw.decode("utf-8", "replace")}
    id_field = ID_FIELDS.get(kind or "")
    if id_field:
        guid = re.search(rb'"' + id_field.encode() + rb'"\s*:\s*"([0-9A-Za-z-]+)"', raw)
        if guid:
            record[id_field] = guid.group(1).decode()
    record["_created"] = f"unreadable record: {reason}"
    return record


def _read_item(raw: bytes, kind: str | None) -> dict[str, Any]:
    item = raw.strip(_EDGES).replace(b"\x00", b"").replace(b"\x01", b"\n").replace(b"\x1a", b" ")
    try:
        value = orjson.loads(item)
    except orjson.JSONDecodeError:
        try:
            text = item.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _unreadable(raw, f"not UTF-8: byte 0x{item[exc.start]:02x} at {exc.start}", kind)
        try:
            value = json.loads(text, strict=False)  # a control character inside a string is that character
        except json.JSONDecodeError as exc:
            return _unreadable(raw, f"not JSON: {exc}", kind)
    return value if isinstance(value, dict) else _unreadable(raw, "not a JSON object", kind)


def _checked(record: Any, kind: str | None) -> Any:
    """A record of a leniently parsed document, or its stand-in when it holds bytes that are not UTF-8 (decoded as
    lone surrogates, which orjson refuses to write)."""
    if not isinstance(record, dict):
        return _unreadable(orjson.dumps(record), "not a JSON object", kind)
    try:
        orjson.dumps(record)
    except orjson.JSONEncodeError:
        text = json.dumps(record, ensure_ascii=False)
        at = next(i for i, char in enumerate(text) if "\udc80" <= char <= "\udcff")
        raw = text.encode("utf-8", "surrogateescape")
        return _unreadable(raw, f"not UTF-8: byte 0x{ord(text[at]) - 0xDC00:02x} at {at}", kind)
    return record


def readable_feed(body: bytes, kind: str | None = None) -> bytes | None:
    """The bulk-export document rewritten as valid JSON when raw control bytes (or bytes that are not UTF-8) make it
    unreadable, with each record that still cannot be read replaced by a stand-in for the DLQ; None when the
    document needs nothing (clean, or truncated: the HTTP layer retries that). `kind` is the `type` asked for
    (sale, listing): the stand-in's kind when the record's own text does not say.

    The whole document is first read in one go (C speed: SkySlope's byte mapping, then a lenient parse that keeps
    bytes that are not UTF-8 as lone surrogates, so only the records holding them become stand-ins). Only when that
    fails, because a record's structure is broken, is it split and read record by record."""
    if not _suspect(body):
        return None
    mapped = body.replace(b"\x00", b"").replace(b"\x01", b"\n").replace(b"\x1a", b" ")
    try:
        document = json.loads(mapped.decode("utf-8", "surrogateescape"), strict=False)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("value"), list):
        return orjson.dumps({"value": [_checked(record, kind) for record in document["value"]]})
    items = _items(body)
    if items is None:
        return None
    return orjson.dumps({"value": [_read_item(item, kind) for item in items]})
