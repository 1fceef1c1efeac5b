"""Small helpers for dev-server tests: bounded polling, dates a few seconds away, visibility."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar


from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle

from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from services.orgs import create_org
from db.snapshots import load_state
from domain.periods import anchor_renewing_at
from domain.subscription import OrgSnapshot
from domain.states import Cycle
from tests.support.stack import Stack

T = TypeVar("T")

DECLINING = "4000000000000341"
GOOD = "4242424242424242"


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.1) -> T:
    """Call `probe` until it returns without an AssertionError (or RPC/query error), at most
    `timeout` seconds; then let its last error through."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await probe()
        except Exception:  # noqa: BLE001  (assertion not met yet, or workflow still loading)
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(interval)


async def paid_org_renewing_at(stack: Stack, renewal: datetime, card: str, plan: str = "standard",
                               **fields) -> str:
    start, cycle = anchor_renewing_at(renewal, Cycle.MONTHLY)
    return await stack.create_org(plan=plan, cycle=str(cycle), card=card, start=start, **fields)


def create_db_only_org(stack: Stack, org_id: str, start: datetime, **fields) -> str:
    """An org in the database with no workflow (what reconciliation exists for)."""
    fields.setdefault("name", f"Org {org_id}")
    fields.setdefault("admin_email", f"admin@{org_id}.test")
    new = validate_new_org(NewOrg(id=org_id, users=[NewUser(e, gb) for e, gb in fields.pop("users", [])],
                                  **fields), stack.catalog)
    with stack.db.transaction() as session:
        create_org(session, paid_for_one_cycle(new, start, "tests"), stack.catalog, stack.policy, start)
    return org_id


def db_snapshot(stack: Stack, org_id: str) -> OrgSnapshot:
    with stack.db.transaction() as session:
        return load_state(session, org_id, stack.policy)


async def current_details(handle: WorkflowHandle) -> str:
    """What the UI shows as "current details": set by workflow.set_current_details and read
    through the SDK's built-in `__temporal_workflow_metadata` query (describe() carries only
    the static summary/details given at start)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def visible_ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def wait_visible(client: Client, query: str, expected: set[str], timeout: float = 10.0) -> set[str]:
    """Visibility is eventually consistent: poll until `query` lists exactly `expected`
    (and count_workflows agrees)."""
    async def probe() -> set[str]:
        found = await visible_ids(client, query)
        assert found == expected, f"{query!r}: found {sorted(found)}, expected {sorted(expected)}"
        count = (await client.count_workflows(query)).count
        assert count == len(expected), f"{query!r}: count {count}, expected {len(expected)}"
        return found
    return await eventually(probe, timeout=timeout, interval=0.2)


def wf_id(org_id: str) -> str:
    return f"org-{org_id}"


def utc_query(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
