"""A large account escalated to billing staff keeps its service and its renewal dates (DOMAIN.md,
large accounts): each cycle it is served is invoiced on its own renewal date and charged once;
what staff decide later settles every one of those invoices (charged, or written off as
uncollectible), never voids or skips one. On the time-skipping server, with real PostgreSQL and SMTP."""

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from activities.gateways import ChargeAttempt, GatewayResult
from activities.gateways.sandbox import SandboxGateway
from db.invoices import statement
from db.models import Invoice, Payment
from domain import requests as rq
from domain.cards import sandbox_tokenise
from domain.statement import EntryKind

DECLINING = "4000000000000341"
STAFF = "rina@billing.test"
FUNDED = sandbox_tokenise("4242424242424242").token


class TopUpGateway(SandboxGateway):
    """The sandbox gateway, for a customer whose account behind the declining card is topped up
    at some point: from then on its charges go through."""
    funded = False

    def charge(self, attempt: ChargeAttempt) -> GatewayResult:
        return super().charge(replace(attempt, token=FUNDED) if self.funded else attempt)


def large(stack) -> None:
    """Accounts of 3 licences are large (set before the worker starts: it reads the policy)."""
    stack.policy = stack.with_policy(large_account_licences=3).policy


@dataclass(frozen=True)
class Billed:
    number: str
    issued: datetime
    period_start: datetime
    total: int
    status: str
    attempts: list[str]


def invoices(db, org_id: str) -> list[Billed]:
    with db.transaction() as session:
        return [Billed(i.number, i.created_at, i.period_start, i.total, str(i.status),
                       [str(p.outcome) for p in session.scalars(select(Payment).where(Payment.invoice_id == i.id)
                                                                .order_by(Payment.attempt))])
                for i in session.scalars(select(Invoice).where(Invoice.org_id == org_id).order_by(Invoice.id))]


async def escalated_org(stack) -> tuple[str, list[datetime]]:
    """A large account (3 licences, the threshold: see `large`) whose first renewal was declined
    through the whole ladder: escalated a week after it. Returns the org and its first three
    renewal dates."""
    start = await stack.now()
    org_id = await stack.create_org(plan="standard", cycle="monthly", card=DECLINING, start=start,
                                    users=[("b@big.test", 1.0), ("c@big.test", 1.0)])
    renewals = [start + relativedelta(months=n) for n in (1, 2, 3)]
    await stack.advance_to(renewals[0] + timedelta(days=7, hours=1))
    assert (await stack.state(org_id)).snapshot.status == "escalated"
    return org_id, renewals


async def test_each_cycle_served_while_escalated_is_invoiced_on_its_date_and_a_staff_retry_charges_all(
        stack, smtp_sink):
    stack.gateway = gateway = TopUpGateway(stack.db)
    large(stack)
    async with stack.worker():
        org_id, renewals = await escalated_org(stack)
        view = await stack.state(org_id)
        assert view.next_action_at == renewals[1]          # no longer waiting with no timer
        await stack.advance_to(renewals[2] + timedelta(hours=1))
        state = (await stack.state(org_id)).snapshot
        billed = invoices(stack.db, org_id)
        # Three cycles served, three invoices, each issued on its renewal date and charged once
        # there (the first also on its dunning retries); the org is still escalated, on the first.
        assert [(b.issued, b.period_start, b.total, b.status) for b in billed] == [
            (day, day, 900, "open") for day in renewals]
        assert [len(b.attempts) for b in billed] == [5, 1, 1]
        assert (state.status, state.dunning_invoice, [u.invoice for u in state.arrears]) == (
            "escalated", billed[0].number, [billed[1].number, billed[2].number])
        assert state.renews_at == renewals[2] + relativedelta(months=1)
        failed = {re.search(r"invoice (INV-\S+) ", m.part("plain"))[1] for m in smtp_sink.for_org(org_id, "payment_failed")}
        assert {billed[1].number, billed[2].number} <= failed      # the customer is told of each

        gateway.funded = True   # the customer paid in: staff charge the open invoices
        outcome = await stack.send(org_id,
                                   rq.ResolveEscalationRequest("retry", requested_by=STAFF, reason="funds arrived"))
        assert outcome.status == "active"
        await stack.settle(org_id)
    billed = invoices(stack.db, org_id)
    assert [(b.status, b.attempts[-1]) for b in billed] == [("paid", "succeeded")] * 3
    receipts = smtp_sink.for_org(org_id, "receipt")
    assert sorted(re.search(r"Invoice: (\S+)", m.part("plain"))[1] for m in receipts) == [b.number for b in billed]


