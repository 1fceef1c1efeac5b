"""`billing org list` on the real dev server: the visibility query over the search attributes
the org workflow publishes answers, every filter narrows it, and the database fallback gives the
same orgs with the same fields when Temporal is out of reach (or lacks the attributes)."""

import json
from datetime import datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.binaries import temporal_cli_or_skip
from tests.devserver.support import DECLINING, GOOD, paid_org_renewing_at, wait_visible, wf_id
from tests.devserver.test_visibility import settled
from tests.support.cli import billing, stack_env

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]

LARGE = 3  # licences that make an org "large" here, for the workflow and the CLI alike


def by_id(answer: dict) -> dict[str, dict]:
    return {row["org_id"]: row for row in answer["orgs"]}


async def test_org_list_json_from_visibility_with_filters_and_the_same_from_the_database(dev_stack):
    stack = dev_stack.with_policy(large_account_licences=LARGE, retry_days=(1, 3, 5, 7))
    env = stack_env(stack, BILLING_LARGE_ACCOUNT_LICENCES=str(LARGE), BILLING_RETRY_DAYS="1,3,5,7")
    async with stack.worker():
        now = await stack.now()
        trialing = await stack.create_org(start=now)
        free = await stack.create_org(start=now - timedelta(days=stack.policy.trial_days, minutes=1))
        active = await paid_org_renewing_at(stack, now + timedelta(days=20), GOOD)
        once = await paid_org_renewing_at(stack, now - timedelta(minutes=1), DECLINING)
        escalated = await paid_org_renewing_at(stack, now - timedelta(days=7, minutes=1), DECLINING, licences=LARGE)
        await settled(stack, trialing, "trialing")
        await settled(stack, free, "free")
        await settled(stack, active, "active")
        await settled(stack, once, "past_due", attempts=1)
        await settled(stack, escalated, "escalated", attempts=5)
        everyone = {trialing, free, active, once, escalated}
        await wait_visible(stack.client, f'TaskQueue = "{stack.task_queue}" AND OrgStatus = "escalated" '
                                         'AND LargeAccount = true', {wf_id(escalated)})

        async def listed(*filters: str, **settings: str) -> dict:
            run = await billing("org", "list", "--json", *filters, **{**env, **settings})
            assert run.code == 0, run
            return json.loads(run.out)

        answer = await listed()
        assert answer["source"] == "temporal" and answer["fallback_reason"] is None
        rows = by_id(answer)
        assert set(rows) == everyone
        assert rows[once] | {"next_action_at": None} == {
            "org_id": once, "name": f"Org {once}", "status": "past_due", "plan": "standard", "cycle": "monthly",
            "large_account": False, "dunning_attempt": 1, "next_action_at": None, "scheduled_change": None}
        assert rows[escalated]["large_account"] is True and rows[escalated]["dunning_attempt"] == 5
        assert rows[free]["plan"] == "free" and rows[free]["next_action_at"] is None
        assert rows[trialing]["cycle"] == "none" and rows[trialing]["status"] == "trialing"

        three_days = (now + timedelta(days=3)).isoformat()
        filters = {("--status", "past_due", "--status", "escalated"): {once, escalated},
                   ("--plan", "free"): {free},
                   ("--cycle", "none"): {trialing, free},
                   ("--large",): {escalated},
                   ("--not-large", "--plan", "standard"): {active, once},
                   ("--next-action-before", three_days): {once},
                   ("--status", "active", "--next-action-before", three_days): set()}
        for argv, expected in filters.items():
            assert set(by_id(await listed(*argv))) == expected, argv

        # Temporal out of reach: the database answers, with the same orgs and the same fields.
        fallback = await listed(BILLING_TEMPORAL_ADDRESS="127.0.0.1:1")
        assert fallback["source"] == "database" and "check BILLING_TEMPORAL_ADDRESS" in fallback["fallback_reason"]
        stored = by_id(fallback)
        assert set(stored) == everyone
        for org_id in everyone:
            seen, kept = rows[org_id], stored[org_id]
            assert {k: v for k, v in seen.items() if k != "next_action_at"} == \
                {k: v for k, v in kept.items() if k != "next_action_at"}, org_id
            if seen["next_action_at"] is None:
                assert kept["next_action_at"] is None, org_id
            else:
                gap = datetime.fromisoformat(seen["next_action_at"]) - datetime.fromisoformat(kept["next_action_at"])
                assert abs(gap) < timedelta(seconds=1), org_id
        for argv, expected in filters.items():
            assert set(by_id(await listed(*argv, BILLING_TEMPORAL_ADDRESS="127.0.0.1:1"))) == expected, argv

        table = await billing("org", "list", "--status", "escalated", **env)
        assert table.code == 0 and table.err_lines[0].startswith("answered by Temporal visibility (namespace default")
        [line] = [line for line in table.out.splitlines() if escalated in line]
        assert f"Org {escalated}" in line and "escalated" in line and " yes " in line

        # A namespace that does not exist is a setting to fix: exit 3, naming it.
        run = await billing("org", "upgrade", active, "--plan", "professional",
                            **{**env, "BILLING_TEMPORAL_NAMESPACE": "no-such-namespace"})
        assert run.code == 3 and len(run.err_lines) == 1 and run.err_lines[0].endswith(
            "check BILLING_TEMPORAL_NAMESPACE"), run


async def test_org_list_falls_back_when_visibility_lacks_the_search_attributes(sqlite_url, sqlite_db):
    """A cluster where `billing temporal register-search-attributes` was never run."""
    bare = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_or_skip(), ui=False,
                                                 dev_server_log_level="error")
    try:
        run = await billing("org", "list", "--json", "--status", "active",
                            BILLING_TEMPORAL_ADDRESS=bare.client.service_client.config.target_host,
                            BILLING_DATABASE_URL=sqlite_url)
    finally:
        await bare.shutdown()
    assert run.code == 0, run
    answer = json.loads(run.out)
    assert answer["source"] == "database" and answer["orgs"] == []
    assert "run `billing temporal register-search-attributes`" in answer["fallback_reason"]
