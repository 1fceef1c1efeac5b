"""The fields of a scenario file, read one by one: each reader returns the value it expects or
raises ScenarioError naming where (`actions[2].at`, `org.users[1].email`) and what is wrong."""

import re
from datetime import date, datetime, timezone
from typing import Any

from dateutil.relativedelta import relativedelta

from domain.errors import InvalidInput
from domain.limits import check_text, shown

MAX_DURATION_TEXT = 40          # "P1Y2M3DT4H5M6S" and its like; longer is not a duration a person writes
MAX_LIST = 100                  # reminder days, retry days, staff e-mails


class ScenarioError(Exception):
    """An invalid scenario file: `path` names the field, `message` says what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message


# ---- ISO-8601 durations ---------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?")


def parse_duration(text: Any, path: str) -> relativedelta:
    """A strict ISO-8601 duration, PnYnMnWnDTnHnMnS with whole numbers. Months and years are
    calendar months and years (P1M from Jan 31 is Feb 28), days are 24 hours."""
    hint = "an ISO-8601 duration such as P10D, P1M, PT36H or P1Y2M3DT4H"
    if not isinstance(text, str):
        raise ScenarioError(path, f"expected {hint}, got {shown(text)}")
    match = _DURATION.fullmatch(text.strip()) if len(text) <= MAX_DURATION_TEXT else None
    if match is None:
        raise ScenarioError(path, f"{shown(text)} is not {hint}")
    parts = {name: int(value) for name, value in match.groupdict().items() if value is not None}
    return relativedelta(years=parts.get("years", 0), months=parts.get("months", 0),
                         days=7 * parts.get("weeks", 0) + parts.get("days", 0), hours=parts.get("hours", 0),
                         minutes=parts.get("minutes", 0), seconds=parts.get("seconds", 0))


# ---- typed readers ----------------------------------------------------------------------------

def type_name(value: Any) -> str:
    return {bool: "true/false", int: "a whole number", float: "a number", str: "text", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def after(start: datetime, text: Any, path: str) -> datetime:
    """start + a duration, refused when it leaves the calendar (year 9999)."""
    delta = parse_duration(text, path)
    try:
        return start + delta
    except (OverflowError, ValueError):
        raise ScenarioError(path, f"{shown(text)} after {start.isoformat()} is beyond the year 9999") from None


def mapping(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(path, f"expected a mapping of fields, got {type_name(value)}")
    return value


def no_unknown(data: dict, allowed: list[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ScenarioError(where, f"unknown field; allowed here: {', '.join(allowed)}")


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ScenarioError(path, f"expected text, got {type_name(value)} {shown(value)}")
    return value


def text(value: Any, path: str, field: str) -> str:
    """Text within the bounds of the column it ends up in (domain.limits)."""
    return bounded(check_text, string(value, path), path, field)


def bounded(check, value: Any, path: str, field: str, *args, **kwargs) -> Any:  # noqa: ANN001
    """A domain.limits check whose refusal ("field: ...") is reported at `path`."""
    try:
        return check(value, field, *args, **kwargs)
    except InvalidInput as err:
        raise ScenarioError(path, err.message.removeprefix(f"{field}: ")) from None


def whole(value: Any, path: str, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ScenarioError(path, f"expected a whole number, got {type_name(value)} {shown(value)}")
    if minimum is not None and value < minimum:
        raise ScenarioError(path, f"must be at least {minimum}, got {shown(value)}")
    return value


def number(value: Any, path: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ScenarioError(path, f"expected a number, got {type_name(value)} {shown(value)}")
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(path, f"expected true or false, got {shown(value)}")
    return value


def whole_list(value: Any, path: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ScenarioError(path, f"expected a list of whole numbers, got {type_name(value)} {shown(value)}")
    if len(value) > MAX_LIST:
        raise ScenarioError(path, f"at most {MAX_LIST} entries, got {len(value)}")
    return tuple(whole(item, f"{path}[{i}]") for i, item in enumerate(value))


def card_number(value: Any, path: str) -> str:
    # An unquoted card number is read by YAML as an integer: accept it as the digits it is.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return string(value, path)


def moment(value: Any, path: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ScenarioError(path, f"{value.isoformat()} is a date; give a date and time with a UTC offset, "
                                  "e.g. \"2026-01-31T09:00:00+00:00\"")
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ScenarioError(path, f"{shown(value)} is not an ISO-8601 date and time such as "
                                      "\"2026-01-31T09:00:00+00:00\"") from None
    else:
        raise ScenarioError(path, f"expected an ISO-8601 date and time, got {type_name(value)} {shown(value)}")
    if moment.tzinfo is None:
        raise ScenarioError(path, f"{shown(str(value))} has no UTC offset; add one, e.g. +00:00")
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ScenarioError(path, f"{shown(str(value))} is outside the calendar in UTC") from None
