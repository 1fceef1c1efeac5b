"""Renewals charged through Stripe (localstripe, a real server process): paid, declined, a card
that needs authentication, a new card then the retry (the intent left waiting for authentication
cancelled, so it can no longer be paid), and exactly one succeeded PaymentIntent per
attempt when the worker loses the answer between create and confirm or after confirm."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import stripe
from sqlalchemy import select

from activities.gateways import ChargeAttempt, GatewayResult
from activities.gateways.stripe import StripeConfig, StripeGateway
from db.models import Invoice, Payment, StripeCustomer, StripeIntent
from domain import requests as rq
from domain.cards import CardDetails
from domain.states import ChargeOutcome
from tests.stripe.conftest import API_KEY, RacedAtCreate, intents_for

VISA = CardDetails("pm_card_visa", "visa", "4242")
DECLINING = CardDetails("pm_card_chargeCustomerFail", "visa", "0341")


def invoices(db, org_id: str) -> list[tuple[str, str, int]]:
    with db.transaction() as session:
        return [(i.number, str(i.status), i.total) for i in
                session.scalars(select(Invoice).where(Invoice.org_id == org_id).order_by(Invoice.id))]


def payments(db, org_id: str) -> list[tuple[int, str, str | None, str | None]]:
    with db.transaction() as session:
        rows = session.execute(select(Payment.attempt, Payment.outcome, Payment.decline_reason, Payment.gateway_charge_id)
                               .join(Invoice, Invoice.id == Payment.invoice_id)
                               .where(Invoice.org_id == org_id).order_by(Payment.id)).all()
    return [(a, str(o), r, c) for a, o, r, c in rows]


async def renewed(stack, card: CardDetails):
    """An org on the card, an hour after its renewal (its first retry is a day later)."""
    start = await stack.now()
    org_id = await stack.create_org(plan="professional", cycle="monthly", card_details=card, start=start)
    renewal = (await stack.state(org_id)).snapshot.renews_at
    await stack.advance_to(renewal + timedelta(hours=1))
    return org_id, await stack.state(org_id)


async def test_renewal_is_paid_by_one_succeeded_payment_intent(stack, stripe_gateway, on_server, smtp_sink):
    async with stack.worker():
        org_id, state = await renewed(stack, VISA)
        history = await stack.handle(org_id).fetch_history()

    [(number, status, total)] = invoices(stack.db, org_id)
    assert (status, total) == ("paid", 600)
    [intent] = intents_for(on_server, org_id)
    assert intent.status == "succeeded"
    assert (intent.amount, intent.currency) == (600, "usd")
    assert intent.metadata.to_dict() == {"org": org_id, "invoice": number, "attempt": "1"}
    assert payments(stack.db, org_id) == [(1, "succeeded", None, intent.id)]
    assert state.snapshot.status == "active"
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1
    customer = on_server.v1.customers.retrieve(intent.customer)
    with stack.db.transaction() as session:
        stored = session.get(StripeCustomer, org_id)
        assert (stored.customer_id, stored.card_brand, stored.card_last4, stored.card_exp_year) == (
            customer.id, "visa", "4242", 2030)
    # create customer, attach the card, create and confirm the intent: 4 calls, 2 on later renewals
    assert stripe_gateway.calls == 4
    assert API_KEY not in history.to_json()


async def test_declining_card_leaves_a_failed_intent_and_the_org_past_due(stack, stripe_gateway, on_server,
                                                                         smtp_sink):
    async with stack.worker():
        org_id, state = await renewed(stack, DECLINING)

    [(number, status, _)] = invoices(stack.db, org_id)
    assert status == "open" and state.snapshot.status == "past_due"
    [intent] = intents_for(on_server, org_id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "card_declined"
    assert payments(stack.db, org_id) == [(1, "declined", "card_declined", intent.id)]
    [mail] = smtp_sink.for_org(org_id, "payment_failed")
    assert "your card was declined" in mail.part("plain")


async def test_card_needing_authentication_tells_the_admin_and_dunning_goes_on(stack, stripe_gateway, on_server,
                                                                              smtp_sink):
    three_d_secure = on_server.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000002760003184", "exp_month": 12, "exp_year": 2031, "cvc": "123"}})
    async with stack.worker():
        org_id, state = await renewed(stack, CardDetails(three_d_secure.id, "visa", "3184"))

    assert state.snapshot.status == "past_due" and state.snapshot.next_retry_at is not None
    [intent] = intents_for(on_server, org_id)
    assert intent.status == "requires_action"
    assert payments(stack.db, org_id) == [(1, "declined", "authentication_required", intent.id)]
    [mail] = smtp_sink.for_org(org_id, "payment_failed")
    assert mail.subject.startswith("Action required: confirm the payment")
    assert "confirm this payment with your bank" in mail.part("plain")


async def test_new_card_then_the_retry_is_paid(stack, stripe_gateway, on_server, smtp_sink):
    async with stack.worker():
        org_id, state = await renewed(stack, DECLINING)
        assert state.snapshot.status == "past_due"
        answer = await stack.send(org_id, rq.UpdateCardRequest(VISA.token, VISA.brand, VISA.last4, "admin@x.test"))
        state = await stack.state(org_id)

    assert "paid" in answer.message
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    intents = sorted(intents_for(on_server, org_id), key=lambda pi: pi.metadata["attempt"])
    # the declined intent could still be paid with another card: cancelled once the invoice is paid
    assert [(pi.metadata["attempt"], pi.status) for pi in intents] == [("1", "canceled"), ("2", "succeeded")]
    assert state.snapshot.status == "active"
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1


def needing_authentication(on_server) -> CardDetails:
    """A 3-D Secure card: localstripe leaves its intent at requires_action."""
    card = on_server.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000002760003184", "exp_month": 12, "exp_year": 2031, "cvc": "123"}})
    return CardDetails(card.id, "visa", "3184")


def stored_statuses(db, org_id: str) -> list[tuple[int, str | None, str]]:
    with db.transaction() as session:
        return [(row.attempt, row.status, row.stage) for row in
                session.scalars(select(StripeIntent).where(StripeIntent.org_id == org_id).order_by(StripeIntent.attempt))]


async def test_new_card_pays_and_the_intent_waiting_for_authentication_is_cancelled(stack, stripe_gateway, on_server,
                                                                                   smtp_sink):
    async with stack.worker():
        org_id, state = await renewed(stack, needing_authentication(on_server))
        assert state.snapshot.status == "past_due"
        [waiting] = intents_for(on_server, org_id)
        assert waiting.status == "requires_action"
        answer = await stack.send(org_id, rq.UpdateCardRequest(VISA.token, VISA.brand, VISA.last4, "admin@x.test"))
        state = await stack.state(org_id)

    assert "paid" in answer.message and state.snapshot.status == "active"
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    assert on_server.v1.payment_intents.retrieve(waiting.id).status == "canceled"
    with pytest.raises(stripe.StripeError):   # the customer can no longer pay it
        on_server.v1.payment_intents.confirm(waiting.id)
    assert on_server.v1.payment_intents.retrieve(waiting.id).status == "canceled"
    [paid] = [pi for pi in intents_for(on_server, org_id) if pi.status == "succeeded"]
    assert paid.metadata["attempt"] == "2"
    assert stored_statuses(stack.db, org_id) == [(1, "canceled", "settled"), (2, "succeeded", "settled")]
    assert payments(stack.db, org_id) == [(1, "declined", "authentication_required", waiting.id),
                                          (2, "succeeded", None, paid.id)]
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1


class LosesTheAnswer(StripeGateway):
    """The worker dies (the activity fails) once, right after the step named: the intent created
    and stored, or confirmed by the server with nothing recorded on our side."""

    def __init__(self, gateway: StripeGateway, after: str) -> None:
        self.__dict__.update(gateway.__dict__)
        self.after, self.lost = after, 0

    def _lose(self, step: str) -> None:
        if step == self.after and not self.lost:
            self.lost += 1
            raise ConnectionResetError(f"worker gone after {step}")

    def _create(self, attempt: ChargeAttempt, customer: str, payment_method: str) -> str:
        intent_id = super()._create(attempt, customer, payment_method)
        self._lose("create")
        return intent_id

    def _settle(self, key, intent_id, status, error) -> GatewayResult:  # noqa: ANN001
        self._lose("confirm")
        return super()._settle(key, intent_id, status, error)


async def crash_once(stack, stripe_gateway, on_server, after: str):
    stack.gateway = gateway = LosesTheAnswer(stripe_gateway, after)
    async with stack.worker():
        org_id, state = await renewed(stack, VISA)
    assert gateway.lost == 1
    [intent] = intents_for(on_server, org_id)
    assert (intent.status, intent.metadata["attempt"]) == ("succeeded", "1")
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    assert payments(stack.db, org_id) == [(1, "succeeded", None, intent.id)]
    assert state.snapshot.status == "active"


async def test_lost_between_create_and_confirm_charges_once(stack, stripe_gateway, on_server):
    await crash_once(stack, stripe_gateway, on_server, "create")


async def test_lost_after_confirm_charges_once(stack, stripe_gateway, on_server):
    await crash_once(stack, stripe_gateway, on_server, "confirm")


async def test_two_tries_creating_at_once_leave_one_intent_open_and_the_other_cancelled(pg_db, localstripe, on_server,
                                                                                         monkeypatch):
    """localstripe ignores idempotency keys: two tries of one attempt racing make two intents. The
    one stored is charged once; the other, known to no row, is cancelled at once (it stayed at
    requires_confirmation on the server, and nothing found it when the invoice was paid)."""
    def gateway() -> StripeGateway:
        return StripeGateway(pg_db, StripeConfig(API_KEY, localstripe.url, off_session=False, timeout_seconds=5))
    attempt = ChargeAttempt("race", "INV-race-0001", 1, "pm_card_visa", 900, "USD", datetime.now(timezone.utc))
    race = RacedAtCreate(monkeypatch, gateway(), attempt)
    result = await asyncio.to_thread(gateway().charge, attempt)
    assert race.rival_result.outcome == result.outcome == ChargeOutcome.SUCCEEDED
    assert race.rival_result.charge_id == result.charge_id
    intents = {pi.id: pi.status for pi in intents_for(on_server, "race")}
    assert len(intents) == 2 and intents.pop(result.charge_id) == "succeeded"
    assert list(intents.values()) == ["canceled"]
