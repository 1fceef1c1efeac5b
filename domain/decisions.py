"""A decision: what one request or one step of an org's life changes, as data.

Every operation and every lifecycle step is a pure function returning a `Decision`: the new
state, the invoice it issues, the invoice statuses it changes, the user rows it touches, the
events for the audit log and timeline, and the effects the workflow carries out afterwards
(e-mails, storage enforcement, charges), in order. db/ persists the first five; the workflow
reads `effects`. Every value is a frozen dataclass, so it crosses activity boundaries typed."""

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Mapping

from domain.billing import Line
from domain.catalog import Catalog
from domain.credit import credit_to_apply
from domain.policy import Policy
from domain.reports import Stamp
from domain.states import InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason
from domain.subscription import Item, OrgSnapshot, Subscribers
from domain.tax import UNTAXED, InvoiceTax, rule_for, tax_on


@dataclass(frozen=True)
class Context:
    """What every decision may know besides the state and the request."""
    now: datetime
    policy: Policy
    catalog: Catalog
    # The business key of the request or step (an Update id, "renewal:<period start>"): it makes
    # the decision's e-mails and invoice unique, so a retried activity repeats nothing.
    key: str
    # The newest report applied per subject the request reports on (domain.reports), read by the caller.
    reported: Mapping[str, Stamp] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailLine:
    """An invoice line as receipts and invoice documents print it: what it bills (`item`; None
    for lines from before itemised invoices, which keep their `description`), how many, the
    unit's full-period price, the amount, and the days [start, end) it covers. The mailer and
    activities/documents.py describe it in the org's language."""
    description: str
    amount: int
    start: datetime | None = None
    end: datetime | None = None
    item: Item | None = None
    quantity: int = 0
    unit_amount: int = 0


@dataclass(frozen=True)
class Email:
    """A template and its context; the mailer renders it in the org's locale. `occasion` makes
    it unique for the org (the outbox key): the same occasion is never sent twice."""
    template: str
    occasion: str
    to: list[str] = field(default_factory=list)            # empty: the org's admin
    values: dict[str, Any] = field(default_factory=dict)
    money: dict[str, int] = field(default_factory=dict)     # minor units, formatted per locale
    dates: dict[str, datetime] = field(default_factory=dict)
    lines: list[EmailLine] = field(default_factory=list)
    trial_reminder_days: int | None = None                  # recorded: this trial reminder went out
    attach_invoice: str | None = None                       # the invoice to attach, as a PDF


class ChargePurpose(StrEnum):
    CYCLE = "cycle"     # first charge of a cycle's invoice: a decline starts dunning
    CHANGE = "change"   # a purchase: a decline leaves it waiting for payment
    RETRY = "retry"     # a scheduled dunning retry: a decline moves the ladder on
    EXTRA = "extra"     # card updated or staff retry on the dunning invoice: counted, ladder unchanged
    # First charge of a cycle's invoice issued while the org is past due or escalated: a decline
    # leaves it unpaid beside the dunning invoice (no ladder of its own).
    IN_DUNNING = "in_dunning"
    # The first cycle of a new customer: a decline leaves nothing of the org (domain.onboarding).
    OPENING = "opening"


@dataclass(frozen=True)
class Charge:
    purpose: ChargePurpose
    invoice: str | None = None   # None: the invoice issued by the same decision
    attempt: int = 1


@dataclass(frozen=True)
class StorageCheck:
    """Storage enforcement (DOMAIN.md, storage blocking): for one user, some users (a batch of
    usage reports), or the whole org after a quota change. `announce` is sent after it, listing
    the users it blocked."""
    occasion: str
    user: str | None = None
    announce: Email | None = None
    users: list[str] = field(default_factory=list)

    @property
    def only(self) -> list[str] | None:
        """The users to check; None: every user of the org."""
        return self.users or ([self.user] if self.user is not None else None)


