"""What an org's workflow does next, and when: the policy in one pure function.

The workflow sleeps until `Step.due`, then performs `Step.kind`; an accepted change wakes it
early and the step is recomputed from the fresh snapshot."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from domain.policy import Policy
from domain.subscription import IN_DUNNING, OrgSnapshot
from domain.states import OrgStatus


class StepKind(StrEnum):
    SEND_TRIAL_REMINDER = "send_trial_reminder"
    END_TRIAL = "end_trial"
    RENEW = "renew"
    RETRY_PAYMENT = "retry_payment"
    AWAIT_STAFF = "await_staff"
    IDLE = "idle"


@dataclass(frozen=True)
class Step:
    kind: StepKind
    due: datetime | None
    summary: str
    reminder_days: int | None = None


def _pending_trial_reminder(org: OrgSnapshot, policy: Policy, now: datetime) -> tuple[int, datetime] | None:
    """The next reminder still worth sending. A reminder whose successor is already due is
    skipped (one late e-mail is enough, two at once is noise), and so is one more than half its
    lead time late ("3 days left" sent with hours left would mislead)."""
    assert org.trial_ends_at is not None
    schedule = sorted(((days, org.trial_ends_at - timedelta(days=days)) for days in policy.trial_reminder_days),
                      key=lambda item: item[1])
    for index, (days, at) in enumerate(schedule):
        if days in org.trial_reminders_sent:
            continue
        successor_due = index + 1 < len(schedule) and schedule[index + 1][1] <= now
        too_late = now - at > timedelta(days=days) / 2
        if successor_due or too_late or org.trial_ends_at <= now:
            continue
        return days, at
    return None


def next_step(org: OrgSnapshot, policy: Policy, now: datetime) -> Step:
    """A past-due or escalated org renews on its renewal date like any other (DOMAIN.md: each
    cycle served is invoiced on its own renewal date)."""
    if org.status == OrgStatus.TRIALING and org.trial_ends_at is not None:
        reminder = _pending_trial_reminder(org, policy, now)
        if reminder is not None:
            days, at = reminder
            return Step(StepKind.SEND_TRIAL_REMINDER, at,
                        f"trial ends {org.trial_ends_at:%Y-%m-%d %H:%M} UTC; sending the {days}-day reminder",
                        reminder_days=days)
        if org.trial_choice_plan:
            tier = f" with a {org.trial_choice_tier}-contact tier" if org.trial_choice_tier else ""
            then = (f"converting to {org.trial_choice_plan} ({org.trial_choice_cycle}){tier} and charging the "
                    "first cycle")
        else:
            then = "moving to the free plan"
        return Step(StepKind.END_TRIAL, org.trial_ends_at, f"trial ends; {then}")

    if org.status in (OrgStatus.ACTIVE, OrgStatus.CANCELLING) and org.renews_at is not None:
        if org.scheduled.cancel:
            what = "cancellation takes effect: moving to the free plan"
        elif org.scheduled.downgrade:
            target = org.scheduled.plan or f"{org.scheduled.licences} licences"
            what = f"scheduled downgrade to {target} takes effect, then renewal charge"
        elif org.scheduled.cycle is not None:
            what = f"billing switches to {org.scheduled.cycle}: renewal charge for a {org.scheduled.cycle} cycle"
        else:
            what = f"renewal charge for the next {org.cycle} cycle"
        return Step(StepKind.RENEW, org.renews_at, f"cycle ends {org.renews_at:%Y-%m-%d %H:%M} UTC; {what}")

    renews = org.renews_at if org.status in IN_DUNNING else None
    if org.status == OrgStatus.PAST_DUE and org.next_retry_at is not None and (
            renews is None or org.next_retry_at < renews):
        remaining = len(policy.retry_days) - org.dunning_retries_done
        last = " (last retry)" if remaining <= 1 else ""
        return Step(StepKind.RETRY_PAYMENT, org.next_retry_at,
                    f"past due on {org.dunning_invoice}; payment retry {org.dunning_retries_done + 1} of "
                    f"{len(policy.retry_days)}{last}")

    if renews is not None:
        if org.status == OrgStatus.ESCALATED:
            due = org.first_response_due
            waiting = "escalated S1-Critical: waiting for billing staff" + (
                f" (first response due {due:%Y-%m-%d %H:%M} UTC)" if due else "")
        else:
            waiting = f"past due on {org.dunning_invoice}; next retry {org.next_retry_at:%Y-%m-%d %H:%M} UTC"
        return Step(StepKind.RENEW, renews, f"{waiting}; cycle ends {renews:%Y-%m-%d %H:%M} UTC: the next "
                                            f"{org.cycle} cycle is invoiced and charged once")

    if org.status == OrgStatus.ESCALATED:
        due = org.first_response_due
        return Step(StepKind.AWAIT_STAFF, None,
                    f"escalated S1-Critical: waiting for billing staff (first response due "
                    f"{due:%Y-%m-%d %H:%M} UTC)" if due else "escalated: waiting for billing staff")

    return Step(StepKind.IDLE, None, f"on the {org.plan} plan; waiting for a change from the admin or staff")


def retry_schedule(started_at: datetime, policy: Policy) -> list[datetime]:
    return [started_at + timedelta(days=days) for days in policy.retry_days]


def next_retry_after(started_at: datetime, policy: Policy, retries_done: int) -> datetime | None:
    schedule = retry_schedule(started_at, policy)
    return schedule[retries_done] if retries_done < len(schedule) else None


def is_large_account(licences: int, policy: Policy) -> bool:
    return licences >= policy.large_account_licences
