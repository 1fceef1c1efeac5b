"""Auto-allocation (DOMAIN.md, Add-ons, "Our choice"): the pure rule (domain.storage.enforce) and
its triggers through the pure model (a unit bought, a unit released)."""

from datetime import timedelta

from domain import requests as rq
from domain.storage import AutoAllocation, MailboxUser, enforce, storage_emails, units_covering
from tests.domain.builders import utc
from tests.domain.test_decisions import START, model

GB = 1024
STANDARD_GB = 30


def user(email, usage_gb, rank, allocated_gb=0, blocked=False, blocked_at=None, auto=()):
    return MailboxUser(email, int(usage_gb * GB), allocated_gb * GB, rank, blocked,
                       "storage" if blocked else None, blocked_at, tuple(auto))


def given(verdict) -> list[tuple[str, int]]:
    return [(a.email, a.unit_gb) for a in verdict.auto_allocated]


def test_a_user_over_quota_by_more_than_a_unit_gets_as_many_units_as_it_takes():
    # 60 GB on Standard's 30 GB: 30 GB short; 5 + 25 cover it (the second 5 GB unit is not needed).
    verdict = enforce([user("b@x.test", 60, 2)], STANDARD_GB, None, True, {5: 2, 25: 2})
    assert given(verdict) == [("b@x.test", 5), ("b@x.test", 25)]
    assert verdict.blocked == []


def test_the_smallest_units_go_first():
    verdict = enforce([user("b@x.test", 33, 2)], STANDARD_GB, None, True, {5: 1, 25: 1, 50: 1})
    assert given(verdict) == [("b@x.test", 5)]
    verdict = enforce([user("b@x.test", 38, 2)], STANDARD_GB, None, True, {5: 2, 25: 1})
    assert given(verdict) == [("b@x.test", 5), ("b@x.test", 5)]


def test_a_larger_unit_replaces_small_ones_it_makes_unneeded():
    assert units_covering({5: 2, 25: 1}, 20 * GB) == [25]
    assert units_covering({5: 3, 25: 1}, 12 * GB) == [5, 5, 5]


def test_none_is_given_when_all_free_units_together_cannot_cover_the_usage():
    verdict = enforce([user("b@x.test", 70, 2)], STANDARD_GB, None, True, {5: 1, 25: 1})
    assert given(verdict) == []
    assert [(b.email, b.reason, b.quota_mb) for b in verdict.blocked] == [("b@x.test", "storage", 30 * GB)]


def test_a_user_the_pool_cannot_cover_does_not_hold_up_the_next_one():
    users = [user("big@x.test", 70, 2, blocked=True, blocked_at=utc(2026, 1, 1)),
             user("small@x.test", 33, 3, blocked=True, blocked_at=utc(2026, 2, 1))]
    verdict = enforce(users, STANDARD_GB, None, True, {5: 1, 25: 1})
    assert given(verdict) == [("small@x.test", 5)]
    assert verdict.unblocked == ["small@x.test"]


def test_the_user_who_has_waited_longest_goes_first():
    # Ranked later (a newer user) but blocked a month earlier: served first.
    users = [user("newer-block@x.test", 33, 2, blocked=True, blocked_at=utc(2026, 3, 1)),
             user("older-block@x.test", 33, 3, blocked=True, blocked_at=utc(2026, 2, 1)),
             user("just-now@x.test", 33, 4)]
    verdict = enforce(users, STANDARD_GB, None, True, {5: 1})
    assert given(verdict) == [("older-block@x.test", 5)]
    assert verdict.unblocked == ["older-block@x.test"]
    assert [b.email for b in verdict.blocked] == ["just-now@x.test"]


def test_a_unit_given_automatically_goes_back_when_its_user_no_longer_needs_it_and_to_whoever_waits():
    users = [user("shrunk@x.test", 10, 2, allocated_gb=25, auto=(25,)),
             user("waiting@x.test", 50, 3, blocked=True, blocked_at=utc(2026, 2, 1))]
    verdict = enforce(users, STANDARD_GB, None, True, {})
    assert verdict.released == [AutoAllocation("shrunk@x.test", 25)]
    assert given(verdict) == [("waiting@x.test", 25)]
    assert verdict.unblocked == ["waiting@x.test"] and verdict.blocked == []


