"""Client-side helpers for the org workflow: start it (idempotently) and find it."""

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy

from workflows import search_attributes as sa
from workflows.messages import OrgWorkflowInput, workflow_id_for
from workflows.org import OrgWorkflow


async def start_org_workflow(client: Client, org_id: str, task_queue: str, name: str = "",
                             admin_email: str = "") -> WorkflowHandle:
    """Start the org's workflow, or return the running one: safe to call twice."""
    return await client.start_workflow(
        OrgWorkflow.run, OrgWorkflowInput(org_id), id=workflow_id_for(org_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ORG_ID, org_id)]),
        memo={"org_name": name, "admin_email": admin_email},
        static_summary=f"Lifecycle of org {org_id}" + (f" ({name})" if name else ""))


def org_handle(client: Client, org_id: str) -> WorkflowHandle:
    return client.get_workflow_handle_for(OrgWorkflow.run, workflow_id_for(org_id))
