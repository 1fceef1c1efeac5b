"""Visibility: the custom search attributes the org workflow upserts let operations find orgs
with list/count queries (what the Temporal UI's search box runs). The dev server only: the
time-skipping server has no visibility store."""

from datetime import timedelta

import pytest

from tests.devserver.support import (DECLINING, GOOD, db_snapshot, eventually, paid_org_renewing_at, utc_query,
                                     wait_visible, wf_id)

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


async def settled(stack, org_id: str, status: str, attempts: int = 0):
    async def probe():
        view = await stack.state(org_id)
        assert str(view.snapshot.status) == status and view.snapshot.dunning_attempts == attempts, \
            f"{org_id}: {view.snapshot.status} after {view.snapshot.dunning_attempts} attempt(s)"
        return view
    return await eventually(probe)


LARGE = 3  # licences that make an org "large" in this test (the default is 100)


async def test_visibility_queries_find_orgs_by_status_plan_dunning_attempt_and_next_action(dev_stack):
    stack = dev_stack.with_policy(large_account_licences=LARGE, retry_days=(1, 3, 5, 7))
    client = stack.client
    async with stack.worker():
        now = await stack.now()
        trialing = await stack.create_org(start=now)
        free = await stack.create_org(start=now - timedelta(days=stack.policy.trial_days, minutes=1))
        active = await paid_org_renewing_at(stack, now + timedelta(days=20), GOOD)
        # Renewal due a minute ago: one declined charge, next retry tomorrow.
        once = await paid_org_renewing_at(stack, now - timedelta(minutes=1), DECLINING)
        # Renewal due three days ago: declined, then the day-1 and day-3 retries (also past) declined.
        thrice = await paid_org_renewing_at(stack, now - timedelta(days=3, minutes=1), DECLINING)
        # A large org whose whole ladder (renewal + retries on days 1, 3, 5, 7) is past: escalated.
        escalated = await paid_org_renewing_at(stack, now - timedelta(days=7, minutes=1), DECLINING, licences=LARGE)

        await settled(stack, trialing, "trialing")
        await settled(stack, free, "free")
        await settled(stack, active, "active")
        await settled(stack, once, "past_due", attempts=1)
        await settled(stack, thrice, "past_due", attempts=3)
        await settled(stack, escalated, "escalated", attempts=1 + len(stack.policy.retry_days))

        ours = f'TaskQueue = "{stack.task_queue}" AND ExecutionStatus = "Running"'
        expectations = {
            'OrgStatus = "past_due"': {once, thrice},
            'OrgStatus = "past_due" AND DunningAttempt >= 2': {thrice},
            'OrgStatus = "past_due" AND DunningAttempt >= 3': {thrice},
            "DunningAttempt = 1": {once},
            "DunningAttempt >= 3": {thrice, escalated},
            'OrgStatus IN ("past_due", "escalated")': {once, thrice, escalated},
            'LargeAccount = true AND OrgStatus = "escalated"': {escalated},
            'Plan = "free"': {free},
            'OrgStatus = "trialing"': {trialing},
            'OrgStatus = "active"': {active},
            f'OrgId = "{thrice}"': {thrice},
            "LargeAccount = false": {trialing, free, active, once, thrice},
            # Retries are due in 1 and 2 days; the trial reminder in 12, the renewal in 20, the
            # escalated org's next renewal in some 3 weeks (it is invoiced on its date while it
            # waits for staff); a free org has no timer, hence no NextActionAt at all.
            f'NextActionAt < "{utc_query(now + timedelta(days=3))}"': {once, thrice},
            f'NextActionAt > "{utc_query(now + timedelta(days=3))}"': {trialing, active, escalated},
            "NextActionAt IS NULL": {free},
        }
        for query, org_ids in expectations.items():
            await wait_visible(client, f"{ours} AND {query}", {wf_id(o) for o in org_ids})

        # The search attributes agree with the database, org by org.
        everyone = [trialing, free, active, once, thrice, escalated]
        for org_id in everyone:
            stored = db_snapshot(stack, org_id)
            await wait_visible(client, f'{ours} AND OrgId = "{org_id}" AND OrgStatus = "{stored.status}" '
                                       f'AND Plan = "{stored.plan}" AND DunningAttempt = {stored.dunning_attempts}',
                               {wf_id(org_id)})
        cycles = {str(db_snapshot(stack, o).cycle or "none") for o in everyone}
        for cycle in cycles:
            await wait_visible(client, f'{ours} AND BillingCycle = "{cycle}"',
                               {wf_id(o) for o in everyone if str(db_snapshot(stack, o).cycle or "none") == cycle})
