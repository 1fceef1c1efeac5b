"""During a database outage the Temporal UI's pending activity says what is wrong in one short line,
and the worker logs one line per attempt, no traceback, each marked as the outage's for the
worker's log to summarise (activities/outages.py)."""

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import workflow
from temporalio.worker import Worker

from activities.messages import RenewalInput
from activities.payments import SandboxGateway
from db.session import Database
from tests.devserver.support import eventually
from tests.support.smtp import free_port
from workers.runtime.worker import build_worker
from workflows.calls import INFRA_RETRY

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


@workflow.defn(sandboxed=False)
class RenewOnce:
    """One renewal as the org workflow schedules it (a regular activity, INFRA_RETRY), on the
    billing worker's task queue."""

    @workflow.run
    async def run(self, task_queue: str, org_id: str) -> None:
        at = datetime(2026, 3, 1, tzinfo=timezone.utc)
        await workflow.execute_activity("open_renewal", RenewalInput(org_id, at, at), task_queue=task_queue,
                                        start_to_close_timeout=timedelta(seconds=60), retry_policy=INFRA_RETRY)


def renewal_log(caplog, workflow_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "temporalio.activity"
            and getattr(r, "temporal_activity", {}).get("workflow_id") == workflow_id]


async def test_an_unreachable_database_shows_as_a_short_message_and_no_traceback(dev_stack, caplog):
    stack = dev_stack
    caplog.set_level(logging.INFO, logger="temporalio.activity")
    closed = free_port()   # where the worker looks for PostgreSQL and nobody answers
    unreachable = Database(f"postgresql+psycopg2://billing:secret@127.0.0.1:{closed}/billing")
    components = replace(stack.components(), db=unreachable, gateway=SandboxGateway(unreachable))
    workflow_id = f"renew-{uuid.uuid4().hex[:8]}"
    try:
        async with build_worker(stack.client, stack.task_queue, components, graceful_shutdown=timedelta(seconds=1)), \
                Worker(stack.client, task_queue=f"{stack.task_queue}-wf", workflows=[RenewOnce]):
            handle = await stack.client.start_workflow(RenewOnce.run, args=[stack.task_queue, "acme"], id=workflow_id,
                                                       task_queue=f"{stack.task_queue}-wf")

            async def retried_three_times():
                [pending] = (await handle.describe()).raw_description.pending_activities
                assert pending.attempt >= 4, pending.attempt
                return pending
            pending = await eventually(retried_three_times, timeout=30, interval=0.5)
            await handle.terminate()
    finally:
        unreachable.dispose()

    failure = pending.last_failure
    assert failure.message == f"database unreachable: connection refused at 127.0.0.1:{closed}"
    assert failure.application_failure_info.type == "database_unavailable"
    assert not failure.application_failure_info.non_retryable
    assert not failure.HasField("cause")
    assert failure.ByteSize() < 2048, failure.ByteSize()   # 7.7 KB with the SQL, before

    records = renewal_log(caplog, workflow_id)
    attempts = [r.temporal_activity["attempt"] for r in records]
    assert attempts == list(range(1, len(attempts) + 1)) and len(attempts) >= 3, attempts
    # An outage, not a bug: no traceback (it was once per activity, SQL and org ids included), and
    # each record says what is out, for the worker's log to summarise (activities/outages.py).
    assert all(r.exc_info is None and r.failure_type == "database_unavailable" for r in records)
    for record in records:
        message = record.getMessage()
        assert message.startswith(f"open_renewal attempt {record.temporal_activity['attempt']} failed "
                                  f"(database_unavailable, retried): database unreachable: connection refused "
                                  f"at 127.0.0.1:{closed}"), message
        assert "\n" not in message
    assert not any(r.getMessage().startswith("Completing activity as failed") for r in caplog.records)
