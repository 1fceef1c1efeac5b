"""Reading a workflow's history as ops would: which activities a run ran."""

import json

from temporalio.api.enums.v1 import EventType

LOCAL_ACTIVITY_MARKER = "core_local_activity"


def activities_run(events) -> list[str]:
    """The activity types a history ran, in order: regular ones (scheduled on the task queue) and
    local ones (recorded as markers: the workflow ran them in its own task)."""
    names = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif (event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
              and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER):
            [payload] = event.marker_recorded_event_attributes.details["data"].payloads
            names.append(json.loads(payload.data)["activity_type"])
    return names
