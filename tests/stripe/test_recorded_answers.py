"""What localstripe cannot say, answered as Stripe does (recorded responses served over real
HTTP, read by the official library): a decline's decline_code, off-session authentication
required, an idempotent replay of a create whose answer was lost, a 5xx or 429 (an outage), a
request Stripe refuses (a failure ops can read, never retried), a payment still processing."""

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from activities.gateways import ChargeAttempt, GatewayUnavailable
from activities.gateways.stripe import StripeConfig, StripeGateway
from db.models import StripeIntent
from domain.states import ChargeOutcome
from tests.stripe.conftest import RacedAtCreate
from tests.stripe.recorded import RecordedStripe
from tests.support.http import serving

KEY = "sk_test_recorded_51Hx"
ATTEMPT = ChargeAttempt("rec", "INV-rec-0001", 1, "pm_card_visa", 600, "USD", datetime(2026, 12, 1, tzinfo=timezone.utc))
SETUP = {"POST /v1/customers": [(200, "customer")],
         "POST /v1/payment_methods/*/attach": [(200, "payment_method_attached")],
         "POST /v1/payment_intents": [(200, "payment_intent_created")]}


async def charging(pg_db, answers: dict, tries: int = 1):
    server = RecordedStripe({**SETUP, **answers})
    async with serving(server.app()) as url:
        gateway = StripeGateway(pg_db, StripeConfig(KEY, url, off_session=True, timeout_seconds=5))
        outcomes = []
        for _ in range(tries):
            try:
                outcomes.append(await asyncio.to_thread(gateway.charge, ATTEMPT))  # the server shares this loop
            except (GatewayUnavailable, ApplicationError) as err:
                outcomes.append(err)
    return server, outcomes


def stage(pg_db) -> tuple[str, str | None]:
    with pg_db.transaction() as session:
        row = session.scalar(select(StripeIntent))
        return row.stage, row.status


async def test_decline_code_is_the_reason_and_the_intent_is_confirmed_off_session(pg_db):
    server, [result] = await charging(pg_db, {"POST /v1/payment_intents/*/confirm": [(402, "confirm_insufficient_funds")]})
    assert (result.outcome, result.decline_reason) == (ChargeOutcome.DECLINED, "insufficient_funds")
    [create] = server.to("/v1/payment_intents")
    assert create.idempotency_key == "rec:INV-rec-0001:1"
    assert (create.form["metadata[org]"], create.form["metadata[invoice]"], create.form["metadata[attempt]"]) == (
        "rec", "INV-rec-0001", "1")
    assert (create.form["amount"], create.form["currency"], create.form["customer"]) == ("600", "usd", "cus_Rec0rdedCustomer")
    [confirm] = server.to("/confirm")
    assert confirm.form == {"off_session": "true"}
    assert stage(pg_db) == ("settled", "requires_payment_method")


async def test_authentication_required_off_session_is_a_decline_naming_it(pg_db):
    _, [result] = await charging(pg_db, {"POST /v1/payment_intents/*/confirm": [(402, "confirm_authentication_required")]})
    assert (result.outcome, result.decline_reason) == (ChargeOutcome.DECLINED, "authentication_required")


async def test_create_answer_lost_is_replayed_by_its_idempotency_key_and_confirmed_once(pg_db):
    server, outcomes = await charging(pg_db, {
        "POST /v1/payment_intents": [(500, "error_api"), (200, "payment_intent_created")],
        "POST /v1/payment_intents/*/confirm": [(200, "payment_intent_succeeded")]}, tries=2)
    assert isinstance(outcomes[0], GatewayUnavailable)
    assert outcomes[1].outcome == ChargeOutcome.SUCCEEDED and outcomes[1].charge_id == "pi_3QRecordedIntent01"
    assert [s.idempotency_key for s in server.to("/v1/payment_intents")] == ["rec:INV-rec-0001:1"] * 2
    assert len(server.to("/confirm")) == 1
    # the customer and its card were kept from the first try: neither is asked for again
    assert len(server.to("/v1/customers")) == 1 and len(server.to("/attach")) == 1


@pytest.mark.parametrize("status, fixture", [(500, "error_api"), (429, "error_rate_limit")])
async def test_5xx_and_429_are_outages_then_the_retry_reads_back_before_confirming_again(pg_db, status, fixture):
    server, outcomes = await charging(pg_db, {
        "POST /v1/payment_intents/*/confirm": [(status, fixture), (400, "error_unexpected_state")],
        "GET /v1/payment_intents/*": [(200, "payment_intent_succeeded")]}, tries=2)
    assert isinstance(outcomes[0], GatewayUnavailable) and str(outcomes[0])
    assert outcomes[1].outcome == ChargeOutcome.SUCCEEDED
    assert len(server.to("/v1/payment_intents")) == 1   # one intent for the attempt
    assert stage(pg_db) == ("settled", "succeeded")


async def test_a_refused_request_is_final_and_names_the_problem(pg_db):
    _, [err] = await charging(pg_db, {"POST /v1/payment_intents": [(400, "error_invalid_request")]})
    assert isinstance(err, ApplicationError) and err.non_retryable
    assert err.message == ("payment gateway refused the request: InvalidRequestError: "
                           "Received unknown parameter: amount_cents")
    assert KEY not in err.message


async def test_processing_is_read_back_until_it_settles(pg_db):
    server, outcomes = await charging(pg_db, {
        "POST /v1/payment_intents/*/confirm": [(200, "payment_intent_processing")],
        "GET /v1/payment_intents/*": [(200, "payment_intent_processing"), (200, "payment_intent_succeeded")]}, tries=3)
    assert [type(o).__name__ for o in outcomes[:2]] == ["GatewayUnavailable"] * 2
    assert "is processing" in str(outcomes[0])
    assert outcomes[2].outcome == ChargeOutcome.SUCCEEDED
    assert len(server.to("/confirm")) == 1


async def test_two_tries_creating_at_once_get_the_same_intent_and_cancel_nothing(pg_db, monkeypatch):
    """Stripe replays the key's intent to the second create: the try that stored second confirms
    nothing and cancels nothing (the cancel is for a server that made a second intent)."""
    server = RecordedStripe({**SETUP, "POST /v1/payment_intents/*/confirm": [(200, "payment_intent_succeeded")],
                             "GET /v1/payment_intents/*": [(200, "payment_intent_succeeded")]})
    async with serving(server.app()) as url:
        def gateway() -> StripeGateway:
            return StripeGateway(pg_db, StripeConfig(KEY, url, off_session=True, timeout_seconds=5))
        race = RacedAtCreate(monkeypatch, gateway(), ATTEMPT)
        result = await asyncio.to_thread(gateway().charge, ATTEMPT)
    assert result.outcome == race.rival_result.outcome == ChargeOutcome.SUCCEEDED
    assert result.charge_id == race.rival_result.charge_id == "pi_3QRecordedIntent01"
    assert len(server.to("/v1/payment_intents")) == 2 and len(server.to("/confirm")) == 1
    assert server.to("/cancel") == []
