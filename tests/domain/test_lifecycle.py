import pytest

from domain.lifecycle import (Step, StepKind, is_large_account, next_retry_after, next_step,
                              retry_schedule)
from domain.policy import Policy
from domain.subscription import Scheduled
from domain.states import Cycle, OrgStatus
from tests.domain.builders import RENEWS_AT, active_org, free_org, policy, trial_org, utc

# Trial started 2026-01-31 09:00, 15 days: ends 2026-02-15 09:00.
TRIAL_END = utc(2026, 2, 15, 9)
THREE_DAYS_BEFORE = utc(2026, 2, 12, 9)
ONE_DAY_BEFORE = utc(2026, 2, 14, 9)
P = policy()


# --- trial -------------------------------------------------------------------------------

def test_first_step_of_a_trial_is_the_three_day_reminder():
    step = next_step(trial_org(), P, utc(2026, 1, 31, 9))
    assert step == Step(StepKind.SEND_TRIAL_REMINDER, THREE_DAYS_BEFORE,
                        "trial ends 2026-02-15 09:00 UTC; sending the 3-day reminder", reminder_days=3)


def test_after_the_three_day_reminder_comes_the_one_day_reminder():
    step = next_step(trial_org(trial_reminders_sent=[3]), P, utc(2026, 2, 12, 9, 0, 5))
    assert (step.kind, step.due, step.reminder_days) == (StepKind.SEND_TRIAL_REMINDER, ONE_DAY_BEFORE, 1)


def test_three_day_reminder_due_but_not_sent_is_still_sent_while_its_successor_is_not_due():
    step = next_step(trial_org(), P, utc(2026, 2, 13, 20))
    assert (step.kind, step.due, step.reminder_days) == (StepKind.SEND_TRIAL_REMINDER, THREE_DAYS_BEFORE, 3)


def test_a_reminder_whose_successor_is_already_due_is_skipped():
    # The worker was down until after the 1-day reminder time: only the 1-day one goes out.
    step = next_step(trial_org(), P, utc(2026, 2, 14, 10))
    assert (step.kind, step.due, step.reminder_days) == (StepKind.SEND_TRIAL_REMINDER, ONE_DAY_BEFORE, 1)


def test_successor_due_exactly_now_skips_the_earlier_reminder():
    step = next_step(trial_org(), P, ONE_DAY_BEFORE)
    assert step.reminder_days == 1


def test_reminder_order_does_not_depend_on_policy_order():
    step = next_step(trial_org(), policy(trial_reminder_days=(1, 3)), utc(2026, 1, 31, 9))
    assert (step.due, step.reminder_days) == (THREE_DAYS_BEFORE, 3)


def test_end_trial_after_all_reminders_moves_to_free():
    step = next_step(trial_org(trial_reminders_sent=[3, 1]), P, utc(2026, 2, 14, 9, 1))
    assert step == Step(StepKind.END_TRIAL, TRIAL_END, "trial ends; moving to the free plan")


def test_end_trial_with_a_plan_chosen_during_the_trial():
    org = trial_org(trial_reminders_sent=[3, 1], trial_choice_plan="standard", trial_choice_cycle=Cycle.YEARLY)
    step = next_step(org, P, utc(2026, 2, 14, 12))
    assert step.kind == StepKind.END_TRIAL
    assert step.due == TRIAL_END
    assert step.summary == "trial ends; converting to standard (yearly) and charging the first cycle"


def test_trial_already_over_skips_unsent_reminders():
    step = next_step(trial_org(), P, utc(2026, 2, 15, 9))
    assert (step.kind, step.due) == (StepKind.END_TRIAL, TRIAL_END)
    step = next_step(trial_org(trial_reminders_sent=[3]), P, utc(2026, 2, 20))
    assert (step.kind, step.due) == (StepKind.END_TRIAL, TRIAL_END)


def test_no_reminders_configured_goes_straight_to_end_trial():
    step = next_step(trial_org(), policy(trial_reminder_days=()), utc(2026, 1, 31, 9))
    assert (step.kind, step.due) == (StepKind.END_TRIAL, TRIAL_END)


# --- renewal -----------------------------------------------------------------------------

def test_active_org_renews_at_its_renewal_date():
    step = next_step(active_org(), P, utc(2026, 4, 10))
    assert step == Step(StepKind.RENEW, RENEWS_AT,
                        "cycle ends 2026-04-30 09:00 UTC; renewal charge for the next monthly cycle")


def test_cancelling_org_moves_to_free_at_the_renewal_date():
    org = active_org(status=OrgStatus.CANCELLING, scheduled=Scheduled(cancel=True))
    step = next_step(org, P, utc(2026, 4, 10))
    assert step.kind == StepKind.RENEW
    assert step.due == RENEWS_AT
    assert step.summary == "cycle ends 2026-04-30 09:00 UTC; cancellation takes effect: moving to the free plan"


