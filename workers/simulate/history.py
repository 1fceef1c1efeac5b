"""Whether the org's workflow has done everything due at an instant, read from the server's
description and the run's history.

A query is not used here: on the test server, a query that arrives while a workflow task is in
flight is held for that task, and when the task ends the run (continue-as-new) the query is
never answered and the clock stays locked."""

import json
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from workers.simulate.clock import ShiftedClock
from workers.simulate.errors import SimulationFailed

if TYPE_CHECKING:
    from temporalio.client import Client

TASK_FAILED = "workflow task failed"


@lru_cache(maxsize=1)
def _history_constants():
    from temporalio.api.enums.v1 import EventType as E
    activity_ends = {E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
                     E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
                     E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
                     E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes"}
    # Events after which the server schedules a workflow task.
    wake_ups = {E.EVENT_TYPE_TIMER_FIRED, E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED}
    run_ends = {E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
                E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED}
    return activity_ends, wake_ups, run_ends


def _next_action_at(payload) -> datetime | None:  # noqa: ANN001
    """The NextActionAt search attribute as the workflow last published it (JSON text)."""
    if payload is None or not payload.data:
        return None
    value = json.loads(payload.data)
    if isinstance(value, list):  # some servers wrap single values
        value = value[0] if value else None
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def workflow_busy(client: "Client", workflow_id: str, instant: datetime,
                        clock: ShiftedClock) -> tuple[str | None, datetime | None]:
    """(None, its next step's time) when the workflow is idle at `instant`: no workflow task or
    activity in flight, and its next step in the future (None: it waits for nobody). Else (what
    it is busy with, None). Raises SimulationFailed when the workflow has ended."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
    from temporalio.api.workflowservice.v1 import (DescribeWorkflowExecutionRequest,
                                                   GetWorkflowExecutionHistoryRequest)
    service = client.workflow_service
    described = await service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    info = described.workflow_execution_info
    status = info.status
    if status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
        if status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
            return "continuing as new", None
        raise SimulationFailed(f"the org workflow ended ({WorkflowExecutionStatus.Name(status)}) at "
                               f"{clock.text(instant)}")
    # Cheap checks first, from the description. They may only ever say "busy": the
    # description and the history are two reads, and the workflow moves in between, so the
    # verdict "idle" and the next step's time come from the history alone.
    if described.pending_activities:
        names = sorted({a.activity_type.name for a in described.pending_activities})
        return f"running {', '.join(names)}", None
    due = _next_action_at(info.search_attributes.indexed_fields.get("NextActionAt"))
    if due is not None and due <= instant:
        return f"its next step is due at {clock.text(due)}", None
    events, token = [], b""
    while True:
        page = await service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace, execution=info.execution, next_page_token=token))
        events.extend(page.history.events)
        token = page.next_page_token
        if not token:
            break
    activity_ends, wake_ups, run_ends = _history_constants()
    task_open, woken, failure = False, False, None
    published, due = False, None
    open_activities: dict[int, str] = {}
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "NextActionAt" in fields:
                published, due = True, _next_action_at(fields["NextActionAt"])
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_open = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task_open = woken = False
            failure = None
        elif kind in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
            task_open = False
            failure = (event.workflow_task_failed_event_attributes.failure.message
                       if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED else "workflow task timed out")
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            open_activities[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind in activity_ends:
            attributes = getattr(event, activity_ends[kind])
            open_activities.pop(attributes.scheduled_event_id, None)
            woken = True
        elif kind in wake_ups:
            woken = True
        elif kind in run_ends:
            return "continuing as new", None
    if failure:
        return f"{TASK_FAILED}: {failure}", None
    if open_activities:
        return f"running {', '.join(sorted(set(open_activities.values())))}", None
    if task_open or woken:
        return "workflow task in flight", None
    if not published:
        return "starting", None  # a new run has not published its next step yet
    if due is not None and due <= instant:
        return f"its next step is due at {clock.text(due)}", None
    return None, due
