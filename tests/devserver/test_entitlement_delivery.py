"""Entitlements reach the mail platform (a reference receiver on loopback, verifying signatures
and keeping the highest version per org) on the dev server's real clock, and a platform that is
down or slow never holds an org back."""

import asyncio
import time
from datetime import timedelta

from db.entitlements import current_document
from db.models import Invoice
from domain.delivery import Endpoint, Retry, Webhooks
from domain.entitlements import blocked_users
from domain.requests import AddUserRequest
from sqlalchemy import select
from tests.devserver.support import GOOD, eventually, paid_org_renewing_at
from tests.support.receiver import Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
QUICK_RETRY = Retry(first=timedelta(seconds=1), longest=timedelta(seconds=4))


def deliver_to(stack, receiver: Receiver, secrets=(SECRET,), retry: Retry = QUICK_RETRY, timeout: float = 10) -> None:
    stack.webhooks = Webhooks(endpoints=(Endpoint("platform", receiver.url, tuple(secrets)),), retry=retry,
                              timeout_seconds=timeout)


def current(stack, org_id: str) -> dict:
    with stack.db.transaction() as session:
        return current_document(session, org_id)


async def test_storage_blocking_at_a_trials_end_reaches_the_platform_within_seconds(dev_stack):
    stack, receiver = dev_stack, await Receiver(SECRET).up()
    # Signed with the old secret and the new one while it is rotated: a receiver knowing either verifies.
    deliver_to(stack, receiver, secrets=(OLD_SECRET, SECRET))
    try:
        async with stack.worker():
            now = await stack.now()
            org_id = await stack.create_org(users=[("budi@t.test", 7.0), ("dewi@t.test", 6.0), ("ani@t.test", 1.0)],
                                            start=now - timedelta(days=stack.policy.trial_days) + timedelta(seconds=3))
            await receiver.wait_for(lambda r: org_id in r.current, 10, "trial version")
            assert receiver.current[org_id]["status"] == "trialing"
            ended = time.time() + 3 - 0.5
            await receiver.wait_for(lambda r: r.current[org_id]["plan"]["id"] == "free", 20, "version after the trial")
            told = receiver.current[org_id]
            assert sorted(blocked_users(told)) == ["budi@t.test", "dewi@t.test"]
            assert receiver.log[-1].at - ended < 8, "told within seconds of the trial's end"
            assert told == current(stack, org_id) and receiver.refused == 0
    finally:
        await receiver.down()


async def test_a_platform_down_for_a_minute_gets_every_orgs_current_version_and_renewals_go_on(dev_stack):
    stack, receiver = dev_stack, Receiver(SECRET)
    deliver_to(stack, receiver)
    async with stack.worker():
        now = await stack.now()
        orgs = [await stack.create_org(start=now) for _ in range(3)]
        renewing = await paid_org_renewing_at(stack, now + timedelta(seconds=5), GOOD)
        started = time.monotonic()
        for org_id in orgs[:2]:  # changes while it is down: only the latest version is owed
            await stack.send(org_id, AddUserRequest(email=f"new@{org_id}.test"))

        async def renewed():
            with stack.db.transaction() as session:
                invoices = session.scalars(select(Invoice).where(Invoice.org_id == renewing)).all()
            assert [(i.kind, i.status) for i in invoices] == [("renewal", "paid")]
        # The platform is down: the renewal is charged and paid all the same, on time.
        await eventually(renewed, timeout=30)
        assert time.monotonic() - started < 30
        remaining = 60 - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        await receiver.up()
        try:
            everyone = orgs + [renewing]
            await receiver.wait_for(lambda r: all(o in r.current for o in everyone), 15, "every org's version")
            for org_id in everyone:
                assert receiver.current[org_id] == current(stack, org_id)
            for org_id in orgs[:2]:
                assert f"new@{org_id}.test" in [u["email"] for u in receiver.current[org_id]["users"]]
                assert receiver.current[org_id]["version"] == 2
        finally:
            await receiver.down()


async def test_a_slow_platform_holds_no_renewal_or_update_back(dev_stack):
    stack, receiver = dev_stack, Receiver(SECRET, delay=12.0)
    await receiver.up()
    deliver_to(stack, receiver, timeout=30)
    try:
        async with stack.worker():
            now = await stack.now()
            trial = await stack.create_org(start=now)
            renewing = await paid_org_renewing_at(stack, now + timedelta(seconds=4), GOOD)

            async def renewed():
                with stack.db.transaction() as session:
                    invoices = session.scalars(select(Invoice).where(Invoice.org_id == renewing)).all()
                assert [(i.kind, i.status) for i in invoices] == [("renewal", "paid")]
            await eventually(renewed, timeout=10)       # while the platform takes 12 s per answer
            asked = time.monotonic()
            await stack.send(trial, AddUserRequest(email="late@t.test"))
            assert time.monotonic() - asked < 3, "an Update answers whatever the platform's pace"
            assert receiver.current == {}, "the platform has answered nothing yet"
            await receiver.wait_for(lambda r: r.current.get(trial, {}).get("version") == 2
                                    and renewing in r.current, 40, "the slow platform's versions")
            assert receiver.current[renewing] == current(stack, renewing)
    finally:
        await receiver.down()