def test_scheduled_downgrade_is_mentioned_in_the_renewal_step():
    step = next_step(active_org(scheduled=Scheduled(plan="mail_lite_5")), P, utc(2026, 4, 10))
    assert (step.kind, step.due) == (StepKind.RENEW, RENEWS_AT)
    assert step.summary.endswith("scheduled downgrade to mail_lite_5 takes effect, then renewal charge")


# --- dunning -----------------------------------------------------------------------------

# The renewal of 2026-04-30 was declined: the org is past due in the cycle it opened.
NEXT_RENEWAL = utc(2026, 5, 31, 9)


def in_dunning(**changes):
    return active_org(period_start=RENEWS_AT, renews_at=NEXT_RENEWAL, dunning_invoice="INV-7", **changes)


def test_past_due_retries_at_next_retry_at():
    org = in_dunning(status=OrgStatus.PAST_DUE, dunning_retries_done=0, next_retry_at=utc(2026, 5, 1, 9))
    step = next_step(org, P, utc(2026, 4, 30, 10))
    assert step == Step(StepKind.RETRY_PAYMENT, utc(2026, 5, 1, 9), "past due on INV-7; payment retry 1 of 4")


def test_last_retry_is_flagged():
    org = in_dunning(status=OrgStatus.PAST_DUE, dunning_retries_done=3, next_retry_at=utc(2026, 5, 7, 9))
    step = next_step(org, P, utc(2026, 5, 6))
    assert step.summary == "past due on INV-7; payment retry 4 of 4 (last retry)"


def test_a_past_due_org_whose_next_cycle_comes_before_its_retry_renews_on_its_date():
    """Staff gave it until June: the cycle starting May 31 is invoiced on May 31 all the same."""
    org = in_dunning(status=OrgStatus.PAST_DUE, dunning_retries_done=4, next_retry_at=utc(2026, 6, 3, 9))
    step = next_step(org, P, utc(2026, 5, 20))
    assert step == Step(StepKind.RENEW, NEXT_RENEWAL,
                        "past due on INV-7; next retry 2026-06-03 09:00 UTC; cycle ends 2026-05-31 09:00 UTC: the "
                        "next monthly cycle is invoiced and charged once")


def test_an_escalated_org_waits_for_staff_and_renews_on_its_date():
    org = in_dunning(status=OrgStatus.ESCALATED, first_response_due=utc(2026, 5, 7, 12))
    step = next_step(org, P, utc(2026, 5, 7, 9))
    assert step == Step(StepKind.RENEW, NEXT_RENEWAL,
                        "escalated S1-Critical: waiting for billing staff (first response due 2026-05-07 12:00 UTC); "
                        "cycle ends 2026-05-31 09:00 UTC: the next monthly cycle is invoiced and charged once")
    # Without a renewal date (none to invoice), it waits for staff alone.
    waiting = next_step(org.with_changes(renews_at=None), P, utc(2026, 5, 7, 9))
    assert waiting == Step(StepKind.AWAIT_STAFF, None,
                           "escalated S1-Critical: waiting for billing staff (first response due 2026-05-07 12:00 UTC)")


def test_escalated_without_deadline():
    step = next_step(in_dunning(status=OrgStatus.ESCALATED).with_changes(renews_at=None), P, utc(2026, 5, 7, 9))
    assert step == Step(StepKind.AWAIT_STAFF, None, "escalated: waiting for billing staff")


def test_free_org_is_idle():
    step = next_step(free_org(), P, utc(2026, 5, 7, 9))
    assert step == Step(StepKind.IDLE, None, "on the free plan; waiting for a change from the admin or staff")


# --- retry schedule, large accounts ---------------------------------------------------------

FAILED_AT = utc(2026, 4, 30, 9)


@pytest.mark.parametrize("retries_done, expected", [
    (0, utc(2026, 5, 1, 9)),
    (1, utc(2026, 5, 3, 9)),
    (2, utc(2026, 5, 5, 9)),
    (3, utc(2026, 5, 7, 9)),
    (4, None),
    (9, None),
])
def test_next_retry_after_default_ladder(retries_done, expected):
    assert next_retry_after(FAILED_AT, Policy(), retries_done) == expected


def test_retry_schedule_follows_the_policy():
    assert retry_schedule(FAILED_AT, Policy(retry_days=(2, 10))) == [utc(2026, 5, 2, 9), utc(2026, 5, 10, 9)]


@pytest.mark.parametrize("licences, large", [(99, False), (100, True), (250, True), (0, False)])
def test_is_large_account(licences, large):
    assert is_large_account(licences, Policy()) is large


def test_large_account_threshold_is_configurable():
    assert is_large_account(10, Policy(large_account_licences=10))
    assert not is_large_account(9, Policy(large_account_licences=10))
