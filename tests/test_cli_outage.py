"""A change sent while the worker's database is out of reach: the workflow answers the Update
as `unavailable` (not as a refusal) and `billing` exits 3 naming the cause and the setting,
with nothing changed. The time-skipping server skips the activity's retry backoff."""

import asyncio
from dataclasses import replace
from datetime import timedelta

from activities.errors import database_address
from activities.payments import SandboxGateway
from db.session import Database
from tests.support.cli import billing, stack_env
from tests.support.smtp import free_port
from workers.runtime.worker import build_worker

GOOD = "4242424242424242"


async def test_a_change_while_the_workers_database_is_down_exits_3_naming_the_cause(stack):
    workers_db = Database(stack.db.url)   # the worker's own: it goes down under the running worker
    closed = free_port()
    unreachable = Database(f"postgresql+psycopg2://billing:secret@127.0.0.1:{closed}/billing")
    components = replace(stack.components(), db=workers_db, gateway=SandboxGateway(workers_db))
    try:
        async with build_worker(stack.client, stack.task_queue, components, graceful_shutdown=timedelta(seconds=1)):
            org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
            await stack.settle(org_id)
            vars(workers_db).update(url=unreachable.url, engine=unreachable.engine, _sessions=unreachable._sessions)
            sent = asyncio.create_task(billing("storage", "buy", org_id, "--unit", "25", "--by",
                                               f"admin@{org_id}.test", **stack_env(stack)))
            while not sent.done():   # the retries' backoff, skipped
                await asyncio.sleep(0.5)
                await stack.env.sleep(timedelta(seconds=20))
            run = await sent
            state = await stack.state(org_id)
    finally:
        unreachable.dispose()
    assert run.code == 3 and run.out == "" and len(run.err_lines) == 1, run
    assert run.err_lines[0] == (
        f"error: buy_storage not done: database unreachable: connection refused at {database_address(stack.db.url)}; "
        "try again later (`billing org show` tells whether it was applied); the worker could not use its database: "
        "check the worker's BILLING_DATABASE_URL (the database is unavailable)"), run.err_lines
    assert state.snapshot.storage == [] and state.snapshot.pending is None, state.snapshot   # nothing bought
