"""Charging invoices through a payment gateway, exactly once.

Each attempt carries the idempotency key `org:invoice:attempt`; the gateway answers a repeated
key with its first result (the Stripe gateway reads back the PaymentIntent it stored for the key),
and the `payments` table's unique key records it once. Declines are business outcomes returned to
the workflow; gateway outages raise and are retried by Temporal, so they never count as a dunning
attempt. The gateways live in activities/gateways/."""

from temporalio import activity

from activities import metrics
from activities.gateways import (ChargeAttempt, GatewayResult, GatewayUnavailable, PaymentGateway,  # noqa: F401
                                 idempotency_key)
from activities.gateways.sandbox import SandboxGateway  # noqa: F401  (where callers have found it)
from activities.messages import ChargeInput, ChargeResult
from db.invoices import invoice_by_number, set_invoice_status
from db.payments import card_on_file, record_payment, recorded_payment
from db.session import Database
from domain.credit import settled_without_charge
from domain.states import ChargeOutcome, InvoiceStatus


class PaymentActivities:
    def __init__(self, db: Database, gateway: PaymentGateway) -> None:
        self.db, self.gateway = db, gateway

    @activity.defn
    def charge_invoice(self, request: ChargeInput) -> ChargeResult:
        key = idempotency_key(request.org_id, request.invoice_number, request.attempt)
        with self.db.transaction() as session:
            invoice = invoice_by_number(session, request.invoice_number)
            recorded = recorded_payment(session, key)
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
            card = card_on_file(session, request.org_id)
            amount, currency = invoice.total, invoice.currency
        if card.token is None:
            result = GatewayResult("", ChargeOutcome.DECLINED, "no_card")
        else:
            if not activity.info().is_local:  # a local activity has no heartbeat (the SDK warns)
                activity.heartbeat()
            result = self.gateway.charge(ChargeAttempt(request.org_id, request.invoice_number, request.attempt,
                                                       card.token, amount, currency, request.at))
        with self.db.transaction() as session:
            invoice = invoice_by_number(session, request.invoice_number)
            newly_recorded = record_payment(session, request.org_id, invoice, request.attempt, key, amount, currency,
                                            result.outcome, result.decline_reason, result.charge_id or None, card,
                                            request.at)
            if result.outcome == ChargeOutcome.SUCCEEDED:
                set_invoice_status(session, invoice, InvoiceStatus.PAID, request.at)
        if newly_recorded:  # counted once the record is committed
            metrics.charge(str(result.outcome))
        return ChargeResult(request.invoice_number, request.attempt, result.outcome, amount, currency,
                            result.decline_reason)