class FinalAction(StrEnum):
    FREE = "free"           # write the invoice off, move to the free plan
    ESCALATE = "escalate"   # a large account: S1 case for billing staff


class EffectKind(StrEnum):
    EMAIL = "email"
    STORAGE_CHECK = "storage_check"
    CHARGE = "charge"
    FINAL_DUNNING_ACTION = "final_dunning_action"


@dataclass(frozen=True)
class Effect:
    kind: EffectKind
    email: Email | None = None
    storage: StorageCheck | None = None
    charge: Charge | None = None
    final_action: FinalAction | None = None


def send(email: Email) -> Effect:
    return Effect(EffectKind.EMAIL, email=email)


def check_storage(occasion: str, user: str | None = None, announce: Email | None = None,
                  users: list[str] | None = None) -> Effect:
    return Effect(EffectKind.STORAGE_CHECK, storage=StorageCheck(occasion, user, announce, list(users or [])))


def collect(purpose: ChargePurpose, invoice: str | None = None, attempt: int = 1) -> Effect:
    return Effect(EffectKind.CHARGE, charge=Charge(purpose, invoice, attempt))


def final_dunning_action(action: FinalAction) -> Effect:
    return Effect(EffectKind.FINAL_DUNNING_ACTION, final_action=action)


@dataclass(frozen=True)
class InvoiceDraft:
    kind: InvoiceKind
    lines: list[Line]
    period_start: datetime | None = None
    period_end: datetime | None = None
    # When it is issued: a cycle's invoice on the day its cycle starts, even when the decision
    # runs later (a timer fired late, a demo org whose renewal was days ago); None: at decision time.
    issued_at: datetime | None = None
    # The org's account credit this invoice uses (domain.credit): taken off what is charged.
    credit_applied: int = 0
    # Its tax (domain.tax), computed on its lines when it is billed (Draft.bill).
    tax: InvoiceTax = UNTAXED

    @property
    def lines_total(self) -> int:
        """Its subtotal: the sum of its lines, credits included, before tax."""
        return sum(line.amount for line in self.lines)

    @property
    def with_tax(self) -> int:
        return self.lines_total + self.tax.amount

    @property
    def total(self) -> int:
        """What is charged: the lines and their tax, less the account credit used (below zero: a
        credit note, its negative tax owed to the org with the rest). The credit is money already
        taxed, so it is taken off after the tax, like a payment."""
        return self.with_tax - self.credit_applied


@dataclass(frozen=True)
class InvoiceUpdate:
    number: str
    status: InvoiceStatus


class UserChangeKind(StrEnum):
    ADD = "add"
    SET_USAGE = "set_usage"
    ALLOCATE = "allocate"


@dataclass(frozen=True)
class UserChange:
    kind: UserChangeKind
    email: str
    storage_gb: float = 0.0
    unit_gb: int = 0


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Decision:
    state: OrgSnapshot
    message: str = ""
    invoice: InvoiceDraft | None = None
    invoice_updates: list[InvoiceUpdate] = field(default_factory=list)
    users: list[UserChange] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    # A new card's gateway token: stored, never part of the state the workflow holds.
    card_token: str | None = None
    # The stamp of each report applied (domain.reports), stored with the value it set.
    reported: dict[str, Stamp] = field(default_factory=dict)
    # A new customer's first cycle paid: the attempt at opening the org ends, paid.
    opening_paid: bool = False


