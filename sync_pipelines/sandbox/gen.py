"""Deterministic values from (seed, entity, index) without a random-number generator per record.

Every value is a pure function of a 64-bit hash, so record 4,000,000 of an entity costs the same to build
as record 0 and the same seed always gives the same data. This is what lets a simulator serve ten million
records without holding them in memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

MASK64 = (1 << 64) - 1

# Five years of history ending just before the sandbox clock starts, so monthly period_keys fill.
HISTORY_START = datetime(2021, 11, 1, tzinfo=UTC)
HISTORY_END = datetime(2026, 11, 1, tzinfo=UTC)
HISTORY_SECONDS = int((HISTORY_END - HISTORY_START).total_seconds())

FIRST_NAMES = [
    "Mary",
    "James",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Donald",
    "Kimberly",
    "Steven",
    "Emily",
    "Paul",
    "Donna",
    "Andrew",
    "Michelle",
    "Joshua",
    "Carol",
    "Kenneth",
    "Amanda",
    "Kevin",
    "Melissa",
    "Brian",
    "Deborah",
    "George",
    "Stephanie",
    "Timothy",
    "Rebecca",
    "Ronald",
    "Sharon",
    "Jason",
    "Laura",
    "Edward",
    "Cynthia",
    "Jeffrey",
    "Amy",
    "Ryan",
    "Kathleen",
    "Jacob",
    "Angela",
    "Gary",
    "Shirley",
    "Nicholas",
    "Brenda",
    "Eric",
    "Emma",
    "Jonathan",
    "Anna",
    "Stephen",
    "Pamela",
    "Larry",
    "Nicole",
    "Justin",
    "Samantha",
    "Scott",
    "Katherine",
    "Brandon",
    "Christine",
    "Benjamin",
    "Debra",
    "Samuel",
    "Rachel",
    "Gregory",
    "Carolyn",
    "Alexander",
    "Janet",
    "Patrick",
    "Maria",
    "Frank",
    "Olivia",
    "Raymond",
    "Heather",
    "Jack",
    "Helen",
    "Dennis",
    "Catherine",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "Foster",
    "Mcmillan",
]
STREET_NAMES = [
    "Main",
    "Oak",
    "Pine",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Sunset",
    "Ridge",
    "Meadow",
    "Forest",
    "River",
    "Highland",
    "Willow",
    "Church",
    "Spring",
    "Jackson",
    "Lincoln",
    "Madison",
    "Franklin",
    "Center",
    "Valley",
    "Mill",
    "Walnut",
    "Cherry",
    "Chestnut",
    "Birch",
]
STREET_KINDS = ("St", "Ave", "Blvd", "Dr", "Ln", "Rd", "Ct", "Way", "Pl", "Ter")
CITIES = (
    ("Austin", "TX", "787"),
    ("Dallas", "TX", "752"),
    ("Houston", "TX", "770"),
    ("Phoenix", "AZ", "850"),
    ("Denver", "CO", "802"),
    ("Seattle", "WA", "981"),
    ("Portland", "OR", "972"),
    ("Atlanta", "GA", "303"),
    ("Miami", "FL", "331"),
    ("Tampa", "FL", "336"),
    ("Orlando", "FL", "328"),
    ("Charlotte", "NC", "282"),
    ("Raleigh", "NC", "276"),
    ("Nashville", "TN", "372"),
    ("Chicago", "IL", "606"),
    ("Boston", "MA", "021"),
    ("San Diego", "CA", "921"),
    ("Sacramento", "CA", "958"),
    ("Las Vegas", "NV", "891"),
    ("Boise", "ID", "837"),
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "example.com")
LEAD_SOURCES = (
    "Zillow",
    "Realtor.com",
    "Website",
    "Referral",
    "Open House",
    "Facebook",
    "Google",
    "Sign Call",
)
TAGS = ("Buyer", "Seller", "Investor", "First Time Buyer", "Relocation", "Luxury", "Renter", "Past Client")


def mix64(value: int) -> int:
    """splitmix64 finaliser: a fast, well-distributed 64-bit hash of an integer."""
    z = (value + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stream_seed(*parts: object) -> int:
    """A 64-bit seed for a named stream (source, account, entity), stable across runs and machines."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def record_hash(stream: int, index: int) -> int:
    """The hash a Draw for (stream, index) starts from; inlined by hot loops."""
    return mix64(stream ^ (index * 0xD1B54A32D192ED03 & MASK64))


