"""Storage quotas: blocking on plan changes, unblocking, allocation and auto-allocation."""

from datetime import timedelta

import pytest

from domain import requests as rq
from workers.runtime.operations import OperationRefused

GOOD = "4242424242424242"
STAFF = "rina@billing.test"


async def test_trial_expiry_blocks_exactly_the_users_over_five_gb(stack, smtp_sink):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(start=start, users=[("a@x.test", 3.0), ("b@x.test", 5.0),
                                                            ("c@x.test", 5.1), ("d@x.test", 12.0)])
        await stack.advance_to(start + timedelta(days=15, minutes=5))
        state = await stack.state(org_id)
    assert state.snapshot.blocked_users == ["c@x.test", "d@x.test"]
    [to_admin] = [m for m in smtp_sink.for_org(org_id, "storage_blocked") if m.recipients == [f"admin@{org_id}.test"]]
    assert "c@x.test" in to_admin.part("plain") and "d@x.test" in to_admin.part("plain")
    blocked_mails = {m.recipients[0] for m in smtp_sink.for_org(org_id, "storage_blocked")}
    assert blocked_mails == {f"admin@{org_id}.test", "c@x.test", "d@x.test"}


async def test_free_plan_blocks_the_two_newest_users_beyond_the_cap_never_the_admin(stack):
    async with stack.worker():
        start = await stack.now()
        users = [(f"u{i}@x.test", 0.5) for i in range(1, 7)]  # + the admin: 7 users
        org_id = await stack.create_org(start=start, users=users)
        await stack.advance_to(start + timedelta(days=15, minutes=5))
        state = await stack.state(org_id)
    assert state.snapshot.blocked_users == ["u5@x.test", "u6@x.test"]


async def test_downgrade_to_standard_blocks_users_over_30_gb_unless_units_cover_them(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD,
                                        users=[("big@x.test", 45.0), ("covered@x.test", 50.0), ("ok@x.test", 29.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=20))
        await stack.send(org_id, rq.BuyStorageRequest(unit_gb=25, count=1))
        await stack.send(org_id, rq.AllocateStorageRequest(user="covered@x.test", unit_gb=25))
        with pytest.raises(OperationRefused, match="no unallocated 25 GB unit left"):
            await stack.send(org_id, rq.AllocateStorageRequest(user="big@x.test", unit_gb=25))
        await stack.send(org_id, rq.DowngradeRequest("standard", requested_by=STAFF,
                                                                           reason="cost"))
        await stack.advance_to(renewal + timedelta(minutes=5))
        state = await stack.state(org_id)
        assert state.snapshot.plan == "standard"
        assert state.snapshot.blocked_users == ["big@x.test"]  # covered: 30 + 25 GB >= 50 GB

        await stack.send(org_id, rq.SetUsageRequest(user="big@x.test", storage_gb=20.0))
        assert (await stack.state(org_id)).snapshot.blocked_users == []
    assert len(smtp_sink.for_org(org_id, "user_unblocked")) == 1


async def test_auto_allocation_prevents_a_block_only_while_a_unit_is_free(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, auto_allocate_storage=True,
                                        users=[("b@x.test", 10.0), ("c@x.test", 10.0)])
        await stack.send(org_id, rq.BuyStorageRequest(unit_gb=5, count=1))
        await stack.send(org_id, rq.SetUsageRequest(user="b@x.test", storage_gb=33.0))
        state = await stack.state(org_id)
        assert state.snapshot.blocked_users == []
        assert [(h.unit_gb, h.allocated) for h in state.snapshot.storage] == [(5, 1)]
        assert len(smtp_sink.for_org(org_id, "storage_auto_allocated")) == 1

        await stack.send(org_id, rq.SetUsageRequest(user="c@x.test", storage_gb=31.0))
        state = await stack.state(org_id)
        assert state.snapshot.blocked_users == ["c@x.test"]


async def test_usage_reports_arrive_as_signals_too(stack):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, users=[("b@x.test", 1.0)])
        await stack.handle(org_id).signal("usage_reported", rq.SetUsageRequest(user="b@x.test", storage_gb=31.0))
        for _ in range(50):
            state = await stack.state(org_id)
            if state.snapshot.blocked_users:
                break
            await stack.env.sleep(timedelta(seconds=1))
    assert state.snapshot.blocked_users == ["b@x.test"]


