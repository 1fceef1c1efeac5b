"""`billing simulate`: one org through its life, on the real workflows and activities.

The scenario (SIMULATE.md, parsed in workers.simulate.scenario) runs against:
- Temporal's time-skipping test server, a fresh one per run;
- a real database: a fresh SQLite file, or BILLING_DATABASE_URL when set;
- a real SMTP conversation with a capture server on loopback (workers.simulate.mail);
- the sandbox payment gateway.
There is no model of the rules here: actions are the same Updates the CLI sends, and the
timeline is read back from the org's event log.

The simulated clock. The test server starts at the real current time and only moves forward,
while a scenario may start in the past. The Gregorian calendar repeats every 400 years
(weekdays, leap years, month lengths), so the run happens 400*k years later, for the smallest
k that puts the start in the server's future, and every time printed is shifted back.

Instants. The harness advances the clock from one instant to the next: each wake-up of the
org's workflow (its next step, which the workflow publishes as the NextActionAt search
attribute), each action, and the end. At each instant it waits until the workflow has finished
everything due (nothing in flight, the next step in the future), then notes the last event id
written. Every event is reported at the instant of the chain that wrote it, so the timeline
does not depend on how many milliseconds of real time the activities took: two runs of a
scenario print the same timeline. Actions at an instant where a step is also due apply after
the step (the renewal first, then the action), and in file order among themselves.

Nothing is left behind. The run writes only into a throwaway database: a fresh SQLite file, or
BILLING_DATABASE_URL when it holds no org (the simulated org is removed from it afterwards). It
stops at a wall-clock limit (BILLING_SIMULATE_TIMEOUT seconds). SIGTERM, SIGINT and SIGHUP stop it
with the same clean-up as a normal end. The test server runs under a small guard process that
stops it, and removes the run's folder, should this process die without cleaning up (SIGKILL)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import json
import logging
import math
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dateutil.relativedelta import relativedelta

if TYPE_CHECKING:  # the heavy imports wait until a scenario runs: `--example` prints at once
    from workers.simulate.scenario import Action, Scenario

log = logging.getLogger("billing.simulate")

GREGORIAN_CYCLE_YEARS = 400
SETTLE_TIMEOUT_SECONDS = 60.0   # real time allowed for the workflow to finish what is due at one instant
FAILING_TASK_SECONDS = 10.0     # real time a workflow task may keep failing before the run gives up
_TASK_FAILED = "workflow task failed"
EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_TIMEOUT = 0, 1, 2, 3
TIMEOUT_SETTING = "BILLING_SIMULATE_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 300.0  # real time for a whole run: some 25 years of monthly renewals
CLEANUP_SECONDS = 20.0           # after the limit or a signal, real time allowed for the clean-up
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

# Event types of the org event log shown in the timeline, with the fields each one shows.
# Required by SIMULATE.md: email, charge, invoice, plan_changed, status, user_blocked,
# user_unblocked, escalated (and action_rejected, made by the harness). The others are extras.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "org_created": ("plan", "users"),
    "moved_in": ("paid_through", "by"),   # by: who vouched (the event's actor)
    "status": ("status",),
    "plan_changed": ("from", "to", "reason"),
    "invoice": ("number", "total", "currency", "status", "kind", "credit_applied"),
    "charge": ("amount", "currency", "outcome", "reason", "invoice", "attempt"),
    "email": ("template", "to"),
    "user_blocked": ("user", "reason"),
    "user_unblocked": ("user",),
    "escalated": ("severity", "reason", "invoice", "first_response_due", "determination_due"),
    "dunning": ("event", "invoice"),
    "change_applied": ("change",),
    "change_dropped": ("change", "invoice"),
    "change_repriced": ("change", "invoice"),
    "scheduled_change_adjusted": ("notice",),
    "contacts": ("subscribed", "awaiting_upgrade"),
    "storage_auto_allocated": ("user", "unit_gb"),
    "storage_auto_released": ("user", "unit_gb"),
    "cycle_changed": ("from", "to"),
}
TIME_FIELDS = ("first_response_due", "determination_due", "paid_through")
_DATE = re.compile(r"(?<!\d)(\d{4})(-\d{2}-\d{2})(?!\d)")


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


class SimulationFailed(Exception):
    """The run could not complete (not a problem of the scenario file)."""


class SimulationRefused(Exception):
    """The run may not start with this configuration (exit 2): e.g. a database that holds real orgs."""


class WallClockLimit(Exception):
    """The run took longer than the wall-clock limit (exit 3)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the run took longer than its wall-clock limit of {seconds:g} s; set "
                         f"{TIMEOUT_SETTING} (seconds) to allow more")


