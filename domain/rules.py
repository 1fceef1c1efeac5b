"""Which requests an org accepts, and why not. Pure checks against the org's state: they run as
Temporal Update validators on the workflow's snapshot (a refusal is answered at once and leaves
no trace in the history), and again in the decision on the state read from the database.
Messages name the rule and the numbers, never internal lists."""

import re
from dataclasses import fields
from datetime import datetime

from domain import requests as rq
from domain.errors import (BelowUsage, DomainError, InvalidInput, NotAllowed, OutsideDowngradeWindow,
                           PendingChange, StaffOnly, UnknownPlan)
from domain.limits import check_email, shown  # noqa: F401  (check_email: rules.check_email)
from domain.cards import CARD_TOKEN_PREFIXES
from domain.policy import Policy
from domain.proration import days_between
from domain.reports import check_not_ahead
from domain.subscription import PAID_STATUSES, CatalogFacts, OrgSnapshot
from domain.states import FREE_PLAN, Cycle, OrgStatus, Resolution, Switch

def _plan(catalog: CatalogFacts, plan_id: str):
    plan = catalog.plan(plan_id)
    if plan is None:
        known = ", ".join(p.id for p in catalog.plans)
        raise UnknownPlan(f"unknown plan {plan_id!r}; known plans: {known}")
    return plan


def _cycle(value: str | None, field: str = "cycle") -> Cycle | None:
    if value is None:
        return None
    try:
        return Cycle(value)
    except ValueError:
        raise InvalidInput(f"{field} must be 'monthly' or 'yearly', got {value!r}") from None


def _no_pending_change(org: OrgSnapshot) -> None:
    if org.pending is not None:
        raise PendingChange(
            f"another change ({org.pending.summary}) is waiting for payment of invoice {org.pending.invoice}; "
            "only one change may wait for payment at a time: pay it (update the card) first")


def _not_cancelling(org: OrgSnapshot, what: str) -> None:
    if org.status == OrgStatus.CANCELLING:
        raise NotAllowed(f"cannot {what}: the subscription is cancelled and ends on {org.renews_at:%Y-%m-%d}; "
                         "undo the cancellation first")


def _in_good_standing(org: OrgSnapshot, what: str, now: datetime) -> None:
    if org.status in (OrgStatus.PAST_DUE, OrgStatus.ESCALATED):
        raise NotAllowed(f"cannot {what}: the org is {org.status} on invoice {org.dunning_invoice}; "
                         "the open invoice must be paid first")
    if org.renews_at is not None and org.renews_at <= now and org.status in PAID_STATUSES:
        # Dunning outlasted the cycle: its renewal runs as soon as the workflow gets to it. A purchase
        # priced on the ended cycle would cost nothing and then be billed for days not held.
        raise NotAllowed(f"cannot {what}: the renewal due on {org.renews_at:%Y-%m-%d} is being processed; "
                         "try again in a moment")


def _on_paid_plan(org: OrgSnapshot, what: str) -> None:
    if org.status not in PAID_STATUSES:
        raise NotAllowed(f"cannot {what}: the org is on {'a trial' if org.status == OrgStatus.TRIALING else 'the free plan'}, "
                         "not a paid plan")


def _staff(policy: Policy, req, what: str) -> None:
    """A staff action: by billing staff (its reason is checked with its fields: Operation.check_fields)."""
    if not req.requested_by:
        raise InvalidInput(f"requested_by is required to {what}")
    if not policy.is_staff(req.requested_by):
        raise StaffOnly(f"only billing staff may {what}; {req.requested_by} is not billing staff")


def check_upgrade(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.UpgradeRequest, now: datetime) -> None:
    target = _plan(catalog, req.plan)
    cycle = _cycle(req.cycle)
    if target.id == FREE_PLAN:
        raise NotAllowed("the free plan is not an upgrade; cancel the subscription to move to it at the cycle end")
    _not_cancelling(org, "upgrade")
    _in_good_standing(org, "upgrade", now)
    _no_pending_change(org)
    if org.status == OrgStatus.TRIALING:
        return  # seed 003: the choice takes effect (and is charged) when the trial ends
    if org.status == OrgStatus.FREE:
        if not org.has_card:
            raise NotAllowed("cannot upgrade from the free plan without a card on file; update the card first")
        if target.user_cap is not None and org.user_count > target.user_cap:
            raise BelowUsage(f"plan {target.id} allows {target.user_cap} users; the org has {org.user_count}")
        return
    current = _plan(catalog, org.plan)
    if cycle is not None and cycle != org.cycle:
        raise NotAllowed(f"an upgrade keeps the {org.cycle} cycle; switch to yearly separately")
    if target.monthly_price <= current.monthly_price:
        raise NotAllowed(f"{target.id} is not an upgrade from {current.id}; downgrades are requested through "
                         "billing staff and take effect at the cycle end")


