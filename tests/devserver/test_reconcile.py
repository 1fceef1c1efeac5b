"""Reconciliation against the dev server: an org that exists only in the database gets its
workflow once, never twice; the nightly Schedule is created idempotently; an org whose activity
keeps failing, or whose due step has not run, is reported, a healthy one is not."""

import contextlib
import re
import uuid
from dataclasses import dataclass, fields
from datetime import timedelta
from types import SimpleNamespace

import pytest
from temporalio import activity
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus
from temporalio.worker import Worker

from activities.messages import RenewalInput
from activities.reconcile import ReconcileActivities, ReconcileReport
from tests.devserver.support import GOOD, create_db_only_org, eventually, paid_org_renewing_at, wait_visible, wf_id
from workers.runtime.config import Settings
from workers.runtime.org_workflows import TemporalOrgWorkflows
from workers.runtime.schedules import create_reconcile_schedule, stuck_after
from workers.runtime.worker import Components, build_worker
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


# ---- stuck orgs ----------------------------------------------------------------------------------

BROKEN = "relation is on fire\nDETAIL:  the database cannot store this value"


@dataclass
class RenewalFailsFor(Components):
    """The real activities, except that `open_renewal` fails (retryably, as a database error
    would) for one org: its renewal is retried without limit and never runs."""
    org_id: str = ""

    def activities(self, mail=None) -> list:  # noqa: ANN001  (as Components.activities)
        real = super().activities(mail)
        renew = next(fn for fn in real if fn.__name__ == "open_renewal")

        @activity.defn(name="open_renewal")
        def open_renewal(request: RenewalInput):
            if request.org_id == self.org_id:
                raise RuntimeError(BROKEN)
            return renew(request)
        return [open_renewal if fn is renew else fn for fn in real]


@contextlib.asynccontextmanager
async def stuck_org_stack(stack, client: Client | None = None, stuck_after: timedelta = timedelta(seconds=2)):
    """Org workflows on the stack's task queue, where one org's renewal keeps failing, and the
    Reconcile workflow with a threshold of seconds on a task queue of its own (the worker's
    wiring keeps the configured 15 minutes). Yields (stuck org, healthy org, reconcile queue):
    both renewals were due a minute ago; the healthy one has renewed."""
    client = client or stack.client
    base = stack.components()
    stuck_id = f"stuck{uuid.uuid4().hex[:8]}"
    components = RenewalFailsFor(**{f.name: getattr(base, f.name) for f in fields(Components)}, org_id=stuck_id)
    reconcile_queue = f"{stack.task_queue}-reconcile"
    reconciler = ReconcileActivities(stack.db, stack.policy, TemporalOrgWorkflows(client, stack.task_queue),
                                     stuck_after=stuck_after)
    async with build_worker(client, stack.task_queue, components, graceful_shutdown=timedelta(seconds=5)), \
            Worker(client, task_queue=reconcile_queue, workflows=[ReconcileWorkflow],
                   activities=[reconciler.reconcile_orgs]):
        now = await stack.now()
        stuck = await paid_org_renewing_at(stack, now - timedelta(minutes=1), GOOD, org_id=stuck_id)
        healthy = await paid_org_renewing_at(stack, now - timedelta(minutes=1), GOOD)

        async def renewed():
            assert (await stack.state(healthy)).snapshot.renews_at > now
        await eventually(renewed)
        yield stuck, healthy, reconcile_queue


async def reconcile_on(client: Client, task_queue: str) -> ReconcileReport:
    return await client.execute_workflow(ReconcileWorkflow.run, id=f"reconcile-{uuid.uuid4().hex[:8]}",
                                         task_queue=task_queue, result_type=ReconcileReport,
                                         execution_timeout=timedelta(seconds=30))


async def until_stuck_reported(client: Client, task_queue: str) -> ReconcileReport:
    """The failing renewal passes the threshold a few retries after it starts: reconcile until then."""
    async def reported():
        report = await reconcile_on(client, task_queue)
        assert report.activity_failing == 1, report
        return report
    return await eventually(reported, timeout=30, interval=0.5)


async def test_reconcile_reports_an_org_whose_activity_keeps_failing_and_whose_step_is_overdue(dev_stack):
    stack = dev_stack
    async with stuck_org_stack(stack) as (stuck, healthy, reconcile_queue):
        report = await until_stuck_reported(stack.client, reconcile_queue)

        assert report.checked == 2 and report.started == []
        assert (report.activity_failing, report.step_overdue) == (1, 1)
        assert all(line.startswith(f"{stuck}: ") for line in report.disagreements), report.disagreements
        failing, overdue = report.disagreements
        # Names the org, the activity, the attempts, how long, and the last error on one line.
        assert re.fullmatch(rf"{stuck}: activity open_renewal failing for \d+s \(attempt \d+\), "
                            r"last error: RuntimeError: relation is on fire DETAIL: the database cannot "
                            r"store this value", failing), failing
        assert int(re.search(r"attempt (\d+)", failing).group(1)) >= 2
        assert "\n" not in failing
        # Its renewal was due a minute before its workflow started, and has not run since.
        assert re.fullmatch(rf"{stuck}: step due at \S+ \S+ UTC not run \(\d+s since its run started at "
                            r"\S+ \S+ UTC\)", overdue), overdue
        assert not any(healthy in line for line in report.disagreements)

        # The threshold counts: with the default 15 minutes nothing here is stuck yet.
        patient = ReconcileActivities(stack.db, stack.policy, TemporalOrgWorkflows(stack.client, stack.task_queue))
        async with Worker(stack.client, task_queue=f"{reconcile_queue}-patient", workflows=[ReconcileWorkflow],
                          activities=[patient.reconcile_orgs]):
            calm = await reconcile_on(stack.client, f"{reconcile_queue}-patient")
        assert (calm.activity_failing, calm.step_overdue, calm.disagreements) == (0, 0, [])


def test_the_threshold_comes_from_the_settings_with_15_minutes_by_default():
    assert stuck_after(Settings()) == timedelta(minutes=15)
    assert stuck_after(SimpleNamespace(stuck_activity_minutes=3)) == timedelta(minutes=3)
