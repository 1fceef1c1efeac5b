"""A decision written back onto an org's rows (db/snapshots.py reads them). No business rule
lives here: what changes is the decision's; this module only maps it onto rows (the org and its
subscription, users, units and add-ons one row each, the ledger updated, not rewritten)."""

from dataclasses import replace
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from db.models import BilledSpanRow, Invoice, OrgAddon, Organisation, StorageUnit, Subscription, User
from db.storage import write_verdicts
from domain.decisions import Decision, Event, UserChange, UserChangeKind, numbered
from domain.errors import UnknownOrg
from domain.lifecycle import is_large_account
from domain.limits import shown
from domain.policy import Policy
from domain.reports import CONTACTS, Stamp
from domain.storage import Verdict, gb_to_mb
from domain.subscription import OrgSnapshot


def get_org(session: Session, org_id: str) -> tuple[Organisation, Subscription]:
    org = session.get(Organisation, org_id)
    if org is None or org.subscription is None:
        raise UnknownOrg(f"unknown org {shown(org_id)}")
    return org, org.subscription


def persist(session: Session, org_id: str, decision: Decision, verdicts: list[Verdict], invoice: str | None,
            now: datetime, policy: Policy) -> tuple[OrgSnapshot, list[Event]]:
    """Write what the decision changes in the org's rows, in the caller's transaction, then its
    storage verdicts (db/storage). `invoice`: the number of the invoice it issued (db/invoices
    wrote it first), for its new spans and waiting change. Returns the state as a fresh read would
    give it (its version bumped by the writes, a holding of no units no holding, whether it is a
    large account for its licences now) and the verdicts' entries for the audit log."""
    org, sub = get_org(session, org_id)
    state = numbered(decision.state, invoice) if invoice else decision.state
    if decision.card_token:
        sub.card_token = decision.card_token
    contacts = decision.reported.get(CONTACTS)
    if contacts is not None:
        org.contacts_reported_at, org.contacts_report_id = contacts.at, contacts.id
    _change_users(session, org_id, decision.users, decision.reported, now)
    write_state(session, org, sub, state, now)
    entries = write_verdicts(session, org_id, verdicts, now)
    return replace(state, version=sub.version, storage=[h for h in state.storage if h.owned],
                   large_account=is_large_account(max(state.licences, state.user_count), policy)), entries


def write_state(session: Session, org: Organisation, sub: Subscription, state: OrgSnapshot, now: datetime) -> None:
    invoice_ids = _invoice_ids(session, state)
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
        sub.pending_invoice_id = invoice_ids[pending.invoice]
    sub.dunning_invoice_id = invoice_ids[state.dunning_invoice] if state.dunning_invoice else None
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
    _write_ledger(session, org.id, state, invoice_ids)
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


def _write_ledger(session: Session, org_id: str, state: OrgSnapshot, ids: dict[str, int]) -> None:
    """The ledger updated, not rewritten: a span still in the state keeps its row (the same item,
    quantity, days and amount are the same span), its invoice set when it changed; spans gone are
    deleted, new ones inserted after the others (the state's order: kept spans, then new ones)."""
    stored: dict[tuple, list[BilledSpanRow]] = {}
    for row in session.scalars(select(BilledSpanRow).where(BilledSpanRow.org_id == org_id).order_by(BilledSpanRow.id)):
        stored.setdefault(_span_key(row.item_kind, row.item_code, row.quantity, row.start, row.end, row.amount),
                          []).append(row)
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


def _invoice_ids(session: Session, state: OrgSnapshot) -> dict[str, int]:
    """The ids of the invoices the state names (its waiting change's, its dunning one, its ledger's
    spans'), in one query; db/invoices wrote any new one first."""
    numbers = {span.invoice for span in state.ledger if span.invoice}
    numbers |= {number for number in (state.pending.invoice if state.pending else None, state.dunning_invoice)
                if number}
    ids = dict(session.execute(select(Invoice.number, Invoice.id).where(Invoice.number.in_(numbers))).all()
               ) if numbers else {}
    missing = sorted(numbers - ids.keys())
    if missing:
        raise LookupError(f"unknown invoice {missing[0]}")
    return ids


def _span_key(kind: str, code: str, quantity: int, start: datetime, end: datetime, amount: int) -> tuple:
    return kind, code, quantity, start, end, amount


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
