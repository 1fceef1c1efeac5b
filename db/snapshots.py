"""An org as a decision reads it: its state (domain.subscription.OrgSnapshot) from its rows, what
else the decision may ask (StoredOrg), and the answer a step gave the first time it ran with a
business key. The unit of work's store (db/org_store.py) loads here; db/state.py writes."""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from db.invoices import paid_invoice
from db.models import (DEDUPE_KEY_COLUMN, OUTCOME_KEY, BilledSpanRow, Invoice, OrgAddon, Organisation, OrgEvent,
                       Payment, StorageUnit, Subscription, User)
from db.storage import load_mailboxes
from domain.credit import account_credit
from domain.errors import UnknownOrg
from domain.lifecycle import is_large_account
from domain.limits import bounded, shown
from domain.payments import PaidInvoice
from domain.policy import Policy
from domain.reports import CONTACTS, Stamp
from domain.states import Cycle, InvoiceKind, InvoiceStatus, OrgStatus
from domain.storage import Mailboxes
from domain.subscription import (IN_DUNNING, BilledSpan, Item, ItemKind, OrgSnapshot, Scheduled, StorageHolding,
                                 Subscribers, UnitCount, UnpaidCycle, WaitingChange)
from domain.users import Roster


def recorded_outcome(session: Session, org_id: str, key: str) -> dict[str, Any] | None:
    """What a step answered the first time it ran with this business key (db.events.record_decision
    wrote it)."""
    data = session.scalar(select(OrgEvent.data).where(
        OrgEvent.dedupe_key == bounded(OUTCOME_KEY.format(org_id=org_id, key=key), DEDUPE_KEY_COLUMN)))
    return None if data is None else data.get("outcome", {})


def load_state(session: Session, org_id: str, policy: Policy) -> OrgSnapshot:
    states = load_states(session, [org_id], policy)
    if not states:
        raise UnknownOrg(f"unknown org {shown(org_id)}")
    return states[0]


def load_states(session: Session, org_ids: list[str] | Select, policy: Policy) -> list[OrgSnapshot]:
    """The states of the orgs named (a list of ids, or a query of them), by org id, read in one
    query per kind of row whatever their number."""
    orgs = session.execute(select(Organisation, Subscription).join(Subscription)
                           .where(Organisation.id.in_(org_ids)).order_by(Organisation.id)).all()
    if not orgs:
        return []
    user_counts = dict(session.execute(select(User.org_id, func.count(User.id)).where(User.org_id.in_(org_ids))
                                       .group_by(User.org_id)).all())
    blocked = _by_org(session.execute(select(User.org_id, User.email).where(
        User.org_id.in_(org_ids), User.blocked.is_(True)).order_by(User.seq)))
    storage = _storage(session, org_ids)
    addons = _by_org(session.execute(select(OrgAddon.org_id, OrgAddon.addon_id, OrgAddon.remove_at_period_end)
                                     .where(OrgAddon.org_id.in_(org_ids)).order_by(OrgAddon.addon_id)))
    dunning_numbers = dict(session.execute(select(Subscription.org_id, Invoice.number)
                                           .join(Invoice, Invoice.id == Subscription.dunning_invoice_id)
                                           .where(Subscription.org_id.in_(org_ids))).all())
    pending, arrears = _pending(session, org_ids), _arrears(session, org_ids)
    credits, ledgers = _credits(session, org_ids), _ledgers(session, org_ids)
    states = []
    for org, sub in orgs:
        user_count = user_counts.get(org.id, 0)
        owned, removing = storage.get(org.id, ({}, {}))
        held_addons = addons.get(org.id, [])
        scheduled = Scheduled(plan=sub.scheduled_plan, licences=sub.scheduled_licences,
                              tier=sub.scheduled_tier_contacts, addons=[a for a, ending in held_addons if ending],
                              storage=[UnitCount(size, n) for size, n in sorted(removing.items()) if n],
                              cancel=sub.cancel_at_period_end,
                              cycle=Cycle(sub.scheduled_cycle) if sub.scheduled_cycle else None)
        states.append(OrgSnapshot(
            org_id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale, currency=org.currency,
            status=OrgStatus(sub.status), plan=sub.plan_id, licences=sub.licences, user_count=user_count,
            cycle=Cycle(sub.cycle) if sub.cycle else None, cycle_anchor=sub.cycle_anchor,
            period_start=sub.period_start, renews_at=sub.renews_at, trial_ends_at=sub.trial_ends_at,
            trial_choice_plan=sub.trial_choice_plan,
            trial_choice_cycle=Cycle(sub.trial_choice_cycle) if sub.trial_choice_cycle else None,
            trial_choice_tier=sub.trial_choice_tier,
            trial_reminders_sent=sorted(sub.trial_reminders_sent or []),
            card_brand=sub.card_brand, card_last4=sub.card_last4, scheduled=scheduled,
            pending=_waiting_change(sub, pending.get(org.id)), dunning_invoice=dunning_numbers.get(org.id),
            dunning_attempts=sub.dunning_attempts, dunning_retries_done=sub.dunning_retries_done,
            dunning_started_at=sub.dunning_started_at, next_retry_at=sub.next_retry_at,
            escalated_at=sub.escalated_at, first_response_due=sub.first_response_due,
            determination_due=sub.determination_due,
            arrears=arrears.get(org.id, []) if sub.status in IN_DUNNING else [],
            large_account=is_large_account(max(sub.licences, user_count), policy),
            blocked_users=[email for (email,) in blocked.get(org.id, [])],
            storage=[StorageHolding(unit_gb=size, owned=v[0], allocated=v[1]) for size, v in sorted(owned.items())],
            auto_allocate_storage=org.auto_allocate_storage, tier_contacts=sub.tier_contacts,
            subscribers=Subscribers(org.contacts_subscribed, org.contacts_awaiting),
            addons=[a for a, _ in held_addons], ledger=ledgers.get(org.id, []), credit=credits.get(org.id, 0),
            country=org.country, tax_id=org.tax_id, version=sub.version))
    return states


