"""Charges through Stripe (the official library), exactly once without trusting the server.

An attempt's row (org, invoice, attempt) is written before its PaymentIntent is created; the
intent's id is stored before it is confirmed, off session. A retried attempt reads the stored
intent back instead of creating another; only the worker that moves the row from `created` to
`confirming` confirms, so two never do; an intent still unconfirmed long after its claim (its
worker died before asking) is claimed again and confirmed then. A server that ignores
idempotency keys (localstripe) may see a second intent created after a crash before the id was
stored: it is never confirmed (and, when two tries raced, cancelled by the one stored second).
Outcomes: succeeded -> paid; a decline or `authentication_required` -> declined with the reason;
`processing` -> not known yet, read back on the next try.

Once an invoice is paid through one intent, its other intents still open are cancelled on Stripe
(a customer authenticating one later would pay twice); one that succeeded anyway (authenticated
before the cancel, or reported late by a webhook) is refunded and ops are told."""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import stripe
from temporalio.exceptions import ApplicationError

from activities.errors import one_line
from activities.gateways import ChargeAttempt, GatewayResult, GatewayUnavailable, gateway_refused, idempotency_key
from db import payments as rows
from db.session import Database
from db.events import record_event
from domain.cards import CardDetails
from domain.errors import InvalidInput
from domain.money import in_stripe_units
from domain.states import ChargeOutcome, IntentStage

log = logging.getLogger("billing.stripe")

# A confirm claimed this long ago with the intent still unconfirmed: its worker died before asking.
STALE_CONFIRM = timedelta(minutes=5)
# Statuses whose outcome is not known yet: read back on the activity's next try (or by a webhook).
PENDING = ("processing", "requires_capture", "requires_confirmation")
# Statuses in which an intent can still be confirmed into money: cancelled once the invoice is paid.
OPEN = ("requires_action", "requires_confirmation", "requires_payment_method")
_SECRET = re.compile(r"(sk|rk|whsec)_[A-Za-z0-9_*]+")


class UnexpectedState(Exception):
    """Stripe refused a confirm: the intent had moved on (an earlier confirm, its answer lost)."""


@dataclass(frozen=True)
class StripeConfig:
    api_key: str = field(repr=False)
    api_base: str | None = None
    off_session: bool = True
    timeout_seconds: float = 30


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _one_line(err: stripe.StripeError) -> str:
    return _SECRET.sub("[redacted]", one_line(str(err.user_message or str(err) or type(err).__name__), 300))


def decline_reason(error: Any) -> str:
    """Why Stripe declined: the issuer's decline_code when it gives one, else the error's code."""
    if not error:
        return "card_declined"
    get = error.get if isinstance(error, dict) else (lambda name: getattr(error, name, None))
    return get("decline_code") or get("code") or "card_declined"


def outcome_of(status: str, error: Any) -> tuple[ChargeOutcome, str | None]:
    if status == "succeeded":
        return ChargeOutcome.SUCCEEDED, None
    if status == "requires_action":   # the customer must authenticate: dunning goes on, the admin is told
        return ChargeOutcome.DECLINED, "authentication_required"
    return ChargeOutcome.DECLINED, decline_reason(error)


