"""Decisions on a charge's outcome: an invoice paid, a decline at each rung of the dunning
ladder (policy.retry_days), and the final action after the last retry. Declines are business
outcomes; gateway outages never reach here (Temporal retries them)."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from domain import emails
from domain.billing import Line
from domain.cards import card_label
from domain.decisions import (ChargePurpose, Context, Decision, Draft, EmailLine, FinalAction, check_storage,
                              final_dunning_action, no_change, send)
from domain.lifecycle import is_large_account, next_retry_after
from domain.purchases import apply_paid
from domain.renewal import move_to_free, plan_name, write_off_unpaid_cycles
from domain.states import TRIAL_PLAN, InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason
from domain.subscription import IN_DUNNING, OrgSnapshot


@dataclass(frozen=True)
class PaidInvoice:
    """An invoice as stored, for the decisions that follow its payment."""
    number: str
    kind: InvoiceKind
    total: int
    lines: list[EmailLine] = field(default_factory=list)
    ledger_lines: list[Line] = field(default_factory=list)   # its itemised lines: what it billed
    period_start: datetime | None = None
    period_end: datetime | None = None
    credit_applied: int = 0     # the account credit it used (its total is what was charged)


@dataclass(frozen=True)
class Decline:
    invoice: str
    attempt: int
    amount: int
    reason: str | None


def _card(state: OrgSnapshot) -> str | None:
    return card_label(state.card_brand, state.card_last4)


def invoice_paid(state: OrgSnapshot, invoice: PaidInvoice, ctx: Context) -> Decision:
    """End dunning, or apply the change that waited for this invoice; send the receipt."""
    draft = Draft(state)
    announce_conversion = invoice.kind == InvoiceKind.TRIAL_CONVERSION
    later = [unpaid for unpaid in state.arrears if unpaid.invoice != invoice.number]
    if state.dunning_invoice == invoice.number and later:
        # A later cycle is still unpaid: dunning goes on, on the oldest of them, where the ladder was.
        draft.change(dunning_invoice=later[0].invoice, dunning_attempts=later[0].attempts, arrears=later[1:])
        draft.event("dunning", event="moved_on", invoice=later[0].invoice)
    elif state.dunning_invoice == invoice.number:
        recovered = state.status in IN_DUNNING
        draft.change(dunning_invoice=None, dunning_attempts=0, dunning_retries_done=0, dunning_started_at=None,
                     next_retry_at=None, escalated_at=None, first_response_due=None, determination_due=None)
        if recovered:
            draft.event("dunning", event="recovered", invoice=invoice.number)
        draft.set_status(OrgStatus.CANCELLING if state.scheduled.cancel else OrgStatus.ACTIVE)
    elif len(later) < len(state.arrears):
        draft.change(arrears=later)
    elif state.pending is not None and state.pending.invoice == invoice.number:
        draft.absorb(apply_paid(state, invoice.ledger_lines, invoice.number, ctx))
        receipt = _receipt(draft.state, invoice)
        draft.effects.insert(0, send(receipt))  # the receipt first, then what the change brings
        return draft.decision(f"paid {invoice.number}: {state.pending.summary} applied")
    if announce_conversion:
        draft.add(send(emails.plan_changed(ctx.key, TRIAL_PLAN, state.plan, plan_name(ctx.catalog, TRIAL_PLAN),
                                           plan_name(ctx.catalog, state.plan), "trial_converted", ctx.now)))
    draft.add(send(_receipt(draft.state, invoice)))
    if invoice.kind == InvoiceKind.OPENING:
        # The org opens now that its first cycle is paid: a user already over quota is blocked.
        draft.add(check_storage(ctx.key))
        return replace(draft.decision(f"paid {invoice.number}"), opening_paid=True)
    return draft.decision(f"paid {invoice.number}")


def _receipt(state: OrgSnapshot, invoice: PaidInvoice):
    return emails.receipt(invoice.number, invoice.total, _card(state), invoice.lines, invoice.period_start,
                          invoice.period_end, invoice.credit_applied)


def _final_action(state: OrgSnapshot, ctx: Context) -> FinalAction:
    """What follows the last retry declined. Our choice (DOMAIN.md): a large account is never
    downgraded for non-payment; it is escalated to billing staff."""
    large = is_large_account(max(state.licences, state.user_count), ctx.policy)
    return FinalAction.ESCALATE if large else FinalAction.FREE


# The payment_failed e-mail's word for each final action.
_TOLD = {FinalAction.FREE: "free", FinalAction.ESCALATE: "escalated"}


def _final_note(state: OrgSnapshot, ctx: Context) -> str | None:
    """What a payment_failed e-mail tells the admin follows (its `final_action`): once escalated,
    that staff will call; with no retry left (the final action comes next), or before the last
    one (the ladder's, or a grace's), what its failure means. None while more retries follow."""
    if state.status == OrgStatus.ESCALATED:
        return _TOLD[FinalAction.ESCALATE]
    if state.status not in IN_DUNNING or state.dunning_started_at is None:
        return None
    if state.next_retry_at is not None and next_retry_after(state.dunning_started_at, ctx.policy,
                                                            state.dunning_retries_done + 1) is not None:
        return None
    return _TOLD[_final_action(state, ctx)]


def charge_declined(state: OrgSnapshot, decline: Decline, purpose: ChargePurpose, ctx: Context) -> Decision:
    draft = Draft(state)
    if purpose == ChargePurpose.CYCLE:
        if state.dunning_invoice == decline.invoice:
            return no_change(state, "already in dunning")
        started = state.period_start or ctx.now
        next_retry = next_retry_after(started, ctx.policy, 0)
        draft.change(dunning_invoice=decline.invoice, dunning_attempts=decline.attempt, dunning_retries_done=0,
                     dunning_started_at=started, next_retry_at=next_retry)
        draft.set_status(OrgStatus.PAST_DUE)
        draft.event("dunning", event="entered", invoice=decline.invoice)
        draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason,
                                             next_retry, _final_note(draft.state, ctx))))
        return draft.decision(f"payment of {decline.invoice} declined: past due, next retry {next_retry:%Y-%m-%d}")
    if purpose == ChargePurpose.CHANGE:
        if state.pending is not None:
            draft.change(pending=_with_attempts(state, decline.attempt))
        return draft.decision(f"payment of {decline.invoice} declined; the change waits for payment")
    if decline.invoice != state.dunning_invoice:
        return _cycle_left_unpaid(state, decline, purpose, ctx)
    if state.dunning_attempts >= decline.attempt:
        return no_change(state, "attempt already recorded")
    draft.change(dunning_attempts=decline.attempt)
    if purpose == ChargePurpose.EXTRA:
        # An extra attempt (card update, staff retry) counts but does not move the ladder on.
        draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason,
                                             state.next_retry_at, _final_note(state, ctx))))
        return draft.decision(f"payment of {decline.invoice} declined")
    retries_done = state.dunning_retries_done + 1
    next_retry = next_retry_after(state.dunning_started_at, ctx.policy, retries_done)
    draft.change(dunning_retries_done=retries_done, next_retry_at=next_retry)
    if next_retry is not None:
        draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason,
                                             next_retry, _final_note(draft.state, ctx))))
        return draft.decision(f"retry {retries_done} declined; next retry {next_retry:%Y-%m-%d}")
    draft.add(final_dunning_action(_final_action(state, ctx)))
    return draft.decision(f"last retry of {decline.invoice} declined")


def _cycle_left_unpaid(state: OrgSnapshot, decline: Decline, purpose: ChargePurpose, ctx: Context) -> Decision:
    """A later cycle's invoice declined while the org is past due or escalated: it stays unpaid
    beside the dunning invoice, to be charged with it at the next retry, or settled by staff."""
    if state.status not in IN_DUNNING or decline.invoice not in state.unpaid_cycles:
        return no_change(state, f"{decline.invoice} is not unpaid")
    draft = Draft(state)
    draft.change(arrears=[replace(unpaid, attempts=max(unpaid.attempts, decline.attempt))
                          if unpaid.invoice == decline.invoice else unpaid for unpaid in state.arrears])
    if purpose == ChargePurpose.IN_DUNNING:
        draft.event("dunning", event="cycle_unpaid", invoice=decline.invoice)
    next_retry = None if state.status == OrgStatus.ESCALATED else state.next_retry_at
    draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason,
                                         next_retry, _final_note(state, ctx))))
    return draft.decision(f"payment of {decline.invoice} declined; it stays unpaid with {state.dunning_invoice}")


def _with_attempts(state: OrgSnapshot, attempt: int):
    return replace(state.pending, attempts=max(state.pending.attempts, attempt))


def write_off_and_free(state: OrgSnapshot, decline: Decline, ctx: Context) -> Decision:
    """The final dunning action: the grace period was served, the debt stays on the books as
    uncollectible, the org moves to the free plan."""
    if state.status == OrgStatus.FREE:
        return no_change(state, "already on the free plan")
    draft = Draft(state)
    write_off_unpaid_cycles(draft)
    draft.event("dunning", event="final", invoice=decline.invoice)
    draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason, None,
                                         _TOLD[FinalAction.FREE])))
    move_to_free(draft, PlanChangeReason.PAYMENT_FAILED, ctx)
    return draft.decision(f"{decline.invoice} written off; moved to the free plan")


def escalate(state: OrgSnapshot, decline: Decline, ctx: Context) -> Decision:
    """Seed 002: anything that needs a person for a large account is S1-Critical."""
    if state.status == OrgStatus.ESCALATED:
        return no_change(state, "already escalated")
    now, policy = ctx.now, ctx.policy
    first = now + timedelta(hours=policy.escalation_first_response_hours)
    determination = now + timedelta(hours=policy.escalation_determination_hours)
    draft = Draft(state)
    draft.change(escalated_at=now, first_response_due=first, determination_due=determination, next_retry_at=None)
    draft.set_status(OrgStatus.ESCALATED)
    draft.event("escalated", severity="S1", reason="payment_failed", invoice=decline.invoice,
                first_response_due=first.isoformat(), determination_due=determination.isoformat())
    draft.add(send(emails.payment_failed(decline.invoice, decline.attempt, decline.amount, decline.reason, None,
                                         _TOLD[FinalAction.ESCALATE])))
    draft.add(send(emails.escalation(decline.invoice, decline.attempt, policy.staff_notify_email, state.licences,
                                     decline.amount, first, determination)))
    return draft.decision("escalated to billing staff (S1-Critical)")
