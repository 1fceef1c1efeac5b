"""One workflow per mail platform endpoint keeps its entitlement deliveries running
(activities/webhooks.py), on a task queue of its own: the org workflows never wait for it, and
it reads the versions the decisions stored, so no org workflow's commands change for it."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import ENDPOINT_GONE, RUN_SECONDS, DeliveryActivities

# Runs of the delivery activity per history before continuing as new: a few events each.
RUNS_PER_HISTORY = 100


def delivery_queue(task_queue: str) -> str:
    return f"{task_queue}-entitlements"


def delivery_workflow_id(task_queue: str, endpoint: str) -> str:
    return f"{delivery_queue(task_queue)}-{endpoint}"


@workflow.defn(name="EntitlementDelivery")
class EntitlementDeliveryWorkflow:
    @workflow.run
    async def run(self, endpoint: str) -> None:
        for _ in range(RUNS_PER_HISTORY):
            confirmed = await workflow.execute_activity_method(
                DeliveryActivities.deliver_entitlements, endpoint,
                start_to_close_timeout=timedelta(seconds=RUN_SECONDS * 2), heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"deliver entitlements to {endpoint}")
            if confirmed == ENDPOINT_GONE:
                return
        workflow.continue_as_new(endpoint)

