"""No input can freeze an org (issue 14): every value a careless user can type is refused at
once by the Update's validator, naming the field, with no history event and nothing written;
a value the database still refuses fails its request at once instead of holding the org; and
an org sent all of them renews on time and is charged once. Real stack: the workflow, its
activities and PostgreSQL on the time-skipping server."""

from dataclasses import replace
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from sqlalchemy import func, select

from db.models import Payment, User
from domain import requests as rq
from domain.limits import Limits
from tests.support.history import activities_run
from tests.workflows.test_staff_actions import assert_refused, db_fingerprint

GOOD = "4242424242424242"
STAFF = "rina@billing.test"
LONG = "x" * 10_000


def poison(org_id: str) -> list[tuple[object, str]]:
    """(request, what the refusal says): each of issue 14's inputs, and their like."""
    admin = f"admin@{org_id}.test"
    return [
        (rq.AddLicencesRequest(10**12), "count: at most 100,000 licences per org, got 1000000000000"),
        (rq.AddLicencesRequest(99_999), "count: an org holds at most 100,000 licences"),
        (rq.BuyStorageRequest(25, 10**12), "count: at most 1,000 units per purchase, got 1000000000000"),
        (rq.BuyStorageRequest(25, 100_000), "count: at most 1,000 units per purchase, got 100000"),
        (rq.BuyStorageRequest(10**30, 1), "unit_gb: at most 100,000"),
        (rq.SetUsageRequest(admin, float("inf")), "storage_gb: must be a finite number of GB, got inf"),
        (rq.SetUsageRequest(admin, float("nan")), "storage_gb: must be a finite number of GB, got nan"),
        (rq.SetUsageRequest(admin, 1e300), "storage_gb: at most 100,000 GB per mailbox"),
        (rq.SetUsageRequest(admin, -1), "storage_gb: must be a number of GB >= 0"),
        (rq.SetUsageRequest("ghost@nowhere.test", 1), f"user: no user ghost@nowhere.test in org {org_id}"),
        (rq.AllocateStorageRequest("ghost@nowhere.test", 25), "user: no user ghost@nowhere.test"),
        (rq.AddUserRequest("a" * 250 + "@x.test"), "email: at most 254 characters, got 257"),
        (rq.AddUserRequest(admin), f"email: {admin} is already a user of {org_id}"),
        (rq.AddUserRequest("new@x.test", requested_by=LONG), "requested_by: at most 254 characters, got 10000"),
        (rq.AddUserRequest("new@x.test", reason="bad\x00byte"), "reason: control characters"),
        (rq.AddUserRequest("new@x.test", storage_gb=float("inf")), "storage_gb: must be a finite number"),
        (rq.ChangeTierRequest(10**30), "contacts: at most 10,000,000"),
        (rq.SetContactsRequest(-5), "contacts: must be at least 0, got -5"),
        (rq.UpgradeRequest(LONG), "plan: at most 40 characters, got 10000"),
        (rq.DowngradeRequest("standard", requested_by=STAFF, reason=""),
         "reason: required for staff actions (they are audited)"),
        (rq.DowngradeRequest("standard", 10**12, requested_by=STAFF, reason="x"),
         "licences: at most 100,000"),
        (rq.ImportUsageRequest([(admin, 1.0), ("ghost@nowhere.test", 2.0)]),
         "rows[1]: user: no user ghost@nowhere.test"),
        (rq.ImportUsageRequest([(admin, float("inf"))]), "rows[0]: storage_gb: must be a finite number"),
        (rq.ImportUsageRequest([(admin, 1.0), (admin.upper(), 2.0)]),
         f"rows[1]: user {admin} is reported twice (first at rows[0])"),
        (rq.ImportUsageRequest([]), "rows: no usage rows"),
        (rq.ImportUsageRequest([[f"u{i}@x.test", 1.0] for i in range(10_001)]),
         "rows: at most 10,000 rows in one update (send a larger file in parts), got 10,001"),
    ]


