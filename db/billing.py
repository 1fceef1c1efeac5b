"""Invoices, renewals and the writes that follow a charge: the database side of decisions
taken by the org workflow. Every function is idempotent by a business key, because a
Temporal activity may run again after its transaction committed."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.events import already_done, mark_done, record_event
from db.models import Invoice, InvoiceLine, OrgAddon, StorageUnit, Subscription, User
from db.orgs import get_org
from domain.catalog import Catalog
from domain.periods import boundary, next_boundary_after
from domain.pricing import Holdings, LineDraft, recurring_lines, total
from domain.states import FREE_PLAN, Cycle, InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason


@dataclass(frozen=True)
class InvoiceRef:
    number: str
    total: int
    currency: str


def bump(sub: Subscription) -> None:
    sub.version = (sub.version or 0) + 1


def holdings_for_renewal(session: Session, sub: Subscription) -> Holdings:
    units: dict[int, int] = {}
    for size, count in session.execute(select(StorageUnit.size_gb, func.count(StorageUnit.id))
                                       .where(StorageUnit.org_id == sub.org_id).group_by(StorageUnit.size_gb)):
        units[size] = count
    addons = tuple(session.scalars(select(OrgAddon.addon_id).where(OrgAddon.org_id == sub.org_id)
                                   .order_by(OrgAddon.addon_id)))
    return Holdings(plan=sub.plan_id, licences=sub.licences, storage_units=units, tier_contacts=sub.tier_contacts,
                    addons=addons)


def create_invoice(session: Session, org_id: str, business_key: str, kind: InvoiceKind, currency: str,
                   lines: list[LineDraft], now: datetime, period: tuple[datetime, datetime] | None = None) -> Invoice:
    existing = session.scalar(select(Invoice).where(Invoice.business_key == business_key))
    if existing is not None:
        return existing
    sequence = (session.scalar(select(func.count(Invoice.id)).where(Invoice.org_id == org_id)) or 0) + 1
    invoice = Invoice(number=f"INV-{org_id}-{sequence:04d}", org_id=org_id, business_key=business_key, kind=kind,
                      status=InvoiceStatus.OPEN, currency=currency, total=total(lines),
                      period_start=period[0] if period else None, period_end=period[1] if period else None,
                      created_at=now)
    session.add(invoice)
    session.flush()
    for line in lines:
        session.add(InvoiceLine(invoice_id=invoice.id, description=line.description, quantity=line.quantity,
                                unit_amount=line.unit_amount, amount=line.amount))
    record_event(session, org_id, now, "invoice", {"number": invoice.number, "total": invoice.total,
                                                   "currency": currency, "status": "open", "kind": str(kind)})
    return invoice


def invoice_by_number(session: Session, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise LookupError(f"unknown invoice {number}")
    return invoice


def set_invoice_status(session: Session, invoice: Invoice, status: InvoiceStatus, now: datetime) -> None:
    if invoice.status == status:
        return
    invoice.status = status
    if status == InvoiceStatus.PAID:
        invoice.paid_at = now
    record_event(session, invoice.org_id, now, "invoice", {"number": invoice.number, "total": invoice.total,
                                                           "currency": invoice.currency, "status": str(status)})


def change_plan(session: Session, sub: Subscription, to_plan: str, reason: PlanChangeReason, now: datetime,
                actor: str | None = None) -> None:
    if sub.plan_id == to_plan:
        return
    record_event(session, sub.org_id, now, "plan_changed", {"from": sub.plan_id, "to": to_plan, "reason": str(reason)},
                 actor=actor)
    sub.plan_id = to_plan


def set_status(session: Session, sub: Subscription, status: OrgStatus, now: datetime) -> None:
    if sub.status == status:
        return
    sub.status = status
    record_event(session, sub.org_id, now, "status", {"status": str(status)})


def clear_dunning(sub: Subscription) -> None:
    sub.dunning_invoice_id = None
    sub.dunning_attempts = 0
    sub.dunning_retries_done = 0
    sub.dunning_started_at = None
    sub.next_retry_at = None
    sub.escalated_at = sub.first_response_due = sub.determination_due = None


def move_to_free(session: Session, sub: Subscription, reason: PlanChangeReason, now: datetime,
                 actor: str | None = None) -> None:
    """The org keeps its data and users; paid-only features and the cycle stop."""
    change_plan(session, sub, FREE_PLAN, reason, now, actor)
    set_status(session, sub, OrgStatus.FREE, now)
    sub.cycle = sub.cycle_anchor = sub.period_start = sub.renews_at = None
    sub.cancel_at_period_end = False
    sub.scheduled_plan = sub.scheduled_licences = None
    sub.scheduled_tier_contacts = None
    sub.tier_contacts = 0
    clear_dunning(sub)
    if sub.pending_invoice_id:
        set_invoice_status(session, session.get(Invoice, sub.pending_invoice_id), InvoiceStatus.VOID, now)
        sub.pending_invoice_id, sub.pending_change = None, None
    # Storage units and add-ons are paid items: they end with the paid plan.
    for unit in session.scalars(select(StorageUnit).where(StorageUnit.org_id == sub.org_id)):
        session.delete(unit)
    for addon in session.scalars(select(OrgAddon).where(OrgAddon.org_id == sub.org_id)):
        session.delete(addon)
    bump(sub)


def expire_trial(session: Session, org_id: str, now: datetime) -> None:
    _, sub = get_org(session, org_id)
    if sub.status != OrgStatus.TRIALING:
        return
    move_to_free(session, sub, PlanChangeReason.TRIAL_EXPIRED, now)
    sub.trial_choice_plan = sub.trial_choice_cycle = None


def convert_trial(session: Session, org_id: str, catalog: Catalog, now: datetime) -> InvoiceRef | None:
    """The plan chosen during the trial starts at the trial end (seed 003); its first cycle is
    invoiced now. Returns the invoice to charge."""
    org, sub = get_org(session, org_id)
    key = f"{org_id}:trial_conversion:{sub.trial_ends_at.isoformat() if sub.trial_ends_at else ''}"
    if sub.status == OrgStatus.TRIALING:
        cycle = Cycle(sub.trial_choice_cycle or Cycle.MONTHLY)
        anchor = sub.trial_ends_at or now
        users = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
        change_plan(session, sub, sub.trial_choice_plan, PlanChangeReason.TRIAL_CONVERTED, now)
        sub.cycle, sub.cycle_anchor, sub.period_start = cycle, anchor, anchor
        sub.renews_at = boundary(anchor, cycle, 1)
        sub.licences = max(sub.licences, users)
        sub.trial_choice_plan = sub.trial_choice_cycle = None
        set_status(session, sub, OrgStatus.ACTIVE, now)
        bump(sub)
    invoice = session.scalar(select(Invoice).where(Invoice.business_key == key))
    if invoice is None:
        lines = recurring_lines(catalog, holdings_for_renewal(session, sub), org.currency, Cycle(sub.cycle))
        invoice = create_invoice(session, org_id, key, InvoiceKind.TRIAL_CONVERSION, org.currency, lines, now,
                                 (sub.period_start, sub.renews_at))
        sub.dunning_invoice_id = None
    return InvoiceRef(invoice.number, invoice.total, invoice.currency)


@dataclass(frozen=True)
class RenewalOpened:
    invoice: InvoiceRef | None
    moved_to_free: bool


def open_renewal(session: Session, org_id: str, period_start: datetime, catalog: Catalog,
                 now: datetime) -> RenewalOpened:
    """Close the cycle ending at `period_start`: apply what was scheduled for the cycle end
    (cancellation, downgrade, tier and add-on removals), then invoice the next cycle."""
    org, sub = get_org(session, org_id)
    key = f"{org_id}:renewal:{period_start.isoformat()}"
    existing = session.scalar(select(Invoice).where(Invoice.business_key == key))
    if existing is not None:
        return RenewalOpened(InvoiceRef(existing.number, existing.total, existing.currency), False)
    if sub.renews_at is None or sub.renews_at != period_start:
        return RenewalOpened(None, sub.status == OrgStatus.FREE)
    if sub.pending_invoice_id:
        # An unpaid mid-cycle change does not outlive its cycle: the change is dropped.
        pending = session.get(Invoice, sub.pending_invoice_id)
        set_invoice_status(session, pending, InvoiceStatus.VOID, now)
        record_event(session, org_id, now, "change_dropped", {"change": (sub.pending_change or {}).get("summary"),
                                                              "invoice": pending.number})
        sub.pending_invoice_id, sub.pending_change = None, None
    if sub.cancel_at_period_end:
        move_to_free(session, sub, PlanChangeReason.CANCELLED, now)
        return RenewalOpened(None, True)
    if sub.scheduled_plan:
        change_plan(session, sub, sub.scheduled_plan, PlanChangeReason.DOWNGRADE, now)
        if sub.scheduled_licences is not None:
            users = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
            # Users may never outnumber licences on a paid plan, whatever was scheduled.
            sub.licences = max(sub.scheduled_licences, users)
        sub.scheduled_plan = sub.scheduled_licences = None
    if sub.scheduled_tier_contacts is not None:
        sub.tier_contacts = sub.scheduled_tier_contacts
        sub.scheduled_tier_contacts = None
    for addon in session.scalars(select(OrgAddon).where(OrgAddon.org_id == org_id, OrgAddon.remove_at_period_end)):
        session.delete(addon)
    for unit in session.scalars(select(StorageUnit).where(StorageUnit.org_id == org_id,
                                                          StorageUnit.remove_at_period_end)):
        session.delete(unit)
    session.flush()
    cycle = Cycle(sub.cycle)
    sub.period_start = period_start
    sub.renews_at = next_boundary_after(sub.cycle_anchor, cycle, period_start)
    lines = recurring_lines(catalog, holdings_for_renewal(session, sub), org.currency, cycle)
    invoice = create_invoice(session, org_id, key, InvoiceKind.RENEWAL, org.currency, lines, now,
                             (sub.period_start, sub.renews_at))
    bump(sub)
    return RenewalOpened(InvoiceRef(invoice.number, invoice.total, invoice.currency), False)


def enter_dunning(session: Session, org_id: str, invoice_number: str, started_at: datetime,
                  next_retry_at: datetime | None, now: datetime) -> None:
    _, sub = get_org(session, org_id)
    invoice = invoice_by_number(session, invoice_number)
    if sub.dunning_invoice_id == invoice.id:
        return
    sub.dunning_invoice_id = invoice.id
    sub.dunning_attempts, sub.dunning_retries_done = 1, 0
    sub.dunning_started_at, sub.next_retry_at = started_at, next_retry_at
    set_status(session, sub, OrgStatus.PAST_DUE, now)
    record_event(session, org_id, now, "dunning", {"event": "entered", "invoice": invoice_number})
    bump(sub)


def record_failed_attempt(session: Session, org_id: str, invoice_number: str, attempt: int, scheduled: bool,
                          next_retry_at: datetime | None, now: datetime) -> None:
    """A declined dunning attempt. Scheduled retries move the ladder on; an extra attempt
    (card update, staff retry) only counts."""
    _, sub = get_org(session, org_id)
    if sub.dunning_attempts >= attempt:
        return
    sub.dunning_attempts = attempt
    if scheduled:
        sub.dunning_retries_done += 1
        sub.next_retry_at = next_retry_at
    bump(sub)


def write_off_and_free(session: Session, org_id: str, invoice_number: str, reason: PlanChangeReason,
                       now: datetime, actor: str | None = None) -> None:
    """Final dunning action: the invoice becomes uncollectible and the org moves to free."""
    _, sub = get_org(session, org_id)
    invoice = invoice_by_number(session, invoice_number)
    set_invoice_status(session, invoice, InvoiceStatus.UNCOLLECTIBLE, now)
    if sub.plan_id != FREE_PLAN:
        record_event(session, org_id, now, "dunning", {"event": "final", "invoice": invoice_number})
        move_to_free(session, sub, reason, now, actor)


def escalate(session: Session, org_id: str, invoice_number: str, first_response_due: datetime,
             determination_due: datetime, now: datetime) -> None:
    _, sub = get_org(session, org_id)
    if sub.status == OrgStatus.ESCALATED:
        return
    sub.escalated_at, sub.first_response_due, sub.determination_due = now, first_response_due, determination_due
    sub.next_retry_at = None
    set_status(session, sub, OrgStatus.ESCALATED, now)
    record_event(session, org_id, now, "escalated", {"severity": "S1", "reason": "payment_failed",
                                                     "invoice": invoice_number,
                                                     "first_response_due": first_response_due.isoformat(),
                                                     "determination_due": determination_due.isoformat()})
    bump(sub)


def settle_paid_invoice(session: Session, org_id: str, invoice_number: str, catalog: Catalog, now: datetime) -> str | None:
    """After a successful charge: end dunning, or apply the change that waited for payment.
    Returns a summary of the applied change, if any."""
    from db.changes import apply_paid_change
    _, sub = get_org(session, org_id)
    invoice = invoice_by_number(session, invoice_number)
    applied = None
    if sub.dunning_invoice_id == invoice.id:
        recovered = sub.status in (OrgStatus.PAST_DUE, OrgStatus.ESCALATED)
        clear_dunning(sub)
        if recovered:
            record_event(session, org_id, now, "dunning", {"event": "recovered", "invoice": invoice_number})
        set_status(session, sub, OrgStatus.CANCELLING if sub.cancel_at_period_end else OrgStatus.ACTIVE, now)
        bump(sub)
    elif sub.pending_invoice_id == invoice.id:
        applied = apply_paid_change(session, sub, sub.pending_change or {}, catalog, now)
        sub.pending_invoice_id, sub.pending_change = None, None
        bump(sub)
    return applied


def open_invoice_attempts(session: Session, invoice_number: str) -> int:
    from db.models import Payment
    invoice = invoice_by_number(session, invoice_number)
    return session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice.id)) or 0


def mark_operation(session: Session, org_id: str, now: datetime, key: str, what: str) -> bool:
    """Record an operation once; False if it was already recorded."""
    if already_done(session, key):
        return False
    mark_done(session, org_id, now, key, what)
    return True
