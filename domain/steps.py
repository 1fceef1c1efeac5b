"""The steps of an org's life that an org's unit of work decides (services.unit_of_work), each a
value saying what to decide: a change asked for, a batch of reports, the trial's end, a renewal,
an invoice paid, a charge declined, the dunning's end. A step decides on the state loaded once
and on what the database says when the step asks (`Stored`); `decided` carries out the storage
checks its decision names. Pure: nothing here reads or writes by itself."""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Protocol

from domain import reports
from domain.decisions import ChargePurpose, Context, Decision
from domain.operations import decide, decide_reports, operation_of
from domain.payments import Decline, PaidInvoice, charge_declined, escalate, invoice_paid, write_off_and_free
from domain.renewal import end_trial, renew
from domain.reports import Stamp
from domain.storage import StoredMailboxes, Verdict, enforced
from domain.subscription import OrgSnapshot, catalog_facts
from domain.users import Members


class Stored(Members, StoredMailboxes, Protocol):
    """What a step may read besides the state, asked when it needs it: the org's users (whether
    a user exists, the newest report applied for each, their mailboxes) and its invoices."""

    def reported(self, subjects: list[str]) -> dict[str, Stamp]:
        """The newest report applied for each of `subjects` (users' addresses, or CONTACTS) that has one."""
        ...

    def paid_invoice(self, number: str) -> PaidInvoice: ...


class Step(Protocol):
    @property
    def name(self) -> str:
        """What the step is, as the org's history records it."""
        ...

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision: ...


def decided(step: Step, state: OrgSnapshot, stored: Stored, ctx: Context) -> tuple[Decision, list[Verdict]]:
    """The step decided, its storage checks carried out on the users they name; the verdicts for
    the database to write."""
    return enforced(step.decision(state, ctx, stored), stored, ctx.catalog, ctx.now)


@dataclass(frozen=True)
class Taken:
    """A decision its caller took (a new customer's opening: domain.onboarding.open_paid, decided
    before the org's rows exist), carried out and committed like any step's. None: the caller
    found it committed already (a retry), and the recorded answer stands: it is never asked."""
    name: str
    taken: Decision | None

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        if self.taken is None:
            raise LookupError(f"{self.name}: committed already, its recorded answer stands")
        return self.taken


@dataclass(frozen=True)
class Change:
    """An operation's request, checked again on the stored state (a change applied since the
    workflow's own check counts) and its users on the stored ones; named by its operation."""
    request: Any

    @property
    def name(self) -> str:
        return operation_of(self.request).name

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        operation = operation_of(self.request)
        ctx = replace(ctx, reported=stored.reported(reports.subjects(operation.name, self.request)))
        return decide(operation, state, self.request, ctx, catalog_facts(ctx.catalog, state.currency), stored)


@dataclass(frozen=True)
class Reports:
    """Usage reports and contact counts that arrived as signals (operation name, request), decided
    at once: the newest per user (and for the org's contacts) applied when newer than the one stored."""
    sent: list[tuple[str, Any]]
    name: ClassVar[str] = "apply_reports"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        named = [subject for operation, request in self.sent for subject in reports.subjects(operation, request)]
        ctx = replace(ctx, reported=stored.reported(sorted(set(named))))
        return decide_reports(state, self.sent, ctx, catalog_facts(ctx.catalog, state.currency), stored)


@dataclass(frozen=True)
class TrialEnd:
    name: ClassVar[str] = "end_trial"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return end_trial(state, ctx)


@dataclass(frozen=True)
class Renewal:
    period_start: datetime
    name: ClassVar[str] = "renew"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return renew(state, self.period_start, ctx)


@dataclass(frozen=True)
class Paid:
    """An invoice paid: what waited for it applies; a new customer's opening ends."""
    invoice_number: str
    name: ClassVar[str] = "invoice_paid"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return invoice_paid(state, stored.paid_invoice(self.invoice_number), ctx)


@dataclass(frozen=True)
class Declined:
    """A charge declined (a renewal's, a change's, a retry's)."""
    decline: Decline
    purpose: ChargePurpose
    name: ClassVar[str] = "charge_declined"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return charge_declined(state, self.decline, self.purpose, ctx)


@dataclass(frozen=True)
class DunningEntered:
    """A cycle's charge declined: the org enters dunning on its invoice."""
    decline: Decline
    name: ClassVar[str] = "enter_dunning"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return charge_declined(state, self.decline, ChargePurpose.CYCLE, ctx)


@dataclass(frozen=True)
class WriteOff:
    """Dunning ended unpaid: the invoice written off, the org on the free plan."""
    decline: Decline
    name: ClassVar[str] = "write_off_and_free"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return write_off_and_free(state, self.decline, ctx)


@dataclass(frozen=True)
class Escalation:
    """Dunning ended unpaid for a large account: escalated to billing staff."""
    decline: Decline
    name: ClassVar[str] = "escalate"

    def decision(self, state: OrgSnapshot, ctx: Context, stored: Stored) -> Decision:
        return escalate(state, self.decline, ctx)
