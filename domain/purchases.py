"""Purchases: something charged now, pro rata (DOMAIN.md), decided in two steps. `purchase`
prices the request and leaves it waiting for payment; `apply_paid` re-applies it to the state
of the moment its invoice is paid (domain.payments), so what is bought is what the org has then.
Each purchase is registered once in `PURCHASES` with what it changes once paid; the table of
operations (domain.operations) names its decision."""

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

from domain import requests as rq
from domain.billing import Line, charges, held_items, total
from domain.decisions import (ChargePurpose, Context, Decision, Draft, InvoiceDraft, audited, check_storage, collect,
                              public)
from domain.renewal import (apply_scheduled, downgrade_not_applied, keep_ledger_from, plan_change_effects,
                            start_period, void_pending_invoice)
from domain.states import Cycle, InvoiceKind, OrgStatus, PlanChangeReason
from domain.subscription import OrgSnapshot, StorageHolding, Subscribers, UnitCount, WaitingChange

Apply = Callable[[Draft, Any, Context], None]


@dataclass(frozen=True)
class Purchase:
    request: type
    apply: Apply               # what the purchase changes, once paid
    summary: str               # "add {count} licence(s)": formatted with the request's fields
    invoice_kind: InvoiceKind = InvoiceKind.PRORATION

    def request_from(self, payload: dict[str, Any]) -> Any:
        return rq.request_from(self.request, payload)


def _monthly_price(ctx: Context, plan: str, currency: str) -> int:
    return ctx.catalog.plan_price(plan, currency, Cycle.MONTHLY)


def _price(before: OrgSnapshot, after: OrgSnapshot, ctx: Context) -> list[Line]:
    """What the change from `before` to `after` costs from now to the end of after's period."""
    return charges(ctx.catalog, after.currency, after.cycle, (after.period_start, after.renews_at), ctx.now,
                   held_items(after, ctx.catalog), before.ledger)


def _applied(bought: Purchase, state: OrgSnapshot, request: Any, ctx: Context) -> Draft:
    draft = Draft(state)
    bought.apply(draft, request, ctx)
    return draft


def purchase(name: str):
    """The decision of a purchase: nothing to pay (an item whose removal was scheduled bought
    back, a purchase on the renewal day) applies it now; otherwise it is invoiced, charged at
    once, and waits for that payment."""
    def decision(state: OrgSnapshot, request: Any, ctx: Context) -> Decision:
        bought = PURCHASES[name]
        draft = audited(name, state, request)
        after = _applied(bought, state, request, ctx)
        lines = _price(state, after.state, ctx)
        what = bought.summary.format(**asdict(request))
        if not any(line.amount for line in lines):
            draft.absorb(after)
            keep_ledger_from(draft, draft.state.period_start, lines)
            draft.event("change_applied", change=what, operation=name, request=public(request))
            return draft.decision(f"{what}: nothing to pay, done")
        draft.change(pending=WaitingChange(name, asdict(request), what, ctx.now, total=total(lines)))
        draft.bill(InvoiceDraft(bought.invoice_kind, lines, after.state.period_start, after.state.renews_at),
                   ctx.catalog, ctx.now)
        draft.add(collect(ChargePurpose.CHANGE))
        return draft.decision(f"{what} invoiced")
    return decision


def apply_paid(state: OrgSnapshot, paid_lines: list[Line], invoice: str, ctx: Context) -> Draft:
    """The change that waited for `invoice` takes effect now that it is paid, as it was priced:
    a cycle it starts (an upgrade from free, a yearly switch) starts when its invoice's lines do,
    not seconds later when the payment is confirmed."""
    pending = state.pending
    bought = PURCHASES[pending.operation]
    draft = Draft(state.with_changes(pending=None))
    bought.apply(draft, bought.request_from(pending.request), replace(ctx, now=pending.priced_at))
    keep_ledger_from(draft, draft.state.period_start, paid_lines, invoice)
    draft.event("change_applied", change=pending.summary, operation=pending.operation,
                request=public(bought.request_from(pending.request)))
    return draft