def check_add_licences(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.AddLicencesRequest, now: datetime) -> None:
    if org.licences + req.count > policy.limits.licences_per_org:
        raise NotAllowed(f"count: an org holds at most {policy.limits.licences_per_org:,} licences; it holds "
                         f"{org.licences:,}, so at most {policy.limits.licences_per_org - org.licences:,} more")
    _on_paid_plan(org, "add licences")
    _not_cancelling(org, "add licences")
    _in_good_standing(org, "add licences", now)
    _no_pending_change(org)


def check_add_user(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.AddUserRequest, now: datetime) -> None:
    if org.user_count + 1 > policy.limits.users_per_org:
        raise NotAllowed(f"an org has at most {policy.limits.users_per_org:,} users; it has {org.user_count:,}")
    if org.status in PAID_STATUSES and org.user_count + 1 > org.licences:
        raise BelowUsage(f"every user needs a licence: {org.user_count + 1} users would need {org.user_count + 1} "
                         f"licences, the org holds {org.licences}; add a licence first")
    plan = _plan(catalog, org.plan)
    if org.status == OrgStatus.FREE and plan.user_cap is not None and org.user_count + 1 > plan.user_cap:
        raise BelowUsage(f"the free plan allows {plan.user_cap} users; the org already has {org.user_count}")


def _check_unit(catalog: CatalogFacts, unit_gb: int) -> None:
    if unit_gb not in catalog.storage_unit_sizes:
        sizes = ", ".join(str(s) for s in catalog.storage_unit_sizes)
        raise InvalidInput(f"unit_gb: no {unit_gb} GB storage unit; units are {sizes} GB")


def _check_addon(catalog: CatalogFacts, addon: str) -> None:
    if addon not in catalog.flat_addons:
        raise InvalidInput(f"addon: unknown add-on {addon!r}; add-ons are {', '.join(catalog.flat_addons)}")


def _check_contacts(catalog: CatalogFacts, contacts) -> None:
    if catalog.tier_addon is None:
        raise NotAllowed("the catalog has no tiered add-on")
    if not isinstance(contacts, int) or isinstance(contacts, bool) or contacts % catalog.tier_step \
            or not catalog.tier_min <= contacts <= catalog.tier_max:
        raise InvalidInput(f"contacts must be a multiple of {catalog.tier_step} between {catalog.tier_min} and "
                           f"{catalog.tier_max}, got {contacts!r}")


def check_catalog_names(catalog: CatalogFacts, req) -> None:
    """What a request names in the catalog (a plan, a storage unit, an add-on, a tier): checked by
    every rule below, and by the CLI and the scenario parser before anything is sent. The
    refusal names the field (`DomainError.field`)."""
    checks = {rq.Kind.PLAN: _plan, rq.Kind.UNIT_GB: _check_unit, rq.Kind.ADDON: _check_addon}
    named = [(item.name, checks[kind]) for item in fields(req) if (kind := item.metadata.get("kind")) in checks]
    if isinstance(req, rq.ChangeTierRequest):
        named.append(("contacts", _check_contacts))
    for name, check in named:
        value = getattr(req, name)
        if value is None:
            continue
        try:
            check(catalog, value)
        except DomainError as err:
            raise type(err)(err.message, field=name) from None


def check_buy_storage(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.BuyStorageRequest, now: datetime) -> None:
    _check_unit(catalog, req.unit_gb)
    _on_paid_plan(org, "buy storage")
    _not_cancelling(org, "buy storage")
    _in_good_standing(org, "buy storage", now)
    _no_pending_change(org)


def check_remove_storage(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.RemoveStorageRequest, now: datetime) -> None:
    _check_unit(catalog, req.unit_gb)
    free = org.storage_removable(req.unit_gb)
    if req.count > free:
        raise BelowUsage(f"only {free} unallocated {req.unit_gb} GB unit(s) can be removed; {req.count} requested")


def check_allocate_storage(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.AllocateStorageRequest, now: datetime) -> None:
    _check_unit(catalog, req.unit_gb)
    if org.storage_free(req.unit_gb) < 1:
        raise NotAllowed(f"no unallocated {req.unit_gb} GB unit left; buy one first")


