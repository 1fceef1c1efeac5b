"""`POST /webhooks/stripe`: payment outcomes Stripe reports after the charge was answered.

Authenticated by Stripe's signature (`stripe.Webhook.construct_event` with the endpoint's secret),
not by the API key: a bad signature gets 400 and changes nothing. An event id already applied is
acknowledged and ignored (stripe_events). The intent's status is kept on its attempt's row; a
`payment_intent.succeeded` signals the org's workflow (found by the intent's metadata), which
charges the open invoice again at once and is answered with that payment (activities/gateways/
stripe.py), so a charge declined for authentication and authenticated later is paid once. A
`payment_intent.succeeded` for an invoice already paid by another intent is not a second settle:
it is refunded in full through the Stripe gateway and ops are told (activities/gateways/stripe.py).
Temporal unreachable: 503, nothing recorded, and Stripe delivers again."""

import asyncio
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.gateways import GatewayUnavailable
from activities.gateways.stripe import decline_reason
from db import payments as rows
from workers.api.app import error, service_of
from workers.runtime.org_workflows import TemporalOrgWorkflows
from workflows.messages import PaymentNotice

log = logging.getLogger("billing.api.stripe")

OUTCOMES = {"payment_intent.succeeded", "payment_intent.payment_failed"}


class OrgSignals:
    """The org workflows, reached through a Temporal client made at the first signal."""

    def __init__(self, connect: Callable[[], Awaitable[Client]], task_queue: str) -> None:
        self._connect, self._task_queue = connect, task_queue
        self._workflows: TemporalOrgWorkflows | None = None

    async def payment_settled(self, org_id: str, notice: PaymentNotice) -> None:
        if self._workflows is None:
            self._workflows = TemporalOrgWorkflows(await self._connect(), self._task_queue)
        await self._workflows.payment_settled(org_id, notice)


def _seen(db, event_id: str) -> bool:  # noqa: ANN001
    with db.transaction() as session:
        return rows.seen_event(session, event_id)


def _note_status(db, intent_id: str, status: str, reason: str | None) -> None:  # noqa: ANN001
    with db.transaction() as session:
        rows.note_intent_status(session, intent_id, status, reason, datetime.now(timezone.utc))


def _record(db, event_id: str, event_type: str, intent_id: str) -> bool:  # noqa: ANN001
    with db.transaction() as session:
        return rows.first_delivery(session, event_id, event_type, intent_id, datetime.now(timezone.utc))


def _paid_by(db, org_id: str, invoice: str) -> str | None:  # noqa: ANN001
    with db.transaction() as session:
        return rows.paying_charge(session, org_id, invoice)


async def _refund_second_payment(service, event, org_id: str, invoice: str, attempt: int,  # noqa: ANN001
                                 paid_by: str) -> Response:
    intent_id = event.data.object.id
    if service.stripe_gateway is None:
        return error(503, f"payment intent {intent_id} paid {invoice}, already paid by {paid_by}, and this service "
                          "cannot refund it (BILLING_GATEWAY=stripe with STRIPE_API_KEY); deliver again")
    try:
        await asyncio.to_thread(service.stripe_gateway.refund_duplicate, org_id, invoice, attempt, intent_id, paid_by)
    except GatewayUnavailable as err:
        return error(503, f"the refund of payment intent {intent_id} did not reach Stripe ({err}); deliver again")
    applied = await asyncio.to_thread(_record, service.db, event.id, event.type, intent_id)
    return JSONResponse({"event": event.id, "applied": applied, "duplicate": not applied, "refunded": intent_id})


async def stripe_webhook(request: Request) -> Response:
    service = service_of(request)
    if not service.stripe_webhook_secret:
        return error(503, "the Stripe webhook secret is not configured (STRIPE_WEBHOOK_SECRET or "
                          "STRIPE_WEBHOOK_SECRET_FILE)")
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(payload, request.headers.get("stripe-signature", ""),
                                               service.stripe_webhook_secret)
    except (ValueError, stripe.SignatureVerificationError):
        return error(400, "bad Stripe-Signature (or not a Stripe event): nothing was applied")
    if event.type not in OUTCOMES:
        return JSONResponse({"event": event.id, "ignored": f"{event.type} is not a payment outcome"})
    intent = event.data.object
    metadata = intent.metadata.to_dict() if intent.metadata else {}
    org_id, invoice, attempt = metadata.get("org"), metadata.get("invoice"), metadata.get("attempt")
    if not (org_id and invoice and attempt and attempt.isdigit()):
        return JSONResponse({"event": event.id, "ignored": "not a charge of this pipeline (no org, invoice, attempt)"})
    reason = None if intent.status == "succeeded" else decline_reason(intent.last_payment_error)
    db = service.db
    if await asyncio.to_thread(_seen, db, event.id):   # acknowledged, nothing applied again
        return JSONResponse({"event": event.id, "applied": False, "duplicate": True})
    # The status first: the charge the signal starts reads it. Both steps may run twice (two
    # deliveries at once, or one after a 503) and change nothing the second time.
    await asyncio.to_thread(_note_status, db, intent.id, intent.status, reason)
    if event.type == "payment_intent.succeeded":
        paid_by = await asyncio.to_thread(_paid_by, db, org_id, invoice)
        if paid_by is not None and paid_by != intent.id:   # a second payment: refunded, not settled
            return await _refund_second_payment(service, event, org_id, invoice, int(attempt), paid_by)
    if event.type == "payment_intent.succeeded" and service.org_signals is not None:
        try:
            await service.org_signals.payment_settled(org_id, PaymentNotice(invoice, int(attempt), True))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                return error(503, f"Temporal did not take the signal ({err.message}); deliver again")
            log.warning("payment %s of %s succeeded but org %s has no running workflow", intent.id, invoice, org_id)
        except RuntimeError as err:   # the client could not connect
            return error(503, f"Temporal unreachable ({err}); deliver again")
    applied = await asyncio.to_thread(_record, db, event.id, event.type, intent.id)
    log.info("stripe event %s (%s) for %s %s attempt %s: %s", event.id, event.type, org_id, invoice, attempt,
             "applied" if applied else "already applied")
    return JSONResponse({"event": event.id, "applied": applied, "duplicate": not applied})


ROUTES = [Route("/webhooks/stripe", stripe_webhook, methods=["POST"])]
