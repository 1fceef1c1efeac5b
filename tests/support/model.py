"""The pure model of one org: the domain's decisions, persisted in memory and driven the way the
workflow drives them (steps when due, effects in order, charges against sandbox cards), with no
Temporal, database or SMTP. The Hypothesis test and the differential test run orgs through it.

What it keeps is what a user would check: invoices with their lines, charges, e-mails, blocked
users, and the holdings at the end of every day (to count what was held against what was billed)."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from domain import emails
from domain.billing import Line
from domain.cards import CardDetails, sandbox_behaviour
from domain.catalog import Catalog
from domain.credit import account_credit, settled_without_charge
from domain.decisions import (ChargePurpose, Context, Decision, Effect, EffectKind, EmailLine, FinalAction,
                              StorageCheck, UserChangeKind, numbered)
from domain.errors import DomainError
from domain.lifecycle import StepKind, is_large_account, next_step
from domain.onboarding import PAID_BEFORE, NewOrg, open_paid, opening_state
from domain.operations import OPERATIONS, decide
from domain import reports
from domain.users import Roster
from domain.periods import period_containing
from domain.payments import Decline, PaidInvoice, charge_declined, escalate, invoice_paid, write_off_and_free
from domain.policy import Policy
from domain.renewal import end_trial, plan_name, renew
from domain.states import InvoiceKind, InvoiceStatus
from domain.storage import MB_PER_GB, MailboxUser, enforce, gb_to_mb, storage_emails
from domain.subscription import IN_DUNNING, OrgSnapshot, UnpaidCycle, catalog_facts


class OpeningDeclined(Exception):
    """A new customer's first payment was declined: the org is discarded (the workflow's _open)."""


@dataclass
class ModelUser:
    email: str
    usage_mb: int
    seq: int
    is_admin: bool = False
    blocked: bool = False
    reason: str | None = None
    units: list[int] = field(default_factory=list)
    auto: list[int] = field(default_factory=list)   # those of `units` auto-allocation gave
    blocked_at: datetime | None = None


@dataclass
class ModelInvoice:
    number: str
    kind: InvoiceKind
    lines: list[Line]
    status: InvoiceStatus
    period_start: datetime | None
    period_end: datetime | None
    created_at: datetime
    credit_applied: int = 0

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines) - self.credit_applied


@dataclass(frozen=True)
class ModelCharge:
    at: datetime
    invoice: str
    attempt: int
    amount: int
    outcome: str
    reason: str | None


@dataclass(frozen=True)
class ModelEvent:
    at: datetime
    type: str
    data: dict[str, Any]


class OrgModel:
    def __init__(self, org: NewOrg, start: datetime, policy: Policy, catalog: Catalog,
                 card_token: str | None = None, card_brand: str = "visa", card_last4: str | None = None,
                 opening_attempt: int = 1) -> None:
        """An org on a paid plan without `org.paid_through` is a new customer: its first cycle is
        charged to the card at once, and a decline raises OpeningDeclined (nothing of it remains)."""
        self.policy, self.catalog, self.now = policy, catalog, start
        self.facts = catalog_facts(catalog, org.currency)
        self.users = {u.email: ModelUser(u.email, gb_to_mb(u.storage_gb), seq, u.email == org.admin_email)
                      for seq, u in enumerate(org.users, start=1)}
        self.card_token = card_token
        self.invoices: dict[str, ModelInvoice] = {}
        self.charges: list[ModelCharge] = []
        self.emails: list[tuple[datetime, str, str]] = []   # (at, template, recipient)
        self._outbox: set[tuple[str, str, str]] = set()
        self.events: list[ModelEvent] = []
        self.rejections: list[tuple[datetime, str, str]] = []
        self.days: dict[Any, tuple[OrgSnapshot, tuple | None, bool]] = {}
        self.units: dict[int, int] = {}   # owned units per size
        self.removing: dict[int, int] = {}
        self._updates = 0
        self.reported: dict[str, reports.Stamp] = {}   # the newest report applied per subject
        if org.paid and org.paid_through is None:
            # A new customer: the first cycle is invoiced and charged now (domain.onboarding.open_paid).
            card = CardDetails(card_token, card_brand, card_last4 or card_token[-4:])
            self.state = None
            self.paid_before = []
            self._step(open_paid(org, card, opening_attempt, self._ctx("opening")), "opening")
            self._note_day()
            return
        state = opening_state(org, catalog, policy, start)
        if card_token:
            state = state.with_changes(card_brand=card_brand, card_last4=card_last4 or card_token[-4:])
        self.state = self._reload(state)
        # A first cycle paid before the org reached us (moved in on a paid plan): billed, not invoiced.
        self.paid_before = [span for span in state.ledger if span.invoice == PAID_BEFORE]
        self._check_storage(StorageCheck("created"), send=False)  # as services.orgs.create_org does
        self._note_day()

    # ---- requests --------------------------------------------------------------------------------

    def request(self, name: str, request: Any, answered: bool = True) -> Decision | None:
        """Send an operation as the workflow's Update would: refused (recorded, unless it is not
        `answered`: a report sent as a signal) or decided and carried out."""
        operation = OPERATIONS[name]
        self._updates += 1
        key = f"update:{self._updates}"
        if name in reports.REPORT_OPERATIONS:  # stamped as it arrives, as the workflow does
            request = reports.stamped(request, self.now, reports.arrival_id(self._updates, "model"))
        try:
            members = Roster.of(self.users)
            operation.validate(self.state, self.policy, self.facts, request, self.now, members)
            decision = decide(operation, self.state, request, replace(self._ctx(key), reported=self.reported),
                              self.facts, members)
        except DomainError as err:
            if answered:
                self.rejections.append((self.now, name, err.message))
            return None
        issued = self._persist(decision)
        self._carry_out(decision.effects, issued, key, None)
        self._note_day()
        self.advance_to(self.now)  # as the workflow's loop does after an Update: what fell due, now
        return decision

    # ---- time ------------------------------------------------------------------------------------

    def advance_to(self, until: datetime) -> None:
        """Perform every step due up to `until`, at its instant, as the workflow's timers would."""
        while True:
            step = next_step(self.state, self.policy, self.now)
            if step.due is None or step.due > until:
                break
            self._tick(max(step.due, self.now))
            self._perform(step)
            self._note_day()
        self._tick(until)

    def _tick(self, moment: datetime) -> None:
        while self.now.date() < moment.date():
            self._note_day()
            self.now = datetime.combine(self.now.date() + timedelta(days=1), datetime.min.time(), self.now.tzinfo)
        self.now = max(self.now, moment)
        self._note_day()

    def _perform(self, step) -> None:
        if step.kind == StepKind.SEND_TRIAL_REMINDER:
            ends = self.state.trial_ends_at
            self._email(emails.trial_ending(ends, step.reminder_days, plan_name(self.catalog, self.state.plan)))
            self.state = self.state.with_changes(
                trial_reminders_sent=sorted({*self.state.trial_reminders_sent, step.reminder_days}))
        elif step.kind == StepKind.END_TRIAL:
            key = f"trial_end:{self.state.trial_ends_at.isoformat()}"
            self._step(end_trial(self.state, self._ctx(key)), key)
        elif step.kind == StepKind.RENEW:
            key = f"renewal:{self.state.renews_at.isoformat()}"
            self._step(renew(self.state, self.state.renews_at, self._ctx(key)), key)
        elif step.kind == StepKind.RETRY_PAYMENT:
            for unpaid in self.state.arrears:   # as the workflow does: later cycles first
                self._charge(unpaid.invoice, unpaid.attempts + 1, ChargePurpose.EXTRA,
                             f"retry:{unpaid.invoice}:{unpaid.attempts + 1}")
            key = f"retry:{self.state.dunning_invoice}:{self.state.dunning_attempts + 1}"
            self._charge(self.state.dunning_invoice, self.state.dunning_attempts + 1, ChargePurpose.RETRY, key)

    def _step(self, decision: Decision, key: str, decline: Decline | None = None) -> None:
        issued = self._persist(decision)
        self._carry_out(decision.effects, issued, key, decline)

    # ---- effects, as the workflow carries them out -------------------------------------------------

    def _carry_out(self, effects: list[Effect], issued: str | None, key: str, decline: Decline | None) -> None:
        for effect in effects:
            if effect.kind == EffectKind.EMAIL:
                self._email(effect.email)
            elif effect.kind == EffectKind.STORAGE_CHECK:
                self._check_storage(effect.storage)
            elif effect.kind == EffectKind.CHARGE:
                charge = effect.charge
                self._charge(charge.invoice or issued, charge.attempt, charge.purpose, key)
            elif effect.kind == EffectKind.FINAL_DUNNING_ACTION:
                final = write_off_and_free if effect.final_action == FinalAction.FREE else escalate
                final_key = f"final:{decline.invoice}:{decline.attempt}"
                self._step(final(self.state, decline, self._ctx(final_key)), key, decline)

    def _charge(self, number: str, attempt: int, purpose: ChargePurpose, key: str) -> None:
        invoice = self.invoices[number]
        settled = settled_without_charge(invoice.total) if invoice.status == InvoiceStatus.OPEN else None
        if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED) or settled is not None:
            invoice.status = settled or invoice.status
            outcome, reason = "succeeded", None
        elif invoice.status != InvoiceStatus.OPEN:
            return
        elif self.card_token is None:
            outcome, reason = "declined", "no_card"
        else:
            behaviour = sandbox_behaviour(self.card_token)
            outcome, reason = ("succeeded", None) if behaviour == "ok" else ("declined", behaviour)
        amount = invoice.total
        if amount > 0:
            self.charges.append(ModelCharge(self.now, number, attempt, amount, outcome, reason))
        if outcome == "succeeded":
            if invoice.status == InvoiceStatus.OPEN:
                invoice.status = InvoiceStatus.PAID
            self.state = self._reload(self.state)
            paid = PaidInvoice(number, invoice.kind, invoice.total,
                               [EmailLine(l.description, l.amount, l.start, l.end) for l in invoice.lines],
                               invoice.lines, invoice.period_start, invoice.period_end, invoice.credit_applied)
            # In the workflow the payment is settled an activity later than the decision that
            # priced it: a second later here, so a change applied "now" instead of when it was
            # priced would show.
            settle = Context(self.now + timedelta(seconds=1), self.policy, self.catalog, f"settle:{number}")
            self._step(invoice_paid(self.state, paid, settle), f"settle:{number}")
            return
        self.state = self._reload(self.state)
        if purpose == ChargePurpose.CHANGE:
            return
        if purpose == ChargePurpose.OPENING:
            raise OpeningDeclined(reason)
        decline = Decline(number, attempt, amount, reason)
        self._step(charge_declined(self.state, decline, purpose, self._ctx(f"declined:{number}:{attempt}")),
                   key, decline)

    def _email(self, email) -> None:
        recipients = email.to or [self.state.admin_email]
        for recipient in recipients:
            outbox_key = (email.template, email.occasion, recipient)
            if outbox_key not in self._outbox:
                self._outbox.add(outbox_key)
                self.emails.append((self.now, email.template, recipient))

    def _check_storage(self, check: StorageCheck, send: bool = True) -> None:
        plan = self.catalog.plans[self.state.plan]
        auto = self.state.auto_allocate_storage
        ranked = sorted(self.users.values(), key=lambda u: (not u.is_admin, u.seq))
        # As db/storage.py reads them: the users checked, and with auto-allocation those waiting.
        only = check.only
        users = [MailboxUser(u.email, u.usage_mb, sum(u.units) * MB_PER_GB, rank, u.blocked, u.reason, u.blocked_at,
                             tuple(sorted(u.auto)) if auto else ())
                 for rank, u in enumerate(ranked, start=1)
                 if only is None or u.email in only or (auto and u.reason == "storage")]
        free = self._free_units()
        verdict = enforce(users, plan.quota_gb, plan.user_cap, auto, free)
        for release in verdict.released:
            user = self.users[release.email]
            user.units.remove(release.unit_gb)
            user.auto.remove(release.unit_gb)
            self.events.append(ModelEvent(self.now, "storage_auto_released",
                                          {"user": release.email, "unit_gb": release.unit_gb}))
        for allocation in verdict.auto_allocated:
            self.users[allocation.email].units.append(allocation.unit_gb)
            self.users[allocation.email].auto.append(allocation.unit_gb)
            self.events.append(ModelEvent(self.now, "storage_auto_allocated",
                                          {"user": allocation.email, "unit_gb": allocation.unit_gb}))
        for blocked in verdict.blocked + verdict.reblocked:
            user = self.users[blocked.email]
            if not user.blocked:
                self.events.append(ModelEvent(self.now, "user_blocked", {"user": user.email, "reason": blocked.reason}))
                user.blocked_at = self.now
            user.blocked, user.reason = True, blocked.reason
        for email in verdict.unblocked:
            self.users[email].blocked, self.users[email].reason, self.users[email].blocked_at = False, None, None
            self.events.append(ModelEvent(self.now, "user_unblocked", {"user": email}))
        self.state = self._reload(self.state)
        if not send:
            return
        for email in storage_emails(verdict, check.occasion, self.state.admin_email, check.announce,
                                    sum(self._free_units().values())):
            self._email(email)

    # ---- persistence, as db/ does it -----------------------------------------------------------------

    def _persist(self, decision: Decision) -> str | None:
        state = decision.state
        number = None
        if decision.card_token:
            self.card_token = decision.card_token
        for update in decision.invoice_updates:
            if update.number in self.invoices:
                self.invoices[update.number].status = update.status
        if decision.invoice is not None:
            number = f"INV-{state.org_id}-{len(self.invoices) + 1:04d}"
            draft = decision.invoice
            self.invoices[number] = ModelInvoice(number, draft.kind, list(draft.lines), InvoiceStatus.OPEN,
                                                 draft.period_start, draft.period_end, draft.issued_at or self.now,
                                                 draft.credit_applied)
            state = numbered(state, number)
            self.events.append(ModelEvent(self.now, "invoice", {"number": number, "kind": draft.kind, "state": state}))
        for change in decision.users:
            if change.kind == UserChangeKind.ADD:
                self.users[change.email] = ModelUser(change.email, gb_to_mb(change.storage_gb),
                                                     max(u.seq for u in self.users.values()) + 1)
            elif change.kind == UserChangeKind.SET_USAGE:
                self.users[change.email].usage_mb = gb_to_mb(change.storage_gb)
            else:
                self.users[change.email].units.append(change.unit_gb)
        self.reported |= decision.reported
        for event in decision.events:
            self.events.append(ModelEvent(self.now, event.type, dict(event.data)))
        # Units: a smaller holding frees allocated units last, as db/ does.
        owned = {h.unit_gb: h.owned for h in state.storage}
        for size in set(owned) | {s for u in self.users.values() for s in u.units}:
            surplus = sum(u.units.count(size) for u in self.users.values()) - owned.get(size, 0)
            for user in sorted(self.users.values(), key=lambda u: -u.seq):
                while surplus > 0 and size in user.units:
                    user.units.remove(size)
                    if user.auto.count(size) > user.units.count(size):
                        user.auto.remove(size)
                    surplus -= 1
        self.state = self._reload(state)
        return number

    def _free_units(self) -> dict[int, int]:
        free = {}
        for holding in self.state.storage:
            count = holding.owned - holding.allocated - self.state.scheduled.removing(holding.unit_gb)
            if count > 0:
                free[holding.unit_gb] = count
        return free

    def _reload(self, state: OrgSnapshot) -> OrgSnapshot:
        """What load_snapshot derives from the rows."""
        allocated: dict[int, int] = {}
        for user in self.users.values():
            for size in user.units:
                allocated[size] = allocated.get(size, 0) + 1
        storage = [replace(h, allocated=allocated.get(h.unit_gb, 0)) for h in state.storage if h.owned]
        pending = state.pending
        if pending is not None:
            attempts = sum(1 for c in self.charges if c.invoice == pending.invoice)
            pending = replace(pending, attempts=attempts)
        credit = account_credit((i.status, i.total, i.credit_applied) for i in self.invoices.values())
        arrears = [UnpaidCycle(i.number, sum(1 for c in self.charges if c.invoice == i.number))
                   for i in self.invoices.values()
                   if state.status in IN_DUNNING and i.kind == InvoiceKind.RENEWAL and i.status == InvoiceStatus.OPEN
                   and i.number != state.dunning_invoice]
        if pending is not None and pending.invoice in self.invoices:
            pending = replace(pending, credit_applied=self.invoices[pending.invoice].credit_applied)
        return state.with_changes(
            storage=storage, pending=pending, user_count=len(self.users), credit=credit, arrears=arrears,
            blocked_users=[u.email for u in sorted(self.users.values(), key=lambda u: u.seq) if u.blocked],
            large_account=is_large_account(max(state.licences, len(self.users)), self.policy))

    def _ctx(self, key: str) -> Context:
        return Context(self.now, self.policy, self.catalog, key)

    def _note_day(self) -> None:
        """The state at the end of each day: what that day should have been billed for, and by
        which period. The renewal date (before the renewal's hour) and the days past an overdue
        renewal (dunning outlasted the cycle) belong to the next period: billed once it renews."""
        state = self.state
        period, next_period = (state.period_start, state.renews_at) if state.period_start else None, False
        if period is not None and self.now.date() >= state.renews_at.date():
            # The period the day falls in, however many renewals are overdue.
            day_end = datetime.combine(self.now.date(), state.renews_at.timetz())
            period, next_period = period_containing(state.cycle_anchor, state.cycle, day_end), True
        self.days[self.now.date()] = (state, period, next_period)

    # ---- what a user would look at -----------------------------------------------------------------

    def final(self) -> dict[str, Any]:
        state = self.state
        return {"plan": state.plan, "status": str(state.status), "cycle": str(state.cycle) if state.cycle else None,
                "renews_at": state.renews_at, "licences": state.licences, "users": len(self.users),
                "blocked_users": list(state.blocked_users),
                "contacts": {"tier": state.tier_contacts or None, "subscribed": state.subscribers.subscribed,
                             "awaiting_upgrade": state.subscribers.awaiting}}

    def paid(self) -> list[tuple[datetime, int]]:
        return [(c.at, c.amount) for c in self.charges if c.outcome == "succeeded"]
