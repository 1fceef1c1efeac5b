"""Payments as stored: the attempts we record (payments), the sandbox gateway's ledger, and the
Stripe gateway's records (its customers, each attempt's PaymentIntent, the webhook events
applied). Rows and queries only: what a charge means is decided in activities/ and domain/."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import GatewayCharge, Invoice, Payment, StripeCustomer, StripeEvent, StripeIntent, Subscription
from domain.states import ChargeOutcome, IntentStage


@dataclass(frozen=True)
class CardOnFile:
    token: str | None
    brand: str | None
    last4: str | None


def card_on_file(session: Session, org_id: str) -> CardOnFile:
    token, brand, last4 = session.execute(
        select(Subscription.card_token, Subscription.card_brand, Subscription.card_last4)
        .where(Subscription.org_id == org_id)).one()
    return CardOnFile(token, brand, last4)


def recorded_payment(session: Session, key: str) -> Payment | None:
    return session.scalar(select(Payment).where(Payment.idempotency_key == key))


def record_payment(session: Session, org_id: str, invoice: Invoice, attempt: int, key: str, amount: int,
                   currency: str, outcome: ChargeOutcome, reason: str | None, charge_id: str | None,
                   card: CardOnFile, at: datetime) -> bool:
    """The attempt's payment row and its timeline event, once per key; False if already there."""
    if recorded_payment(session, key) is not None:
        return False
    session.add(Payment(invoice_id=invoice.id, attempt=attempt, idempotency_key=key, amount=amount,
                        currency=currency, outcome=outcome, decline_reason=reason, gateway_charge_id=charge_id,
                        card_brand=card.brand, card_last4=card.last4, created_at=at))
    record_event(session, org_id, at, "charge",
                 {"amount": amount, "currency": currency, "outcome": str(outcome), "reason": reason,
                  "invoice": invoice.number, "attempt": attempt}, dedupe_key=f"charge:{key}")
    return True


# The sandbox gateway's ledger.

def sandbox_charge(session: Session, key: str) -> GatewayCharge | None:
    return session.get(GatewayCharge, key)


def add_sandbox_charge(session: Session, charge: GatewayCharge) -> None:
    session.add(charge)


# The Stripe gateway's records.

def stripe_customer(session: Session, org_id: str) -> StripeCustomer | None:
    return session.get(StripeCustomer, org_id)


def save_stripe_customer(session: Session, org_id: str, customer_id: str, at: datetime) -> StripeCustomer:
    row = StripeCustomer(org_id=org_id, customer_id=customer_id, created_at=at)
    session.add(row)
    return row


def card_expiry(session: Session, org_id: str) -> tuple[int, int] | None:
    """(month, year) of the org's card as Stripe described it when attached, if the card on the
    subscription is the one attached (the sandbox keeps no expiry)."""
    found = session.execute(select(StripeCustomer.card_exp_month, StripeCustomer.card_exp_year)
                            .join(Subscription, Subscription.org_id == StripeCustomer.org_id)
                            .where(StripeCustomer.org_id == org_id,
                                   StripeCustomer.payment_method_token == Subscription.card_token)).first()
    if found is None or found[0] is None or found[1] is None:
        return None
    return found[0], found[1]


def save_attached_card(session: Session, org_id: str, token: str, payment_method_id: str, brand: str | None,
                       last4: str | None, exp_month: int | None, exp_year: int | None) -> None:
    row = session.get(StripeCustomer, org_id)
    row.payment_method_token, row.payment_method_id = token, payment_method_id
    row.card_brand, row.card_last4, row.card_exp_month, row.card_exp_year = brand, last4, exp_month, exp_year


def intent_row(session: Session, key: str) -> StripeIntent | None:
    return session.get(StripeIntent, key)


def succeeded_intent(session: Session, org_id: str, invoice_number: str) -> str | None:
    """An intent of the invoice that Stripe reported succeeded (by an answer or a webhook), if any."""
    return session.scalar(select(StripeIntent.intent_id).where(
        StripeIntent.org_id == org_id, StripeIntent.invoice_number == invoice_number,
        StripeIntent.status == "succeeded", StripeIntent.stage != IntentStage.REFUNDED)
        .order_by(StripeIntent.attempt).limit(1))


