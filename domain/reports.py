"""Usage reports and contact counts are facts with a time (DOMAIN.md, "When requests meet" ->
"Usage reports"): each is applied once, one older than a report already applied for the same
user (for a contact count, the same org) changes nothing, and none is dropped.

A report's stamp is its time and its identity: the sender's `reported_at` and `report_id` when
given, otherwise the moment it reached the org's workflow and its place in the order of arrival
(workflows/org.py stamps it as it arrives, with `arrival_id`). Stamps are ordered: the later
time wins; between two of the same time, the greater identity (an arrival's place is
zero-padded, so a later arrival compares greater). Two reports with the same stamp are the same
report, sent twice. The newest stamp applied per subject is stored with the value (db/), and
every decision on reports compares against it (domain.operations)."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from domain.errors import InvalidInput
from domain.limits import check_email, check_instant

# The subject of an org's contact count (a user's subject is their address, which has an @).
CONTACTS = "contacts"
# The operations whose requests are reports: what each one reports, and about whom.
REPORT_OPERATIONS = ("set_usage", "import_usage", "set_contacts")
# A sender's clock may run a little ahead of the workflow's; a report dated further in the future
# is refused: stored as the newest, it would make every real report after it look older.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, order=True)
class Stamp:
    at: datetime
    id: str

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class Report:
    subject: str             # a user's e-mail address, or CONTACTS
    value: float             # GB for a user, a number of contacts for CONTACTS
    stamp: Stamp


def arrival_id(place: int, run_id: str) -> str:
    """The identity of a report that brought none: its place in the order of arrival at the org's
    workflow (counted across continue-as-new) and the run it arrived in (a workflow started again
    from scratch counts from 0 again)."""
    return f"{place:012d}@{run_id}"


def stamped(request: Any, now: datetime, arrival: str) -> Any:
    """The request with its own time and identity, or the moment and place it arrived."""
    return replace(request, reported_at=request.reported_at or now.isoformat(), report_id=request.report_id or arrival)


def stamp_of(request: Any, now: datetime, key: str) -> Stamp:
    """A request that reached a decision without its stamp (sent by a worker of before) is dated
    by the decision and named by its business key."""
    at = check_instant(request.reported_at, "reported_at") if request.reported_at else now
    return Stamp(at, request.report_id or key)


def check_not_ahead(request: Any, now: datetime) -> None:
    if request.reported_at and check_instant(request.reported_at, "reported_at") > now + CLOCK_SKEW:
        raise InvalidInput(f"reported_at: {request.reported_at} is after now ({now:%Y-%m-%d %H:%M:%S} UTC); "
                           "a report cannot be dated in the future")


def reports_in(operation: str, request: Any, now: datetime, key: str) -> list[Report]:
    """What a report operation's request reports."""
    stamp = stamp_of(request, now, key)
    if operation == "set_usage":
        return [Report(check_email(request.user, "user"), float(request.storage_gb), stamp)]
    if operation == "import_usage":
        return [Report(check_email(email, "user"), float(gb), stamp) for email, gb in request.rows]
    if operation == "set_contacts":
        return [Report(CONTACTS, request.contacts, stamp)]
    return []


def subjects(operation: str, request: Any) -> list[str]:
    """Whose stored stamps a decision on the request compares against."""
    if operation == "set_usage":
        return [request.user.strip().lower()]
    if operation == "import_usage":
        return [email.strip().lower() for email, _ in request.rows]
    if operation == "set_contacts":
        return [CONTACTS]
    return []


@dataclass
class Sorted:
    """Reports sorted against the newest applied per subject."""
    fresh: list[Report] = field(default_factory=list)        # the newest per subject, newer than applied
    repeated: list[Report] = field(default_factory=list)     # the same stamp as one applied or kept
    older: list[Report] = field(default_factory=list)        # older than one applied or kept

    def describe(self) -> str:
        parts = [f"{len(self.fresh)} applied"]
        if self.repeated:
            parts.append(f"{len(self.repeated)} repeated")
        if self.older:
            parts.append(f"{len(self.older)} older than one already applied")
        return ", ".join(parts)


def sort_out(reports: list[Report], applied: Mapping[str, Stamp]) -> Sorted:
    """Which reports change something: per subject, the newest, if newer than the one applied.
    Whatever the order the reports arrive in, the same one wins."""
    newest: dict[str, Report] = {}
    result = Sorted()
    for report in reports:
        best = newest.get(report.subject)
        if best is None or report.stamp > best.stamp:
            if best is not None:
                result.older.append(best)
            newest[report.subject] = report
        elif report.stamp == best.stamp:
            result.repeated.append(report)
        else:
            result.older.append(report)
    for subject, report in newest.items():
        stored = applied.get(subject)
        if stored is None or report.stamp > stored:
            result.fresh.append(report)
        elif report.stamp == stored:
            result.repeated.append(report)
        else:
            result.older.append(report)
    return result