class Interrupted(Exception):
    """A signal stopped the run (exit 128 + the signal's number, as a shell reports it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


# ---- the run ----------------------------------------------------------------------------------------

@dataclass
class _Mark:
    instant: datetime   # shifted
    last_event_id: int  # every event with an id up to this one belongs to `instant` (or earlier)


@dataclass
class _Rejection:
    instant: datetime
    after_event_id: int
    action: Action
    error: str


@dataclass
class _Run:
    scenario: Scenario
    catalog: Any
    db: Any
    mail: Any
    env: Any
    task_queue: str = field(default_factory=lambda: f"simulate-{uuid.uuid4().hex[:8]}")
    shift: relativedelta = field(default_factory=relativedelta)
    instant: datetime | None = None
    marks: list[_Mark] = field(default_factory=list)
    rejections: list[_Rejection] = field(default_factory=list)
    handle: Any = None
    next_due: datetime | None = None  # the workflow's next step, as of the last settle

    @property
    def org_id(self) -> str:
        return self.scenario.org.id

    @property
    def workflow_id(self) -> str:
        from workflows.messages import workflow_id_for
        return workflow_id_for(self.org_id)

    # -- clock ----------------------------------------------------------------------------------

    async def _choose_shift(self) -> datetime:
        now = await self.env.get_current_time()
        k = 0
        while self.scenario.start + relativedelta(years=GREGORIAN_CYCLE_YEARS * k) <= now:
            k += 1
        self.shift = relativedelta(years=GREGORIAN_CYCLE_YEARS * k)
        return self.scenario.start + self.shift

    async def _sleep_until(self, moment: datetime) -> None:
        delta = moment - await self.env.get_current_time()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    def unshift(self, moment: datetime) -> datetime:
        return (moment - self.shift).replace(microsecond=0)

    def text(self, moment: datetime) -> str:
        return self.unshift(moment).isoformat()

    def unshift_message(self, message: str) -> str:
        """Refusals quote dates (`renewal date (2426-03-15)`): give them back in the real calendar."""
        years = self.shift.years
        if not years:
            return message
        low = (self.scenario.start + self.shift).year - 1
        high = (self.scenario.until + self.shift).year + 2

        def back(match: re.Match) -> str:
            year = int(match.group(1))
            return f"{year - years:04d}{match.group(2)}" if low <= year <= high else match.group(0)
        return _DATE.sub(back, message)

    # -- settling ---------------------------------------------------------------------------------

    async def _max_event_id(self) -> int:
        from sqlalchemy import func, select

        from db.models import OrgEvent

        def read() -> int:
            with self.db.transaction() as session:
                return session.scalar(select(func.max(OrgEvent.id)).where(OrgEvent.org_id == self.org_id)) or 0
        return await asyncio.to_thread(read)

    async def _settle(self) -> None:
        """Wait until the workflow has done everything due at the current instant: no workflow
        task or activity in flight, and its next step (the NextActionAt search attribute it
        publishes) lies in the future, or it waits for nobody.

        Read from the server's description and history only. A query is not used here: on the
        test server, a query that arrives while a workflow task is in flight is held for that
        task, and when the task ends the run (continue-as-new) the query is never answered and
        the clock stays locked."""
        from temporalio.service import RPCError
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        failing_since: float | None = None
        pause = 0.002
        while True:
            try:
                problem = await self._busy()
            except RPCError as err:  # a hiccup of the test server: ask again
                problem = f"test server: {err}"
            if problem is None:
                return
            if problem.startswith(_TASK_FAILED):
                # A workflow task that keeps failing is a bug in the workflow, not slowness.
                failing_since = failing_since or loop.time()
                if loop.time() - failing_since > FAILING_TASK_SECONDS:
                    raise SimulationFailed(f"the org workflow is stuck at {self.text(self.instant)}: {problem}")
            else:
                failing_since = None
            if loop.time() > deadline:
                raise SimulationFailed(f"the org workflow did not settle at {self.text(self.instant)} within "
                                       f"{SETTLE_TIMEOUT_SECONDS:.0f} s: {problem}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)

    async def _busy(self) -> str | None:
        """None when the workflow is idle at the current instant, else what it is busy with."""
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
        from temporalio.api.workflowservice.v1 import (DescribeWorkflowExecutionRequest,
                                                       GetWorkflowExecutionHistoryRequest)
        service = self.env.client.workflow_service
        described = await service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=self.env.client.namespace, execution=WorkflowExecution(workflow_id=self.workflow_id)))
        info = described.workflow_execution_info
        status = info.status
        if status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
            if status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
                return "continuing as new"
            raise SimulationFailed(f"the org workflow ended ({WorkflowExecutionStatus.Name(status)}) at "
                                   f"{self.text(self.instant)}")
        # Cheap checks first, from the description. They may only ever say "busy": the
        # description and the history are two reads, and the workflow moves in between, so the
        # verdict "idle" and the next step's time come from the history alone.
        if described.pending_activities:
            names = sorted({a.activity_type.name for a in described.pending_activities})
            return f"running {', '.join(names)}"
        due = _next_action_at(info.search_attributes.indexed_fields.get("NextActionAt"))
        if due is not None and due <= self.instant:
            return f"its next step is due at {self.text(due)}"
        events, token = [], b""
        while True:
            page = await service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace=self.env.client.namespace, execution=info.execution, next_page_token=token))
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
                return "continuing as new"
        if failure:
            return f"{_TASK_FAILED}: {failure}"
        if open_activities:
            return f"running {', '.join(sorted(set(open_activities.values())))}"
        if task_open or woken:
            return "workflow task in flight"
        if not published:
            return "starting"  # a new run has not published its next step yet
        if due is not None and due <= self.instant:
            return f"its next step is due at {self.text(due)}"
        self.next_due = due
        return None

    async def _settle_and_mark(self) -> datetime | None:
        """Settle at the current instant, note the last event written; returns the next step's time."""
        await self._settle()
        self.marks.append(_Mark(self.instant, await self._max_event_id()))
        return self.next_due

    async def _advance_to(self, target: datetime) -> None:
        """Move the clock to `target`, stopping at every step the workflow has planned on the way."""
        due = await self._settle_and_mark()
        while True:
            step_to = due if due is not None and due <= target else target
            if step_to <= self.instant:
                return
            await self._sleep_until(step_to)
            self.instant = step_to
            due = await self._settle_and_mark()
            if step_to == target:
                return

    # -- actions ------------------------------------------------------------------------------------

    async def _apply(self, action: Action) -> None:
        from workers.runtime.operations import OperationRefused, send_operation
        if action.rejection is not None:
            await self._reject(action, action.rejection)
            return
        if action.via == "signal":  # as a usage feed sends it: never answered
            from dataclasses import asdict
            from workflows.messages import REPORT_SIGNALS
            signal = next(name for name, operation in REPORT_SIGNALS.items() if operation == action.kind)
            await self.handle.signal(signal, asdict(self._shifted(action.request)))
            log.info("actions[%d] %s sent as the %s signal", action.index, action.kind, signal)
            return
        try:
            outcome = await send_operation(self.env.client, self.org_id, action.kind, self._shifted(action.request))
            log.info("actions[%d] %s: %s", action.index, action.kind, outcome.message)
        except OperationRefused as err:
            await self._reject(action, err.message)

    def _shifted(self, request):
        """A moment a request names (a report's `reported_at`) on the shifted clock the run uses."""
        from dataclasses import fields, replace
        from domain.requests import Kind
        moments = {item.name: datetime.fromisoformat(getattr(request, item.name)) + self.shift
                   for item in fields(request)
                   if item.metadata.get("kind") == Kind.INSTANT and getattr(request, item.name)}
        return replace(request, **{name: moment.isoformat() for name, moment in moments.items()})

    async def _reject(self, action: Action, message: str) -> None:
        log.info("actions[%d] %s refused: %s", action.index, action.kind, message)
        self.rejections.append(_Rejection(self.instant, await self._max_event_id(), action,
                                          self.unshift_message(message)))

    # -- the whole run ------------------------------------------------------------------------------

    async def execute(self) -> dict[str, Any]:
        from activities.mail import SmtpConfig
        from activities.payments import SandboxGateway
        from db.orgs import create_org, set_card
        from domain.onboarding import paid_for_one_cycle
        from workers.runtime.worker import Components, build_worker
        from workflows.org import OrgWorkflow
        from workflows.starter import org_handle, start_org_workflow

        scenario = self.scenario
        start = await self._choose_shift()
        await self._sleep_until(start)
        self.instant = start

        def create() -> None:
            with self.db.transaction() as session:
                # SIMULATE.md: on a paid plan, an existing customer moved in, paid through start plus a cycle.
                create_org(session, paid_for_one_cycle(scenario.org, start, "billing simulate"), self.catalog,
                           scenario.policy, start)
                if scenario.card is not None:
                    set_card(session, scenario.org.id, scenario.card.token, scenario.card.brand,
                             scenario.card.last4)
        await asyncio.to_thread(create)

        components = Components(db=self.db, catalog=self.catalog, policy=scenario.policy,
                                smtp=SmtpConfig(host=self.mail.host, port=self.mail.port),
                                gateway=SandboxGateway(self.db))
        async with build_worker(self.env.client, self.task_queue, components,
                                graceful_shutdown=timedelta(seconds=10)):
            await start_org_workflow(self.env.client, scenario.org.id, self.task_queue, scenario.org.name,
                                     scenario.org.admin_email)
            self.handle = org_handle(self.env.client, scenario.org.id)
            for action in scenario.actions:
                await self._advance_to(action.at + self.shift)
                await self._apply(action)
            await self._advance_to(scenario.until + self.shift)
            # Safe now: nothing is in flight, so the query is answered at once.
            view = await self.handle.query(OrgWorkflow.state)
        events = await asyncio.to_thread(self._events)
        return {"org": scenario.org.id, "events": events, "final": self._final(view.snapshot)}

    # -- reading the timeline back ----------------------------------------------------------------------

    def _instant_of(self, event_id: int) -> datetime | None:
        """The instant whose chain wrote the event; None for one written after the run's end."""
        ids = [mark.last_event_id for mark in self.marks]
        index = bisect.bisect_left(ids, event_id)
        return self.marks[index].instant if index < len(self.marks) else None

    def _event(self, row, delivered: set[str]) -> dict[str, Any] | None:
        data = dict(row.data or {})
        if row.type == "email" and data.get("message_id") not in delivered:
            return None  # written to the outbox but never received over SMTP
        if row.type == "request":  # an accepted action, as recorded by the activity that applied it
            event = {"type": "action", "action": data.pop("operation", "")}
            if "action" in data:  # resolve_escalation's own field: extend, downgrade or retry
                data["resolution"] = data.pop("action")
            event.update({k: v for k, v in data.items() if v is not None})
            if row.actor:
                event["requested_by"] = row.actor
            if row.reason:
                event["reason"] = row.reason
            return event
        names = EVENT_FIELDS.get(row.type)
        if names is None:
            return None
        event = {"type": row.type}
        if row.actor:
            data.setdefault("by", row.actor)
        for name in names:
            if name in data:
                value = data[name]
                if name in TIME_FIELDS and isinstance(value, str):
                    value = self.text(datetime.fromisoformat(value))
                elif isinstance(value, str):
                    value = self.unshift_message(value)  # a notice quotes dates
                event[name] = value
        return event

    def _events(self) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from db.models import OrgEvent
        delivered = self.mail.message_ids()
        timeline: list[tuple[tuple, dict[str, Any]]] = []
        with self.db.transaction() as session:
            rows = session.scalars(select(OrgEvent).where(OrgEvent.org_id == self.org_id).order_by(OrgEvent.id))
            for row in rows:
                event = self._event(row, delivered)
                instant = self._instant_of(row.id)
                if event is not None and instant is not None:
                    timeline.append(((instant, row.id, 0, 0), {"at": self.text(instant), **event}))
        for seq, rejection in enumerate(self.rejections):
            timeline.append(((rejection.instant, rejection.after_event_id, 1, seq),
                             {"at": self.text(rejection.instant), "type": "action_rejected",
                              "action": rejection.action.kind, "error": rejection.error,
                              "index": rejection.action.index}))
        timeline.sort(key=lambda item: item[0])
        return [event for _, event in timeline]

    def _final(self, snapshot) -> dict[str, Any]:
        return {"plan": snapshot.plan, "status": str(snapshot.status),
                "cycle": str(snapshot.cycle) if snapshot.cycle else None,
                "renews_at": self.text(snapshot.renews_at) if snapshot.renews_at else None,
                "licences": snapshot.licences, "blocked_users": list(snapshot.blocked_users),
                "users": snapshot.user_count,
                "trial_ends_at": self.text(snapshot.trial_ends_at) if snapshot.trial_ends_at and
                str(snapshot.status) == "trialing" else None,
                "contacts": {"tier": snapshot.tier_contacts or None, "subscribed": snapshot.subscribers.subscribed,
                             "awaiting_upgrade": snapshot.subscribers.awaiting},
                "scheduled_plan": snapshot.scheduled.plan, "open_invoice": snapshot.open_invoice,
                "card": f"{snapshot.card_brand} ending {snapshot.card_last4}" if snapshot.card_last4 else None,
                "credit": snapshot.credit}


