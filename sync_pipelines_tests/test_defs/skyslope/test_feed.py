"""The date rule and the control-byte rule (defs/skyslope/feed.py), on the byte shapes SkySlope's feed is known for."""

from __future__ import annotations

import orjson

from sync_pipelines.defs.skyslope.feed import calendar_date, readable_feed, stamp, utc_time


def test_a_zoneless_time_is_utc_and_dotnets_no_date_is_null() -> None:
    assert utc_time("2020-10-13T18:38:42.997") == "2020-10-13T18:38:42.997Z"
    assert utc_time("2020-10-13T18:39:21.14") == "2020-10-13T18:39:21.140Z"  # .NET drops trailing zeros
    assert utc_time("2020-10-13T18:39:21") == "2020-10-13T18:39:21.000Z"
    assert utc_time("2020-10-13T18:39:21.1234567") == "2020-10-13T18:39:21.123Z"  # seven digits, as .NET writes
    assert utc_time("2020-10-13T20:39:21+02:00") == "2020-10-13T18:39:21.000Z"  # a zone, where given, is honoured
    for no_date in ("0001-01-01T00:00:00", "0001-01-01", "9999-12-31T23:59:59.9999999", None, ""):
        assert utc_time(no_date) is None, no_date
    assert utc_time("not-a-date") == "not-a-date"  # passed on, for the load path to refuse naming it


def test_a_date_only_field_keeps_the_day_written() -> None:
    assert calendar_date("2024-03-15T00:00:00") == "2024-03-15"
    assert calendar_date("2024-03-15T23:30:00-08:00") == "2024-03-15"  # no zone shift for a calendar date
    assert calendar_date("0001-01-01T00:00:00") is None
    assert calendar_date("TBD") == "TBD"


def test_stamp_adds_the_read_values_beside_the_record_and_falls_back_to_creation() -> None:
    record = {"createdOn": "2024-01-31T23:59:59.5", "modifiedOn": "0001-01-01T00:00:00",
              "contractAcceptanceDate": "0001-01-01T00:00:00", "escrowClosingDate": "2024-03-01T00:00:00"}  # fmt: skip
    stamp(record)
    assert record["_created"] == record["_updated"] == "2024-01-31T23:59:59.500Z"
    assert record["_dates"] == {"contractAcceptanceDate": None, "escrowClosingDate": "2024-03-01"}
    assert record["createdOn"] == "2024-01-31T23:59:59.5"  # the record as received is untouched


def document(*items: bytes) -> bytes:
    return b'{"value":[' + b",".join(items) + b"]}"


SALE = b'{"objectType":"sale","saleGuid":"5a1e-%d","property":{"streetAddress":"Oak Street"},"createdOn":"2024-01-02"}'


def test_a_clean_or_truncated_document_is_left_to_the_http_layer() -> None:
    clean = document(SALE % 1, SALE % 2)
    assert readable_feed(clean) is None
    assert readable_feed('{"value":[{"name":"Zoë"}]}'.encode()) is None  # UTF-8 text is no reason
    dirty_and_cut = document(SALE % 1, SALE % 2).replace(b",", b",\x01", 1)[:-10]
    assert readable_feed(dirty_and_cut) is None  # truncated: retried, never read in part


def test_control_bytes_are_read_as_skyslopes_own_client_reads_them() -> None:
    between = (SALE % 1).replace(b",", b",\x01", 1)  # SOH where a line break would be
    inside = (SALE % 2).replace(b"Oak Street", b"Oak\x1aStreet\x00")  # SUB for a space, a NUL pad
    raw_newline = (SALE % 3).replace(b"Oak Street", b"Oak\x01Street")  # SOH inside a string: a line break
    tab = (SALE % 4).replace(b"Oak Street", b"Oak\x02Street")  # any other control character is itself
    body = readable_feed(document(between, inside, raw_newline, tab), "sale")
    assert body is not None
    records = orjson.loads(body)["value"]
    assert [r["saleGuid"] for r in records] == ["5a1e-1", "5a1e-2", "5a1e-3", "5a1e-4"]
    streets = [r["property"]["streetAddress"] for r in records]
    assert streets == ["Oak Street", "Oak Street", "Oak\nStreet", "Oak\x02Street"]


def test_a_record_that_cannot_be_read_becomes_a_stand_in_and_the_rest_are_read() -> None:
    latin = (SALE % 2).replace(b"Oak Street", b"O\x92Neil Street")  # Windows-1252's apostrophe: not UTF-8
    broken = b'{"objectType":"listing","listingGuid":"11-22",\x01"status" "Active"}'  # a colon lost
    body = readable_feed(document(SALE % 1, latin, broken, SALE % 3), "sale")
    assert body is not None
    first, bad, worse, last = orjson.loads(body)["value"]
    assert first["saleGuid"] == "5a1e-1" and last["saleGuid"] == "5a1e-3"
    assert bad["saleGuid"] == "5a1e-2" and bad["_unreadable"].startswith("not UTF-8: byte 0x92")
    assert "O\ufffdNeil" in bad["_text"] and bad["_created"].startswith("unreadable record: not UTF-8")
    assert worse["objectType"] == "listing" and worse["listingGuid"] == "11-22"  # its own kind, from its text
    assert worse["_unreadable"].startswith("not JSON")
    assert stamp(dict(bad)) == bad  # a stand-in keeps the reason as its created time: the DLQ says why


def test_bytes_that_are_not_utf8_make_only_their_own_record_a_stand_in() -> None:
    latin = (SALE % 2).replace(b"Oak Street", b"O\x92Neil\x1aStreet")  # read in one pass: no structure is broken
    body = readable_feed(document(SALE % 1, latin, (SALE % 3).replace(b",", b",\x01", 1)), "sale")
    assert body is not None
    first, bad, last = orjson.loads(body)["value"]
    assert (first["saleGuid"], last["saleGuid"]) == ("5a1e-1", "5a1e-3") and "_unreadable" not in last
    assert bad["saleGuid"] == "5a1e-2" and bad["_unreadable"].startswith("not UTF-8: byte 0x92")
    assert "O\ufffdNeil Street" in bad["_text"]
