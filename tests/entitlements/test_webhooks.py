"""The webhooks themselves, against the reference receiver over real HTTP: signed per Standard
Webhooks (two secrets during a rotation), a bad signature refused, and duplicates, reordering,
resending and coalescing changing nothing the platform holds (SQLite, the delivery activity run
by the SDK's activity environment)."""

import random
from datetime import datetime, timedelta, timezone

import httpx
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.testing import ActivityEnvironment

from activities.billing import BillingActivities
from activities.messages import ChangeInput
from activities.webhooks import ENDPOINT_GONE, ERROR_LIMIT, DeliveryActivities, signed
from db.entitlements import current_document, documents, endpoint_rows, forget_deliveries
from services.orgs import create_org
from domain.delivery import Endpoint, Retry, Webhooks
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.requests import AddUserRequest, SetUsageRequest
from tests.support.http import serving
from tests.support.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
START = datetime(2026, 5, 4, 9, tzinfo=timezone.utc)


def trial_org(db, catalog, policy, org_id: str) -> str:
    new = validate_new_org(NewOrg(id=org_id, name="Acme", admin_email=f"admin@{org_id}.test",
                                  users=[NewUser(f"a@{org_id}.test", 1.0)]), catalog)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(new, START, "tests"), catalog, policy, START)
    return org_id


def change(billing: BillingActivities, org_id: str, request, minutes: int) -> None:
    billing.apply_change(ChangeInput(org_id, request, key=f"test:{org_id}:{minutes}",
                                     at=START + timedelta(minutes=minutes)))


async def post(receiver: Receiver, headers: dict, body: bytes) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.post(receiver.url, content=body, headers=headers)).status_code


async def test_a_webhook_signed_with_another_secret_or_unsigned_is_refused():
    receiver = await Receiver(SECRET).up()
    try:
        doc = {"org_id": "acme", "version": 3, "as_of": START.isoformat(), "users": []}
        headers, body = signed(Endpoint("p", receiver.url, (OTHER,)), doc, datetime.now(timezone.utc))
        assert await post(receiver, headers, body) == 401
        assert await post(receiver, {"content-type": "application/json"}, body) == 401
        headers, body = signed(Endpoint("p", receiver.url, (SECRET,)), doc, datetime.now(timezone.utc))
        assert await post(receiver, headers, body.replace(b'"version":3', b'"version":9')) == 401
        assert receiver.current == {} and receiver.refused == 3
        # During a rotation both secrets sign: a receiver that knows either one verifies.
        for knows in (SECRET, OTHER):
            receiver.secret = knows
            headers, body = signed(Endpoint("p", receiver.url, (OTHER, SECRET)), doc, datetime.now(timezone.utc))
            assert len(headers["webhook-signature"].split(" ")) == 2
            assert await post(receiver, headers, body) == 200
        assert receiver.current["acme"]["version"] == 3
    finally:
        await receiver.down()


async def test_duplicates_reordering_resending_and_coalescing_change_nothing(sqlite_db, catalog):
    from domain.policy import Policy
    policy = Policy(billing_staff=("rina@billing.test",))
    billing = BillingActivities(sqlite_db, catalog, policy)
    org_id = trial_org(sqlite_db, catalog, policy, "acme")
    change(billing, org_id, AddUserRequest(email="b@acme.test"), 1)
    change(billing, org_id, SetUsageRequest(user="b@acme.test", storage_gb=120.0), 2)
    change(billing, org_id, SetUsageRequest(user="a@acme.test", storage_gb=2.0), 3)  # nothing told changes
    change(billing, org_id, AddUserRequest(email="c@acme.test"), 4)
    with sqlite_db.transaction() as session:
        versions = documents(session, org_id)
        latest = current_document(session, org_id)
    assert [d["version"] for d in versions] == [1, 2, 3, 4]
    assert latest["users"][2] == {"email": "b@acme.test", "quota_gb": 100, "blocked": True, "blocked_reason": "storage"}

    receiver = await Receiver(SECRET).up()
    try:
        endpoint = Endpoint("platform", receiver.url, (SECRET,))
        # Every version, each twice, in any order: the platform ends on the latest.
        shuffled = versions * 2
        random.Random(7).shuffle(shuffled)
        for doc in shuffled:
            assert await post(receiver, *signed(endpoint, doc, datetime.now(timezone.utc))) == 200
        assert receiver.current[org_id] == latest

        # The delivery sends only the latest version (the three before it are coalesced), once.
        fresh = Receiver(SECRET, port=receiver.port)
        await receiver.down()
        await fresh.up()
        receiver = fresh
        delivery = DeliveryActivities(sqlite_db, Webhooks(endpoints=(endpoint,), retry=Retry()), run_seconds=1.5)
        assert await ActivityEnvironment().run(delivery.deliver_entitlements, "platform") == 1
        assert [(r.org_id, r.version) for r in receiver.log] == [(org_id, 4)]
        assert await ActivityEnvironment().run(delivery.deliver_entitlements, "platform") == 0

        # Resent on request: the same version again, which changes nothing the platform holds.
        with sqlite_db.transaction() as session:
            forget_deliveries(session, org_id)
        assert await ActivityEnvironment().run(delivery.deliver_entitlements, "platform") == 1
        assert [(r.version, r.applied) for r in receiver.log] == [(4, True), (4, False)]
        assert receiver.current[org_id] == latest
    finally:
        await receiver.down()


async def test_an_endpoint_no_longer_configured_ends_its_delivery(sqlite_db):
    delivery = DeliveryActivities(sqlite_db, Webhooks(), run_seconds=30)
    assert await ActivityEnvironment().run(delivery.deliver_entitlements, "gone") == ENDPOINT_GONE


async def test_an_endpoint_answering_an_error_page_keeps_one_line_of_it(sqlite_db, catalog):
    """A proxy's HTML error page (several lines, long) is kept and shown as one line, cut: `billing
    webhook status` printed it across rows and the log line broke."""
    from domain.policy import Policy
    trial_org(sqlite_db, catalog, Policy(billing_staff=("rina@billing.test",)), "acme")
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n" + "<p>upstream down</p>\n" * 100 + "</body>"

    async def bad_gateway(request):  # noqa: ANN001
        return HTMLResponse(page, status_code=502)
    async with serving(Starlette(routes=[Route("/hook", bad_gateway, methods=["POST"])])) as url:
        endpoint = Endpoint("platform", f"{url}/hook", (SECRET,))
        delivery = DeliveryActivities(sqlite_db, Webhooks(endpoints=(endpoint,)))
        async with httpx.AsyncClient() as http:
            [sent] = await delivery.deliver_round(http, endpoint)
    with sqlite_db.transaction() as session:
        [row] = endpoint_rows(session)
        error = row.last_error
    assert sent.error == error
    assert error.startswith("HTTP 502: <html> <head><title>502 Bad Gateway</title></head> <body> <p>upstream down")
    assert "\n" not in error and len(error) <= ERROR_LIMIT