# ---- environment ----------------------------------------------------------------------------------

_runtime = None


def _quiet_runtime():
    """A Temporal runtime whose core logs only errors: --json output stays clean on stderr too."""
    global _runtime
    if _runtime is None:
        from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
        _runtime = Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")), metrics=None))
    return _runtime


def _scratch_dir() -> str | None:
    """Memory-backed storage for the run's folder (the throwaway database) when the machine has
    it and may run programs from it (the test server's guard is started from there)."""
    for folder in ("/dev/shm", tempfile.gettempdir()):
        if os.path.isdir(folder) and os.access(folder, os.W_OK) and _can_execute_from(folder):
            return folder
    return None


def _can_execute_from(folder: str) -> bool:
    try:
        return not os.statvfs(folder).f_flag & os.ST_NOEXEC
    except (OSError, AttributeError):
        return False


# ---- the test server's guard ----------------------------------------------------------------------

def _guard(argv: list[str]) -> None:
    """The test server's guard: a process of its own between Temporal's core (which starts it as
    the test server) and the server, so the server cannot outlive this simulation.

    The core stops the server by killing what it started: the guard, whose death kills the
    server (PR_SET_PDEATHSIG). Should the simulation itself die without stopping the server
    (SIGKILL, a hard exit), the guard sees its parent gone, stops the server and removes the
    run's folder. It runs in a session of its own, so a Ctrl-C in the terminal reaches only the
    simulation, which then shuts the server down in order. Written out and run with `python -I -S`:
    standard library only."""
    import ctypes
    import os
    import shutil
    import signal
    import sys
    import time
    server, parent, folder, args = argv[0], int(argv[1]), argv[2], argv[3:]
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader: Ctrl-C reaches the server too, which the simulation then finds gone
    guard = os.getpid()
    child = os.fork()
    if child == 0:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass  # not Linux: the guard still stops the server when the simulation dies
        if os.getppid() != guard:
            os._exit(1)
        os.execv(server, [server, *args])

    def forward(signum, _frame):  # noqa: ANN001
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            sys.exit(os.waitstatus_to_exitcode(status) % 256)
        if os.getppid() != parent:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(0)
        time.sleep(0.1)


