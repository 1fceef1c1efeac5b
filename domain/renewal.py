"""Decisions at the edges of a cycle: trial reminders, the trial end, the renewal; and the
transitions they share with the operations (starting a period, moving to the free plan,
applying what was scheduled for the cycle end, re-checked against what the org uses then)."""

from datetime import datetime

from domain import emails
from domain.billing import Line, charges, held_items, tier_addon
from domain.catalog import Catalog
from domain.decisions import ChargePurpose, Context, Decision, Draft, InvoiceDraft, check_storage, collect, no_change, send
from domain.periods import boundary, next_boundary_after
from domain.states import FREE_PLAN, Cycle, InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason
from domain.subscription import IN_DUNNING, OrgSnapshot, Scheduled, StorageHolding, Subscribers


def plan_name(catalog: Catalog, plan_id: str) -> str:
    return catalog.plans[plan_id].name if plan_id in catalog.plans else plan_id


def tier_floor(contacts: int, catalog: Catalog) -> int:
    """The smallest tier that covers `contacts` (0 when there are none)."""
    tier = tier_addon(catalog)
    if tier is None or contacts <= 0:
        return 0
    steps = -(-contacts // tier.step)
    return max(tier.min, steps * tier.step)


def start_period(draft: Draft, anchor: datetime, cycle: Cycle) -> None:
    draft.change(cycle=cycle, cycle_anchor=anchor, period_start=anchor, renews_at=boundary(anchor, cycle, 1))


def bill_period(draft: Draft, catalog: Catalog, kind: InvoiceKind) -> None:
    """Invoice the whole current period for what the org holds, issued on the day the period
    starts; its lines enter the ledger."""
    state = draft.state
    lines = charges(catalog, state.currency, state.cycle, (state.period_start, state.renews_at), state.period_start,
                    held_items(state, catalog), [])
    draft.bill(InvoiceDraft(kind, lines, state.period_start, state.renews_at, issued_at=state.period_start), catalog,
               state.period_start)
    keep_ledger_from(draft, state.period_start, lines)


def keep_ledger_from(draft: Draft, start: datetime, lines: list[Line], invoice: str | None = None) -> None:
    """Spans ending before `start` can no longer overlap anything billed later: drop them."""
    draft.change(ledger=[s for s in draft.state.ledger if s.end > start] + [line.span(invoice) for line in lines])


def drop_pending(draft: Draft, why: str) -> None:
    """An unpaid change does not outlive its cycle, nor a cancellation (DOMAIN.md)."""
    pending = draft.state.pending
    if pending is None:
        return
    void_pending_invoice(draft)
    draft.event("change_dropped", change=pending.summary, invoice=pending.invoice, why=why)
    draft.change(pending=None)


def void_pending_invoice(draft: Draft) -> None:
    """The invoice of the change waiting for payment will never be collected: the account credit
    it used is the org's again (domain.credit), for an invoice issued by the same decision too."""
    pending = draft.state.pending
    draft.set_invoice_status(pending.invoice, InvoiceStatus.VOID)
    draft.change(credit=draft.state.credit + pending.credit_applied)


def write_off_unpaid_cycles(draft: Draft) -> None:
    """Every served cycle still unpaid is written off as uncollectible: the service was given and
    the debt stays on the books (DOMAIN.md: never voided)."""
    for number in draft.state.unpaid_cycles:
        draft.set_invoice_status(number, InvoiceStatus.UNCOLLECTIBLE)


def move_to_free(draft: Draft, reason: PlanChangeReason, ctx: Context, actor: str | None = None) -> None:
    """The org keeps its users and data; the paid cycle, its items and anything scheduled or
    waiting end now. Quotas shrink: storage enforcement follows, and the plan_changed e-mail."""
    before = draft.state.plan
    drop_pending(draft, "the subscription ended")
    draft.set_plan(FREE_PLAN, reason, actor)
    draft.set_status(OrgStatus.FREE)
    draft.set_subscribers(Subscribers(0, draft.state.subscribers.total))
    draft.change(cycle=None, cycle_anchor=None, period_start=None, renews_at=None, scheduled=Scheduled(),
                 trial_choice_plan=None, trial_choice_cycle=None, trial_choice_tier=None,
                 dunning_invoice=None, dunning_attempts=0, dunning_retries_done=0, dunning_started_at=None,
                 next_retry_at=None, escalated_at=None, first_response_due=None, determination_due=None,
                 arrears=[], tier_contacts=0, addons=[],
                 storage=[StorageHolding(h.unit_gb, 0, 0) for h in draft.state.storage if h.owned], ledger=[])
    if reason != PlanChangeReason.TRIAL_EXPIRED:  # the trial_expired e-mail says it
        draft.add(send(emails.plan_changed(ctx.key, before, FREE_PLAN, plan_name(ctx.catalog, before),
                                           plan_name(ctx.catalog, FREE_PLAN), str(reason), ctx.now)))
        draft.add(check_storage(ctx.key))


def downgrade_not_applied(draft: Draft, ctx: Context, scheduled: Scheduled, why: str, **values: int | str) -> None:
    """A scheduled downgrade that will not happen after all (re-checked at the renewal, or undone
    by a later paid change): the admin, told by downgrade_scheduled that it would, is told why."""
    state = draft.state
    to_plan = scheduled.plan or state.plan
    to_licences = scheduled.licences if scheduled.licences is not None else state.licences
    draft.event("downgrade_dropped", to=to_plan, licences=to_licences, why=why, **values)
    draft.add(send(emails.downgrade_not_applied(
        ctx.key, plan_name(ctx.catalog, draft.state.plan), draft.state.licences, plan_name(ctx.catalog, to_plan),
        to_licences, why, state.renews_at, **values)))


def apply_scheduled(draft: Draft, ctx: Context) -> None:
    """What was scheduled for the cycle end takes effect, re-checked now: never below the users
    or the subscribed contacts the org has (DOMAIN.md, "later wins"); a downgrade of which
    nothing is left then is announced as not applied."""
    catalog = ctx.catalog
    state = draft.state
    scheduled = state.scheduled
    plan = scheduled.plan
    dropped: tuple[str, dict] | None = None
    cap = catalog.plans[plan].user_cap if plan in catalog.plans else None
    if plan and cap is not None and state.user_count > cap:
        draft.notice(f"the downgrade to {plan} is dropped: it allows {cap} users; the org has {state.user_count}")
        dropped, plan = ("user_cap", {"user_cap": cap, "users": state.user_count}), None
    if plan:
        draft.set_plan(plan, PlanChangeReason.DOWNGRADE)
    if scheduled.licences is not None:
        licences = scheduled.licences
        if licences < state.user_count:
            draft.notice(f"the licence cut to {licences} is reduced to {state.user_count}: the org has "
                         f"{state.user_count} users")
            licences = state.user_count
            dropped = dropped or ("users", {"users": state.user_count})
        draft.change(licences=licences)
    if dropped and plan is None and draft.state.licences >= state.licences:
        downgrade_not_applied(draft, ctx, scheduled, dropped[0], **dropped[1])
    if scheduled.tier is not None:
        floor = tier_floor(state.subscribers.subscribed, catalog)
        tier = scheduled.tier
        if tier < floor:
            tier = min(floor, state.tier_contacts)
            draft.notice(f"the tier cut to {scheduled.tier} contacts lands at {tier}: "
                         f"{state.subscribers.subscribed} contacts are subscribed")
        draft.change(tier_contacts=tier)
    if scheduled.addons:
        draft.change(addons=[a for a in state.addons if a not in scheduled.addons])
    if scheduled.storage:
        draft.change(storage=[StorageHolding(h.unit_gb, h.owned - scheduled.removing(h.unit_gb), h.allocated)
                              for h in draft.state.storage])
    draft.change(scheduled=Scheduled(cancel=scheduled.cancel))


def plan_change_effects(draft: Draft, before: OrgSnapshot, reason: PlanChangeReason, ctx: Context) -> None:
    """A new plan changes quotas: the admin is told, and storage enforcement runs."""
    after = draft.state.plan
    if after == before.plan:
        return
    draft.add(send(emails.plan_changed(ctx.key, before.plan, after, plan_name(ctx.catalog, before.plan),
                                       plan_name(ctx.catalog, after), str(reason), ctx.now)))
    draft.add(check_storage(ctx.key))


# ---- trial -------------------------------------------------------------------------------------

def end_trial(state: OrgSnapshot, ctx: Context) -> Decision:
    """Seed 003: a plan (and tier) chosen during the trial starts when it ends and its first
    cycle is charged; without one the org moves to the free plan."""
    now, catalog = ctx.now, ctx.catalog
    if state.status != OrgStatus.TRIALING or state.trial_ends_at is None or now < state.trial_ends_at:
        return no_change(state, "the trial has already ended")
    draft = Draft(state)
    ends = state.trial_ends_at
    if state.trial_choice_plan is None:
        move_to_free(draft, PlanChangeReason.TRIAL_EXPIRED, ctx)
        draft.add(check_storage(ctx.key, announce=emails.trial_expired(ends, plan_name(catalog, FREE_PLAN))))
        return draft.decision("trial expired: moved to the free plan")
    tier = state.trial_choice_tier or 0
    draft.set_plan(state.trial_choice_plan, PlanChangeReason.TRIAL_CONVERTED)
    draft.set_status(OrgStatus.ACTIVE)
    draft.change(licences=max(state.licences, state.user_count), tier_contacts=tier,
                 trial_choice_plan=None, trial_choice_cycle=None, trial_choice_tier=None)
    draft.set_subscribers(Subscribers.within(state.subscribers.total, tier))
    start_period(draft, ends, state.trial_choice_cycle or Cycle.MONTHLY)
    bill_period(draft, catalog, InvoiceKind.TRIAL_CONVERSION)
    # Quotas may shrink (the trial is Professional): enforce now. The conversion itself is
    # announced once its first payment succeeds (no e-mail announces an unpaid plan).
    draft.add(check_storage(ctx.key))
    draft.add(collect(ChargePurpose.CYCLE))
    return draft.decision(f"trial converted to {draft.state.plan} ({draft.state.cycle})")


# ---- renewal -------------------------------------------------------------------------------------

def renew(state: OrgSnapshot, period_start: datetime, ctx: Context) -> Decision:
    """Close the cycle ending at `period_start`: drop a change still waiting for payment, apply
    what was scheduled (a switch to monthly included), then invoice the next cycle for what the
    org holds.

    A past-due or escalated org keeps its service, so it renews too (DOMAIN.md, large accounts:
    each cycle served is invoiced on its own renewal date). Its card is charged once (the renewal
    charges the card on the renewal date, and a card may have been topped up since); a decline
    leaves the invoice unpaid beside the dunning one, for the next retry or for billing staff,
    whose decisions settle them all (charged, or written off), never skip one."""
    renewing = (OrgStatus.ACTIVE, OrgStatus.CANCELLING, *IN_DUNNING)
    if state.renews_at != period_start or state.status not in renewing:
        return no_change(state, "nothing to renew")
    catalog = ctx.catalog
    draft = Draft(state)
    drop_pending(draft, "not paid by the end of its cycle")
    if state.scheduled.cancel:
        move_to_free(draft, PlanChangeReason.CANCELLED, ctx)
        return draft.decision("cancellation took effect: moved to the free plan")
    before = draft.state
    switch_to = state.scheduled.cycle
    apply_scheduled(draft, ctx)
    if switch_to is not None and switch_to != state.cycle:
        # DOMAIN.md: a yearly org's switch to monthly starts a monthly cycle at its yearly renewal.
        start_period(draft, period_start, switch_to)
        draft.event("cycle_changed", **{"from": str(state.cycle), "to": str(switch_to)})
    else:
        draft.change(period_start=period_start,
                     renews_at=next_boundary_after(state.cycle_anchor, state.cycle, period_start))
    bill_period(draft, catalog, InvoiceKind.RENEWAL)
    plan_change_effects(draft, before, PlanChangeReason.DOWNGRADE, ctx)
    if state.status in IN_DUNNING:
        draft.add(collect(ChargePurpose.IN_DUNNING))
        return draft.decision(f"renewed until {draft.state.renews_at:%Y-%m-%d} while {state.status} on "
                              f"{state.dunning_invoice}")
    draft.add(collect(ChargePurpose.CYCLE))
    return draft.decision(f"renewed until {draft.state.renews_at:%Y-%m-%d}")

