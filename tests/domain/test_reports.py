"""Usage reports and contact counts as facts with a time (domain.reports): which report wins,
whatever the order they arrive in; a repeat or a late one changes nothing."""

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from domain import reports
from domain import requests as rq
from domain.errors import InvalidInput
from domain.limits import Limits, check_instant, check_request_fields
from domain.reports import CONTACTS, Report, Stamp, arrival_id, sort_out, stamped

NOW = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


def usage(user: str, gb: float, minutes_ago: int, report_id: str) -> Report:
    return Report(user, gb, Stamp(NOW - timedelta(minutes=minutes_ago), report_id))


def test_the_newest_report_per_user_wins_in_any_order():
    sent = [usage("a@x.test", 10, 30, "r1"), usage("a@x.test", 40, 10, "r2"), usage("a@x.test", 5, 20, "r3"),
            usage("b@x.test", 7, 50, "r4"), usage("a@x.test", 40, 10, "r2")]
    for order in itertools.permutations(sent):
        sorted_out = sort_out(list(order), {})
        assert {(r.subject, r.value) for r in sorted_out.fresh} == {("a@x.test", 40), ("b@x.test", 7)}
        assert (len(sorted_out.repeated), len(sorted_out.older)) == (1, 2)


def test_a_report_as_old_as_the_one_applied_is_a_repeat_an_older_one_changes_nothing():
    applied = {"a@x.test": Stamp(NOW - timedelta(minutes=10), "r2"), CONTACTS: Stamp(NOW, "c9")}
    sorted_out = sort_out([usage("a@x.test", 40, 10, "r2"), usage("a@x.test", 1, 11, "r0"),
                           Report(CONTACTS, 1800, Stamp(NOW - timedelta(seconds=1), "c8"))], applied)
    assert sorted_out.fresh == []
    assert [r.stamp.id for r in sorted_out.repeated] == ["r2"]
    assert [r.stamp.id for r in sorted_out.older] == ["r0", "c8"]
    assert sorted_out.describe() == "0 applied, 1 repeated, 2 older than one already applied"


def test_reports_of_one_instant_follow_their_order_of_arrival():
    """Reports with no time of their own arrive stamped with the moment and their place, which
    compares as the order of arrival (zero-padded: the 10th after the 9th)."""
    first = stamped(rq.SetUsageRequest("a@x.test", 31), NOW, arrival_id(9, "run-1"))
    second = stamped(rq.SetUsageRequest("a@x.test", 1), NOW, arrival_id(10, "run-1"))
    found = [r for request in (second, first) for r in reports.reports_in("set_usage", request, NOW, "key")]
    assert [r.value for r in sort_out(found, {}).fresh] == [1.0]
    assert first.reported_at == NOW.isoformat() and first.report_id == "000000000009@run-1"


def test_a_senders_id_and_time_are_kept():
    request = stamped(rq.SetUsageRequest("a@x.test", 2, report_id="meter-1", reported_at="2026-03-01T08:00:00+07:00"),
                      NOW, arrival_id(1, "run"))
    [report] = reports.reports_in("set_usage", request, NOW, "key")
    assert report.stamp == Stamp(datetime(2026, 3, 1, 1, tzinfo=timezone.utc), "meter-1")


@pytest.mark.parametrize("value, message", [
    ("yesterday", "reported_at: 'yesterday' is not a moment in ISO 8601 (e.g. 2026-01-31T09:00:00+00:00)"),
    ("2026-03-01T09:00:00", "reported_at: '2026-03-01T09:00:00' has no UTC offset (e.g. 2026-01-31T09:00:00+00:00)"),
    (5, "reported_at: expected text, got 5"),
])
def test_a_time_that_is_not_a_moment_is_refused_naming_the_field(value, message):
    with pytest.raises(InvalidInput) as refused:
        check_request_fields(rq.SetUsageRequest("a@x.test", 1, reported_at=value), Limits())
    assert refused.value.message == message


def test_a_report_dated_in_the_future_is_refused_beyond_a_clock_skew():
    ahead = rq.SetContactsRequest(5, reported_at=(NOW + timedelta(minutes=6)).isoformat())
    with pytest.raises(InvalidInput, match=r"reported_at: .* is after now \(2026-03-01 09:00:00 UTC\)"):
        reports.check_not_ahead(ahead, NOW)
    reports.check_not_ahead(rq.SetContactsRequest(5, reported_at=(NOW + timedelta(minutes=4)).isoformat()), NOW)
    assert check_instant("2026-03-01T09:00:00Z", "at") == NOW


def test_a_long_report_id_is_refused():
    with pytest.raises(InvalidInput, match="report_id: at most 100 characters, got 101"):
        check_request_fields(rq.SetUsageRequest("a@x.test", 1, report_id="r" * 101), Limits())
