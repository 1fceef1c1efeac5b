"""The decisions of the operations that are not purchases (or not only): one function per
operation, named as in the table (domain.operations), each pure: state and request in, decision out."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

from domain import emails
from domain import reports
from domain import requests as rq
from domain.cards import CardDetails, sandbox_tokenise
from domain.decisions import Context, Decision, Draft, UserChange, UserChangeKind, audited, check_storage, send
from domain.purchases import minus_units, purchase, retry_open_invoice
from domain.renewal import (downgrade_not_applied, drop_pending, move_to_free, plan_name, tier_floor,
                            write_off_unpaid_cycles)
from domain.states import Cycle, InvoiceStatus, OrgStatus, PlanChangeReason, Resolution, Switch
from domain.subscription import OrgSnapshot, StorageHolding, Subscribers


def add_user(state: OrgSnapshot, req: rq.AddUserRequest, ctx: Context) -> Decision:
    draft = audited("add_user", state, req)
    email = req.email.strip().lower()
    draft.users.append(UserChange(UserChangeKind.ADD, email, storage_gb=float(req.storage_gb)))
    users = state.user_count + 1
    draft.change(user_count=users)
    cut = state.scheduled.licences
    if cut is not None and cut < users:
        left = users if users < state.licences or state.scheduled.plan else None   # None: nothing left to cut
        draft.change(scheduled=replace(state.scheduled, licences=left))
        draft.notice(f"the licence cut scheduled for {state.renews_at:%Y-%m-%d} is "
                     + (f"reduced from {cut} to {users}" if left else f"dropped (it was to {cut})")
                     + ": every user needs a licence")
        if left is None and state.scheduled.plan is None:
            downgrade_not_applied(draft, ctx, state.scheduled, "users", users=users)
    draft.add(check_storage(ctx.key, user=email))
    return draft.decision(f"user {email} added")


def _reported(draft: Draft, name: str, request: Any, ctx: Context) -> reports.Sorted:
    """Apply what a report operation's request reports that is newer than what was applied
    (domain.reports): usage to its users, a contact count to the org."""
    return apply_reports(draft, reports.reports_in(name, request, ctx.now, ctx.key), ctx)


def apply_reports(draft: Draft, found: list[reports.Report], ctx: Context) -> reports.Sorted:
    sorted_out = reports.sort_out(found, ctx.reported)
    for report in sorted_out.fresh:
        if report.subject == reports.CONTACTS:
            _count_contacts(draft, int(report.value), ctx)
        else:
            draft.users.append(UserChange(UserChangeKind.SET_USAGE, report.subject, storage_gb=report.value))
        draft.reported[report.subject] = report.stamp
    return sorted_out


# Above this many users a storage check reads the whole org rather than a list of names.
USERS_CHECKED_BY_NAME = 500


def usage_check(draft: Draft, sorted_out: reports.Sorted, ctx: Context) -> None:
    """Storage enforcement for the users whose usage changed (the whole org for a large batch:
    one query either way)."""
    users = [report.subject for report in sorted_out.fresh if report.subject != reports.CONTACTS]
    if len(users) == 1:
        draft.add(check_storage(ctx.key, user=users[0]))
    elif users:
        draft.add(check_storage(ctx.key, users=users if len(users) <= USERS_CHECKED_BY_NAME else None))


def _not_applied(report: reports.Report, sorted_out: reports.Sorted, ctx: Context) -> str:
    who = "the contact count" if report.subject == reports.CONTACTS else report.subject
    stored = ctx.reported.get(report.subject)
    if report in sorted_out.repeated:
        return f"{who}: this report was already applied; nothing changed"
    return (f"{who}: a newer report is already applied (from {stored}); this one, from {report.stamp}, "
            "changes nothing")


def set_usage(state: OrgSnapshot, req: rq.SetUsageRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # a usage report is a measurement, not a request: not audited
    sorted_out = _reported(draft, "set_usage", req, ctx)
    usage_check(draft, sorted_out, ctx)
    if not sorted_out.fresh:
        return draft.decision(_not_applied((sorted_out.repeated + sorted_out.older)[0], sorted_out, ctx))
    return draft.decision(f"{req.user.strip().lower()} uses {req.storage_gb:g} GB")


def import_usage(state: OrgSnapshot, req: rq.ImportUsageRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # measurements, like a single usage report: not audited
    sorted_out = _reported(draft, "import_usage", req, ctx)
    if sorted_out.fresh:
        draft.add(check_storage(ctx.key))  # one check of the whole org, not one per row
    message = f"usage of {len(req.rows)} user(s) imported"
    if sorted_out.older or sorted_out.repeated:
        message += (f"; {len(sorted_out.older) + len(sorted_out.repeated)} left as they were (a report as new "
                    "or newer was already applied)")
    return draft.decision(message)



def allocate_storage(state: OrgSnapshot, req: rq.AllocateStorageRequest, ctx: Context) -> Decision:
    draft = audited("allocate_storage", state, req)
    email = req.user.strip().lower()
    draft.users.append(UserChange(UserChangeKind.ALLOCATE, email, unit_gb=req.unit_gb))
    if state.storage_removable(req.unit_gb) < 1:  # the only free unit was ending: it stays
        draft.change(scheduled=replace(state.scheduled, storage=minus_units(state.scheduled.storage, req.unit_gb, 1)))
    draft.change(storage=[StorageHolding(h.unit_gb, h.owned, h.allocated + (h.unit_gb == req.unit_gb))
                          for h in state.storage])
    draft.add(check_storage(ctx.key, user=email))
    return draft.decision(f"{req.unit_gb} GB allocated to {email}")


def remove_storage(state: OrgSnapshot, req: rq.RemoveStorageRequest, ctx: Context) -> Decision:
    draft = audited("remove_storage", state, req)
    draft.change(scheduled=replace(state.scheduled, storage=minus_units(state.scheduled.storage, req.unit_gb, -req.count)))
    return draft.decision(f"{req.count} x {req.unit_gb} GB removed from the renewal on {state.renews_at:%Y-%m-%d}")


def remove_addon(state: OrgSnapshot, req: rq.RemoveAddonRequest, ctx: Context) -> Decision:
    draft = audited("remove_addon", state, req)
    draft.change(scheduled=replace(state.scheduled, addons=sorted([*state.scheduled.addons, req.addon])))
    return draft.decision(f"add-on {req.addon} stays until {state.renews_at:%Y-%m-%d}, then ends")


def change_tier(state: OrgSnapshot, req: rq.ChangeTierRequest, ctx: Context) -> Decision:
    if state.status == OrgStatus.TRIALING:
        draft = audited("change_tier", state, req)
        draft.change(trial_choice_tier=req.contacts)
        return draft.decision(f"a {req.contacts}-contact tier starts when the trial ends on "
                              f"{state.trial_ends_at:%Y-%m-%d}")
    if req.contacts <= state.tier_contacts:
        draft = audited("change_tier", state, req)
        if req.contacts == state.tier_contacts:
            draft.change(scheduled=replace(state.scheduled, tier=None))
            return draft.decision(f"the tier cut to {state.scheduled.tier} contacts is cancelled: the tier stays at "
                                  f"{req.contacts} contacts")
        draft.change(scheduled=replace(state.scheduled, tier=req.contacts))
        return draft.decision(f"tier lowered to {req.contacts} contacts from {state.renews_at:%Y-%m-%d}")
    return _buy_tier(state, req, ctx)


_buy_tier = purchase("change_tier")
_upgrade_purchase = purchase("upgrade")


def upgrade(state: OrgSnapshot, req: rq.UpgradeRequest, ctx: Context) -> Decision:
    if state.status == OrgStatus.TRIALING:
        draft = audited("upgrade", state, req)
        draft.change(trial_choice_plan=req.plan, trial_choice_cycle=Cycle(req.cycle or Cycle.MONTHLY))
        return draft.decision(f"{req.plan} ({draft.state.trial_choice_cycle}) starts when the trial ends on "
                              f"{state.trial_ends_at:%Y-%m-%d}")
    return _upgrade_purchase(state, req, ctx)


def set_contacts(state: OrgSnapshot, req: rq.SetContactsRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # a measurement, like usage
    sorted_out = _reported(draft, "set_contacts", req, ctx)
    if not sorted_out.fresh:
        return draft.decision(_not_applied((sorted_out.repeated + sorted_out.older)[0], sorted_out, ctx))
    subscribers = draft.state.subscribers
    message = f"{subscribers.subscribed} contacts subscribed"
    if subscribers.awaiting:
        message += f", {subscribers.awaiting} awaiting upgrade"
    return draft.decision(message)


def _count_contacts(draft: Draft, contacts: int, ctx: Context) -> None:
    """The org now has `contacts`: those within the tier are subscribed, the rest await a raise;
    a scheduled tier cut never lands below the subscribed ones."""
    state = draft.state
    subscribers = Subscribers.within(contacts, state.tier_contacts)
    draft.set_subscribers(subscribers)
    cut = state.scheduled.tier
    if cut is not None:
        floor = tier_floor(subscribers.subscribed, ctx.catalog)
        if floor > cut:
            landing = floor if floor < state.tier_contacts else None
            draft.change(scheduled=replace(state.scheduled, tier=landing))
            draft.notice(f"the tier cut to {cut} contacts " + (f"is reduced to {landing}" if landing else "is dropped")
                         + f": {subscribers.subscribed} contacts are subscribed")


def tokenised_card(values: dict[str, Any]) -> rq.UpdateCardRequest:
    """A card number is tokenised here, as the gateway's card form would: it never goes further
    (raises CardRejected or InvalidInput)."""
    if values.get("payment_method"):   # Stripe's card form gave an id; its card was read back from Stripe
        card = CardDetails(str(values["payment_method"]), values.get("brand") or "", values.get("last4") or "")
    else:
        card = sandbox_tokenise(str(values["card"]))
    return rq.UpdateCardRequest(card.token, card.brand, card.last4, values.get("requested_by", ""),
                                values.get("reason", ""))


def update_card(state: OrgSnapshot, req: rq.UpdateCardRequest, ctx: Context) -> Decision:
    draft = audited("update_card", state, req)
    draft.change(card_brand=req.brand, card_last4=req.last4)
    draft.card_token = req.token
    draft.event("card_updated", by=req.requested_by, brand=req.brand, last4=req.last4)
    retry_open_invoice(draft, ctx)
    return draft.decision(f"card {req.brand} ending {req.last4} saved")


def request_downgrade(state: OrgSnapshot, req: rq.DowngradeRequest, ctx: Context) -> Decision:
    draft = audited("request_downgrade", state, req)
    plan = req.plan if req.plan != state.plan else None
    licences = req.licences if req.licences is not None and req.licences != state.licences else None
    draft.change(scheduled=replace(state.scheduled, plan=plan, licences=licences))
    final_licences = licences if licences is not None else state.licences
    draft.event("downgrade_scheduled", by=req.requested_by, why=req.reason, to=req.plan,
                licences=final_licences, effective_at=state.renews_at.isoformat())
    catalog = ctx.catalog
    draft.add(send(emails.downgrade_scheduled(ctx.key, plan_name(catalog, state.plan), plan_name(catalog, req.plan),
                                              final_licences, req.requested_by, state.renews_at)))
    return draft.decision(f"downgrade to {req.plan} with {final_licences} licences scheduled for "
                          f"{state.renews_at:%Y-%m-%d}")


def cancel_downgrade(state: OrgSnapshot, req: rq.CancelDowngradeRequest, ctx: Context) -> Decision:
    draft = audited("cancel_downgrade", state, req)
    scheduled = state.scheduled
    was = scheduled.plan or f"{scheduled.licences} licences"
    draft.change(scheduled=replace(scheduled, plan=None, licences=None))
    # The downgrade_scheduled e-mail announced it: the admin is told it will not happen.
    catalog = ctx.catalog
    draft.add(send(emails.downgrade_cancelled(
        ctx.key, plan_name(catalog, state.plan), state.licences, plan_name(catalog, scheduled.plan or state.plan),
        scheduled.licences if scheduled.licences is not None else state.licences, req.requested_by,
        state.renews_at)))
    return draft.decision(f"scheduled downgrade to {was} cancelled")


def cancel(state: OrgSnapshot, req: rq.CancelRequest, ctx: Context) -> Decision:
    draft = audited("cancel", state, req)
    if state.status == OrgStatus.TRIALING:
        # DOMAIN.md: cancelling during a trial withdraws the chosen plan; nothing is charged.
        draft.change(trial_choice_plan=None, trial_choice_cycle=None, trial_choice_tier=None)
        return draft.decision(f"the {state.trial_choice_plan} plan chosen for the trial end is withdrawn: the trial "
                              f"ends on {state.trial_ends_at:%Y-%m-%d} on the free plan and nothing is charged")
    if state.status == OrgStatus.FREE:
        # DOMAIN.md: a cancellation drops the change waiting for payment (an upgrade from free).
        drop_pending(draft, "withdrawn by a cancellation")
        return draft.decision(f"the {state.pending.summary} waiting for payment is withdrawn; invoice "
                              f"{state.pending.invoice} is void")
    if state.status == OrgStatus.ESCALATED:
        # DOMAIN.md, large accounts: an escalated org kept its service, so every cycle it was
        # invoiced for was served; ending it never voids one: each is written off.
        unpaid = state.unpaid_cycles
        write_off_unpaid_cycles(draft)
        move_to_free(draft, PlanChangeReason.CANCELLED, ctx, req.requested_by)
        return draft.decision(f"cancelled while escalated: moved to the free plan now; {', '.join(unpaid)} "
                              "written off as uncollectible")
    if state.status == OrgStatus.PAST_DUE:
        # Our choice (README): the unpaid cycle was never delivered as paid, so a cancellation
        # during dunning ends the subscription at once; the open invoice of the cycle in progress
        # is void. Cycles that ended unpaid were served: written off, never voided (DOMAIN.md).
        *ended, current = state.unpaid_cycles
        for number in ended:
            draft.set_invoice_status(number, InvoiceStatus.UNCOLLECTIBLE)
        draft.set_invoice_status(current, InvoiceStatus.VOID)
        move_to_free(draft, PlanChangeReason.CANCELLED, ctx, req.requested_by)
        return draft.decision("cancelled during dunning: moved to the free plan now; the open invoice is void"
                              + (f"; {', '.join(ended)} written off" if ended else ""))
    drop_pending(draft, "the subscription is cancelled")
    draft.change(scheduled=replace(draft.state.scheduled, cancel=True))
    draft.set_status(OrgStatus.CANCELLING)
    draft.add(send(emails.cancellation_scheduled(ctx.key, plan_name(ctx.catalog, state.plan), state.renews_at)))
    return draft.decision(f"cancelled: paid service continues until {state.renews_at:%Y-%m-%d}, then the free plan")


def undo_cancel(state: OrgSnapshot, req: rq.UndoCancelRequest, ctx: Context) -> Decision:
    draft = audited("undo_cancel", state, req)
    draft.change(scheduled=replace(state.scheduled, cancel=False))
    draft.set_status(OrgStatus.ACTIVE)
    # The cancellation_scheduled e-mail announced the end: the admin is told it will not come.
    draft.add(send(emails.cancellation_undone(ctx.key, plan_name(ctx.catalog, state.plan), state.renews_at)))
    return draft.decision(f"cancellation undone: the subscription renews on {state.renews_at:%Y-%m-%d}")


_switch_to_yearly_purchase = purchase("switch_to_yearly")


def switch_to_yearly(state: OrgSnapshot, req: rq.SwitchToYearlyRequest, ctx: Context) -> Decision:
    if state.cycle == Cycle.YEARLY:
        # A yearly org whose switch to monthly is scheduled stays yearly (DOMAIN.md, "later wins").
        return _withdraw_switch_to_monthly("switch_to_yearly", state, req)
    return _switch_to_yearly_purchase(state, req, ctx)


def switch_to_monthly(state: OrgSnapshot, req: rq.SwitchToMonthlyRequest, ctx: Context) -> Decision:
    """DOMAIN.md: scheduled for the yearly renewal, nothing credited or refunded; from then the
    org renews monthly (domain.renewal.renew)."""
    draft = audited("switch_to_monthly", state, req)
    draft.change(scheduled=replace(state.scheduled, cycle=Cycle.MONTHLY))
    return draft.decision(f"switch to monthly billing scheduled for {state.renews_at:%Y-%m-%d}: the yearly cycle "
                          "runs to its end (nothing credited), then the org renews monthly")


def cancel_switch_to_monthly(state: OrgSnapshot, req: rq.CancelSwitchToMonthlyRequest, ctx: Context) -> Decision:
    return _withdraw_switch_to_monthly("cancel_switch_to_monthly", state, req)


def _withdraw_switch_to_monthly(name: str, state: OrgSnapshot, req: Any) -> Decision:
    draft = audited(name, state, req)
    draft.change(scheduled=replace(state.scheduled, cycle=None))
    return draft.decision(f"the switch to monthly scheduled for {state.renews_at:%Y-%m-%d} is withdrawn: the org "
                          "stays yearly")


def retry_payment(state: OrgSnapshot, req: rq.RetryPaymentRequest, ctx: Context) -> Decision:
    draft = audited("retry_payment", state, req)
    retry_open_invoice(draft, ctx)
    return draft.decision("payment retry requested")


def auto_allocate(state: OrgSnapshot, req: rq.AutoAllocateRequest, ctx: Context) -> Decision:
    draft = audited("auto_allocate", state, req)
    on = req.setting == Switch.ON
    draft.change(auto_allocate_storage=on)
    if not on:
        return draft.decision("auto-allocation of storage turned off: units already given stay allocated")
    # A user already blocked is given free units now, as when units become free (DOMAIN.md).
    draft.add(check_storage(ctx.key))
    return draft.decision("auto-allocation of storage turned on: a user over quota is given free units")


def resolve_escalation(state: OrgSnapshot, req: rq.ResolveEscalationRequest, ctx: Context) -> Decision:
    draft = audited("resolve_escalation", state, req)
    if req.action == Resolution.DOWNGRADE:
        unpaid = state.unpaid_cycles
        write_off_unpaid_cycles(draft)
        move_to_free(draft, PlanChangeReason.STAFF_DOWNGRADE, ctx, req.requested_by)
        return draft.decision(f"escalation resolved: {', '.join(unpaid)} written off, org moved to the free plan")
    if req.action == Resolution.EXTEND:
        retry_at = ctx.now + timedelta(days=req.extend_days)
        # The audit log says how long the grace runs and when it ends, not only that it was extended.
        draft.event("grace_extended", by=req.requested_by, extend_days=req.extend_days, retry_at=retry_at.isoformat(),
                    invoices=state.unpaid_cycles)
        draft.change(escalated_at=None, first_response_due=None, determination_due=None, next_retry_at=retry_at)
        draft.set_status(OrgStatus.PAST_DUE)
        return draft.decision(f"escalation resolved: grace extended, payment retried on {retry_at:%Y-%m-%d}")
    retry_open_invoice(draft, ctx)
    return draft.decision("escalation resolved: retrying the payment now")