def _guarded_test_server(folder: str | None) -> str:
    """The test server's path to give Temporal: a launcher of the guard, or the server itself
    where no launcher can run (no folder that allows programs)."""
    from workers.runtime.binaries import temporal_test_server
    server = temporal_test_server()
    if folder is None or not sys.platform.startswith("linux") or not _can_execute_from(folder):
        return server
    guard = Path(folder) / "test_server_guard.py"
    guard.write_text(f"{inspect.getsource(_guard)}\n\nimport sys\n_guard(sys.argv[1:])\n", encoding="utf-8")
    launcher = Path(folder) / "test-server"
    command = shlex.join([sys.executable, "-I", "-S", str(guard), server, str(os.getpid()), folder])
    launcher.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    launcher.chmod(0o700)
    return str(launcher)


# ---- the database -------------------------------------------------------------------------------

def _require_throwaway(url: str) -> None:
    """BILLING_DATABASE_URL may be used only if it holds no org: simulate must never write next
    to real orgs (and `billing reconcile` would start live workflows for a simulated one)."""
    from sqlalchemy import inspect as inspect_db
    from sqlalchemy import text

    from db.session import make_engine
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect_db(conn).has_table("organisations"):
                return
            count = conn.execute(text("SELECT count(*) FROM organisations")).scalar() or 0
            some = conn.execute(text("SELECT id FROM organisations ORDER BY id LIMIT 3")).scalars().all()
    finally:
        engine.dispose()
    if count:
        listed = ", ".join(some) + (", ..." if count > len(some) else "")
        raise SimulationRefused(
            f"BILLING_DATABASE_URL ({_safe_url(url)}) holds {count} org{'s' if count != 1 else ''} ({listed}); "
            "simulate writes only into a throwaway database: unset BILLING_DATABASE_URL for a fresh SQLite "
            "file, or point it at an empty database")


