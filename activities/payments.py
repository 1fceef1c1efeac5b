"""Charging invoices through a payment gateway, exactly once.

Each attempt carries the idempotency key `org:invoice:attempt`; the gateway answers a
repeated key with its first result, and the `payments` table's unique key records it once.
Declines are business outcomes returned to the workflow; gateway outages raise and are
retried by Temporal, so they never count as a dunning attempt."""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from temporalio import activity

from activities.errors import Unavailable
from activities.messages import ChargeInput, ChargeResult
from activities import metrics
from db.invoices import invoice_by_number, set_invoice_status
from db.events import record_event
from db.models import GatewayCharge, Payment, Subscription
from db.session import Database
from domain.cards import sandbox_behaviour
from domain.credit import settled_without_charge
from domain.states import ChargeOutcome, InvoiceStatus


class GatewayUnavailable(Unavailable):
    """A timeout or 5xx from the gateway: retried, never a decline. Its text is the cause
    ("timeout"), shown as "payment gateway: timeout"."""
    component = "payment gateway"
    type = "payment_gateway_unavailable"


@dataclass(frozen=True)
class GatewayResult:
    charge_id: str
    outcome: ChargeOutcome
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    def charge(self, token: str, amount: int, currency: str, idempotency_key: str, at: datetime) -> GatewayResult: ...


class SandboxGateway:
    """The default gateway: outcomes follow the test card behind the token; its ledger lives in
    its own table, as a real gateway's would live on its side."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def charge(self, token: str, amount: int, currency: str, idempotency_key: str, at: datetime) -> GatewayResult:
        with self.db.transaction() as session:
            first = session.get(GatewayCharge, idempotency_key)
            if first is not None:
                return GatewayResult(first.charge_id, ChargeOutcome(first.outcome), first.decline_reason)
            behaviour = sandbox_behaviour(token)
            outcome = ChargeOutcome.SUCCEEDED if behaviour == "ok" else ChargeOutcome.DECLINED
            charge_id = "ch_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
            session.add(GatewayCharge(idempotency_key=idempotency_key, charge_id=charge_id, token=token, amount=amount,
                                      currency=currency, outcome=outcome,
                                      decline_reason=None if behaviour == "ok" else behaviour, created_at=at))
            return GatewayResult(charge_id, outcome, None if behaviour == "ok" else behaviour)


def idempotency_key(org_id: str, invoice_number: str, attempt: int) -> str:
    return f"{org_id}:{invoice_number}:{attempt}"


class PaymentActivities:
    def __init__(self, db: Database, gateway: PaymentGateway) -> None:
        self.db, self.gateway = db, gateway

    @activity.defn
    def charge_invoice(self, request: ChargeInput) -> ChargeResult:
        key = idempotency_key(request.org_id, request.invoice_number, request.attempt)
        with self.db.transaction() as session:
            invoice = invoice_by_number(session, request.invoice_number)
            recorded = session.scalar(select(Payment).where(Payment.idempotency_key == key))
            if recorded is not None:
                return ChargeResult(invoice.number, request.attempt, ChargeOutcome(recorded.outcome), recorded.amount,
                                    recorded.currency, recorded.decline_reason)
            if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED):
                return ChargeResult(invoice.number, request.attempt, ChargeOutcome.SUCCEEDED, 0, invoice.currency)
            settled = settled_without_charge(invoice.total) if invoice.status == InvoiceStatus.OPEN else None
            if settled is not None:  # a credit note, or covered by the account credit: no payment
                set_invoice_status(session, invoice, settled, request.at)
                return ChargeResult(invoice.number, request.attempt, ChargeOutcome.SUCCEEDED, 0, invoice.currency)
            if invoice.status != InvoiceStatus.OPEN:
                return ChargeResult(invoice.number, request.attempt, ChargeOutcome.DECLINED, invoice.total, invoice.currency,
                                    f"invoice_{invoice.status}")
            token, brand, last4 = session.execute(
                select(Subscription.card_token, Subscription.card_brand, Subscription.card_last4)
                .where(Subscription.org_id == request.org_id)).one()
            amount, currency = invoice.total, invoice.currency
        if token is None:
            result = GatewayResult("", ChargeOutcome.DECLINED, "no_card")
        else:
            if not activity.info().is_local:  # a local activity has no heartbeat (the SDK warns)
                activity.heartbeat()
            result = self.gateway.charge(token, amount, currency, key, request.at)
        with self.db.transaction() as session:
            invoice = invoice_by_number(session, request.invoice_number)
            if session.scalar(select(Payment.id).where(Payment.idempotency_key == key)) is None:
                session.add(Payment(invoice_id=invoice.id, attempt=request.attempt, idempotency_key=key, amount=amount,
                                    currency=currency, outcome=result.outcome, decline_reason=result.decline_reason,
                                    gateway_charge_id=result.charge_id or None, card_brand=brand,
                                    card_last4=last4, created_at=request.at))
                record_event(session, request.org_id, request.at, "charge",
                             {"amount": amount, "currency": currency, "outcome": str(result.outcome),
                              "reason": result.decline_reason, "invoice": invoice.number,
                              "attempt": request.attempt}, dedupe_key=f"charge:{key}")
                newly_recorded = True
            else:
                newly_recorded = False
            if result.outcome == ChargeOutcome.SUCCEEDED:
                set_invoice_status(session, invoice, InvoiceStatus.PAID, request.at)
        if newly_recorded:  # counted once the record is committed
            metrics.charge(str(result.outcome))
        return ChargeResult(request.invoice_number, request.attempt, result.outcome, amount, currency,
                            result.decline_reason)