def other_intents(session: Session, org_id: str, invoice_number: str, paid_intent_id: str,
                  statuses: tuple[str, ...]) -> list[StripeIntent]:
    """The invoice's other intents, not refunded, whose status (as last read) is one of `statuses`
    or not read yet."""
    return list(session.scalars(select(StripeIntent).where(
        StripeIntent.org_id == org_id, StripeIntent.invoice_number == invoice_number,
        StripeIntent.intent_id.is_not(None), StripeIntent.intent_id != paid_intent_id,
        StripeIntent.stage != IntentStage.REFUNDED,
        StripeIntent.status.in_(statuses) | StripeIntent.status.is_(None)).order_by(StripeIntent.attempt)))


def refunded_intent(session: Session, intent_id: str) -> bool:
    return session.scalar(select(StripeIntent.stage).where(StripeIntent.intent_id == intent_id)) == IntentStage.REFUNDED


def mark_refunded(session: Session, intent_id: str, at: datetime) -> bool:
    moved = session.execute(update(StripeIntent).where(StripeIntent.intent_id == intent_id,
                                                       StripeIntent.stage != IntentStage.REFUNDED)
                            .values(stage=IntentStage.REFUNDED, status="succeeded", updated_at=at)
                            .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def paying_charge(session: Session, org_id: str, invoice_number: str) -> str | None:
    """The gateway's id of the charge that paid the invoice (a PaymentIntent's id on Stripe), if any."""
    return session.scalar(select(Payment.gateway_charge_id).join(Invoice, Invoice.id == Payment.invoice_id).where(
        Invoice.org_id == org_id, Invoice.number == invoice_number,
        Payment.outcome == ChargeOutcome.SUCCEEDED).limit(1))


def claim_intent(session: Session, key: str, org_id: str, invoice_number: str, attempt: int,
                 at: datetime) -> StripeIntent:
    """The attempt's row, inserted at stage `creating` if it is not there yet (the unique keys
    keep one per attempt whoever inserts first)."""
    row = session.get(StripeIntent, key)
    if row is not None:
        return row
    row = StripeIntent(idempotency_key=key, org_id=org_id, invoice_number=invoice_number, attempt=attempt,
                       stage=IntentStage.CREATING, created_at=at, updated_at=at)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        row = session.get(StripeIntent, key)
    return row


def advance_intent(session: Session, key: str, from_stages: tuple[IntentStage, ...], to_stage: IntentStage,
                   at: datetime, stale_before: datetime | None = None, **values: object) -> bool:
    """Move the attempt's row to `to_stage` if it is still at one of `from_stages` (or at
    `to_stage` itself since before `stale_before`): True for the one caller that moved it."""
    condition = StripeIntent.stage.in_(from_stages)
    if stale_before is not None:
        condition = condition | ((StripeIntent.stage == to_stage) & (StripeIntent.updated_at < stale_before))
    moved = session.execute(update(StripeIntent).where(StripeIntent.idempotency_key == key, condition)
                            .values(stage=to_stage, updated_at=at, **values)
                            .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def note_intent_status(session: Session, intent_id: str, status: str, reason: str | None, at: datetime) -> bool:
    moved = session.execute(update(StripeIntent).where(StripeIntent.intent_id == intent_id)
                            .values(status=status, decline_reason=reason, updated_at=at)
                            .execution_options(synchronize_session=False))
    return moved.rowcount == 1


def seen_event(session: Session, event_id: str) -> bool:
    return session.get(StripeEvent, event_id) is not None


def first_delivery(session: Session, event_id: str, type_: str, intent_id: str | None, at: datetime) -> bool:
    """Record a webhook event by its id: False when it was recorded before (a redelivery)."""
    try:
        with session.begin_nested():
            session.add(StripeEvent(event_id=event_id, type=type_, intent_id=intent_id, received_at=at))
    except IntegrityError:
        return False
    return True