def check_set_usage(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.SetUsageRequest, now: datetime) -> None:
    """A measurement: its bounds and its user's address are its fields' (Operation.check_fields);
    it may not be dated in the future."""
    check_not_ahead(req, now)


def check_import_usage(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.ImportUsageRequest, now: datetime) -> None:
    """Measurements: any rows within their bounds (domain.limits) whose users exist."""
    check_not_ahead(req, now)


def check_buy_addon(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.BuyAddonRequest, now: datetime) -> None:
    _check_addon(catalog, req.addon)
    if req.addon in org.addons and req.addon not in org.scheduled.addons:
        raise NotAllowed(f"add-on {req.addon} is already active")
    _on_paid_plan(org, "buy an add-on")
    _not_cancelling(org, "buy an add-on")
    _in_good_standing(org, "buy an add-on", now)
    _no_pending_change(org)


def check_remove_addon(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.RemoveAddonRequest, now: datetime) -> None:
    if req.addon not in org.addons or req.addon in org.scheduled.addons:
        raise NotAllowed(f"add-on {req.addon!r} is not active")


def check_change_tier(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.ChangeTierRequest, now: datetime) -> None:
    _check_contacts(catalog, req.contacts)
    if org.status == OrgStatus.TRIALING:
        _no_pending_change(org)
        if req.contacts == org.trial_choice_tier:
            raise NotAllowed(f"a {req.contacts}-contact tier is already chosen for the trial end")
        return  # seed 003: a tier chosen during the trial applies when it ends
    _on_paid_plan(org, "change the subscriber tier")
    _not_cancelling(org, "change the subscriber tier")
    if req.contacts == org.tier_contacts and org.scheduled.tier is None:
        raise NotAllowed(f"the tier is already {req.contacts} contacts")
    if req.contacts < org.tier_contacts:
        if req.contacts < org.contacts:
            raise BelowUsage(f"a {req.contacts}-contact tier is below current usage of {org.contacts} contacts")
        return
    if req.contacts == org.tier_contacts:
        return  # keeping today's tier cancels the scheduled cut, at no cost
    _in_good_standing(org, "raise the subscriber tier", now)
    _no_pending_change(org)


def check_set_contacts(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.SetContactsRequest, now: datetime) -> None:
    """A measurement: any count within its bounds (domain.limits) is accepted."""
    check_not_ahead(req, now)


def check_switch_to_yearly(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.SwitchToYearlyRequest, now: datetime) -> None:
    _on_paid_plan(org, "switch to yearly")
    if org.cycle == Cycle.YEARLY:
        if org.scheduled.cycle == Cycle.MONTHLY:
            return  # staying yearly withdraws the switch to monthly, at no cost
        raise NotAllowed("the org is already billed yearly")
    _not_cancelling(org, "switch to yearly")
    _in_good_standing(org, "switch to yearly", now)
    _no_pending_change(org)
    if not org.has_card:
        raise NotAllowed("cannot switch to yearly without a card on file")


def check_switch_to_monthly(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.SwitchToMonthlyRequest, now: datetime) -> None:
    _on_paid_plan(org, "switch to monthly")
    if org.cycle != Cycle.YEARLY:
        raise NotAllowed(f"the org is already billed {org.cycle}; only a yearly org can switch to monthly")
    _not_cancelling(org, "switch to monthly")
    if org.scheduled.cycle == Cycle.MONTHLY:
        raise NotAllowed(f"a switch to monthly is already scheduled for {org.renews_at:%Y-%m-%d}")


def check_cancel_switch_to_monthly(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.CancelSwitchToMonthlyRequest, now: datetime) -> None:
    if org.scheduled.cycle != Cycle.MONTHLY:
        raise NotAllowed("no switch to monthly is scheduled")


def check_update_card(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.UpdateCardRequest, now: datetime) -> None:
    if not req.token or not req.token.startswith(CARD_TOKEN_PREFIXES):
        raise InvalidInput("token: a gateway card token (tok_... or a Stripe PaymentMethod pm_...) is required; "
                           "card numbers are never accepted here")
    if not re.fullmatch(r"\d{4}", req.last4 or ""):
        raise InvalidInput(f"last4 must be four digits, got {req.last4!r}")