def retry_open_invoice(draft: Draft, ctx: Context) -> None:
    """Charge the open invoice now (card updated, staff retry): the dunning invoice, or the
    change waiting for payment, re-priced if the day or the org changed since it was priced."""
    state = draft.state
    if state.dunning_invoice:
        # Every unpaid cycle, oldest first (the dunning invoice, then the arrears): each one paid
        # moves dunning on to the next (domain.payments.invoice_paid) with its own receipt.
        draft.add(collect(ChargePurpose.EXTRA, state.dunning_invoice, state.dunning_attempts + 1))
        for unpaid in state.arrears:
            draft.add(collect(ChargePurpose.EXTRA, unpaid.invoice, unpaid.attempts + 1))
        return
    pending = state.pending
    if pending is None or not state.has_card:
        return
    bought = PURCHASES[pending.operation]
    base = state.with_changes(pending=None)
    after = _applied(bought, base, bought.request_from(pending.request), ctx)
    lines = _price(base, after.state, ctx)
    if pending.priced_at.date() == ctx.now.date() and total(lines) == pending.total:
        draft.add(collect(ChargePurpose.CHANGE, pending.invoice, pending.attempts + 1))
        return
    void_pending_invoice(draft)
    draft.event("change_repriced", change=pending.summary, invoice=pending.invoice)
    if not any(line.amount for line in lines):
        draft.absorb(after)
        keep_ledger_from(draft, draft.state.period_start, lines)
        draft.event("change_applied", change=pending.summary, operation=pending.operation,
                    request=public(bought.request_from(pending.request)))
        return
    draft.change(pending=WaitingChange(pending.operation, pending.request, pending.summary, ctx.now,
                                       total=total(lines)))
    draft.bill(InvoiceDraft(bought.invoice_kind, lines, after.state.period_start, after.state.renews_at),
               ctx.catalog, ctx.now)
    draft.add(collect(ChargePurpose.CHANGE))



# ---- purchases: what each one changes once paid --------------------------------------------------

def _apply_upgrade(draft: Draft, req: rq.UpgradeRequest, ctx: Context) -> None:
    state = draft.state
    if state.status == OrgStatus.FREE:
        # Seed 000: a licence for every user the org has when the upgrade applies; a new cycle.
        draft.set_plan(req.plan, PlanChangeReason.UPGRADE)
        draft.set_status(OrgStatus.ACTIVE)
        draft.change(licences=state.user_count)
        start_period(draft, ctx.now, Cycle(req.cycle or Cycle.MONTHLY))
    else:
        draft.set_plan(req.plan, PlanChangeReason.UPGRADE)
        draft.change(licences=max(state.licences, state.user_count))
        scheduled = state.scheduled.plan
        if scheduled and _monthly_price(ctx, scheduled, state.currency) < _monthly_price(ctx, req.plan, state.currency):
            draft.change(scheduled=replace(state.scheduled, plan=None))
            cut = state.scheduled.licences
            draft.notice(f"the downgrade to {scheduled} scheduled for {state.renews_at:%Y-%m-%d} is dropped: it "
                         f"would undo the upgrade to {req.plan}"
                         + (f"; the cut to {cut} licences stays" if cut is not None else ""))
            if cut is None:
                downgrade_not_applied(draft, ctx, state.scheduled, "upgrade")
    plan_change_effects(draft, state, PlanChangeReason.UPGRADE, ctx)


def _apply_add_licences(draft: Draft, req: rq.AddLicencesRequest, ctx: Context) -> None:
    state = draft.state
    draft.change(licences=state.licences + req.count)
    if state.scheduled.licences is not None:
        draft.change(scheduled=replace(state.scheduled, licences=None))
        draft.notice(f"the licence cut to {state.scheduled.licences} scheduled for {state.renews_at:%Y-%m-%d} is "
                     f"dropped: it would undo the {req.count} licence(s) just bought")
        if state.scheduled.plan is None:
            downgrade_not_applied(draft, ctx, state.scheduled, "licences_bought", bought=req.count)


