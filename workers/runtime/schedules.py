"""The nightly reconciliation as a Temporal Schedule (idempotent to create). The worker creates it at
start when BILLING_RECONCILE_SCHEDULE is true, as deploy/ sets it, so a new stack has it."""

from datetime import timedelta

from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError,
                               ScheduleCalendarSpec, ScheduleOverlapPolicy, SchedulePolicy, ScheduleRange,
                               ScheduleSpec, ScheduleUpdate, ScheduleUpdateInput)

from activities.reconcile import ReconcileReport
from workers.runtime.config import Settings
from workers.runtime.temporal import connect
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ReconcileWorkflow


async def create_reconcile_schedule(client: Client, task_queue: str) -> bool:
    """Created once (True: created now). When it exists, only its task queue follows ours: runs
    left on a queue no worker polls would never start, while its time, a pause or a note set by
    ops stay."""
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
        await client.get_schedule_handle(RECONCILE_SCHEDULE_ID).update(_on_task_queue(task_queue))
        return False
    return True


async def reconcile_schedule_at_start(client: Client, task_queue: str) -> None:
    """What a worker does at start with BILLING_RECONCILE_SCHEDULE=true. On a new stack the schedule
    also runs once now: the last-run gauge then exists before the first night, and
    BillingReconciliationStale (which fires when none was seen) stays quiet."""
    if await create_reconcile_schedule(client, task_queue):
        await client.get_schedule_handle(RECONCILE_SCHEDULE_ID).trigger()


def _on_task_queue(task_queue: str):
    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        action = current.description.schedule.action
        if not isinstance(action, ScheduleActionStartWorkflow) or action.task_queue == task_queue:
            return None   # nothing to change: no update is sent
        action.task_queue = task_queue
        return ScheduleUpdate(schedule=current.description.schedule)
    return update


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
