"""A localstripe server per test (a real process on a free port), the Stripe gateway pointed at
it, and the test's own client for reading what the server holds."""

import pytest
import stripe

from activities.gateways import ChargeAttempt
from activities.gateways.stripe import StripeConfig, StripeGateway
from db import payments as payments_rows
from tests.support.localstripe import LocalStripe

API_KEY = "sk_test_billing_4f9c2e7a1b"


@pytest.fixture
def localstripe(tmp_path):
    server = LocalStripe(store=tmp_path / "localstripe.pickle").start()
    yield server
    server.stop()


@pytest.fixture
def stripe_gateway(stack, localstripe):
    # localstripe refuses `off_session` on confirm (docs/stripe.md): its tests send none.
    gateway = StripeGateway(stack.db, StripeConfig(API_KEY, localstripe.url, off_session=False, timeout_seconds=5))
    stack.gateway = gateway
    return gateway


@pytest.fixture
def on_server(localstripe):
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe.url}, max_network_retries=0)


def intents_for(client: stripe.StripeClient, org_id: str) -> list:
    """Every PaymentIntent the server holds for the org (localstripe cannot list by customer)."""
    found, after = [], None
    while True:
        page = client.v1.payment_intents.list(params={"limit": 100, **({"starting_after": after} if after else {})})
        found += [pi for pi in page.data if pi.metadata.to_dict().get("org") == org_id]
        if not page.has_more:
            return found
        after = page.data[-1].id


class RacedAtCreate:
    """A second worker charges the same attempt while the first one's create is on the wire, and
    stores its intent first: the first worker's store (db.payments.advance_intent) waits for it."""

    def __init__(self, monkeypatch, rival: StripeGateway, attempt: ChargeAttempt) -> None:
        self.store, self.rival, self.attempt = payments_rows.advance_intent, rival, attempt
        self.raced, self.rival_result = False, None
        monkeypatch.setattr(payments_rows, "advance_intent", self.advance_intent)

    def advance_intent(self, session, key, from_stages, to_stage, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if to_stage == "created" and not self.raced:   # the first store waits; the rival's goes through
            self.raced = True
            self.rival_result = self.rival.charge(self.attempt)
        return self.store(session, key, from_stages, to_stage, *args, **kwargs)
