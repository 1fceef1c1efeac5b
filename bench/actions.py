"""Temporal Cloud's billable actions, counted from a run's event history.

Temporal Cloud bills per action (docs.temporal.io/cloud/actions), a cost that does not depend
on the machine. What a history shows of them, as that page lists them:
- workflow started: the run's WorkflowExecutionStarted (a client start or a continue-as-new);
- activity started or retried: ActivityTaskStarted, as many as its `attempt` (its earlier
  attempts leave no event of their own);
- local activities: all those recorded in one workflow task completion count as one action
  (a workflow task that ran none counts nothing);
- timer started; signal received; Update accepted (a rejected one leaves no event);
- search attribute upsert (one per command, however many attributes; none for the
  TemporalChangeVersion that `workflow.patched` writes).
Queries, heartbeats of the activities (ours send none) and rejected Updates leave no event: the
count is a floor. Workflow tasks are not actions, but a timed-out or failed one is a rerun of the
local activities it held: counted apart (`wasted_tasks`; a sticky queue's schedule-to-start
timeout, which only moves the task to another poller, is not one)."""

from collections import Counter

from temporalio.api.enums.v1 import EventType, TimeoutType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History

LOCAL_ACTIVITY_MARKER = "core_local_activity"
CHANGE_VERSION = "TemporalChangeVersion"


def billable_actions(history: History) -> Counter:
    """Actions by kind, plus `wasted_tasks`: workflow tasks that timed out or failed."""
    counts: Counter = Counter()
    local_in_task = False
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            counts["workflow started"] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            counts["activity"] += max(1, event.activity_task_started_event_attributes.attempt)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            counts["timer"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            counts["signal"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            counts["update"] += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if set(fields) - {CHANGE_VERSION}:
                counts["search attribute upsert"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            local_in_task = False
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER and not local_in_task:
                counts["local activities (one per workflow task)"] += 1
                local_in_task = True
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            counts["wasted_tasks"] += 1
            cause = event.workflow_task_failed_event_attributes.cause
            counts[f"wasted: failed ({WorkflowTaskFailedCause.Name(cause)})"] += 1
        elif (kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
              # a sticky queue's schedule-to-start timeout only hands the task to another poller
              and event.workflow_task_timed_out_event_attributes.timeout_type == TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE):
            counts["wasted_tasks"] += 1
            counts["wasted: timed out"] += 1
    return counts


def total(counts: Counter) -> int:
    return sum(v for k, v in counts.items() if not k.startswith("wasted"))