def check_request_downgrade(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.DowngradeRequest, now: datetime) -> None:
    _staff(policy, req, "request a downgrade")
    target = _plan(catalog, req.plan)
    if org.status in (OrgStatus.PAST_DUE, OrgStatus.ESCALATED):
        raise NotAllowed(f"cannot schedule a downgrade while the org is {org.status}: the current cycle is unpaid; "
                         "resolve the open invoice first")
    _on_paid_plan(org, "downgrade")
    _not_cancelling(org, "downgrade")
    if org.scheduled.downgrade:
        what = org.scheduled.plan or f"{org.scheduled.licences} licences"
        raise PendingChange(f"a downgrade to {what} is already scheduled; cancel it first")
    current = _plan(catalog, org.plan)
    licences = req.licences if req.licences is not None else org.licences
    if target.id == current.id and licences >= org.licences:
        raise NotAllowed(f"the org is already on {current.id} with {org.licences} licences; nothing to downgrade")
    if target.monthly_price > current.monthly_price:
        raise NotAllowed(f"{target.id} costs more than {current.id}; that is an upgrade, not a downgrade")
    if target.id == FREE_PLAN:
        raise NotAllowed("a downgrade to the free plan is a cancellation; cancel the subscription instead")
    if target.user_cap is not None and org.user_count > target.user_cap:
        raise BelowUsage(f"plan {target.id} allows {target.user_cap} users; the org has {org.user_count}")
    if target.monthly_price * licences > current.monthly_price * org.licences:
        raise NotAllowed(f"{target.id} with {licences} licences costs more than {current.id} with {org.licences}; "
                         "a downgrade lowers the bill: buy licences instead")
    if licences < org.user_count:
        raise BelowUsage(f"{licences} licences is below usage: the org has {org.user_count} users, and every user "
                         "needs a licence")
    assert org.renews_at is not None
    # DOMAIN.md: the window counts days, UTC dates, so 15 and 30 days before are both inside.
    days_left = days_between(now, org.renews_at)
    if not policy.downgrade_window_min_days <= days_left <= policy.downgrade_window_max_days:
        raise OutsideDowngradeWindow(
            f"downgrades are accepted only {policy.downgrade_window_min_days} to {policy.downgrade_window_max_days} "
            f"days before the renewal date ({org.renews_at:%Y-%m-%d}); it is {days_left} days away")


def check_cancel_downgrade(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.CancelDowngradeRequest, now: datetime) -> None:
    _staff(policy, req, "cancel a scheduled downgrade")
    if not org.scheduled.downgrade:
        raise NotAllowed("no downgrade is scheduled")


def check_cancel(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.CancelRequest, now: datetime) -> None:
    if not req.requested_by:
        raise InvalidInput("requested_by is required to cancel")
    if org.status == OrgStatus.CANCELLING:
        raise NotAllowed(f"the subscription is already cancelled; it ends on {org.renews_at:%Y-%m-%d}")
    if org.status == OrgStatus.TRIALING and org.trial_choice_plan is None:
        raise NotAllowed(f"no plan is chosen for the trial end, so there is nothing to cancel: the trial ends on "
                         f"{org.trial_ends_at:%Y-%m-%d} and the org moves to the free plan by itself")
    if org.status == OrgStatus.FREE and org.pending is None:
        raise NotAllowed("the org is on the free plan; there is no subscription to cancel")


def check_undo_cancel(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.UndoCancelRequest, now: datetime) -> None:
    if org.status != OrgStatus.CANCELLING:
        raise NotAllowed("the subscription is not cancelled; nothing to undo")


def check_retry_payment(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.RetryPaymentRequest, now: datetime) -> None:
    _staff(policy, req, "retry a payment")
    if not org.open_invoice:
        raise NotAllowed("no open invoice to retry")
    if not org.has_card:
        raise NotAllowed("no card on file to charge")


def check_auto_allocate(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.AutoAllocateRequest,
                        now: datetime) -> None:
    if req.setting not in set(Switch):
        raise InvalidInput(f"setting must be on or off, got {shown(req.setting)}")
    if org.auto_allocate_storage == (req.setting == Switch.ON):
        raise NotAllowed(f"auto-allocation of storage is already {req.setting} for {org.org_id}")


def check_resolve_escalation(org: OrgSnapshot, policy: Policy, catalog: CatalogFacts, req: rq.ResolveEscalationRequest, now: datetime) -> None:
    _staff(policy, req, "resolve an escalation")
    if org.status != OrgStatus.ESCALATED:
        raise NotAllowed(f"the org is not escalated (status {org.status})")
    if req.action not in set(Resolution):
        raise InvalidInput(f"action must be {Resolution.choices()}, got {shown(req.action)}")
