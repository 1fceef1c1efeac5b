"""Nightly reconciliation: the database is the source of truth. Any org without a running
workflow gets one (idempotently); orgs whose workflow disagrees with the database are reported,
and so are stuck orgs: an activity failing for longer than `stuck_after` (the workflow retries
infrastructure errors without limit, so nothing else would ever say so), or a due step
(NextActionAt) not run `stuck_after` after its time."""

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from temporalio import activity
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus

from activities import metrics
from db.orgs import list_org_ids
from db.snapshots import load_state
from db.session import Database
from domain.policy import Policy
from domain.subscription import OrgSnapshot

DEFAULT_STUCK_AFTER = timedelta(minutes=15)
# Orgs checked at once: each costs a describe, a query and a database read, so thousands of orgs
# take minutes rather than hours, without a burst the server or the connection pool would feel.
CONCURRENCY = 16
ACTIVITY_FAILING, STEP_OVERDUE = "activity_failing", "step_overdue"


@dataclass(frozen=True)
class ReconcileReport:
    checked: int = 0
    started: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    # Orgs counted per reason (one org may count under both); each is also a disagreement line.
    activity_failing: int = 0
    step_overdue: int = 0


@dataclass
class _OrgFindings:
    started: bool = False
    disagreements: list[str] = field(default_factory=list)
    activity_failing: bool = False
    step_overdue: bool = False


class OrgWorkflows(Protocol):
    """The org workflows, as reconciliation starts and reads them. The worker hands its own over
    (workers.runtime.org_workflows): the workflows stand above the activities they run."""
    client: Client

    async def describe(self, org_id: str) -> WorkflowExecutionDescription | None:
        """The org's workflow as the server describes it; None when it has none."""

    async def start(self, org_id: str, name: str, admin_email: str) -> None:
        """Start the org's workflow, or leave the running one be."""

    async def snapshot(self, org_id: str) -> OrgSnapshot:
        """The org as its running workflow holds it (a query)."""

    def next_action_at(self, description: WorkflowExecutionDescription) -> datetime | None:
        """When the workflow's next step is due, as it publishes it (NextActionAt)."""