def _apply_buy_storage(draft: Draft, req: rq.BuyStorageRequest, ctx: Context) -> None:
    """Units whose removal is scheduled are kept first (already paid to the renewal). With
    auto-allocation, the units now free go to the users waiting for one (DOMAIN.md)."""
    state = draft.state
    kept = min(req.count, state.scheduled.removing(req.unit_gb))
    storage = {h.unit_gb: h for h in state.storage}
    holding = storage.get(req.unit_gb, StorageHolding(req.unit_gb, 0, 0))
    storage[req.unit_gb] = StorageHolding(req.unit_gb, holding.owned + req.count - kept, holding.allocated)
    draft.change(storage=[storage[size] for size in sorted(storage)],
                 scheduled=replace(state.scheduled, storage=minus_units(state.scheduled.storage, req.unit_gb, kept)))
    if state.auto_allocate_storage:
        draft.add(check_storage(ctx.key))


def _apply_buy_addon(draft: Draft, req: rq.BuyAddonRequest, ctx: Context) -> None:
    state = draft.state
    if req.addon in state.scheduled.addons:
        draft.change(scheduled=replace(state.scheduled, addons=[a for a in state.scheduled.addons if a != req.addon]))
    else:
        draft.change(addons=sorted([*state.addons, req.addon]))


def _apply_tier(draft: Draft, req: rq.ChangeTierRequest, ctx: Context) -> None:
    state = draft.state
    cut = state.scheduled.tier
    draft.change(tier_contacts=req.contacts, scheduled=replace(state.scheduled, tier=None))
    draft.set_subscribers(Subscribers.within(state.contacts, req.contacts))
    if cut is not None and req.contacts != state.tier_contacts:
        draft.notice(f"the tier cut to {cut} contacts scheduled for {state.renews_at:%Y-%m-%d} is dropped: it "
                     f"would undo the tier raise to {req.contacts}")


def _apply_yearly(draft: Draft, req: rq.SwitchToYearlyRequest, ctx: Context) -> None:
    """The switch ends the monthly cycle now: what was scheduled for its end happens now, and the
    year is billed for what the org keeps (DOMAIN.md)."""
    before = draft.state
    apply_scheduled(draft, ctx)
    start_period(draft, ctx.now, Cycle.YEARLY)
    plan_change_effects(draft, before, PlanChangeReason.DOWNGRADE, ctx)



def minus_units(units: list[UnitCount], unit_gb: int, count: int) -> list[UnitCount]:
    """Scheduled removals with `count` fewer units of that size (more, when negative)."""
    counts = {u.unit_gb: u.count for u in units}
    counts[unit_gb] = counts.get(unit_gb, 0) - count
    return [UnitCount(size, n) for size, n in sorted(counts.items()) if n > 0]


PURCHASES = {
    "upgrade": Purchase(rq.UpgradeRequest, _apply_upgrade, "upgrade to {plan}", InvoiceKind.UPGRADE),
    "add_licences": Purchase(rq.AddLicencesRequest, _apply_add_licences, "add {count} licence(s)"),
    "buy_storage": Purchase(rq.BuyStorageRequest, _apply_buy_storage, "{count} x {unit_gb} GB storage"),
    "buy_addon": Purchase(rq.BuyAddonRequest, _apply_buy_addon, "add-on {addon}"),
    "change_tier": Purchase(rq.ChangeTierRequest, _apply_tier, "tier {contacts} contacts"),
    "switch_to_yearly": Purchase(rq.SwitchToYearlyRequest, _apply_yearly, "switch to yearly", InvoiceKind.CYCLE_SWITCH),
}
