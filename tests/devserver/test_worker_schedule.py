"""A new stack gets the nightly reconciliation: the worker creates the schedule at start
(BILLING_RECONCILE_SCHEDULE=true, as deploy/ sets it) and runs it once, so the last-run gauge
exists before the first night and BillingReconciliationStale stays quiet."""

import asyncio
import contextlib

import pytest
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError

from activities.reconcile import ReconcileReport
from tests.devserver.support import eventually
from tests.support.smtp import free_port
from workers.runtime.config import Settings
from workers.runtime.worker import run_worker
from workflows.reconcile import RECONCILE_SCHEDULE_ID

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


@contextlib.asynccontextmanager
async def running_worker(settings: Settings):
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)


async def test_the_worker_creates_the_schedule_runs_it_once_and_keeps_it_on_its_task_queue(dev_stack, pg_url):
    stack = dev_stack
    client = stack.client
    settings = Settings(temporal_address=client.service_client.config.target_host,
                        temporal_task_queue=stack.task_queue, database_url=pg_url, metrics_port=free_port(),
                        reconcile_schedule=True)
    handle = client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    try:
        async with running_worker(settings):
            async def ran_once():
                description = await handle.describe()
                assert description.schedule.action.task_queue == stack.task_queue
                [first] = description.info.recent_actions
                return first.action.workflow_id
            workflow_id = await eventually(ran_once, timeout=20)
            report = await client.get_workflow_handle(workflow_id, result_type=ReconcileReport).result()
            assert report.checked == 0 and report.disagreements == []

        # Restarted on another task queue: the schedule follows it, and is not run again.
        moved = settings.model_copy(update={"temporal_task_queue": f"{stack.task_queue}-moved",
                                            "metrics_port": free_port()})
        async with running_worker(moved):
            async def followed():
                description = await handle.describe()
                action = description.schedule.action
                assert isinstance(action, ScheduleActionStartWorkflow)
                assert action.task_queue == f"{stack.task_queue}-moved"
                return description
            description = await eventually(followed, timeout=20)
        assert len(description.info.recent_actions) == 1
        calendar = description.schedule.spec.calendars[0]
        assert [r.start for r in calendar.hour] == [2] and [r.start for r in calendar.minute] == [30]
    finally:
        with contextlib.suppress(RPCError):
            await handle.delete()


def test_workers_leave_the_schedule_alone_unless_told():
    assert Settings().reconcile_schedule is False