def _prepare_database(url: str, org_id: str, throwaway: bool = False):
    from sqlalchemy import event

    from db.migrate import upgrade
    from db.models import Organisation
    from db.session import Database
    if not throwaway:
        _require_throwaway(url)
    upgrade(url)
    db = Database(url)
    if throwaway and url.startswith("sqlite"):
        # A file nobody keeps: no need to wait for the disk after each commit.
        @event.listens_for(db.engine, "connect")
        def _no_fsync(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()
    with db.transaction() as session:
        if session.get(Organisation, org_id) is not None:
            db.dispose()  # another simulation started on it since the check above
            raise SimulationRefused(f"org {org_id!r} already exists in the database {_safe_url(url)}; simulate "
                                    "needs a database without it (unset BILLING_DATABASE_URL for a fresh SQLite "
                                    "file)")
    return db


def _remove_org(db, org_id: str) -> None:  # noqa: ANN001
    """Every row of the simulated org, from a database that outlives the run (BILLING_DATABASE_URL),
    the sandbox gateway's record of its charges included."""
    from sqlalchemy import delete

    from db.models import GatewayCharge, OpeningAttempt
    from db.orgs import delete_org
    with db.transaction() as session:
        delete_org(session, org_id)
        session.execute(delete(OpeningAttempt).where(OpeningAttempt.org_id == org_id))
        # Keyed org:invoice:attempt (activities.payments).
        session.execute(delete(GatewayCharge).where(
            GatewayCharge.idempotency_key.startswith(f"{org_id}:", autoescape=True)))


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(BILLING_DATABASE_URL)"


def _outcome(task: asyncio.Future) -> Any:
    """A finished task's result or exception; None if it did not finish."""
    if not task.done() or task.cancelled():
        return None
    return task.exception() or task.result()


async def run_scenario(scenario: Scenario, catalog, database_url: str | None = None,
                       keep_org: bool = False) -> dict[str, Any]:
    """Run a parsed scenario; returns the timeline document of SIMULATE.md. `keep_org` leaves the
    simulated org in `database_url` (tests that read what the run wrote); the command never does."""
    from activities.documents import require_pdf_renderer
    require_pdf_renderer()    # the receipts carry their invoice as a PDF, as in production
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from workers.runtime.search_attributes import api_types
    from workers.simulate.mail import MailCapture

    async def start_env(server: str):
        env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=server,
                                                            runtime=_quiet_runtime())
        try:
            await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace="default", search_attributes=api_types()))
        except BaseException:
            await env.shutdown()
            raise
        return env

    async with contextlib.AsyncExitStack() as stack:
        throwaway = database_url is None
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="billing-simulate-", dir=_scratch_dir()))
        if throwaway:
            database_url = f"sqlite:///{Path(folder) / 'simulate.db'}"
        mail = MailCapture().start()
        stack.callback(mail.stop)
        # The test server starts while the migrations run. Each is awaited to its end even when
        # the run is cancelled meanwhile: a server started must be known to be shut down.
        starting = [asyncio.ensure_future(start_env(_guarded_test_server(folder))),
                    asyncio.ensure_future(asyncio.to_thread(_prepare_database, database_url, scenario.org.id,
                                                            throwaway))]
        try:
            await asyncio.shield(asyncio.gather(*starting, return_exceptions=True))
        except asyncio.CancelledError:
            await asyncio.gather(*starting, return_exceptions=True)
            raise
        finally:
            env, db = (_outcome(task) for task in starting)
            if env is not None and not isinstance(env, BaseException):
                stack.push_async_callback(env.shutdown)
            if db is not None and not isinstance(db, BaseException):
                stack.callback(db.dispose)
                if not throwaway and not keep_org:  # after the worker has stopped (execute), before the pool closes
                    stack.callback(_remove_org, db, scenario.org.id)
        for outcome in (db, env):
            if isinstance(outcome, BaseException):
                raise outcome
        return await _Run(scenario, catalog, db, mail, env).execute()