async def test_a_usage_report_for_an_unknown_user_is_dropped_and_the_org_lives_on(stack):
    """Found in review: the refusal comes back from the activity as an ActivityError, and a
    signal handler that lets one through fails the whole workflow (the org would stop renewing)."""
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, users=[("b@x.test", 1.0)])
        handle = stack.handle(org_id)
        await handle.signal("usage_reported", rq.SetUsageRequest(user="nobody@x.test", storage_gb=31.0))
        await handle.signal("usage_reported", rq.SetUsageRequest(user="b@x.test", storage_gb=31.0))
        for _ in range(50):
            state = await stack.state(org_id)
            if state.snapshot.blocked_users:
                break
            await stack.env.sleep(timedelta(seconds=1))
        description = await handle.describe()
    assert state.snapshot.blocked_users == ["b@x.test"]
    assert description.status.name == "RUNNING"


async def test_units_bought_while_a_user_is_blocked_are_allocated_as_many_as_it_takes(stack, smtp_sink):
    """Issue 22: a unit bought while a user is blocked was never allocated, and a user over quota
    by more than one unit's size got one unit and stayed blocked."""
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, auto_allocate_storage=True,
                                        users=[("b@x.test", 38.0), ("c@x.test", 1.0)])
        assert (await stack.state(org_id)).snapshot.blocked_users == ["b@x.test"]   # 38 GB > 30 GB, no unit
        outcome = await stack.send(org_id, rq.BuyStorageRequest(unit_gb=5, count=2))
        assert outcome.payment == "succeeded"
        state = await stack.state(org_id)
    assert state.snapshot.blocked_users == []
    assert [(h.unit_gb, h.owned, h.allocated) for h in state.snapshot.storage] == [(5, 2, 2)]   # 8 GB over: 2 x 5
    [allocated] = smtp_sink.for_org(org_id, "storage_auto_allocated")
    assert allocated.subject == "2 storage units were allocated to b@x.test"
    assert "2 of your organization's unallocated storage units (5 GB, 5 GB)" in allocated.part("plain")
    assert "Their mailbox is unblocked" in allocated.part("plain")
    assert [m.recipients for m in smtp_sink.for_org(org_id, "user_unblocked")] == [[f"admin@{org_id}.test"]]


async def test_a_unit_released_by_a_shrinking_mailbox_unblocks_the_user_waiting_longest(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, auto_allocate_storage=True,
                                        users=[("b@x.test", 50.0), ("c@x.test", 40.0), ("d@x.test", 1.0)])
        await stack.send(org_id, rq.BuyStorageRequest(unit_gb=25, count=1))
        # b and c were blocked at creation, b ranked first: b waited as long and gets the unit.
        assert (await stack.state(org_id)).snapshot.blocked_users == ["c@x.test"]
        await stack.env.sleep(timedelta(hours=1))
        await stack.send(org_id, rq.SetUsageRequest(user="d@x.test", storage_gb=33.0))
        assert (await stack.state(org_id)).snapshot.blocked_users == ["c@x.test", "d@x.test"]
        await stack.send(org_id, rq.SetUsageRequest(user="b@x.test", storage_gb=12.0))
        state = await stack.state(org_id)
    # b's 25 GB unit goes back to the pool and to c, blocked an hour before d.
    assert state.snapshot.blocked_users == ["d@x.test"]
    assert [m.recipients for m in smtp_sink.for_org(org_id, "user_unblocked")] == [[f"admin@{org_id}.test"]] * 2
    given = {m.subject: m.part("plain") for m in smtp_sink.for_org(org_id, "storage_auto_allocated")}
    assert list(given) == ["A 25 GB storage unit was allocated to b@x.test",
                           "A 25 GB storage unit was allocated to c@x.test"]
    assert "Their mailbox is unblocked" in given["A 25 GB storage unit was allocated to c@x.test"]
