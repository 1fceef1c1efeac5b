"""Bounds on every value a request carries, checked where it enters (the Update's validator, the
CLI, the scenario parser, a CSV import) so that a value accepted is a value the database can
store and the bill can price. Counts and sizes have configurable maxima (`Limits`, part of the
policy); text lengths follow the columns that store them.

A refusal names the field and the limit: "count: at most 1000 units per purchase, got 5000"."""

import hashlib
import math
import re
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from domain.errors import InvalidInput


@dataclass(frozen=True)
class Limits:
    """Configurable maxima (BILLING_MAX_*). Defaults fit a large mail provider's biggest org."""
    licences_per_org: int = 100_000
    units_per_purchase: int = 1_000
    gb_per_mailbox: int = 100_000        # 100 TB: more than any mailbox, far below what a column holds
    contacts: int = 10_000_000
    extend_days: int = 90
    users_per_org: int = 200_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limit {item.name} must be a positive whole number, got {value!r}")


# Longest text each field may hold: the column it is stored in (db/models.py), or what a person
# can read in one line. A field not listed holds at most DEFAULT_TEXT characters.
TEXT_LIMITS = {"email": 254, "user": 254, "requested_by": 254, "reason": 500, "token": 80, "brand": 20,
               "last4": 4, "card": 40, "plan": 40, "addon": 40, "cycle": 10, "action": 10, "name": 200,
               "report_id": 100, "reported_at": 40}
DEFAULT_TEXT = 200
# RFC 5321: a mailbox name of at most 64 characters, an address of at most 254.
EMAIL_LOCAL_MAX, EMAIL_MAX = 64, 254
# Identifiers of an Update (the Temporal UI lets anyone type one) end up in the audit log's keys.
UPDATE_ID_MAX = 100


def shown(value: Any, width: int = 40) -> str:
    """A value as a refusal quotes it: never longer than a line."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 12]}... ({len(str(value))} characters)"


def bounded(key: str, limit: int) -> str:
    """A business key that fits its column (`limit` characters) and stays unique: one built from
    long parts (an org id, an Update id anyone may type, a user's address) keeps its start and
    ends with a digest of the whole. A key that fits is kept as it is."""
    if len(key) <= limit:
        return key
    return f"{key[:limit - 41]}#{hashlib.sha256(key.encode()).hexdigest()}"[:limit]


def cut(text: str, width: int = 70) -> str:
    """Text a message names unquoted (a workflow id): never longer than a line."""
    return text if len(text) <= width else f"{text[:width - 25]}... ({len(text)} characters)"


EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
# Staff's own addresses may be a local mailbox (billing-staff@localhost): no dot in the domain.
LOCAL_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
# Unicode's control characters (category Cc) and lone surrogates (Cs), which no database stores.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_email(value: Any, field: str, local: bool = False) -> str:
    """An e-mail address, returned trimmed and in lower case (`local`: a local mailbox will do)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected an e-mail address, got {shown(value)}")
    email = value.strip().lower()
    if len(email) > EMAIL_MAX or len(email.partition("@")[0]) > EMAIL_LOCAL_MAX:
        raise InvalidInput(f"{field}: an e-mail address has at most {EMAIL_MAX} characters and "
                           f"{EMAIL_LOCAL_MAX} before the @, got {len(email)}")
    if not (LOCAL_EMAIL if local else EMAIL).match(email) or CONTROL.search(email):
        raise InvalidInput(f"{field}: {shown(value)} is not a valid e-mail address")
    return email


def utf8_text(data: bytes) -> str:
    """A file's bytes as text: UTF-8, with or without a byte-order mark. Anything else (another
    encoding, a binary file) is refused naming the line and the byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise InvalidInput(f"line {line} is not UTF-8 text (byte 0x{data[err.start]:02x})") from None
    if "\0" in text:   # valid UTF-8, but no text file holds one (UTF-16, an image, an archive)
        raise InvalidInput(f"line {text[:text.index(chr(0))].count(chr(10)) + 1} is not text (a NUL byte): "
                           "a binary file")
    return text


def check_text(value: Any, field: str, *, limit: int | None = None, multiline: bool = False) -> str:
    """Text that fits its column and any database: UTF-8, no control characters (no NUL, which
    PostgreSQL cannot store), at most `limit` characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected text, got {shown(value)}")
    limit = limit if limit is not None else TEXT_LIMITS.get(field, DEFAULT_TEXT)
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters, got {len(value)}")
    if CONTROL.search(value.replace("\n", "").replace("\t", "") if multiline else value):
        raise InvalidInput(f"{field}: control characters and invalid Unicode are not allowed")
    return value


def check_whole(value: Any, field: str, *, maximum: int, minimum: int = 1, what: str = "") -> int:
    """A whole number between `minimum` and `maximum`."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a whole number, got {shown(value)}")
    if value < minimum:
        raise InvalidInput(f"{field}: must be at least {minimum}, got {value}")
    if value > maximum:
        raise InvalidInput(f"{field}: at most {maximum:,}{' ' + what if what else ''}, got {shown(value)}")
    return value


def check_gb(value: Any, field: str, limits: Limits) -> float:
    """A mailbox size: a finite number of GB from 0 to the configured maximum."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a number of GB, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{field}: must be a finite number of GB, got {value}")
    if value < 0:
        raise InvalidInput(f"{field}: must be a number of GB >= 0, got {value:g}")
    if value > limits.gb_per_mailbox:
        raise InvalidInput(f"{field}: at most {limits.gb_per_mailbox:,} GB per mailbox, got {shown(value)}")
    return float(value)


