"""The property the mail platform relies on: whatever the org's operations, however deliveries
interleave with them, fail, are resent or coalesced, once the endpoint answers again the last
document it applied is the document of the org's final state (Hypothesis; SQLite, the real
decisions, the reference receiver over real HTTP)."""

import asyncio
import itertools
from datetime import timedelta

import httpx
from hypothesis import HealthCheck, given, settings, strategies as st

from activities.billing import BillingActivities
from activities.messages import ChangeInput, OrgOp
from activities.webhooks import DeliveryActivities
from db.entitlements import entitled_users, forget_deliveries
from db.snapshots import load_state
from domain.delivery import Endpoint, Retry, Webhooks
from domain.entitlements import content_of, entitlements
from domain.errors import DomainError
from domain.policy import Policy
from domain.requests import AddUserRequest, SetUsageRequest
from tests.entitlements.test_webhooks import SECRET, START, trial_org
from tests.support.receiver import Receiver

POLICY = Policy(billing_staff=("rina@billing.test",))
# No wait between attempts: the property is about what arrives, not when.
AT_ONCE = Retry(first=timedelta(0), longest=timedelta(0))
EMAILS = [f"u{i}@p.test" for i in range(7)]
COUNTER = itertools.count()

operations = st.lists(st.one_of(
    st.tuples(st.just("add_user"), st.sampled_from(EMAILS)),
    st.tuples(st.just("set_usage"), st.sampled_from(EMAILS), st.integers(0, 120)),
    st.tuples(st.just("end_trial")),
    st.tuples(st.just("deliver")),
    st.tuples(st.just("platform_fails"), st.integers(1, 3)),
    st.tuples(st.just("resend")),
), max_size=14)


async def run(db, catalog, steps) -> None:
    org_id = trial_org(db, catalog, POLICY, f"p{next(COUNTER)}")
    billing = BillingActivities(db, catalog, POLICY)
    receiver = await Receiver(SECRET).up()
    endpoint = Endpoint("platform", receiver.url, (SECRET,))
    delivery = DeliveryActivities(db, Webhooks(endpoints=(endpoint,), retry=AT_ONCE))
    try:
        async with httpx.AsyncClient() as http:
            for minute, step in enumerate(steps, start=1):
                at, key = START + timedelta(minutes=minute), f"prop:{org_id}:{minute}"
                try:
                    if step[0] == "add_user":
                        billing.apply_change(ChangeInput(org_id, AddUserRequest(email=step[1]), key=key, at=at))
                    elif step[0] == "set_usage":
                        billing.apply_change(ChangeInput(org_id, SetUsageRequest(user=step[1], storage_gb=step[2]),
                                                         key=key, at=at))
                    elif step[0] == "end_trial":
                        billing.expire_trial(OrgOp(org_id, at, key))
                except DomainError:
                    pass  # refused (an unknown user, a trial already over): nothing changed
                if step[0] == "deliver":
                    await delivery.deliver_round(http, endpoint)
                elif step[0] == "platform_fails":
                    receiver.failing = step[1]
                elif step[0] == "resend":
                    with db.transaction() as session:
                        forget_deliveries(session, org_id)
            receiver.failing = 0
            for _ in range(10):   # the platform answers again: deliver until nothing is due
                if not await delivery.deliver_round(http, endpoint):
                    break
    finally:
        await receiver.down()
    with db.transaction() as session:
        final = entitlements(load_state(session, org_id, POLICY), entitled_users(session, org_id), catalog)
    assert content_of(receiver.current[org_id]) == final
    versions = [r.version for r in receiver.log if r.org_id == org_id and r.applied]
    assert versions == sorted(set(versions)), "versions applied only go up"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_the_last_delivered_document_is_the_final_states(sqlite_db, catalog, steps):
    asyncio.run(run(sqlite_db, catalog, steps))