class Draw:
    """Successive values from one record's hash; each call consumes fresh bits."""

    __slots__ = ("_state",)

    def __init__(self, stream: int, index: int) -> None:
        self._state = record_hash(stream, index)

    @property
    def state(self) -> int:
        """The record's hash itself: free, for builders that need only one draw."""
        return self._state

    def next(self) -> int:
        self._state = mix64(self._state)
        return self._state

    def below(self, n: int) -> int:
        return self.next() % n

    def pick(self, seq: tuple | list):  # type: ignore[no-untyped-def]
        return seq[self.next() % len(seq)]

    def chance(self, p: float) -> bool:
        return (self.next() & 0xFFFFFFFF) < p * 0x100000000

    def money(self, low: int, high: int, step: int = 1000) -> int:
        return low + (self.next() % ((high - low) // step + 1)) * step


class TemplatePool:
    """Pre-built record parts, chosen per record by hash: realistic variety at the cost of a dict copy.

    Building a record field by field from fresh hash draws costs ~50 µs in Python; copying one of 4,096
    templates and setting the per-record fields costs a few, which is what lets one core serve 100k records/s.
    """

    def __init__(self, stream: int, build: Callable[[Draw], dict], size: int = 4096) -> None:
        self._stream = stream
        self._build = build
        self._templates: list[dict | None] = [None] * size
        self.size = size

    def pick(self, h: int) -> dict:
        k = h % self.size
        template = self._templates[k]
        if template is None:  # built on first use: startup stays instant
            template = self._templates[k] = self._build(Draw(self._stream, k))
        return template.copy()


class Composite:
    """A record builder made of a template (shared, pre-serialised) and a few fields of the record's own.

    `__call__` gives the record as a dict (what every caller sees); `json` gives the same record as JSON
    bytes by splicing the record's own fields onto the template's cached JSON, which skips building and
    serialising the template part for every record of a list page.
    Template keys starting with `_` are private: `own` may read them, the output never contains them.
    """

    def __init__(
        self,
        stream: int,
        template: Callable[[Draw], dict],
        own: Callable[[int, int, datetime, dict], dict],
        dumps: Callable[[object], bytes],
        size: int = 4096,
    ) -> None:
        self._stream = stream
        self._template = template
        self._own = own
        self._dumps = dumps
        self._templates: list[tuple[dict, dict, bytes] | None] = [None] * size
        self.size = size

    def _slot(self, h: int) -> tuple[dict, dict, bytes]:
        k = h % self.size
        slot = self._templates[k]
        if slot is None:
            full = self._template(Draw(self._stream, k))
            public = {key: value for key, value in full.items() if not key.startswith("_")}
            slot = self._templates[k] = (full, public, self._dumps(public)[1:-1])
        return slot

    def __call__(self, index: int, d: Draw, created: datetime) -> dict:
        h = d.state
        full, public, _ = self._slot(h)
        return {**self._own(index, h, created, full), **public}

    def json(self, index: int, d: Draw, created: datetime) -> bytes:
        parts: list[bytes] = []
        self.write_json(parts, index, d.state, created)
        return b"".join(parts)

    def write_json(self, out: list[bytes], index: int, h: int, created: datetime) -> None:
        """Append the record's JSON to `out` as parts; a page joins all its parts once."""
        slot = self._templates[h % self.size]
        full, _, fragment = slot if slot is not None else self._slot(h)
        own = self._dumps(self._own(index, h, created, full))
        if fragment:
            out.extend((own[:-1], b",", fragment, b"}"))
        else:
            out.append(own)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def history_time(index: int, count: int, ties: int = 1) -> datetime:
    """Creation time of record `index` of `count`: monotonic in index, spread evenly over five years.

    `ties` > 1 gives runs of `ties` consecutive records the same timestamp (the fault that loses records
    at page boundaries in clients that page on `updated > last seen`).
    """
    if ties > 1:
        index -= index % ties
    return HISTORY_START + timedelta(seconds=(index * HISTORY_SECONDS) // max(count, 1))


def history_first_index(ts: datetime, count: int, strictly_after: bool = False) -> int:
    """The smallest index whose history_time (ties=1) is >= ts, or > ts when `strictly_after`."""
    seconds = (ts - HISTORY_START).total_seconds()
    if seconds < 0 or (seconds == 0 and not strictly_after):
        return 0
    target = math.floor(seconds) + 1 if strictly_after else math.ceil(seconds)
    return min(-(-(target * max(count, 1)) // HISTORY_SECONDS), count)


def person_name(d: Draw) -> tuple[str, str]:
    return d.pick(FIRST_NAMES), d.pick(LAST_NAMES)


def email_for(first: str, last: str, d: Draw, n: int) -> str:
    return f"{first.lower()}.{last.lower()}{n % 997}@{d.pick(EMAIL_DOMAINS)}"


def phone(d: Draw) -> str:
    area = 200 + d.below(800)
    return f"({area}) 555-{d.below(10000):04d}"


def address(d: Draw) -> dict[str, str]:
    city, state, zip3 = d.pick(CITIES)
    return {
        "street": f"{1 + d.below(9899)} {d.pick(STREET_NAMES)} {d.pick(STREET_KINDS)}",
        "city": city,
        "state": state,
        "code": f"{zip3}{d.below(100):02d}",
        "country": "US",
    }