def test_units_the_admin_allocated_stay_and_so_do_those_still_needed():
    users = [user("admin-gave@x.test", 1, 1, allocated_gb=25),                # allocated by hand: stays
             user("still-needs@x.test", 58, 2, allocated_gb=30, auto=(5, 25))]  # 58 > 30 + 25: keeps both
    verdict = enforce(users, STANDARD_GB, None, True, {})
    assert verdict.released == []
    partly = enforce([user("partly@x.test", 33, 2, allocated_gb=30, auto=(5, 25))], STANDARD_GB, None, True, {})
    assert partly.released == [AutoAllocation("partly@x.test", 25)]   # the 5 GB unit still covers 33 GB


def test_without_auto_allocation_nothing_is_given_or_taken_back():
    users = [user("b@x.test", 40, 2), user("c@x.test", 1, 3, allocated_gb=25, auto=(25,))]
    verdict = enforce(users, STANDARD_GB, None, False, {5: 4})
    assert given(verdict) == [] and verdict.released == []
    assert [b.email for b in verdict.blocked] == ["b@x.test"]


def test_a_user_beyond_the_user_cap_gets_no_unit_it_would_not_unblock():
    users = [user("in@x.test", 8, 5), user("beyond@x.test", 8, 6)]
    verdict = enforce(users, 5, 5, True, {5: 2})
    assert given(verdict) == [("in@x.test", 5)]
    assert [(b.email, b.reason) for b in verdict.blocked] == [("beyond@x.test", "storage")]


def test_one_e_mail_per_user_lists_every_unit_given():
    verdict = enforce([user("b@x.test", 60, 2, blocked=True, blocked_at=utc(2026, 2, 1))], STANDARD_GB, None, True,
                      {5: 1, 25: 1})
    [allocated, unblocked] = storage_emails(verdict, "k", "admin@x.test", None, free_units_left=0)
    assert (allocated.template, allocated.values["units_gb"], allocated.values["unblocked"]) == (
        "storage_auto_allocated", [5, 25], True)
    assert unblocked.template == "user_unblocked"


# ---- the triggers, through the pure model ------------------------------------------------------------

def test_a_unit_bought_while_a_user_is_blocked_unblocks_them():
    org = model(users=("b@acme.test",), auto_allocate_storage=True)
    org.advance_to(START + timedelta(days=2))
    org.request("set_usage", rq.SetUsageRequest("b@acme.test", 40))
    assert org.state.blocked_users == ["b@acme.test"]          # no unit to give: blocked
    org.advance_to(START + timedelta(days=3))
    org.request("buy_storage", rq.BuyStorageRequest(5, 2))      # paid at once: 2 x 5 GB cover 10 GB over
    assert org.state.blocked_users == []
    assert [(h.unit_gb, h.owned, h.allocated) for h in org.state.storage] == [(5, 2, 2)]
    templates = [template for at, template, _ in org.emails if at == START + timedelta(days=3)]
    assert templates == ["receipt", "storage_auto_allocated", "user_unblocked"]


def test_a_unit_released_by_a_shrinking_user_goes_to_a_blocked_user():
    org = model(users=("b@acme.test", "c@acme.test"), auto_allocate_storage=True)
    org.advance_to(START + timedelta(days=1))
    org.request("buy_storage", rq.BuyStorageRequest(25, 1))
    org.request("set_usage", rq.SetUsageRequest("b@acme.test", 50))    # given the 25 GB unit
    org.request("set_usage", rq.SetUsageRequest("c@acme.test", 45))    # nothing left: blocked
    assert org.state.blocked_users == ["c@acme.test"]
    org.request("set_usage", rq.SetUsageRequest("b@acme.test", 12))    # b no longer needs it
    assert org.state.blocked_users == []
    assert org.users["c@acme.test"].units == [25] and org.users["b@acme.test"].units == []
