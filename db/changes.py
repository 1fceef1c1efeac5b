"""Applying accepted change requests to the database. The workflow validated the request
against its snapshot; this module re-reads the rows (the source of truth) inside one
transaction, so it also refuses what became invalid since (a concurrent change).

Purchases made mid-cycle wait for payment: the change is stored as pending with its invoice,
and applied by `apply_paid_change` once the charge succeeds (DOMAIN.md: one change at a time)."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.billing import (InvoiceRef, bump, create_invoice, holdings_for_renewal, move_to_free, set_invoice_status,
                        set_status)
from db.events import record_event
from db.models import Invoice, OrgAddon, StorageUnit, Subscription, User
from db.orgs import get_org, gb_to_mb
from db.storage import EnforcementResult, enforce
from domain import requests as rq
from domain.catalog import Catalog
from domain.errors import InvalidInput, NotAllowed, PendingChange
from domain.periods import boundary
from domain.pricing import LineDraft, prorated_line, recurring_lines
from domain.proration import prorate
from domain.states import FREE_PLAN, Cycle, InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason

REQUEST_TYPES = rq.OPERATIONS


@dataclass(frozen=True)
class ChangeApplied:
    message: str
    invoice: InvoiceRef | None = None
    enforcement: EnforcementResult | None = None
    # Plan changed: the workflow sends plan_changed and runs enforcement.
    plan_changed_to: str | None = None
    plan_changed_from: str | None = None


def _pending(session: Session, sub: Subscription, org_currency: str, change: dict[str, Any], lines: list[LineDraft],
             kind: InvoiceKind, op_key: str, now: datetime) -> InvoiceRef:
    if sub.pending_invoice_id:
        raise PendingChange("another change is waiting for payment; only one change may wait at a time")
    invoice = create_invoice(session, sub.org_id, f"{sub.org_id}:change:{op_key}", kind, org_currency, lines, now,
                             (sub.period_start, sub.renews_at) if sub.renews_at else None)
    sub.pending_invoice_id = invoice.id
    sub.pending_change = {**change, "requested_at": now.isoformat()}
    bump(sub)
    return InvoiceRef(invoice.number, invoice.total, invoice.currency)


def _user(session: Session, org_id: str, email: str) -> User:
    user = session.scalar(select(User).where(User.org_id == org_id, User.email == email.strip().lower()))
    if user is None:
        raise InvalidInput(f"user: no user {email!r} in org {org_id}")
    return user


def apply_change(session: Session, org_id: str, kind: str, request: Any, catalog: Catalog, now: datetime,
                 op_key: str) -> ChangeApplied:
    org, sub = get_org(session, org_id)
    actor, reason = getattr(request, "requested_by", ""), getattr(request, "reason", "")
    record_event(session, org_id, now, "request", {"operation": kind, **_public(request)}, actor=actor, reason=reason,
                 dedupe_key=f"op:{op_key}")
    currency = org.currency
    cycle = Cycle(sub.cycle) if sub.cycle else None

    if kind == "upgrade":
        if sub.status == OrgStatus.TRIALING:
            sub.trial_choice_plan = request.plan
            sub.trial_choice_cycle = Cycle(request.cycle or "monthly")
            bump(sub)
            return ChangeApplied(f"{request.plan} ({sub.trial_choice_cycle}) starts when the trial ends on "
                                 f"{sub.trial_ends_at:%Y-%m-%d}")
        users = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
        if sub.status == OrgStatus.FREE:
            new_cycle = Cycle(request.cycle or "monthly")
            unit = catalog.plan_price(request.plan, currency, new_cycle)
            lines = [LineDraft(f"{catalog.plan(request.plan).name} licence ({new_cycle})", users, unit, unit * users)]
            invoice = _pending(session, sub, currency, {"kind": "upgrade_from_free", "plan": request.plan,
                                                        "cycle": str(new_cycle), "licences": users,
                                                        "summary": f"upgrade to {request.plan}"},
                               lines, InvoiceKind.UPGRADE, op_key, now)
            return ChangeApplied(f"upgrade to {request.plan} invoiced as {invoice.number}", invoice)
        licences = max(sub.licences, users)
        diff = catalog.plan_price(request.plan, currency, cycle) - catalog.plan_price(sub.plan_id, currency, cycle)
        line = prorated_line(f"Upgrade {sub.plan_id} -> {request.plan}", licences, diff, sub.period_start,
                             sub.renews_at, now)
        invoice = _pending(session, sub, currency, {"kind": "upgrade", "plan": request.plan, "licences": licences,
                                                    "summary": f"upgrade to {request.plan}"},
                           [line], InvoiceKind.UPGRADE, op_key, now)
        return ChangeApplied(f"upgrade to {request.plan} invoiced as {invoice.number}", invoice)

    if kind == "add_licences":
        unit = catalog.plan_price(sub.plan_id, currency, cycle)
        line = prorated_line(f"{catalog.plan(sub.plan_id).name} licence ({cycle})", request.count, unit,
                             sub.period_start, sub.renews_at, now)
        invoice = _pending(session, sub, currency, {"kind": "add_licences", "count": request.count,
                                                    "summary": f"add {request.count} licence(s)"},
                           [line], InvoiceKind.PRORATION, op_key, now)
        return ChangeApplied(f"{request.count} licence(s) invoiced as {invoice.number}", invoice)

    if kind == "add_user":
        email = request.email.strip().lower()
        if session.scalar(select(User.id).where(User.org_id == org_id, User.email == email)):
            raise InvalidInput(f"email: {email} is already a user of {org_id}")
        users = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
        if sub.status not in (OrgStatus.TRIALING, OrgStatus.FREE) and users + 1 > sub.licences:
            raise NotAllowed(f"every user needs a licence: {users + 1} users would need {users + 1} licences, "
                             f"the org holds {sub.licences}")
        seq = (session.scalar(select(func.max(User.seq)).where(User.org_id == org_id)) or 0) + 1
        user = User(org_id=org_id, email=email, storage_mb=gb_to_mb(request.storage_gb), seq=seq, created_at=now)
        session.add(user)
        session.flush()
        bump(sub)
        return ChangeApplied(f"user {email} added", enforcement=enforce(session, org_id, now, user.id))

    if kind == "buy_storage":
        unit = catalog.storage_price(request.unit_gb, currency, cycle)
        line = prorated_line(f"Storage unit {request.unit_gb} GB ({cycle})", request.count, unit, sub.period_start,
                             sub.renews_at, now)
        invoice = _pending(session, sub, currency, {"kind": "buy_storage", "unit_gb": request.unit_gb,
                                                    "count": request.count,
                                                    "summary": f"{request.count} x {request.unit_gb} GB storage"},
                           [line], InvoiceKind.PRORATION, op_key, now)
        return ChangeApplied(f"{request.count} x {request.unit_gb} GB invoiced as {invoice.number}", invoice)

    if kind == "remove_storage":
        units = list(session.scalars(select(StorageUnit).where(
            StorageUnit.org_id == org_id, StorageUnit.size_gb == request.unit_gb, StorageUnit.user_id.is_(None),
            StorageUnit.remove_at_period_end.is_(False)).limit(request.count)))
        if len(units) < request.count:
            raise NotAllowed(f"only {len(units)} unallocated {request.unit_gb} GB unit(s) can be removed")
        for unit in units:
            unit.remove_at_period_end = True
        bump(sub)
        return ChangeApplied(f"{request.count} x {request.unit_gb} GB removed from the next renewal")

    if kind == "allocate_storage":
        user = _user(session, org_id, request.user)
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.org_id == org_id, StorageUnit.size_gb == request.unit_gb, StorageUnit.user_id.is_(None))
            .order_by(StorageUnit.remove_at_period_end, StorageUnit.id).limit(1))
        if unit is None:
            raise NotAllowed(f"no unallocated {request.unit_gb} GB unit left; buy one first")
        unit.user_id, unit.remove_at_period_end = user.id, False
        session.flush()
        bump(sub)
        return ChangeApplied(f"{request.unit_gb} GB allocated to {user.email}",
                             enforcement=enforce(session, org_id, now, user.id))

    if kind == "set_usage":
        user = _user(session, org_id, request.user)
        user.storage_mb = gb_to_mb(request.storage_gb)
        session.flush()
        bump(sub)
        return ChangeApplied(f"{user.email} uses {request.storage_gb:g} GB",
                             enforcement=enforce(session, org_id, now, user.id))

    if kind == "buy_addon":
        unit = catalog.flat_addon_price(request.addon, currency, cycle)
        line = prorated_line(f"{catalog.flat_addons[request.addon].name} ({cycle})", 1, unit, sub.period_start,
                             sub.renews_at, now)
        invoice = _pending(session, sub, currency, {"kind": "buy_addon", "addon": request.addon,
                                                    "summary": f"add-on {request.addon}"},
                           [line], InvoiceKind.PRORATION, op_key, now)
        return ChangeApplied(f"add-on {request.addon} invoiced as {invoice.number}", invoice)

    if kind == "remove_addon":
        addon = session.scalar(select(OrgAddon).where(OrgAddon.org_id == org_id, OrgAddon.addon_id == request.addon))
        if addon is None:
            raise NotAllowed(f"add-on {request.addon!r} is not active")
        addon.remove_at_period_end = True
        bump(sub)
        return ChangeApplied(f"add-on {request.addon} stays until {sub.renews_at:%Y-%m-%d}, then ends")

    if kind == "change_tier":
        if request.contacts < sub.tier_contacts:
            if request.contacts < org.contacts:
                raise NotAllowed(f"a {request.contacts}-contact tier is below current usage of {org.contacts}")
            sub.scheduled_tier_contacts = request.contacts
            bump(sub)
            return ChangeApplied(f"tier lowered to {request.contacts} contacts from {sub.renews_at:%Y-%m-%d}")
        addon_id = next(iter(catalog.tiered_addons))
        step_price = catalog.tiered_addons[addon_id].price_per_step[currency][str(cycle)]
        step = catalog.tiered_addons[addon_id].step
        steps = (request.contacts - sub.tier_contacts) // step
        line = prorated_line(f"{catalog.tiered_addons[addon_id].name} +{request.contacts - sub.tier_contacts} "
                             f"contacts ({cycle})", steps, step_price, sub.period_start, sub.renews_at, now)
        invoice = _pending(session, sub, currency, {"kind": "change_tier", "contacts": request.contacts,
                                                    "summary": f"tier {request.contacts} contacts"},
                           [line], InvoiceKind.PRORATION, op_key, now)
        return ChangeApplied(f"tier {request.contacts} invoiced as {invoice.number}", invoice)

    if kind == "set_contacts":
        org.contacts = request.contacts
        bump(sub)
        active = min(request.contacts, sub.tier_contacts)
        waiting = request.contacts - active
        return ChangeApplied(f"{active} contacts active" + (f", {waiting} awaiting upgrade" if waiting else ""))

    if kind == "switch_to_yearly":
        monthly = recurring_lines(catalog, holdings_for_renewal(session, sub), currency, Cycle.MONTHLY)
        yearly = recurring_lines(catalog, holdings_for_renewal(session, sub), currency, Cycle.YEARLY)
        credit = prorate(sum(line.amount for line in monthly), sub.period_start, sub.renews_at, now)
        lines = yearly + [LineDraft(f"Credit for the unused month {now:%Y-%m-%d} to {sub.renews_at:%Y-%m-%d}", 1,
                                    -credit, -credit)]
        invoice = _pending(session, sub, currency, {"kind": "switch_to_yearly", "summary": "switch to yearly"},
                           lines, InvoiceKind.CYCLE_SWITCH, op_key, now)
        return ChangeApplied(f"yearly cycle invoiced as {invoice.number}", invoice)

    if kind == "update_card":
        sub.card_token, sub.card_brand, sub.card_last4 = request.token, request.brand, request.last4
        bump(sub)
        record_event(session, org_id, now, "card_updated", {"brand": request.brand, "last4": request.last4},
                     actor=actor)
        return ChangeApplied(f"card {request.brand} ending {request.last4} saved")

    if kind == "request_downgrade":
        users = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
        licences = request.licences if request.licences is not None else sub.licences
        if licences < users:
            raise NotAllowed(f"{licences} licences is below usage: the org has {users} users")
        sub.scheduled_plan, sub.scheduled_licences = request.plan, licences
        bump(sub)
        record_event(session, org_id, now, "downgrade_scheduled", {"to": request.plan, "licences": licences,
                                                                   "effective_at": sub.renews_at.isoformat()},
                     actor=actor, reason=reason)
        return ChangeApplied(f"downgrade to {request.plan} with {licences} licences scheduled for "
                             f"{sub.renews_at:%Y-%m-%d}")

    if kind == "cancel_downgrade":
        was = sub.scheduled_plan
        sub.scheduled_plan = sub.scheduled_licences = None
        bump(sub)
        return ChangeApplied(f"scheduled downgrade to {was} cancelled")

    if kind == "cancel":
        if sub.status in (OrgStatus.PAST_DUE, OrgStatus.ESCALATED):
            # Our choice (README): the unpaid cycle was never delivered as paid, so a
            # cancellation during dunning ends the subscription at once; the invoice is void.
            invoice = session.get(Invoice, sub.dunning_invoice_id) if sub.dunning_invoice_id else None
            if invoice is not None:
                set_invoice_status(session, invoice, InvoiceStatus.VOID, now)
            was = sub.plan_id
            move_to_free(session, sub, PlanChangeReason.CANCELLED, now, actor)
            return ChangeApplied("cancelled during dunning: moved to the free plan now; the open invoice is void",
                                 plan_changed_from=was, plan_changed_to=FREE_PLAN)
        sub.cancel_at_period_end = True
        set_status(session, sub, OrgStatus.CANCELLING, now)
        bump(sub)
        return ChangeApplied(f"cancelled: paid service continues until {sub.renews_at:%Y-%m-%d}, then the free plan")

    if kind == "undo_cancel":
        sub.cancel_at_period_end = False
        set_status(session, sub, OrgStatus.ACTIVE, now)
        bump(sub)
        return ChangeApplied(f"cancellation undone: the subscription renews on {sub.renews_at:%Y-%m-%d}")

    if kind == "retry_payment":
        return ChangeApplied("payment retry requested")

    if kind == "resolve_escalation":
        if request.action == "downgrade":
            invoice = session.get(Invoice, sub.dunning_invoice_id)
            set_invoice_status(session, invoice, InvoiceStatus.UNCOLLECTIBLE, now)
            was = sub.plan_id
            move_to_free(session, sub, PlanChangeReason.STAFF_DOWNGRADE, now, actor)
            return ChangeApplied("escalation resolved: invoice written off, org moved to the free plan",
                                 plan_changed_from=was, plan_changed_to=FREE_PLAN)
        if request.action == "extend":
            from datetime import timedelta
            sub.escalated_at = sub.first_response_due = sub.determination_due = None
            sub.next_retry_at = now + timedelta(days=request.extend_days)
            set_status(session, sub, OrgStatus.PAST_DUE, now)
            bump(sub)
            return ChangeApplied(f"escalation resolved: grace extended, payment retried on {sub.next_retry_at:%Y-%m-%d}")
        return ChangeApplied("escalation resolved: retrying the payment now")

    raise InvalidInput(f"unknown operation {kind!r}")


def apply_paid_change(session: Session, sub: Subscription, change: dict[str, Any], catalog: Catalog,
                      now: datetime) -> str:
    """A purchase whose invoice has just been paid takes effect."""
    kind = change.get("kind")
    org_id = sub.org_id
    if kind == "upgrade_from_free":
        from db.billing import change_plan
        change_plan(session, sub, change["plan"], PlanChangeReason.UPGRADE, now)
        cycle = Cycle(change["cycle"])
        sub.cycle, sub.cycle_anchor, sub.period_start = cycle, now, now
        sub.renews_at = boundary(now, cycle, 1)
        sub.licences = change["licences"]
        set_status(session, sub, OrgStatus.ACTIVE, now)
    elif kind == "upgrade":
        from db.billing import change_plan
        change_plan(session, sub, change["plan"], PlanChangeReason.UPGRADE, now)
        sub.licences = max(sub.licences, change["licences"])
    elif kind == "add_licences":
        sub.licences += change["count"]
    elif kind == "buy_storage":
        for _ in range(change["count"]):
            session.add(StorageUnit(org_id=org_id, size_gb=change["unit_gb"], purchased_at=now))
    elif kind == "buy_addon":
        existing = session.scalar(select(OrgAddon).where(OrgAddon.org_id == org_id,
                                                         OrgAddon.addon_id == change["addon"]))
        if existing:
            existing.remove_at_period_end = False
        else:
            session.add(OrgAddon(org_id=org_id, addon_id=change["addon"]))
    elif kind == "change_tier":
        sub.tier_contacts = change["contacts"]
        sub.scheduled_tier_contacts = None
    elif kind == "switch_to_yearly":
        at = datetime.fromisoformat(change["requested_at"])
        sub.cycle, sub.cycle_anchor, sub.period_start = Cycle.YEARLY, at, at
        sub.renews_at = boundary(at, Cycle.YEARLY, 1)
    record_event(session, org_id, now, "change_applied", {"change": change.get("summary")})
    session.flush()
    return str(change.get("summary"))


def _public(request: Any) -> dict[str, Any]:
    from dataclasses import asdict
    data = asdict(request)
    data.pop("requested_by", None)
    data.pop("reason", None)
    data.pop("token", None)
    return data
