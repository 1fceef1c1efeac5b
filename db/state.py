"""An org's state (domain.subscription.OrgSnapshot) read from its rows, and a decision written
back. No business rule lives here: what changes is the decision's; this module only maps it
onto rows (units and add-ons one row each, the ledger, invoices, users, events)."""

from dataclasses import replace
from datetime import datetime

from sqlalchemy import Select, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from db.events import record_event
from db.invoices import InvoiceRef, create_invoice, invoice_by_number, paid_invoice, set_invoice_status
from db.models import (BUSINESS_KEY_COLUMN, BilledSpanRow, Invoice, OrgAddon, Organisation, Payment, StorageUnit,
                       Subscription, User)
from db.storage import load_mailboxes, write_verdicts
from domain.credit import account_credit
from domain.decisions import Decision, UserChange, UserChangeKind, numbered
from domain.errors import UnknownOrg
from domain.lifecycle import is_large_account
from domain.limits import bounded, shown
from domain.payments import PaidInvoice
from domain.storage import Mailboxes, Verdict, gb_to_mb
from domain.policy import Policy
from domain.reports import CONTACTS, Stamp
from domain.states import Cycle, InvoiceKind, InvoiceStatus, OrgStatus
from domain.users import Roster
from domain.subscription import (IN_DUNNING, BilledSpan, Item, ItemKind, OrgSnapshot, WaitingChange, Scheduled,
                                 StorageHolding, Subscribers, UnitCount, UnpaidCycle)


def get_org(session: Session, org_id: str) -> tuple[Organisation, Subscription]:
    org = session.get(Organisation, org_id)
    if org is None or org.subscription is None:
        raise UnknownOrg(f"unknown org {shown(org_id)}")
    return org, org.subscription


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


# ---- writing a decision -------------------------------------------------------------------------

def persist(session: Session, org_id: str, decision: Decision, verdicts: list[Verdict], now: datetime, key: str,
            policy: Policy) -> tuple[InvoiceRef | None, OrgSnapshot]:
    """Write what the decision changes, in the caller's transaction, then its storage verdicts.
    `key`, the business key of the request or step, names the decision's invoice: a retried
    activity finds it again. Returns the invoice written and the state as a fresh read would give
    it (its new spans and waiting change numbered, its version bumped by the writes, a holding of
    no units no holding, whether it is a large account for its licences now)."""
    org, sub = get_org(session, org_id)
    state, ref = decision.state, None
    for event in decision.events:
        record_event(session, org_id, now, event.type, dict(event.data), actor=event.actor, reason=event.reason)
    for invoice_update in decision.invoice_updates:
        set_invoice_status(session, invoice_by_number(session, invoice_update.number), invoice_update.status, now)
    if decision.invoice is not None:
        invoice = create_invoice(session, org_id, bounded(f"{org_id}:{key}", BUSINESS_KEY_COLUMN), decision.invoice,
                                 org.currency, now)
        state = numbered(state, invoice.number)
        ref = InvoiceRef(invoice.number, invoice.total, invoice.currency)
    if decision.card_token:
        sub.card_token = decision.card_token
    contacts = decision.reported.get(CONTACTS)
    if contacts is not None:
        org.contacts_reported_at, org.contacts_report_id = contacts.at, contacts.id
    _change_users(session, org_id, decision.users, decision.reported, now)
    write_state(session, org, sub, state, now)
    write_verdicts(session, org_id, verdicts, now)
    return ref, replace(state, version=sub.version, storage=[h for h in state.storage if h.owned],
                        large_account=is_large_account(max(state.licences, state.user_count), policy))


def write_state(session: Session, org: Organisation, sub: Subscription, state: OrgSnapshot, now: datetime) -> None:
    sub.status, sub.plan_id, sub.licences = state.status, state.plan, state.licences
    sub.cycle, sub.cycle_anchor, sub.period_start, sub.renews_at = (state.cycle, state.cycle_anchor,
                                                                    state.period_start, state.renews_at)
    sub.trial_ends_at = state.trial_ends_at
    sub.trial_choice_plan, sub.trial_choice_cycle = state.trial_choice_plan, state.trial_choice_cycle
    sub.trial_choice_tier = state.trial_choice_tier
    sub.card_brand, sub.card_last4 = state.card_brand, state.card_last4
    scheduled = state.scheduled
    sub.scheduled_plan, sub.scheduled_licences = scheduled.plan, scheduled.licences
    sub.scheduled_tier_contacts, sub.cancel_at_period_end = scheduled.tier, scheduled.cancel
    sub.scheduled_cycle = scheduled.cycle
    pending = state.pending
    if pending is None:
        sub.pending_change, sub.pending_invoice_id = None, None
    else:
        sub.pending_change = {"operation": pending.operation, "request": pending.request, "summary": pending.summary,
                              "priced_at": pending.priced_at.isoformat(), "total": pending.total}
        sub.pending_invoice_id = invoice_by_number(session, pending.invoice).id
    sub.dunning_invoice_id = invoice_by_number(session, state.dunning_invoice).id if state.dunning_invoice else None
    sub.dunning_attempts, sub.dunning_retries_done = state.dunning_attempts, state.dunning_retries_done
    sub.dunning_started_at, sub.next_retry_at = state.dunning_started_at, state.next_retry_at
    sub.escalated_at, sub.first_response_due = state.escalated_at, state.first_response_due
    sub.determination_due = state.determination_due
    sub.tier_contacts = state.tier_contacts
    org.auto_allocate_storage = state.auto_allocate_storage
    org.contacts_subscribed, org.contacts_awaiting = state.subscribers.subscribed, state.subscribers.awaiting
    session.flush()
    _write_storage(session, org.id, state, now)
    _write_addons(session, org.id, state)
    _write_ledger(session, org.id, state)
    sub.version = (sub.version or 0) + 1


