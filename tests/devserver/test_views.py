"""What operators see matches the database after each lifecycle step: the `state` query, the
current details (Temporal UI "Current Details"), the search attributes and memo from describe().

Key moments are a few seconds after creation: the dev server runs on the wall clock."""

from datetime import datetime, timedelta

import pytest

from domain.subscription import OrgSnapshot
from tests.devserver.support import DECLINING, current_details, db_snapshot, eventually, paid_org_renewing_at
from workflows import search_attributes as sa

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]

LEAD = timedelta(seconds=5)  # from creation to the trial end / renewal: time to look at the step before


def close(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and abs(a - b) < timedelta(milliseconds=1)


async def views_match_database(stack, org_id: str, status: str, next_at: datetime | None, attempts: int = 0):
    """Poll until the workflow reached `status` with `next_at` as its next step, then compare
    every view with the database snapshot."""
    handle = stack.handle(org_id)

    async def reached():
        view = await stack.state(org_id)
        assert str(view.snapshot.status) == status and view.snapshot.dunning_attempts == attempts
        assert view.next_action_at == next_at, f"next action at {view.next_action_at}, expected {next_at}"
        return view
    view = await eventually(reached)
    stored: OrgSnapshot = db_snapshot(stack, org_id)

    # The state query carries the very snapshot the database holds.
    assert view.snapshot == stored

    # Current details: "**<status>** on <plan>: next, <step> (at <when> UTC | no timer)".
    details = await current_details(handle)
    assert details.startswith(f"**{stored.status}** on {stored.plan}: next, {view.next_action}"), details
    assert (f"at {next_at:%Y-%m-%d %H:%M} UTC" if next_at else "no timer") in details

    # describe(): search attributes from the workflow's mutable state, and the memo. On the
    # dev server this decodes fine even after NextActionAt was unset (see docs/operations.md).
    async def described():
        description = await handle.describe()
        attrs = description.typed_search_attributes
        assert attrs.get(sa.ORG_ID) == org_id
        assert attrs.get(sa.ORG_STATUS) == str(stored.status)
        assert attrs.get(sa.PLAN) == stored.plan
        assert attrs.get(sa.BILLING_CYCLE) == (str(stored.cycle) if stored.cycle else "none")
        assert attrs.get(sa.DUNNING_ATTEMPT) == stored.dunning_attempts
        assert attrs.get(sa.LARGE_ACCOUNT) is stored.large_account
        if next_at is None:
            # Unset really removes it (the time-skipping test server keeps a "Datetime"-typed
            # null instead, on which the SDK's describe() raises TypeError in fromisoformat).
            assert attrs.get(sa.NEXT_ACTION_AT) is None
            raw = description.raw_description.workflow_execution_info.search_attributes
            assert sa.NEXT_ACTION_AT.name not in raw.indexed_fields
        else:
            assert close(attrs.get(sa.NEXT_ACTION_AT), next_at), attrs.get(sa.NEXT_ACTION_AT)
        return description
    description = await eventually(described, timeout=5)
    assert await description.memo_value("org_name") == stored.name
    assert await description.memo_value("admin_email") == stored.admin_email
    # The static summary is given at start only: continue-as-new (SDK 1.35) cannot carry it,
    # so later runs show none; the current details above are what every run keeps fresh.
    info = description.raw_description.workflow_execution_info
    if info.first_run_id == description.run_id:
        assert await description.static_summary() == f"Lifecycle of org {org_id} ({stored.name})"
    return view


async def test_trial_end_and_declined_renewal_keep_query_details_and_search_attributes_in_line_with_db(dev_stack):
    stack = dev_stack
    async with stack.worker():
        now = await stack.now()
        trial = await stack.create_org(start=now - timedelta(days=stack.policy.trial_days) + LEAD,
                                       users=[("budi@toko.test", 1.0)])
        renewal = (now + LEAD).replace(microsecond=0) + timedelta(seconds=1)
        paid = await paid_org_renewing_at(stack, renewal, DECLINING)

        # Step 1: still trialing, the trial end is next (reminders this late are the policy's
        # business, not checked here); the renewal is not due yet.
        trial_ends = db_snapshot(stack, trial).trial_ends_at
        await views_match_database(stack, trial, "trialing", next_at=trial_ends)
        await views_match_database(stack, paid, "active", next_at=renewal)

        # Step 2: the trial ended on the free plan (no timer left); the renewal was declined
        # (past due, attempt 1, the day-1 retry is next).
        await views_match_database(stack, trial, "free", next_at=None)
        first_retry = renewal + timedelta(days=stack.policy.retry_days[0])
        view = await views_match_database(stack, paid, "past_due", next_at=first_retry, attempts=1)
        assert view.snapshot.plan == "standard" and view.snapshot.dunning_invoice is not None
