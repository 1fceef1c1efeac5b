"""The nightly reconciliation as a Temporal Schedule (idempotent to create)."""

from datetime import timedelta

from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError,
                               ScheduleCalendarSpec, ScheduleOverlapPolicy, SchedulePolicy, ScheduleRange,
                               ScheduleSpec)

from activities.reconcile import ReconcileReport
from workers.config import Settings
from workers.temporal import connect
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ReconcileWorkflow


async def create_reconcile_schedule(client: Client, task_queue: str) -> None:
    try:
        await client.create_schedule(
            RECONCILE_SCHEDULE_ID,
            Schedule(action=ScheduleActionStartWorkflow(ReconcileWorkflow.run, id="billing-reconcile",
                                                        task_queue=task_queue),
                     spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(2)],
                                                                       minute=[ScheduleRange(30)])]),
                     policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                                           catchup_window=timedelta(hours=6))))
    except ScheduleAlreadyRunningError:
        pass


async def ensure_reconcile_schedule(settings: Settings) -> None:
    await create_reconcile_schedule(await connect(settings), settings.temporal_task_queue)


def stuck_after(settings: Settings) -> timedelta:
    """How long an org's activity may keep failing, or its due step stay not run, before
    reconciliation reports the org stuck (BILLING_STUCK_ACTIVITY_MINUTES, 15 by default)."""
    return timedelta(minutes=settings.stuck_activity_minutes)


async def run_reconcile_now(settings: Settings) -> ReconcileReport:
    client = await connect(settings)
    return await client.execute_workflow(ReconcileWorkflow.run, id="billing-reconcile-manual",
                                         task_queue=settings.temporal_task_queue, result_type=ReconcileReport)