def load_and_run(path: Path, database_url: str | None = None, keep_org: bool = False) -> dict[str, Any]:
    """Parse and run a scenario file with the configured catalog and policy (tests, bench)."""
    from workers.simulate.scenario import load_scenario
    catalog, policy = _configured()
    scenario = load_scenario(path, catalog, policy)
    return asyncio.run(run_scenario(scenario, catalog, database_url, keep_org))


def _configured():
    from domain.catalog import load_catalog
    from workers.runtime.config import Settings
    settings = Settings()
    return load_catalog(settings.catalog_path), settings.policy


# ---- output ------------------------------------------------------------------------------------------

def _money(amount: Any, currency: Any) -> str:
    from domain.money import format_money
    try:
        return f"{amount} ({format_money(int(amount), str(currency), 'en')})"
    except Exception:  # noqa: BLE001
        return str(amount)


def _details(event: dict[str, Any]) -> str:
    skip = {"at", "type", "action", "currency"}
    parts = []
    for key, value in event.items():
        if key in skip or value is None:
            continue
        if key in ("amount", "total"):
            value = _money(value, event.get("currency"))
        parts.append(f"{key}={value}")
    return ", ".join(parts)


EVENT_STYLES = {"action_rejected": "bold red", "escalated": "bold red", "user_blocked": "red",
                "user_unblocked": "green", "plan_changed": "bold", "status": "cyan", "email": "dim",
                "action": "magenta"}


