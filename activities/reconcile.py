"""Nightly reconciliation: the database is the source of truth. Any org without a running
workflow gets one (idempotently); orgs whose workflow disagrees with the database are reported."""

from dataclasses import dataclass, field

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from db.orgs import list_org_ids
from db.state import load_state
from db.session import Database
from domain.policy import Policy
from workflows.org import OrgWorkflow
from workflows.starter import org_handle, start_org_workflow


@dataclass(frozen=True)
class ReconcileReport:
    checked: int = 0
    started: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


class ReconcileActivities:
    def __init__(self, db: Database, policy: Policy, client: Client, task_queue: str) -> None:
        self.db, self.policy, self.client, self.task_queue = db, policy, client, task_queue

    @activity.defn
    async def reconcile_orgs(self) -> ReconcileReport:
        import asyncio
        org_ids = await asyncio.to_thread(self._org_ids)
        started, disagreements = [], []
        for org_id in org_ids:
            activity.heartbeat(org_id)
            handle = org_handle(self.client, org_id)
            try:
                description = await handle.describe()
                running = description.status == WorkflowExecutionStatus.RUNNING
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                running = False
            if not running:
                snapshot = await asyncio.to_thread(self._snapshot, org_id)
                await start_org_workflow(self.client, org_id, self.task_queue, snapshot.name, snapshot.admin_email)
                started.append(org_id)
                activity.logger.info("reconcile: started the missing workflow of org %s", org_id)
                continue
            try:
                view = await handle.query(OrgWorkflow.state)
            except Exception as err:  # a workflow still loading answers with an error
                disagreements.append(f"{org_id}: state query failed ({err})")
                continue
            stored = await asyncio.to_thread(self._snapshot, org_id)
            seen_status, seen_plan = view.snapshot.status, view.snapshot.plan
            if str(seen_status) != str(stored.status) or seen_plan != stored.plan:
                disagreements.append(f"{org_id}: workflow says {seen_status}/{seen_plan}, database says "
                                     f"{stored.status}/{stored.plan}")
        return ReconcileReport(checked=len(org_ids), started=started, disagreements=disagreements)

    def _org_ids(self) -> list[str]:
        with self.db.transaction() as session:
            return list_org_ids(session)

    def _snapshot(self, org_id: str):
        with self.db.transaction() as session:
            return load_state(session, org_id, self.policy)