async def test_a_downgrade_writes_off_every_unpaid_cycle_and_the_statement_shows_them(stack):
    large(stack)
    async with stack.worker():
        org_id, renewals = await escalated_org(stack)
        await stack.advance_to(renewals[1] + timedelta(hours=1))
        outcome = await stack.send(org_id,
                                   rq.ResolveEscalationRequest("downgrade", requested_by=STAFF, reason="no payment"))
        assert outcome.status == "free"
    billed = invoices(stack.db, org_id)
    assert [(b.issued, b.status) for b in billed] == [(renewals[0], "uncollectible"), (renewals[1], "uncollectible")]
    with stack.db.transaction() as session:
        found = statement(session, org_id, renewals[0] - timedelta(days=1), renewals[2])
    assert [(e.kind, e.invoice, e.amount) for e in found.entries] == [
        (EntryKind.INVOICE, billed[0].number, 900), (EntryKind.INVOICE, billed[1].number, 900),
        (EntryKind.WRITTEN_OFF, billed[0].number, -900), (EntryKind.WRITTEN_OFF, billed[1].number, -900)]
    assert found.closing == 0


def charged_in_order(db, org_id: str) -> list[tuple[str, int, str]]:
    """Every charge of the org as it was recorded: (invoice, attempt, outcome)."""
    with db.transaction() as session:
        return [(number, p.attempt, str(p.outcome)) for p, number in session.execute(
            select(Payment, Invoice.number).join(Invoice, Payment.invoice_id == Invoice.id)
            .where(Invoice.org_id == org_id).order_by(Payment.id))]


async def retried_after_grace(stack, funded: bool):
    """The escalated org renewed once more, given 5 days of grace by staff, its account topped up
    (or not) meanwhile: its state after the scheduled retry that ends the grace."""
    stack.gateway = gateway = TopUpGateway(stack.db)
    large(stack)
    async with stack.worker():
        org_id, renewals = await escalated_org(stack)
        await stack.advance_to(renewals[1] + timedelta(hours=1))
        await stack.send(org_id, rq.ResolveEscalationRequest(
            "extend", extend_days=5, requested_by=STAFF, reason="customer promised"))
        gateway.funded = funded
        await stack.advance_to(renewals[1] + timedelta(days=5, hours=2))
        await stack.settle(org_id)
        return org_id, (await stack.state(org_id)).snapshot


async def test_grace_extended_then_paid_at_the_retry_settles_every_unpaid_cycle_oldest_first(stack, smtp_sink):
    org_id, state = await retried_after_grace(stack, funded=True)
    assert (state.status, state.dunning_invoice, state.arrears) == ("active", None, [])
    # The second cycle was charged on its renewal date (declined), then with the retry (paid).
    billed = invoices(stack.db, org_id)
    assert [(b.status, b.attempts) for b in billed] == [
        ("paid", ["declined"] * 5 + ["succeeded"]), ("paid", ["declined", "succeeded"])]
    # The scheduled retry paid the oldest cycle first, and its receipt came first.
    assert charged_in_order(stack.db, org_id)[-2:] == [
        (billed[0].number, 6, "succeeded"), (billed[1].number, 2, "succeeded")]
    receipts = smtp_sink.for_org(org_id, "receipt")
    assert [re.search(r"Invoice: (\S+)", m.part("plain"))[1] for m in receipts] == [billed[0].number, billed[1].number]


async def test_grace_extended_then_declined_at_the_retry_charges_oldest_first_then_escalates_again(stack, smtp_sink):
    org_id, state = await retried_after_grace(stack, funded=False)
    billed = invoices(stack.db, org_id)
    # Both cycles charged at the retry, the oldest first; only then is the org escalated again.
    assert charged_in_order(stack.db, org_id)[-2:] == [
        (billed[0].number, 6, "declined"), (billed[1].number, 2, "declined")]
    assert (state.status, state.dunning_invoice, [u.invoice for u in state.arrears]) == (
        "escalated", billed[0].number, [billed[1].number])
    assert [b.status for b in billed] == ["open", "open"]
    # The later cycle's decline is told to the admin before staff hear of the escalation.
    mails = [(m.template, re.search(r"invoice (INV-[\w-]+)", m.message["Subject"])[1])
             for m in smtp_sink.for_org(org_id)]
    assert mails[-3:] == [("payment_failed", billed[1].number), ("payment_failed", billed[0].number),
                          ("escalation", billed[0].number)]
    # The grace's retry was the last: the later cycle's e-mail says what follows, not only "update your card".
    later = [m for m in smtp_sink.for_org(org_id, "payment_failed") if billed[1].number in m.message["Subject"]][-1]
    assert "our billing team will contact you" in later.part("plain").lower()
