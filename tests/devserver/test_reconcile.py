"""Reconciliation against the dev server: an org that exists only in the database gets its
workflow once, never twice; the nightly Schedule is created idempotently."""

import uuid
from datetime import timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow, WorkflowExecutionStatus

from activities.reconcile import ReconcileReport
from tests.devserver.support import create_db_only_org, eventually, wait_visible, wf_id
from workers.schedules import create_reconcile_schedule
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ReconcileWorkflow

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


async def reconcile(stack) -> ReconcileReport:
    return await stack.client.execute_workflow(ReconcileWorkflow.run, id=f"reconcile-{uuid.uuid4().hex[:8]}",
                                               task_queue=stack.task_queue, result_type=ReconcileReport,
                                               execution_timeout=timedelta(seconds=30))


async def test_reconcile_starts_a_missing_workflow_once_not_twice(dev_stack):
    stack = dev_stack
    async with stack.worker():
        now = await stack.now()
        running = await stack.create_org(start=now)  # has its workflow already
        missing = create_db_only_org(stack, f"lost{uuid.uuid4().hex[:8]}", start=now, plan="standard",
                                     cycle="monthly")
        stack.started.append(missing)  # terminated at the end of the test
        await eventually(lambda: stack.state(running))  # loaded: answers the state query

        first = await reconcile(stack)
        assert first.checked == 2
        assert first.started == [missing]
        handle = stack.handle(missing)
        view = await eventually(lambda: stack.state(missing))  # the new workflow loaded the org
        assert str(view.snapshot.status) == "active" and view.snapshot.plan == "standard"
        run_id = (await handle.describe()).run_id

        second = await reconcile(stack)
        assert second.checked == 2
        assert second.started == []
        assert second.disagreements == []

        description = await handle.describe()
        assert description.run_id == run_id and description.status == WorkflowExecutionStatus.RUNNING
        # Exactly one run of org-<id>, ever (visibility lists closed runs too).
        await wait_visible(stack.client, f'WorkflowId = "{wf_id(missing)}"', {wf_id(missing)})
        runs = [w async for w in stack.client.list_workflows(f'WorkflowId = "{wf_id(missing)}"')]
        assert [w.run_id for w in runs] == [run_id]


async def test_reconcile_schedule_is_created_idempotently_and_its_run_finds_nothing_to_start(dev_stack):
    stack = dev_stack
    client = stack.client
    await create_reconcile_schedule(client, stack.task_queue)
    await create_reconcile_schedule(client, stack.task_queue)  # already there: no error, no second one
    handle = client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
    try:
        description = await handle.describe()
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "Reconcile" and action.task_queue == stack.task_queue
        calendar = description.schedule.spec.calendars[0]
        assert [r.start for r in calendar.hour] == [2] and [r.start for r in calendar.minute] == [30]

        async def listed_once():
            ids = [s.id async for s in await client.list_schedules()]
            assert ids.count(RECONCILE_SCHEDULE_ID) == 1, ids
        await eventually(listed_once)

        # Trigger it now: the scheduled run reconciles this test's (here: workflow-backed) orgs.
        async with stack.worker():
            org = await stack.create_org(start=await stack.now())
            await eventually(lambda: stack.state(org))
            await handle.trigger()

            async def ran():
                recent = (await handle.describe()).info.recent_actions
                assert recent, "the triggered action has not started yet"
                return recent[-1].action.workflow_id
            workflow_id = await eventually(ran)
            report = await client.get_workflow_handle(workflow_id, result_type=ReconcileReport).result()
        assert report.checked == 1 and report.started == [] and report.disagreements == []
    finally:
        await handle.delete()