def check_instant(value: Any, field: str) -> datetime:
    """A moment in ISO 8601 with its UTC offset (a bare local time means nothing to a worker in
    another zone), returned in UTC."""
    text = check_text(value, field)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{field}: {shown(value)} is not a moment in ISO 8601 "
                           "(e.g. 2026-01-31T09:00:00+00:00)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(f"{field}: {shown(value)} has no UTC offset (e.g. 2026-01-31T09:00:00+00:00)")
    return moment.astimezone(timezone.utc)


# How a refusal names each configurable maximum: "count: at most 1,000 units per purchase".
LIMIT_WORDS = {"licences_per_org": "licences per org", "units_per_purchase": "units per purchase",
               "contacts": "contacts", "extend_days": "days of grace", "users_per_org": "users per org"}
# Rows of one usage Update: the workflow's validator checks them within the 2 s a workflow task
# may take (Temporal's deadlock detector, TMPRL1101); 50,000 came close on a loaded machine.
ROWS_PER_UPDATE = 10_000
# Storage unit sizes are looked up in the catalog after this bound: no catalog sells more.
UNIT_GB_MAX = 100_000


def check_request_fields(request: Any, limits: Limits) -> None:
    """Every field of a request (domain.requests) within its bounds: the type its kind says, a
    count within its minimum and configured maximum, a number of GB finite and bounded, text
    that fits its column, an e-mail address well formed. Rules about the org's state come after
    (domain.rules)."""
    from domain.requests import Kind  # requests describe their fields with this module's limits
    for item in fields(request):
        value = getattr(request, item.name)
        if value is None and item.default is None:
            continue
        kind = item.metadata.get("kind", Kind.TEXT)
        if kind == Kind.COUNT:
            maximum = item.metadata.get("maximum")
            check_whole(value, item.name, minimum=item.metadata.get("minimum", 1),
                        maximum=getattr(limits, maximum) if maximum else 10**9, what=LIMIT_WORDS.get(maximum, ""))
        elif kind == Kind.UNIT_GB:
            check_whole(value, item.name, maximum=UNIT_GB_MAX)
        elif kind == Kind.GB:
            check_gb(value, item.name, limits)
        elif kind == Kind.USAGE_ROWS:
            check_usage_rows(value, limits)
        elif kind == Kind.EMAIL:
            check_text(value, item.name)
            check_email(value, item.name)
        elif kind == Kind.INSTANT:
            if value != "":
                check_instant(value, item.name)
        else:
            check_text(value, item.name, multiline=item.name == "reason")


def check_usage_rows(rows: Any, limits: Limits, *, where=lambda index: f"rows[{index}]",
                     whole_file: bool = False) -> list[tuple[str, float]]:
    """Usage rows: (e-mail, GB) pairs, one per user; at most ROWS_PER_UPDATE in one Update, at
    most one per user of the largest org in a `whole_file`. `where` names a row in a refusal (a
    CSV names its line)."""
    if not isinstance(rows, (list, tuple)):
        raise InvalidInput(f"rows: expected a list of (user, storage_gb) pairs, got {shown(rows)}")
    if not rows:
        raise InvalidInput("rows: no usage rows")
    if whole_file and len(rows) > limits.users_per_org:
        raise InvalidInput(f"rows: at most {limits.users_per_org:,} rows (one per user), got {len(rows):,}")
    if not whole_file and len(rows) > ROWS_PER_UPDATE:
        raise InvalidInput(f"rows: at most {ROWS_PER_UPDATE:,} rows in one update (send a larger file in parts), "
                           f"got {len(rows):,}")
    seen: dict[str, int] = {}
    checked = []
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 2:
            raise InvalidInput(f"{where(index)}: expected a (user, storage_gb) pair, got {shown(row)}")
        email = check_email(row[0], f"{where(index)}: user")
        gb = check_gb(row[1], f"{where(index)}: storage_gb", limits)
        if email in seen:
            raise InvalidInput(f"{where(index)}: user {email} is reported twice (first at {where(seen[email])})")
        seen[email] = index
        checked.append((email, gb))
    return checked