class Draft:
    """Builds one decision: pure, local mutation only."""

    def __init__(self, state: OrgSnapshot) -> None:
        self.before = state
        self.state = state
        self.invoice: InvoiceDraft | None = None
        self.invoice_updates: list[InvoiceUpdate] = []
        self.users: list[UserChange] = []
        self.events: list[Event] = []
        self.effects: list[Effect] = []
        self.notices: list[str] = []
        self.card_token: str | None = None
        self.reported: dict[str, Stamp] = {}

    def change(self, **fields: Any) -> None:
        self.state = replace(self.state, **fields)

    def event(self, type: str, *, by: str | None = None, why: str | None = None, **data: Any) -> None:
        """An entry of the audit log and timeline; `by` and `why`: who asked, and why."""
        self.events.append(Event(type, data, by or None, why or None))

    def set_status(self, status: OrgStatus) -> None:
        if self.state.status != status:
            self.change(status=status)
            self.event("status", status=str(status))

    def set_plan(self, plan: str, reason: PlanChangeReason, actor: str | None = None) -> None:
        if self.state.plan != plan:
            self.event("plan_changed", by=actor, **{"from": self.state.plan, "to": plan, "reason": str(reason)})
            self.change(plan=plan)

    def set_subscribers(self, subscribers: Subscribers) -> None:
        if self.state.subscribers != subscribers:
            self.change(subscribers=subscribers)
            self.event("contacts", subscribed=subscribers.subscribed, awaiting_upgrade=subscribers.awaiting)

    def set_invoice_status(self, number: str | None, status: InvoiceStatus) -> None:
        if number:
            self.invoice_updates.append(InvoiceUpdate(number, status))

    def notice(self, text: str) -> None:
        """A scheduled change dropped or reduced (DOMAIN.md, "later wins")."""
        self.notices.append(text)
        self.event("scheduled_change_adjusted", notice=text)

    def add(self, effect: Effect) -> None:
        self.effects.append(effect)

    def bill(self, invoice: InvoiceDraft, catalog: Catalog, now: datetime) -> None:
        """The decision issues `invoice`, taxed by the rule for the buyer's country in force on
        the day it is issued (DOMAIN.md "Tax")."""
        issued = (invoice.issued_at or now).date()
        rule = rule_for(catalog.taxes, self.state.country, issued)
        self.invoice = replace(invoice, tax=tax_on(invoice.lines_total, rule))

    def absorb(self, other: "Draft") -> None:
        """Take over the state, events and effects of a draft started from this one's state."""
        self.state = other.state
        self.events += other.events
        self.effects += other.effects
        self.notices += other.notices
        self.users += other.users
        self.invoice_updates += other.invoice_updates
        self.reported |= other.reported

    def decision(self, message: str) -> Decision:
        if self.notices:
            message = "; ".join([message, *self.notices])
        invoice = self.invoice
        if invoice is not None and not invoice.credit_applied:
            # Whatever issues an invoice: the org's credit is used before its card is charged.
            applied = credit_to_apply(self.state.credit, invoice.with_tax)
            if applied:
                invoice = replace(invoice, credit_applied=applied)
                self.change(credit=self.state.credit - applied)
        return Decision(self.state, message, invoice, self.invoice_updates, self.users, self.events,
                        self.effects, self.card_token, dict(self.reported))


def public(request: Any) -> dict[str, Any]:
    """A request's fields as the audit log keeps them: who asked, why and card tokens apart."""
    data = asdict(request)
    for private in ("requested_by", "reason", "token"):
        data.pop(private, None)
    return data


def audited(name: str, state: OrgSnapshot, request: Any) -> Draft:
    """A draft for an accepted request: every one is in the audit log (who, when, what and why)."""
    draft = Draft(state)
    draft.event("request", by=getattr(request, "requested_by", ""), why=getattr(request, "reason", ""),
                operation=name, **public(request))
    return draft


def no_change(state: OrgSnapshot, message: str) -> Decision:
    return Decision(state, message)


def numbered(state: OrgSnapshot, invoice: str) -> OrgSnapshot:
    """The state once the decision's invoice has its number: the change waiting for it and the
    ledger entries it bills point at it."""
    pending = state.pending
    if pending is not None and pending.invoice is None:
        pending = replace(pending, invoice=invoice)
    ledger = [replace(span, invoice=invoice) if span.invoice is None else span for span in state.ledger]
    return replace(state, pending=pending, ledger=ledger)