def render_table(doc: dict[str, Any], console, caption: str = "") -> None:  # noqa: ANN001
    from rich.table import Table
    table = Table(title=f"simulation of org {doc['org']}", caption=caption or None, show_lines=False)
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("details", overflow="fold")
    for event in doc["events"]:
        kind = event["type"]
        label = f"{kind}: {event['action']}" if kind in ("action", "action_rejected") else kind
        if kind == "email":
            label = f"email: {event['template']}"
            details = f"to {event['to']}"
        elif kind == "action_rejected":
            details = event["error"]
        else:
            details = _details({k: v for k, v in event.items() if not (kind == "email" and k == "template")})
        at = event["at"].replace("T", " ").removesuffix("+00:00")
        table.add_row(at, label, details, style=EVENT_STYLES.get(kind))
    console.print(table)
    final = Table(title="final state", show_header=False)
    for key, value in doc["final"].items():
        if value in (None, []):
            value = "-"
        elif isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={'-' if v is None else v}" for k, v in value.items())
        final.add_row(key, str(value))
    console.print(final)


@contextlib.contextmanager
def _quiet_logging():
    """Only errors from the libraries on stderr for the run; levels are put back afterwards (the
    command may run inside a larger process, e.g. the test suite)."""
    root = logging.getLogger()
    added = None
    if not root.handlers:
        added = logging.StreamHandler(sys.stderr)
        added.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(added)
    noisy = [logging.getLogger(name) for name in ("mail.log", "alembic", "temporalio", "aiosmtplib",
                                                  "billing.simulate")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(noisy, levels):
            logger.setLevel(level)
        if added is not None:
            root.removeHandler(added)


def wall_clock_limit() -> float:
    """BILLING_SIMULATE_TIMEOUT: seconds of real time a run may take (default 300)."""
    raw = os.environ.get(TIMEOUT_SETTING, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise SimulationRefused(f"{TIMEOUT_SETTING}: expected a number of seconds above 0, got {raw[:40]!r}")
    return seconds


def run_with_limits(scenario: Scenario, catalog, database_url: str | None, limit: float) -> dict[str, Any]:
    """run_scenario within the wall-clock limit; SIGTERM, SIGINT and SIGHUP stop it with its
    clean-up (a second signal stops at once). Raises WallClockLimit or Interrupted.

    Signals can be caught only in the main thread (the `billing` command); elsewhere (tests
    calling the command in a thread) the limit still holds, without the backstop below."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    received: list[int] = []

    def hard_stop(message: str, code: int) -> None:
        # Leave now, without the clean-up: the test server's guard stops the server and removes
        # the run's folder once this process is gone.
        sys.stderr.write(f"simulation stopped: {message}\n")
        sys.stderr.flush()
        os._exit(code)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal(signum: int) -> None:
            if received:
                hard_stop(f"interrupted by {signal.Signals(received[0]).name}, then by "
                          f"{signal.Signals(signum).name}: stopped without waiting for the clean-up",
                          128 + signum)
            received.append(signum)
            task.cancel()
        if in_main_thread:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, on_signal, signum)
        try:
            async with asyncio.timeout(limit) as budget:
                return await run_scenario(scenario, catalog, database_url)
        except TimeoutError:
            if budget.expired():
                raise WallClockLimit(limit) from None
            raise
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            if in_main_thread:
                for signum in STOP_SIGNALS:
                    loop.remove_signal_handler(signum)

    backstop = None
    if in_main_thread:
        backstop = threading.Timer(limit + CLEANUP_SECONDS, hard_stop,
                                   (f"{WallClockLimit(limit)} (and its clean-up did not finish within "
                                    f"{CLEANUP_SECONDS:g} s)", EXIT_TIMEOUT))
        backstop.daemon = True
        backstop.start()
    try:
        return asyncio.run(main())
    finally:
        if backstop is not None:
            backstop.cancel()


def run_simulate_command(scenario: Path | None, as_json: bool, example: bool) -> int:
    """The body of `billing simulate` (workers.cli); returns the exit code.

    Exit codes: 0 done; 1 the run failed; 2 the scenario or the configuration is refused (nothing
    ran); 3 the wall-clock limit (BILLING_SIMULATE_TIMEOUT) was reached; 128 + N stopped by
    signal N. Every failure is one line on stderr."""
    if example:
        from workers.simulate.example import EXAMPLE
        sys.stdout.write(EXAMPLE)
        return EXIT_OK
    from workers.simulate.scenario import ScenarioError, load_scenario

    def error(message: str) -> None:  # plain, unwrapped: one line a script can read
        lines = [line.strip() for line in str(message).splitlines()
                 if line.strip() and not line.strip().startswith("(Background on this error")]
        sys.stderr.write("; ".join(lines) + "\n")
        sys.stderr.flush()

    if scenario is None:
        error("scenario error: give a scenario file (`billing simulate --example` prints one)")
        return EXIT_INVALID
    try:
        limit = wall_clock_limit()
    except SimulationRefused as err:
        error(f"simulation refused: {err}")
        return EXIT_INVALID
    try:
        catalog, policy = _configured()
    except Exception as err:  # noqa: BLE001
        error(f"simulation failed: configuration: {err}")
        return EXIT_FAILED
    try:
        parsed = load_scenario(scenario, catalog, policy)
    except ScenarioError as err:
        error(f"scenario error: {err}")
        return EXIT_INVALID
    try:
        with _quiet_logging():
            doc = run_with_limits(parsed, catalog, os.environ.get("BILLING_DATABASE_URL") or None, limit)
    except SimulationRefused as err:
        error(f"simulation refused: {err}")
        return EXIT_INVALID
    except WallClockLimit as err:
        error(f"simulation stopped: {err}")
        return EXIT_TIMEOUT
    except Interrupted as err:
        error(f"simulation stopped: {err}")
        return 128 + err.signum
    except SimulationFailed as err:
        error(f"simulation failed: {err}")
        return EXIT_FAILED
    except Exception as err:  # noqa: BLE001
        error(f"simulation failed: {type(err).__name__}: {err}")
        return EXIT_FAILED
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        from rich.console import Console
        render_table(doc, Console(highlight=False), parsed.description)
    return EXIT_OK
