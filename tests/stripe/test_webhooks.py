"""POST /webhooks/stripe over real HTTP: localstripe delivers a signed payment_intent.succeeded
when a customer authenticates a charge that was declined for it; the org's workflow is signalled
and the invoice is paid with that payment (no second charge). A redelivery is applied once; a bad
signature gets 400 and changes nothing. A payment authenticated after another one paid the invoice
is refunded, kept as refunded, and told to ops."""

import asyncio
import logging
import hashlib
import hmac
import json
import time
import urllib.parse
import urllib.request

from sqlalchemy import func, select

from activities.gateways.stripe import StripeGateway
from db.models import StripeEvent, Subscription
from db.queries import event_log
from domain import requests as rq
from domain.cards import CardDetails
from tests.stripe.conftest import API_KEY, intents_for
from tests.stripe.test_charges import VISA, invoices, needing_authentication, payments, renewed, stored_statuses
from tests.support.http import call, serving
from workers.api.app import Service, create_app
from workers.api.routes import ROUTES
from workers.runtime.org_workflows import TemporalOrgWorkflows

SECRET = "whsec_test_b1ll1ng"


def signed(payload: bytes, secret: str = SECRET) -> dict[str, str]:
    """Stripe's signature scheme: HMAC-SHA256 of "<timestamp>.<payload>" with the endpoint's secret."""
    stamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}


def events_recorded(db) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(StripeEvent))


def org_status(db, org_id: str) -> str:
    with db.transaction() as session:
        return str(session.get(Subscription, org_id).status)


def authenticate(localstripe, intent) -> None:
    """The customer completes 3-D Secure (localstripe's stand-in for Stripe's hosted page)."""
    data = urllib.parse.urlencode({"client_secret": intent.client_secret, "success": "true"}).encode()
    req = urllib.request.Request(f"{localstripe.url}/v1/payment_intents/{intent.id}/_authenticate", data=data,
                                 headers={"Authorization": f"Bearer {API_KEY}"}, method="POST")
    urllib.request.urlopen(req, timeout=5).read()


async def test_payment_authenticated_later_is_paid_once_and_a_redelivery_is_ignored(
        stack, stripe_gateway, localstripe, on_server, smtp_sink):
    three_d_secure = on_server.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4000002760003184", "exp_month": 12, "exp_year": 2031, "cvc": "123"}})
    service = Service(db=stack.db, api_key=None, stripe_webhook_secret=SECRET,
                      org_signals=TemporalOrgWorkflows(stack.client, stack.task_queue))
    async with stack.worker(), serving(create_app(service, ROUTES)) as url:
        localstripe.register_webhook(f"{url}/webhooks/stripe", SECRET)
        org_id, state = await renewed(stack, CardDetails(three_d_secure.id, "visa", "3184"))
        assert state.snapshot.status == "past_due"
        [intent] = intents_for(on_server, org_id)
        await asyncio.to_thread(authenticate, localstripe, intent)
        for _ in range(300):   # localstripe delivers about a second later; the receipt is the last step
            if smtp_sink.for_org(org_id, "receipt"):
                break
            await asyncio.sleep(0.1)
        status = org_status(stack.db, org_id)
        [event] = [e for e in on_server.v1.events.list(params={"limit": 100}).data
                   if e.type == "payment_intent.succeeded"]
        payload = json.dumps(event.to_dict()).encode()
        again = await call("POST", f"{url}/webhooks/stripe", body=payload, headers=signed(payload))
        forged = await call("POST", f"{url}/webhooks/stripe", body=payload, headers=signed(payload, "whsec_other"))
        unsigned = await call("POST", f"{url}/webhooks/stripe", body=payload)
        await asyncio.sleep(1)
        after = org_status(stack.db, org_id)

    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    # The next retry may have come (declined the same way) before the customer authenticated.
    intents = intents_for(on_server, org_id)
    [paid] = [pi for pi in intents if pi.status == "succeeded"]
    assert paid.id == intent.id   # the authenticated intent paid: no other was confirmed into money
    made = payments(stack.db, org_id)
    assert made[-1] == (len(made), "succeeded", None, intent.id)
    assert {(outcome, reason) for _, outcome, reason, _ in made[:-1]} == {("declined", "authentication_required")}
    assert status == after == "active"
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1
    assert (again.status, again.body) == (200, {"event": event.id, "applied": False, "duplicate": True})
    assert [forged.status, unsigned.status] == [400, 400]
    assert forged.body == {"error": "bad Stripe-Signature (or not a Stripe event): nothing was applied"}
    assert events_recorded(stack.db) == 1