def _write_storage(session: Session, org_id: str, state: OrgSnapshot, now: datetime) -> None:
    """One row per unit. Fewer units: those ending go first, allocated ones last."""
    owned = {h.unit_gb: h.owned for h in state.storage}
    rows = list(session.scalars(select(StorageUnit).where(StorageUnit.org_id == org_id)))
    for size in {row.size_gb for row in rows} | set(owned):
        units = sorted((r for r in rows if r.size_gb == size),
                       key=lambda r: (r.user_id is not None, not r.remove_at_period_end, -r.id))
        target = owned.get(size, 0)
        for row in units[:max(0, len(units) - target)]:
            session.delete(row)
        units = units[max(0, len(units) - target):]
        for _ in range(target - len(units)):
            unit = StorageUnit(org_id=org_id, size_gb=size, purchased_at=now)
            session.add(unit)
            units.append(unit)
        ending = state.scheduled.removing(size)
        for unit in units:
            unit.remove_at_period_end = unit.user_id is None and ending > 0
            ending -= unit.remove_at_period_end


def _write_addons(session: Session, org_id: str, state: OrgSnapshot) -> None:
    rows = {row.addon_id: row for row in session.scalars(select(OrgAddon).where(OrgAddon.org_id == org_id))}
    for addon, row in rows.items():
        if addon not in state.addons:
            session.delete(row)
    for addon in state.addons:
        row = rows.get(addon) or OrgAddon(org_id=org_id, addon_id=addon)
        row.remove_at_period_end = addon in state.scheduled.addons
        session.add(row)


def _write_ledger(session: Session, org_id: str, state: OrgSnapshot) -> None:
    """The ledger updated, not rewritten: a span still in the state keeps its row (the same item,
    quantity, days and amount are the same span), its invoice set when it changed; spans gone are
    deleted, new ones inserted after the others (the state's order: kept spans, then new ones)."""
    stored: dict[tuple, list[BilledSpanRow]] = {}
    for row in session.scalars(select(BilledSpanRow).where(BilledSpanRow.org_id == org_id).order_by(BilledSpanRow.id)):
        stored.setdefault(_span_key(row.item_kind, row.item_code, row.quantity, row.start, row.end, row.amount),
                          []).append(row)
    ids = {number: invoice_by_number(session, number).id for number in {s.invoice for s in state.ledger if s.invoice}}
    for span in state.ledger:
        rows = stored.get(_span_key(str(span.item.kind), span.item.code, span.quantity, span.start, span.end,
                                    span.amount))
        if rows:
            row = rows.pop(0)
            if row.invoice_id != ids.get(span.invoice):
                row.invoice_id = ids.get(span.invoice)
        else:
            session.add(BilledSpanRow(org_id=org_id, item_kind=str(span.item.kind), item_code=span.item.code,
                                      quantity=span.quantity, start=span.start, end=span.end, amount=span.amount,
                                      invoice_id=ids.get(span.invoice)))
    for rows in stored.values():
        for row in rows:
            session.delete(row)


def _span_key(kind: str, code: str, quantity: int, start: datetime, end: datetime, amount: int) -> tuple:
    return kind, code, quantity, start, end, amount


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


def _change_users(session: Session, org_id: str, changes: list[UserChange], reported: dict[str, Stamp],
                  now: datetime) -> None:
    """The decision checked every user it names (domain.operations: user_field)."""
    usage = {c.email: c.storage_gb for c in changes if c.kind == UserChangeKind.SET_USAGE}
    if usage:  # a usage file names thousands: one statement, run for every row in batches
        session.flush()
        table = User.__table__
        session.connection().execute(
            update(table).where(table.c.org_id == org_id, table.c.email == bindparam("user_email"))
            .values(storage_mb=bindparam("mb"), usage_reported_at=bindparam("reported_at"),
                    usage_report_id=bindparam("report_id")),
            [{"user_email": email, "mb": gb_to_mb(gb), "reported_at": reported[email].at if email in reported else None,
              "report_id": reported[email].id if email in reported else None} for email, gb in usage.items()])
        session.expire_all()
    for change in changes:
        if change.kind == UserChangeKind.ADD:
            seq = (session.scalar(select(func.max(User.seq)).where(User.org_id == org_id)) or 0) + 1
            session.add(User(org_id=org_id, email=change.email, storage_mb=gb_to_mb(change.storage_gb), seq=seq,
                             created_at=now))
            session.flush()
        elif change.kind == UserChangeKind.ALLOCATE:
            user = session.scalar(select(User).where(User.org_id == org_id, User.email == change.email))
            unit = session.scalar(select(StorageUnit).where(
                StorageUnit.org_id == org_id, StorageUnit.size_gb == change.unit_gb, StorageUnit.user_id.is_(None))
                .order_by(StorageUnit.remove_at_period_end, StorageUnit.id).limit(1))
            if user is None or unit is None:  # the decision checked both on this transaction's state
                raise LookupError(f"no user {change.email} or no unallocated {change.unit_gb} GB unit to allocate")
            unit.user_id = user.id
            session.flush()
