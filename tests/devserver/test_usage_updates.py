"""Thousands of usage reports to one org, on the real dev server (issue 14): Temporal refuses a
run's 2,001st Update, so the workflow hands over to a new run before (workflows/org.py,
UPDATES_PER_RUN, or sooner when the server suggests it); every report is applied and the org
keeps answering. The suite sends 600; `bench/usage_at_scale.py` sends 5,000."""

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from db.models import User
from domain import requests as rq
from tests.devserver.support import eventually, paid_org_renewing_at
from workflows.org import UPDATES_PER_RUN

GOOD = "4242424242424242"
REPORTS = int(os.environ.get("USAGE_UPDATES", "600"))  # bench/usage_at_scale.py: 5,000


async def test_thousands_of_usage_updates_leave_the_org_working(dev_stack):
    stack, users = dev_stack, 50
    emails = [f"u{i}@x.test" for i in range(users)]
    async with stack.worker():
        renewal = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
        org_id = await paid_org_renewing_at(stack, renewal, GOOD, users=[(email, 0.0) for email in emails])
        await stack.state(org_id)

        async def report(i: int) -> None:  # every report of a user within a round says the same
            await stack.send(org_id, rq.SetUsageRequest(emails[i % users], (i // 250 % 7) / 2))
        began = time.monotonic()
        # Temporal allows 10 Updates in flight per workflow: 8 senders, each waiting for its answer.
        queue = iter(range(REPORTS))

        async def sender() -> None:
            for i in queue:
                await report(i)
        await asyncio.gather(*(sender() for _ in range(8)))
        elapsed = time.monotonic() - began
        outcome = await stack.send(org_id, rq.SetUsageRequest(emails[0], 1))
        runs = await eventually(lambda: _runs(stack, org_id), timeout=20)
    print(f"{REPORTS} usage updates in {elapsed:.0f} s ({REPORTS / elapsed:.0f}/s) over {runs} runs")
    assert outcome.message == f"{emails[0]} uses 1 GB"
    assert runs >= max(2, 1 + REPORTS // UPDATES_PER_RUN)  # handed over, at the latest every 1,000
    with stack.db.transaction() as session:
        usage = dict(session.execute(select(User.email, User.storage_mb).where(User.org_id == org_id)).all())
    last = {emails[i % users]: (i // 250 % 7) / 2 for i in range(REPORTS)}
    last[emails[0]] = 1
    assert all(usage[email] == round(gb * 1024) for email, gb in last.items())


async def _runs(stack, org_id: str) -> int | None:
    count = 0
    async for _ in stack.client.list_workflows(f"WorkflowId = 'org-{org_id}'"):
        count += 1
    return count if count > 1 else None
