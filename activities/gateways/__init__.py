"""What a payment gateway is to the pipeline: one charge attempt in, its outcome out.

Declines are outcomes; an outage (a timeout, a 5xx, a 429) raises GatewayUnavailable and is
retried by Temporal, so it never counts as a dunning attempt; a request the gateway refuses as
malformed (our bug) raises a non-retryable failure that names it."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from temporalio.exceptions import ApplicationError

from activities.errors import Unavailable
from domain.states import ChargeOutcome


class GatewayUnavailable(Unavailable):
    """A timeout or 5xx from the gateway: retried, never a decline. Its text is the cause
    ("timeout"), shown as "payment gateway: timeout"."""
    component = "payment gateway"
    type = "payment_gateway_unavailable"


def gateway_refused(message: str) -> ApplicationError:
    """The gateway refused our request as invalid: retrying sends the same request, so it is
    final, and ops read why in the workflow's failure."""
    return ApplicationError(f"payment gateway refused the request: {message}", type="payment_gateway_refused",
                            non_retryable=True)


@dataclass(frozen=True)
class ChargeAttempt:
    org_id: str
    invoice_number: str
    attempt: int
    token: str       # the gateway's handle on the card: a sandbox token or a Stripe PaymentMethod
    amount: int      # minor units
    currency: str
    at: datetime

    @property
    def key(self) -> str:
        """The idempotency key the gateway sees: one per org, invoice and attempt."""
        return idempotency_key(self.org_id, self.invoice_number, self.attempt)


def idempotency_key(org_id: str, invoice_number: str, attempt: int) -> str:
    return f"{org_id}:{invoice_number}:{attempt}"


@dataclass(frozen=True)
class GatewayResult:
    charge_id: str
    outcome: ChargeOutcome
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    def charge(self, attempt: ChargeAttempt) -> GatewayResult: ...
