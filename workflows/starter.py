"""Client-side helpers for the org workflow (start it idempotently, find it) and the entitlement
deliveries' workflows."""

from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from workflows import search_attributes as sa
from workflows.delivery import EntitlementDeliveryWorkflow, delivery_queue, delivery_workflow_id
from workflows.messages import ChangeOutcome, Opening, OrgWorkflowInput, workflow_id_for
from workflows.org import OrgWorkflow


def _start_options(org_id: str, task_queue: str, name: str, admin_email: str) -> dict[str, Any]:
    return dict(id=workflow_id_for(org_id), task_queue=task_queue,
                search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, org_id)]),
                memo={"org_name": name, "admin_email": admin_email},
                static_summary=f"Lifecycle of org {org_id}" + (f" ({name})" if name else ""))


async def start_org_workflow(client: Client, org_id: str, task_queue: str, name: str = "",
                             admin_email: str = "") -> WorkflowHandle:
    """Start the org's workflow, or return the running one: safe to call twice."""
    return await client.start_workflow(OrgWorkflow.run, OrgWorkflowInput(org_id),
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                       **_start_options(org_id, task_queue, name, admin_email))


async def open_org(client: Client, opening: Opening, task_queue: str) -> ChangeOutcome:
    """Start a new customer's org workflow, which writes the org and charges its first cycle, and
    wait for the answer (paid, declined, refused). One request to Temporal (update-with-start): once
    it is accepted the opening completes whatever happens to the caller. An org whose workflow
    runs already is refused by Temporal (WorkflowAlreadyStartedError)."""
    org = opening.org
    start = WithStartWorkflowOperation(OrgWorkflow.run, OrgWorkflowInput(org.id, opening=opening),
                                       id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                                       **_start_options(org.id, task_queue, org.name, org.admin_email))
    return await client.execute_update_with_start_workflow(OrgWorkflow.opening, start_workflow_operation=start,
                                                           result_type=ChangeOutcome)


def org_handle(client: Client, org_id: str) -> WorkflowHandle:
    return client.get_workflow_handle_for(OrgWorkflow.run, workflow_id_for(org_id))


async def start_deliveries(client: Client, task_queue: str, endpoints: list[str]) -> None:
    """Each mail platform endpoint's delivery workflow, started once (a running one is left as it is)."""
    for endpoint in endpoints:
        await client.start_workflow(EntitlementDeliveryWorkflow.run, endpoint, id=delivery_workflow_id(task_queue, endpoint),
                                    task_queue=delivery_queue(task_queue),
                                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                    static_summary=f"Entitlements delivered to endpoint {endpoint}")