class StripeGateway:
    def __init__(self, db: Database, config: StripeConfig) -> None:
        self.db, self.off_session = db, config.off_session
        self.client = stripe.StripeClient(
            config.api_key, base_addresses={"api": config.api_base} if config.api_base else None,
            max_network_retries=0,   # Temporal retries, with the read-back below
            http_client=stripe.RequestsClient(timeout=config.timeout_seconds))
        self.calls = 0   # requests sent to Stripe (the bench's figure)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            return method(*args, **kwargs)
        except stripe.CardError:
            raise   # a decline: the caller's outcome
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as err:
            raise GatewayUnavailable(_one_line(err)) from None
        except stripe.StripeError as err:
            if err.http_status is not None and (err.http_status >= 500 or err.http_status == 429):
                raise GatewayUnavailable(_one_line(err)) from None
            if err.code == "payment_intent_unexpected_state":
                raise UnexpectedState(_one_line(err)) from None
            raise gateway_refused(f"{type(err).__name__}: {_one_line(err)}") from None

    def describe(self, payment_method: str) -> CardDetails:
        """A PaymentMethod as we keep it: its id, brand and last four (read back from Stripe)."""
        method = self._call(self.client.v1.payment_methods.retrieve, payment_method)
        card = getattr(method, "card", None)   # only a card has one; renewals are charged to a card
        if card is None:
            raise InvalidInput(f"payment method {payment_method} is {method.type}, not a card: renewals are "
                               "charged to a card", field="payment_method")
        return CardDetails(token=payment_method, brand=card.brand, last4=card.last4)

    def charge(self, attempt: ChargeAttempt) -> GatewayResult:
        key, now = attempt.key, _now()
        with self.db.transaction() as session:
            paid = rows.succeeded_intent(session, attempt.org_id, attempt.invoice_number)
            if paid is None:
                row = rows.claim_intent(session, key, attempt.org_id, attempt.invoice_number, attempt.attempt, now)
                stage, intent_id, status, reason = row.stage, row.intent_id, row.status, row.decline_reason
        if paid is not None:   # an earlier attempt succeeded after all (authenticated later): no new charge
            self.close_other_intents(attempt.org_id, attempt.invoice_number, paid)
            return GatewayResult(paid, ChargeOutcome.SUCCEEDED)
        if stage == IntentStage.SETTLED:
            outcome, _ = outcome_of(status or "", None)
            return GatewayResult(intent_id or "", outcome, reason)
        if intent_id is None:
            try:
                customer, payment_method = self._customer_with_card(attempt)
            except stripe.CardError as err:   # refused when attached: a decline like any other
                return GatewayResult("", ChargeOutcome.DECLINED, decline_reason(err.error))
            intent_id = self._create(attempt, customer, payment_method)
        return self._confirm_once(attempt, intent_id)

    def _customer_with_card(self, attempt: ChargeAttempt) -> tuple[str, str]:
        """The org's Customer (created once) with the card's PaymentMethod attached (once per card)."""
        with self.db.transaction() as session:
            row = rows.stripe_customer(session, attempt.org_id)
            known = (row.customer_id, row.payment_method_token, row.payment_method_id) if row else None
        if known is None:
            customer = self._call(self.client.v1.customers.create,
                                  params={"description": f"org {attempt.org_id}", "metadata": {"org": attempt.org_id}},
                                  options={"idempotency_key": f"customer:{attempt.org_id}"})
            with self.db.transaction() as session:
                rows.save_stripe_customer(session, attempt.org_id, customer.id, _now())
            known = (customer.id, None, None)
        customer_id, token, payment_method_id = known
        if token == attempt.token and payment_method_id:
            return customer_id, payment_method_id
        attached = self._call(self.client.v1.payment_methods.attach, attempt.token, params={"customer": customer_id})
        card = attached.card
        with self.db.transaction() as session:
            rows.save_attached_card(session, attempt.org_id, attempt.token, attached.id, card.brand, card.last4,
                                    card.exp_month, card.exp_year)
        return customer_id, attached.id

    def _create(self, attempt: ChargeAttempt, customer: str, payment_method: str) -> str:
        intent = self._call(self.client.v1.payment_intents.create, params={
            "amount": in_stripe_units(attempt.amount, attempt.currency), "currency": attempt.currency.lower(),
            "customer": customer, "payment_method": payment_method, "payment_method_types": ["card"],
            "metadata": {"org": attempt.org_id, "invoice": attempt.invoice_number, "attempt": str(attempt.attempt)},
        }, options={"idempotency_key": attempt.key})
        with self.db.transaction() as session:
            if rows.advance_intent(session, attempt.key, (IntentStage.CREATING,), IntentStage.CREATED, _now(),
                                   intent_id=intent.id, status=intent.status):
                return intent.id
            stored = rows.intent_row(session, attempt.key).intent_id
        if intent.id != stored:   # Stripe replays a key's intent; a server ignoring keys made a second
            self._cancel_unstored(attempt.key, intent.id, stored)
        return stored

    def _cancel_unstored(self, key: str, intent_id: str, stored: str) -> None:
        """Another try of the attempt stored its intent first: this one, known to no row, is
        cancelled now (later, when the invoice is paid, nothing would find it). Best effort: it is
        never confirmed either way, and the stored intent's charge goes on."""
        try:
            self._call(self.client.v1.payment_intents.cancel, intent_id,
                       options={"idempotency_key": f"{key}:cancel:{intent_id}"})
        except (GatewayUnavailable, UnexpectedState, ApplicationError) as err:
            log.warning("payment intent %s created for %s but %s was stored first: not cancelled (%s); it is "
                        "never confirmed", intent_id, key, stored, err)
            return
        log.warning("payment intent %s created for %s but %s was stored first: cancelled", intent_id, key, stored)

    def _confirm_once(self, attempt: ChargeAttempt, intent_id: str) -> GatewayResult:
        key, now = attempt.key, _now()
        with self.db.transaction() as session:
            claimed = rows.advance_intent(session, key, (IntentStage.CREATED,), IntentStage.CONFIRMING, now)
        if not claimed:   # confirmed before (its answer lost), or being confirmed: read it back
            intent = self._call(self.client.v1.payment_intents.retrieve, intent_id)
            if intent.status != "requires_confirmation":
                return self._settle(key, intent.id, intent.status, intent.last_payment_error)
            with self.db.transaction() as session:   # never asked: its claimant died before asking
                claimed = rows.advance_intent(session, key, (), IntentStage.CONFIRMING, now,
                                               stale_before=now - STALE_CONFIRM)
            if not claimed:
                raise GatewayUnavailable(f"payment intent {intent_id} is being confirmed; its outcome is read back")
        params = {"off_session": True} if self.off_session else {}
        try:
            intent = self._call(self.client.v1.payment_intents.confirm, intent_id, params=params)
        except stripe.CardError as err:
            body = (err.json_body or {}).get("error", {})
            status = (body.get("payment_intent") or {}).get("status") or "requires_payment_method"
            return self._settle(key, intent_id, status, body)
        except GatewayUnavailable:
            # Asked, no answer: the next try confirms again, and Stripe refuses a second confirm of
            # an intent the first one moved on (read back below).
            with self.db.transaction() as session:
                rows.advance_intent(session, key, (IntentStage.CONFIRMING,), IntentStage.CREATED, _now())
            raise
        except UnexpectedState:
            intent = self._call(self.client.v1.payment_intents.retrieve, intent_id)
        return self._settle(key, intent.id, intent.status, intent.last_payment_error)

    def _settle(self, key: str, intent_id: str, status: str, error: Any) -> GatewayResult:
        if status in PENDING:
            with self.db.transaction() as session:
                rows.note_intent_status(session, intent_id, status, None, _now())
            raise GatewayUnavailable(f"payment intent {intent_id} is {status}; its outcome is read back")
        outcome, reason = outcome_of(status, error)
        if status != "requires_action" and error and decline_reason(error) == "authentication_required":
            reason = "authentication_required"
        with self.db.transaction() as session:
            rows.advance_intent(session, key, (IntentStage.CREATED, IntentStage.CONFIRMING), IntentStage.SETTLED,
                                _now(), status=status, decline_reason=reason)
            row = rows.intent_row(session, key)
            org_id, invoice_number = row.org_id, row.invoice_number
        if outcome == ChargeOutcome.SUCCEEDED:   # raises if Stripe is out of reach: the retry closes them
            self.close_other_intents(org_id, invoice_number, intent_id)
        return GatewayResult(intent_id, outcome, reason)

    def close_other_intents(self, org_id: str, invoice_number: str, paid_intent_id: str) -> None:
        """The invoice is paid by `paid_intent_id`: cancel its other open intents on Stripe; refund
        any that succeeded all the same."""
        with self.db.transaction() as session:
            others = [(row.idempotency_key, row.intent_id, row.attempt) for row in
                      rows.other_intents(session, org_id, invoice_number, paid_intent_id, (*OPEN, "succeeded"))]
        for key, intent_id, attempt in others:
            try:
                intent = self._call(self.client.v1.payment_intents.cancel, intent_id,
                                    options={"idempotency_key": f"{key}:cancel"})
            except (UnexpectedState, ApplicationError):   # moved on (succeeded, canceled): read it back
                intent = self._call(self.client.v1.payment_intents.retrieve, intent_id)
            with self.db.transaction() as session:
                rows.note_intent_status(session, intent_id, intent.status, None, _now())
            if intent.status == "succeeded":
                self.refund_duplicate(org_id, invoice_number, attempt, intent_id, paid_intent_id)
            else:
                log.info("payment intent %s of %s (attempt %s) %s: the invoice was paid by %s", intent_id,
                         invoice_number, attempt, intent.status, paid_intent_id)

    def refund_duplicate(self, org_id: str, invoice_number: str, attempt: int, intent_id: str,
                         paid_by: str) -> None:
        """A second payment of an invoice already paid by `paid_by`: refunded in full, once (key
        org:invoice:attempt:refund), kept as `refunded`, and told to ops (an event and a log line)."""
        with self.db.transaction() as session:
            if rows.refunded_intent(session, intent_id):
                return
        key = f"{idempotency_key(org_id, invoice_number, attempt)}:refund"
        refund = self._call(self.client.v1.refunds.create, params={"payment_intent": intent_id},
                            options={"idempotency_key": key})
        now = _now()
        with self.db.transaction() as session:
            rows.mark_refunded(session, intent_id, now)
            record_event(session, org_id, now, "duplicate_payment_refunded",
                         {"invoice": invoice_number, "attempt": attempt, "payment_intent": intent_id,
                          "refund": refund.id, "amount": refund.amount, "currency": refund.currency,
                          "paid_by": paid_by}, dedupe_key=f"refund:{key}")
        log.warning("payment intent %s (%s attempt %s of org %s) succeeded after %s paid the invoice: refunded "
                    "in full (%s)", intent_id, invoice_number, attempt, org_id, paid_by, refund.id)