def _by_org(rows) -> dict[str, list[tuple]]:  # noqa: ANN001  (rows whose first column is the org id)
    found: dict[str, list[tuple]] = {}
    for org_id, *rest in rows:
        found.setdefault(org_id, []).append(tuple(rest))
    return found


def _storage(session: Session, org_ids: list[str] | Select) -> dict[str, tuple[dict[int, list[int]], dict[int, int]]]:
    """Per org: units owned and allocated per size, and the unallocated ones ending at the renewal."""
    found: dict[str, tuple[dict[int, list[int]], dict[int, int]]] = {}
    for org_id, size, user_id, ending in session.execute(
            select(StorageUnit.org_id, StorageUnit.size_gb, StorageUnit.user_id, StorageUnit.remove_at_period_end)
            .where(StorageUnit.org_id.in_(org_ids))):
        owned, removing = found.setdefault(org_id, ({}, {}))
        counts = owned.setdefault(size, [0, 0])
        counts[0] += 1
        counts[1] += user_id is not None
        removing[size] = removing.get(size, 0) + (bool(ending) and user_id is None)
    return found


def _attempts():
    return select(func.count(Payment.id)).where(Payment.invoice_id == Invoice.id).scalar_subquery()


def _arrears(session: Session, org_ids: list[str] | Select) -> dict[str, list[UnpaidCycle]]:
    """A past-due or escalated org's renewal invoices still open besides the dunning one: the
    cycles it was served since (domain.renewal.renew), oldest first."""
    rows = session.execute(select(Invoice.org_id, Invoice.number, _attempts())
                           .join(Subscription, Subscription.org_id == Invoice.org_id)
                           .where(Invoice.org_id.in_(org_ids), Subscription.status.in_(IN_DUNNING),
                                  Invoice.kind == InvoiceKind.RENEWAL, Invoice.status == InvoiceStatus.OPEN,
                                  or_(Subscription.dunning_invoice_id.is_(None),
                                      Invoice.id != Subscription.dunning_invoice_id))
                           .order_by(Invoice.id))
    return {org_id: [UnpaidCycle(number, count) for number, count in cycles]
            for org_id, cycles in _by_org(rows).items()}


