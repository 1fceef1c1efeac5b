"""The org workflows through a Temporal client, handed to the activities that start or read
them (reconciliation), so the activities never import the workflows that run them."""

from datetime import datetime

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

from domain.subscription import OrgSnapshot
from workflows import search_attributes as sa
from workflows.messages import PaymentNotice
from workflows.org import OrgWorkflow
from workflows.starter import org_handle, start_org_workflow


class TemporalOrgWorkflows:
    def __init__(self, client: Client, task_queue: str) -> None:
        self.client, self.task_queue = client, task_queue

    async def describe(self, org_id: str) -> WorkflowExecutionDescription | None:
        try:
            return await org_handle(self.client, org_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def start(self, org_id: str, name: str, admin_email: str) -> None:
        await start_org_workflow(self.client, org_id, self.task_queue, name, admin_email)

    async def snapshot(self, org_id: str) -> OrgSnapshot:
        return (await org_handle(self.client, org_id).query(OrgWorkflow.state)).snapshot

    async def payment_settled(self, org_id: str, notice: PaymentNotice) -> None:
        await org_handle(self.client, org_id).signal(OrgWorkflow.payment_settled, notice)

    def next_action_at(self, description: WorkflowExecutionDescription) -> datetime | None:
        return description.typed_search_attributes.get(sa.NEXT_ACTION_AT)
