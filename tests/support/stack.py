"""Wiring the real workflows and activities to a test database, SMTP sink and Temporal env."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mail import SmtpConfig
from activities.payments import PaymentGateway, SandboxGateway
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from db.orgs import set_card
from services.orgs import create_org
from domain.cards import CardDetails, sandbox_tokenise
from db.session import Database
from domain.catalog import Catalog
from domain.policy import Policy
from domain.delivery import Webhooks
from workers.runtime.worker import Components, build_worker, delivering
from workflows.delivery import delivery_workflow_id
from workflows.org import OrgWorkflow
from workflows.starter import org_handle, start_org_workflow


@dataclass
class Stack:
    env: WorkflowEnvironment
    db: Database
    catalog: Catalog
    policy: Policy
    smtp_port: int
    task_queue: str
    gateway: PaymentGateway | None = None
    workflow_sandbox: bool = True
    webhooks: Webhooks = field(default_factory=Webhooks)
    started: list[str] = field(default_factory=list)

    @property
    def client(self) -> Client:
        return self.env.client

    def components(self) -> Components:
        return Components(db=self.db, catalog=self.catalog, policy=self.policy,
                          smtp=SmtpConfig(host="127.0.0.1", port=self.smtp_port),
                          gateway=self.gateway or SandboxGateway(self.db), webhooks=self.webhooks)

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[Worker]:
        async with build_worker(self.client, self.task_queue, self.components(),
                                graceful_shutdown=timedelta(seconds=5),
                                workflow_sandbox=self.workflow_sandbox) as worker, \
                delivering(self.client, self.task_queue, self.components(), timedelta(seconds=5)):
            yield worker

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def create_org(self, org_id: str | None = None, users: list[tuple[str, float]] | None = None,
                         start: datetime | None = None, card: str | None = None,
                         card_details: CardDetails | None = None, **fields) -> str:
        org_id = org_id or f"org{uuid.uuid4().hex[:8]}"
        fields.setdefault("name", f"Org {org_id}")
        fields.setdefault("admin_email", f"admin@{org_id}.test")
        new = validate_new_org(NewOrg(id=org_id, users=[NewUser(e, gb) for e, gb in (users or [])], **fields),
                               self.catalog)
        start = start or await self.now()
        with self.db.transaction() as session:
            # On a paid plan: moved in, paid for its first cycle (as `billing simulate` creates it).
            create_org(session, paid_for_one_cycle(new, start, "tests"), self.catalog, self.policy, start)
            if card or card_details:   # a number for the sandbox, or what another gateway gave back
                details = card_details or sandbox_tokenise(card)
                set_card(session, org_id, details.token, details.brand, details.last4)
        await start_org_workflow(self.client, org_id, self.task_queue, new.name, new.admin_email)
        self.started.append(org_id)
        return org_id

    async def terminate_all(self) -> None:
        """A shared time-skipping server will not skip past the timers of workflows nobody polls
        any more: end this test's workflows so the next test's clock can move."""
        deliveries = [delivery_workflow_id(self.task_queue, e.name) for e in self.webhooks.endpoints]
        for workflow_id in [f"org-{org_id}" for org_id in self.started] + deliveries:
            try:
                await self.client.get_workflow_handle(workflow_id).terminate("test finished")
            except Exception as err:  # noqa: BLE001  (already closed)
                print("terminate", workflow_id, err)

    def handle(self, org_id: str):
        return org_handle(self.client, org_id)

    async def settle(self, org_id: str, attempts: int = 400) -> None:
        """Wait until the org's workflow has no activity or workflow task in flight. The
        time-skipping server drops a query that arrives during a task ending in
        continue-as-new (and then stops skipping time), so tests query only a settled workflow."""
        request = DescribeWorkflowExecutionRequest(namespace=self.client.namespace,
                                                   execution=WorkflowExecution(workflow_id=f"org-{org_id}"))
        for _ in range(attempts):
            described = await self.client.workflow_service.describe_workflow_execution(request)
            loaded = described.workflow_execution_info.history_length > 5
            if (loaded and not described.pending_activities and not described.HasField("pending_workflow_task")
                    and await self._nothing_open(org_id)):
                return
            await asyncio.sleep(0.025)
        raise TimeoutError(f"org-{org_id} did not settle")

    async def _nothing_open(self, org_id: str) -> bool:
        """The run's history agrees: every activity it scheduled has closed, and its last workflow
        task completed (the time-skipping server's description was seen settled while a dunning
        catch-up's e-mail on the documents' queue was in flight)."""
        history = await self.client.get_workflow_handle(f"org-{org_id}").fetch_history()
        open_activities: set[int] = set()
        last_task = None
        for event in history.events:
            name = EventType.Name(event.event_type)
            if name == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED":
                open_activities.add(event.event_id)
            elif name.startswith("EVENT_TYPE_ACTIVITY_TASK_") and name != "EVENT_TYPE_ACTIVITY_TASK_STARTED":
                attributes = getattr(event, event.WhichOneof("attributes"))
                open_activities.discard(getattr(attributes, "scheduled_event_id", 0))
            elif name.startswith("EVENT_TYPE_WORKFLOW_TASK_"):
                last_task = name
        return not open_activities and last_task != "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED" \
            and last_task != "EVENT_TYPE_WORKFLOW_TASK_STARTED"

    async def state(self, org_id: str):
        await self.settle(org_id)
        return await self.handle(org_id).query(OrgWorkflow.state)

    async def advance_to(self, moment: datetime) -> None:
        delta = moment - await self.now()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    async def send(self, org_id: str, request):
        from workers.runtime.operations import send_operation
        return await send_operation(self.client, org_id, request)

    def with_policy(self, **changes) -> "Stack":
        return replace(self, policy=replace(self.policy, **changes))