def _credits(session: Session, org_ids: list[str] | Select) -> dict[str, int]:
    rows = _by_org(session.execute(select(Invoice.org_id, Invoice.status, Invoice.total, Invoice.credit_applied).where(
        Invoice.org_id.in_(org_ids), (Invoice.status == InvoiceStatus.CREDITED) | (Invoice.credit_applied != 0))))
    return {org_id: account_credit((InvoiceStatus(status), total, applied) for status, total, applied in invoices)
            for org_id, invoices in rows.items()}


def _pending(session: Session, org_ids: list[str] | Select) -> dict[str, tuple[str, int, int]]:
    """Per org with a change waiting for payment: its invoice's number, credit applied and attempts."""
    rows = session.execute(select(Subscription.org_id, Invoice.number, Invoice.credit_applied, _attempts())
                           .join(Invoice, Invoice.id == Subscription.pending_invoice_id)
                           .where(Subscription.org_id.in_(org_ids)))
    return {org_id: (number, credit_applied or 0, attempts) for org_id, number, credit_applied, attempts in rows}


def _waiting_change(sub: Subscription, invoice: tuple[str, int, int] | None) -> WaitingChange | None:
    change = sub.pending_change
    if not change or invoice is None:
        return None
    number, credit_applied, attempts = invoice
    priced_at = change.get("priced_at")
    return WaitingChange(operation=change["operation"], request=change.get("request") or {},
                         summary=change.get("summary", change["operation"]),
                         priced_at=datetime.fromisoformat(priced_at) if priced_at else sub.period_start,
                         invoice=number, total=change.get("total", 0), attempts=attempts,
                         credit_applied=credit_applied)


def _ledgers(session: Session, org_ids: list[str] | Select) -> dict[str, list[BilledSpan]]:
    rows = session.execute(select(BilledSpanRow, Invoice.number)
                           .outerjoin(Invoice, Invoice.id == BilledSpanRow.invoice_id)
                           .where(BilledSpanRow.org_id.in_(org_ids)).order_by(BilledSpanRow.id))
    found: dict[str, list[BilledSpan]] = {}
    for row, number in rows:
        found.setdefault(row.org_id, []).append(BilledSpan(Item(ItemKind(row.item_kind), row.item_code), row.quantity,
                                                           row.start, row.end, row.amount, number or ""))
    return found


class StoredOrg:
    """What a decision reads of the org besides its state, when it asks (domain.steps.Stored):
    the database's word on its users, the reports applied, its mailboxes and its invoices."""

    def __init__(self, session: Session, org_id: str) -> None:
        self.session, self.org_id = session, org_id

    def has(self, email: str) -> bool:
        return not self.unknown([email])

    def unknown(self, emails: list[str]) -> list[str]:
        wanted = [email.strip().lower() for email in emails]
        known: set[str] = set()
        for first in range(0, len(wanted), 1000):
            known.update(self.session.scalars(select(User.email).where(
                User.org_id == self.org_id, User.email.in_(wanted[first:first + 1000]))))
        return [email for email in wanted if email not in known]

    def reported(self, subjects: list[str]) -> dict[str, Stamp]:
        stamps: dict[str, Stamp] = {}
        if CONTACTS in subjects:
            org = self.session.get(Organisation, self.org_id)
            if org is not None and org.contacts_reported_at is not None:
                stamps[CONTACTS] = Stamp(org.contacts_reported_at, org.contacts_report_id or "")
        emails = [subject for subject in subjects if subject != CONTACTS]
        for first in range(0, len(emails), 1000):
            rows = self.session.execute(select(User.email, User.usage_reported_at, User.usage_report_id).where(
                User.org_id == self.org_id, User.email.in_(emails[first:first + 1000]),
                User.usage_reported_at.is_not(None)))
            stamps.update({email: Stamp(at, report_id or "") for email, at, report_id in rows})
        return stamps

    def mailboxes(self, only: list[str] | None, waiting: bool) -> Mailboxes:
        return load_mailboxes(self.session, self.org_id, only, waiting)

    def paid_invoice(self, number: str) -> PaidInvoice:
        return paid_invoice(self.session, number)


def roster(session: Session, org_id: str) -> Roster:
    """The org's users as the workflow's validators check them (domain.users)."""
    return Roster.of(session.scalars(select(User.email).where(User.org_id == org_id)))
