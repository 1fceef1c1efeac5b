"""The demo's promised times hold whatever day `make run` starts on: each demo org, created as
the demo creates it, is checked with the domain's own period and policy functions (the first
renewal, the trial end, the dunning rungs already due), on every day of a common and a leap year."""

from datetime import datetime, timedelta, timezone

import pytest

from domain.lifecycle import StepKind, next_step, retry_schedule
from domain.onboarding import opening_state, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from domain.proration import days_between
from workers.stack.demo import DEMO_ORGS, plan_demo

POLICY = Policy(billing_staff=("billing@localhost",))
EVERY_DAY = [datetime(year, 1, 1, hour, minute, tzinfo=timezone.utc) + timedelta(days=day)
             for year in (2026, 2028) for day in range(366 if year == 2028 else 365)
             for hour, minute in ((0, 0), (10, 0), (23, 59))]


def first_states(now: datetime, catalog, policy: Policy = POLICY, promised_times_divided_by: int = 1) -> dict:
    """Each demo org's state as created when the demo starts at `now`."""
    return {plan.demo.id: opening_state(paid_for_one_cycle(validate_new_org(plan.org, catalog), plan.started, "demo"),
                                        catalog, policy, plan.started)
            for plan in plan_demo(now, policy, promised_times_divided_by=promised_times_divided_by)}


def test_the_timed_orgs_keep_their_promise_on_every_day(catalog):
    late = []
    for now in EVERY_DAY:
        states = first_states(now, catalog)
        for org_id, after in (("demo-trial-ending", 60), ("demo-renews-soon", 90), ("demo-card-declines", 120),
                              ("demo-large", 3 * 86400)):
            step = next_step(states[org_id], POLICY, now)
            if step.due != now + timedelta(seconds=after):
                late.append(f"{now:%Y-%m-%d %H:%M}: {org_id} {step.kind} at {step.due}, not {after} s after")
    assert late == []


def test_promised_times_divided_by_3_bring_the_timed_orgs_3_times_sooner_and_change_nothing_else(catalog):
    """`make run`'s times as the demo's test runs it (--promised-times-divided-by 3)."""
    now = datetime(2026, 1, 31, 23, 59, tzinfo=timezone.utc)
    as_promised, sooner = first_states(now, catalog), first_states(now, catalog, promised_times_divided_by=3)
    for org_id, after in (("demo-trial-ending", 20), ("demo-renews-soon", 30), ("demo-ppn", 30),
                          ("demo-card-declines", 40)):
        assert next_step(sooner[org_id], POLICY, now).due == now + timedelta(seconds=after), org_id
        assert next_step(as_promised[org_id], POLICY, now).due == now + timedelta(seconds=3 * after), org_id
    timed = {"demo-trial-ending", "demo-renews-soon", "demo-ppn", "demo-card-declines"}
    assert {k: v for k, v in sooner.items() if k not in timed} == {k: v for k, v in as_promised.items() if k not in timed}


@pytest.mark.parametrize("now", [datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc),    # after 31 days of July
                                 datetime(2026, 3, 31, 9, 0, tzinfo=timezone.utc),   # no Feb 31: yearly
                                 datetime(2028, 2, 29, 9, 0, tzinfo=timezone.utc)])  # no Feb 29 a year back
def test_after_a_31_day_month_the_renewals_come_on_time(now, catalog):
    states = first_states(now, catalog)
    renews = next_step(states["demo-renews-soon"], POLICY, now)
    declines = next_step(states["demo-card-declines"], POLICY, now)
    assert (renews.kind, renews.due) == (StepKind.RENEW, now + timedelta(seconds=90))
    assert (declines.kind, declines.due) == (StepKind.RENEW, now + timedelta(minutes=2))


@pytest.mark.parametrize("policy", [POLICY, Policy(billing_staff=("billing@localhost",), trial_days=30,
                                                   trial_reminder_days=(7, 2), retry_days=(2, 4, 9),
                                                   downgrade_window_min_days=5, downgrade_window_max_days=10)],
                         ids=["default policy", "another policy"])
def test_every_org_reaches_its_state_through_the_policy_s_own_timers(policy, catalog):
    """On every day: which dunning retries are already due at the start (so the workflow runs them
    at once), the trials, the downgrade window."""
    ladder = len(policy.retry_days)
    wrong = []
    for now in EVERY_DAY[::7]:
        states = first_states(now, catalog, policy)

        def expect(org_id: str, what: str, ok: bool) -> None:
            if not ok:
                wrong.append(f"{now:%Y-%m-%d %H:%M}: {org_id}: {what}")

        for org_id, attempts in (("demo-dunning-1", 1), ("demo-dunning-2", 2), ("demo-dunning-3", 3),
                                 ("demo-dunning-last", ladder), ("demo-escalated", ladder + 1),
                                 ("demo-written-off", ladder + 1)):
            renewal = states[org_id].renews_at
            retries_due = sum(1 for at in retry_schedule(renewal, policy) if at <= now)
            expect(org_id, f"{1 + retries_due} attempts due, not {attempts}",
                   renewal < now and 1 + retries_due == attempts)
        reminder = next_step(states["demo-trial-reminder"], policy, now)
        expect("demo-trial-reminder", f"{reminder.kind} at {reminder.due}",
               reminder.kind == StepKind.SEND_TRIAL_REMINDER and reminder.due <= now
               and reminder.reminder_days == max(policy.trial_reminder_days))
        expect("demo-trial-expired", "trial not over", states["demo-trial-expired"].trial_ends_at < now)
        expect("demo-new-trial", "trial not just begun",
               states["demo-new-trial"].trial_ends_at == now + timedelta(days=policy.trial_days))
        window = days_between(now, states["demo-downgrade"].renews_at)
        expect("demo-downgrade", f"renews in {window} days",
               policy.downgrade_window_min_days <= window <= policy.downgrade_window_max_days)
    assert wrong == []


def test_large_accounts_are_large_and_the_table_has_at_least_20_orgs(catalog):
    states = first_states(datetime(2026, 11, 27, tzinfo=timezone.utc), catalog)
    assert len(DEMO_ORGS) >= 20 and len(states) == len(DEMO_ORGS)
    assert [org_id for org_id, state in states.items() if state.large_account] == ["demo-large", "demo-escalated"]