class ReconcileActivities:
    def __init__(self, db: Database, policy: Policy, workflows: OrgWorkflows,
                 stuck_after: timedelta = DEFAULT_STUCK_AFTER, concurrency: int = CONCURRENCY) -> None:
        self.db, self.policy, self.workflows = db, policy, workflows
        self.stuck_after, self.concurrency = stuck_after, concurrency

    @activity.defn
    async def reconcile_orgs(self) -> ReconcileReport:
        org_ids = await asyncio.to_thread(self._org_ids)
        now = datetime.now(timezone.utc)
        bound = asyncio.Semaphore(self.concurrency)

        async def check(org_id: str) -> _OrgFindings:
            async with bound:
                activity.heartbeat(org_id)
                return await self._check(org_id, now)

        findings = await asyncio.gather(*(check(org_id) for org_id in org_ids))
        report = ReconcileReport(
            checked=len(org_ids), started=[o for o, f in zip(org_ids, findings) if f.started],
            disagreements=[line for f in findings for line in f.disagreements],
            activity_failing=sum(f.activity_failing for f in findings),
            step_overdue=sum(f.step_overdue for f in findings))
        metrics.orgs_stuck({ACTIVITY_FAILING: report.activity_failing, STEP_OVERDUE: report.step_overdue})
        return report

    async def _check(self, org_id: str, now: datetime) -> _OrgFindings:
        found = _OrgFindings()
        description = await self.workflows.describe(org_id)
        if description is None or description.status != WorkflowExecutionStatus.RUNNING:
            snapshot = await asyncio.to_thread(self._snapshot, org_id)
            await self.workflows.start(org_id, snapshot.name, snapshot.admin_email)
            found.started = True
            activity.logger.info("reconcile: started the missing workflow of org %s", org_id)
            return found
        # Stuck first: a workflow stuck in an activity still answers queries, so both are reported.
        failing = await self._failing_activities(org_id, description, now)
        found.disagreements += failing
        found.activity_failing = bool(failing)
        overdue = self._overdue_step(org_id, description, now)
        if overdue:
            found.disagreements.append(overdue)
            found.step_overdue = True
        try:
            seen = await self.workflows.snapshot(org_id)
        except Exception as err:  # a workflow still loading answers with an error
            found.disagreements.append(f"{org_id}: state query failed ({err})")
            return found
        stored = await asyncio.to_thread(self._snapshot, org_id)
        seen_status, seen_plan = seen.status, seen.plan
        if str(seen_status) != str(stored.status) or seen_plan != stored.plan:
            found.disagreements.append(f"{org_id}: workflow says {seen_status}/{seen_plan}, database says "
                                       f"{stored.status}/{stored.plan}")
        return found

    async def _failing_activities(self, org_id: str, description: WorkflowExecutionDescription,
                                  now: datetime) -> list[str]:
        """Pending activities that failed at least once and were first scheduled more than
        `stuck_after` ago. Describe gives the current attempt only (its scheduled time moves with
        every retry), so the first schedule time comes from the run's history: read only for
        these few candidates, never for a healthy org."""
        candidates = [p for p in description.raw_description.pending_activities
                      if p.attempt > 1 and p.HasField("last_failure")]
        if not candidates:
            return []
        first_scheduled = await self._first_scheduled(description, {p.activity_id for p in candidates})
        lines = []
        for pending in candidates:
            since = first_scheduled.get(pending.activity_id)
            if since is None or now - since < self.stuck_after:
                continue
            lines.append(f"{org_id}: activity {pending.activity_type.name} failing for {_duration(now - since)} "
                         f"(attempt {pending.attempt}), last error: {_last_error(pending)}")
        return lines

    async def _first_scheduled(self, description: WorkflowExecutionDescription,
                               activity_ids: set[str]) -> dict[str, datetime]:
        handle = self.workflows.client.get_workflow_handle(description.id, run_id=description.run_id)
        found: dict[str, datetime] = {}
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                activity_id = event.activity_task_scheduled_event_attributes.activity_id
                if activity_id in activity_ids:
                    found[activity_id] = event.event_time.ToDatetime(tzinfo=timezone.utc)
                    if len(found) == len(activity_ids):
                        break
        return found

    def _overdue_step(self, org_id: str, description: WorkflowExecutionDescription, now: datetime) -> str | None:
        """NextActionAt is the workflow's own, current (not eventually consistent) word on when
        its next step is due; a step still due `stuck_after` past its time has not run. A run that
        began after the step was due (a workflow just started for an org whose step is past, as a
        reconciliation or a first start does) has had only since its start to run it."""
        due = self.workflows.next_action_at(description)
        if due is None:
            return None
        started = description.start_time
        if started is not None and started > due:
            if now - started < self.stuck_after:
                return None
            return (f"{org_id}: step due at {due:%Y-%m-%d %H:%M:%S} UTC not run ({_duration(now - started)} since "
                    f"its run started at {started:%Y-%m-%d %H:%M:%S} UTC)")
        if now - due < self.stuck_after:
            return None
        return f"{org_id}: step due at {due:%Y-%m-%d %H:%M:%S} UTC not run ({_duration(now - due)} overdue)"

    def _org_ids(self) -> list[str]:
        with self.db.transaction() as session:
            return list_org_ids(session)

    def _snapshot(self, org_id: str):
        with self.db.transaction() as session:
            return load_state(session, org_id, self.policy)


def _last_error(pending: PendingActivityInfo, limit: int = 160) -> str:
    failure = pending.last_failure
    kind = failure.application_failure_info.type if failure.HasField("application_failure_info") else ""
    message = " ".join(failure.message.split()) or "(no message)"
    text = f"{kind}: {message}" if kind else message
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