class NeverCloses(StripeGateway):
    """A gateway that leaves the invoice's other intents open once it is paid (a cancel that never
    reached Stripe), so the customer can still authenticate the old one."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.__dict__.update(gateway.__dict__)

    def close_other_intents(self, org_id: str, invoice_number: str, paid_intent_id: str) -> None:
        pass


async def test_payment_authenticated_after_the_invoice_was_paid_is_refunded_and_ops_are_told(
        stack, stripe_gateway, localstripe, on_server, smtp_sink, caplog):
    stack.gateway = gateway = NeverCloses(stripe_gateway)
    service = Service(db=stack.db, api_key=None, stripe_webhook_secret=SECRET,
                      org_signals=TemporalOrgWorkflows(stack.client, stack.task_queue), stripe_gateway=gateway)
    async with stack.worker(), serving(create_app(service, ROUTES)) as url:
        localstripe.register_webhook(f"{url}/webhooks/stripe", SECRET)
        org_id, state = await renewed(stack, needing_authentication(on_server))
        [waiting] = intents_for(on_server, org_id)
        await stack.send(org_id, rq.UpdateCardRequest(VISA.token, VISA.brand, VISA.last4, "admin@x.test"))
        with caplog.at_level(logging.WARNING, logger="billing.stripe"):
            await asyncio.to_thread(authenticate, localstripe, waiting)
            for _ in range(300):   # localstripe delivers about a second later
                if stored_statuses(stack.db, org_id)[0][2] == "refunded":
                    break
                await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        state = await stack.state(org_id)

    [paid] = [pi for pi in intents_for(on_server, org_id) if pi.metadata["attempt"] == "2"]
    assert (paid.status, on_server.v1.payment_intents.retrieve(waiting.id).status) == ("succeeded", "succeeded")
    [refund] = [r for r in on_server.v1.refunds.list(params={"limit": 100}).data if r.payment_intent == waiting.id]
    assert (refund.amount, refund.currency, refund.status) == (600, "usd", "succeeded")
    assert stored_statuses(stack.db, org_id) == [(1, "succeeded", "refunded"), (2, "succeeded", "settled")]
    assert [status for _, status, _ in invoices(stack.db, org_id)] == ["paid"]
    assert payments(stack.db, org_id) == [(1, "declined", "authentication_required", waiting.id),
                                          (2, "succeeded", None, paid.id)]   # no second settle
    assert state.snapshot.status == "active"
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1
    with stack.db.transaction() as session:
        [told] = [e for e in event_log(session, org_id) if e.type == "duplicate_payment_refunded"]
    assert told.data == {"invoice": f"INV-{org_id}-0001", "attempt": 1, "payment_intent": waiting.id,
                         "refund": refund.id, "amount": 600, "currency": "usd", "paid_by": paid.id}
    [line] = [r.getMessage() for r in caplog.records if "refunded" in r.getMessage()]
    assert line.startswith(f"payment intent {waiting.id} (INV-{org_id}-0001 attempt 1 of org {org_id}) succeeded "
                           f"after {paid.id} paid the invoice: refunded in full")
    with stack.db.transaction() as session:   # both payments' events applied, each once
        assert sorted(session.scalars(select(StripeEvent.intent_id))) == sorted([waiting.id, paid.id])


async def test_bad_signature_is_refused_and_changes_nothing(sqlite_db):
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
                          "data": {"object": {"id": "pi_1", "object": "payment_intent", "status": "succeeded",
                                              "metadata": {"org": "acme", "invoice": "INV-acme-0001",
                                                           "attempt": "1"}}}}).encode()
    service = Service(db=sqlite_db, api_key="k", stripe_webhook_secret=SECRET)
    async with serving(create_app(service, ROUTES)) as url:
        tampered = signed(payload)
        forged = await call("POST", f"{url}/webhooks/stripe", body=payload.replace(b"acme", b"acne"), headers=tampered)
        after_forged = events_recorded(sqlite_db)
        first = await call("POST", f"{url}/webhooks/stripe", body=payload, headers=signed(payload))
        second = await call("POST", f"{url}/webhooks/stripe", body=payload, headers=signed(payload))
    assert forged.status == 400 and after_forged == 0
    assert first.status == 200 and second.status == 200
    assert first.body == {"event": "evt_1", "applied": True, "duplicate": False}
    assert second.body == {"event": "evt_1", "applied": False, "duplicate": True}
    assert events_recorded(sqlite_db) == 1
