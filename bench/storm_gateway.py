"""The storm's payment gateway: the sandbox (a table of our own), or Stripe's library against
localstripe, a fake Stripe server in a process of its own (`--gateway stripe`): the same charges,
through HTTP, for the figures side by side."""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import stripe

from activities.gateways import PaymentGateway
from activities.gateways.sandbox import SandboxGateway
from activities.gateways.stripe import StripeConfig, StripeGateway
from db.session import Database
from domain.cards import CardDetails, sandbox_tokenise, stripe_test_card
from tests.support.localstripe import LocalStripe

KEY = "sk_test_bench"


@dataclass
class StormGateway:
    name: str
    gateway: PaymentGateway
    card_for: Callable[[str], CardDetails]
    server: LocalStripe | None = None

    def calls(self) -> int | None:
        """Requests sent to Stripe so far (None for the sandbox)."""
        return self.gateway.calls if isinstance(self.gateway, StripeGateway) else None

    def succeeded_intents(self, prefix: str) -> int | None:
        """Succeeded PaymentIntents on the server for the storm's orgs, listed there."""
        if self.server is None:
            return None
        client = stripe.StripeClient(KEY, base_addresses={"api": self.server.url})
        succeeded, after = 0, None
        while True:
            page = client.v1.payment_intents.list(params={"limit": 100, **({"starting_after": after} if after else {})})
            succeeded += sum(1 for pi in page.data if pi.status == "succeeded"
                             and pi.metadata.to_dict().get("org", "").startswith(prefix))
            if not page.has_more:
                return succeeded
            after = page.data[-1].id

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def storm_gateway(name: str, db: Database) -> StormGateway:
    if name == "sandbox":
        return StormGateway(name, SandboxGateway(db), sandbox_tokenise)
    server = LocalStripe(store=Path(tempfile.mkdtemp(prefix="storm-localstripe-")) / "store.pickle").start()
    gateway = StripeGateway(db, StripeConfig(KEY, server.url, off_session=False, timeout_seconds=60))
    return StormGateway(name, gateway, stripe_test_card, server)