async def test_every_poison_input_is_refused_at_once_and_the_org_still_renews_on_time_once(stack):
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start,
                                        users=[("b@x.test", 1.0)])
        renews_at = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renews_at - timedelta(days=20))  # inside the downgrade window
        for request, message in poison(org_id):
            await assert_refused(stack, org_id, request, message)
        # A usage feed's signal has no validator: a poison report is dropped by the workflow,
        # never sent to an activity that would fail on it.
        before = len((await stack.handle(org_id).fetch_history()).events)
        await stack.handle(org_id).signal(rq.SetUsageRequest("b@x.test", float("inf")))
        await stack.settle(org_id)
        after = (await stack.handle(org_id).fetch_history()).events[before:]
        assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED in [e.event_type for e in after]
        assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in [e.event_type for e in after]

        await stack.advance_to(renews_at + timedelta(hours=1))
        state = await stack.state(org_id)
    with stack.db.transaction() as session:
        payments = session.execute(select(Payment.amount, Payment.created_at)).all()
    assert state.snapshot.status == "active" and state.snapshot.renews_at > renews_at
    [(amount, charged_at)] = payments  # once
    assert amount == 2 * 300 and renews_at <= charged_at < renews_at + timedelta(minutes=1)  # two users, on time


async def test_a_value_the_database_refuses_fails_the_request_at_once_and_frees_the_org(stack):
    """Maxima configured beyond what a column holds (10**16 GB is more MB than a BIGINT): the
    validator lets it through, PostgreSQL refuses it. The request fails at once with the cause;
    the next request is served and the renewal runs."""
    stack = stack.with_policy(limits=Limits(gb_per_mailbox=10**17))
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start)
        admin = f"admin@{org_id}.test"
        before = db_fingerprint(stack.db, org_id)
        with pytest.raises(Exception) as refused:
            await stack.send(org_id, rq.SetUsageRequest(admin, 1e16))
        assert "the database refused a value" in str(refused.value) and "out of range" in str(refused.value)
        assert db_fingerprint(stack.db, org_id) == before
        outcome = await stack.send(org_id, rq.SetUsageRequest(admin, 3.5))
        assert outcome.message == f"{admin} uses 3.5 GB"
        renews_at = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renews_at + timedelta(hours=1))
        await stack.settle(org_id)
    with stack.db.transaction() as session:
        assert session.scalar(select(User.storage_mb).where(User.email == admin)) == 3584
        assert session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_a_usage_file_is_one_update_all_or_nothing(stack):
    start = await stack.now()
    users = [(f"u{i}@x.test", 0.0) for i in range(40)]
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start, users=users)
        await stack.state(org_id)
        rows = [(email, 2.0 + i) for i, (email, _) in enumerate(users)]
        await assert_refused(stack, org_id, rq.ImportUsageRequest(rows + [("ghost@x.test", 1.0)]),
                             "rows[40]: user: no user ghost@x.test")
        events_before = len((await stack.handle(org_id).fetch_history()).events)
        outcome = await stack.send(org_id, rq.ImportUsageRequest(rows))
        assert outcome.message == "usage of 40 user(s) imported"
        await stack.settle(org_id)
        # One Update for 40 rows: its decision (with one storage check of the whole org), one e-mail
        # for the users it blocked (over the plan's quota).
        after = (await stack.handle(org_id).fetch_history()).events[events_before:]
        assert [e.event_type for e in after].count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 1
        assert activities_run(after) == ["apply_change", "send_email"]
    with stack.db.transaction() as session:
        stored = dict(session.execute(select(User.email, User.storage_mb).where(User.org_id == org_id)).all())
    assert [stored[email] for email, _ in rows[:3]] == [2048, 3072, 4096]


async def test_a_user_added_is_known_to_the_validator_at_once(stack):
    """The roster learns an added user from the decision: a usage report for them is accepted,
    a second add is refused by the validator (no history event)."""
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start, licences=3)
        await stack.send(org_id, rq.AddUserRequest("New@X.test"))
        await assert_refused(stack, org_id, rq.AddUserRequest("new@x.test"),
                             f"email: new@x.test is already a user of {org_id}")
        outcome = await stack.send(org_id, rq.SetUsageRequest("new@x.test", 1))
        assert outcome.message == "new@x.test uses 1 GB"


def test_limits_come_from_the_settings(monkeypatch):
    from workers.runtime.config import Settings
    monkeypatch.setenv("BILLING_MAX_UNITS_PER_PURCHASE", "5")
    monkeypatch.setenv("BILLING_MAX_GB_PER_MAILBOX", "2000")
    limits = Settings().policy.limits
    assert (limits.units_per_purchase, limits.gb_per_mailbox, limits.licences_per_org) == (5, 2000, 100_000)
    assert replace(limits, units_per_purchase=7).units_per_purchase == 7
