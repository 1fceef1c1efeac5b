"""`billing simulate`: one org through its life, on the real workflows and activities.

The scenario (SIMULATE.md, parsed in workers.simulate.scenario) runs against:
- Temporal's time-skipping test server, a fresh one per run, later by whole Gregorian cycles
  (workers.simulate.clock);
- a real database: a fresh SQLite file, or BILLING_DATABASE_URL when it holds no org
  (workers.simulate.database);
- a real SMTP conversation with a capture server on loopback (workers.simulate.mail);
- the sandbox payment gateway;
- the workflows inside the SDK's sandbox or outside it, as BILLING_WORKFLOW_SANDBOX says (the
  worker's setting; the deploy files say outside).
There is no model of the rules here: actions are the same Updates the CLI sends, and the
timeline is read back from the org's event log (workers.simulate.timeline).

Instants. The harness advances the clock from one instant to the next: each wake-up of the
org's workflow (its next step, which the workflow publishes as the NextActionAt search
attribute), each action, and the end. At each instant it waits until the workflow has finished
everything due (nothing in flight, the next step in the future: workers.simulate.history), then
notes the last event id written. Every event is reported at the instant of the chain that wrote
it, so two runs of a scenario print the same timeline. Actions at an instant where a step is also
due apply after the step (the renewal first, then the action), and in file order among themselves.

Nothing is left behind: the simulated org is removed from a database that outlives the run, and
the test server runs under a guard (workers.simulate.guard) that stops it should this process die."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.simulate.clock import ShiftedClock
from workers.simulate.errors import SimulationFailed
from workers.simulate.guard import guarded_test_server, scratch_dir
from workers.simulate.history import TASK_FAILED, workflow_busy
from workers.simulate.timeline import Mark, Rejection, final_state, timeline

if TYPE_CHECKING:  # the heavy imports wait until a scenario runs: `--example` prints at once
    from workers.simulate.scenario import Action, Scenario

log = logging.getLogger("billing.simulate")

SETTLE_TIMEOUT_SECONDS = 60.0   # real time allowed for the workflow to finish what is due at one instant
FAILING_TASK_SECONDS = 10.0     # real time a workflow task may keep failing before the run gives up
# Real time between two looks at a busy workflow: from 2 ms, doubling, at most 5 ms. A look is a
# description (and, once that looks idle, the run's history): about a millisecond of CPU here and
# on the test server. Each settle waits some part of a pause more than the workflow needs: with at
# most 20 ms, ~0.5 s of an org-year's 72 instants (docs/reliability.md, "`billing simulate`, an
# org-year").
FIRST_LOOK_SECONDS, MAX_LOOK_SECONDS = 0.002, 0.005


@dataclass
class _Run:
    scenario: Scenario
    catalog: Any
    db: Any
    mail: Any
    env: Any
    task_queue: str = field(default_factory=lambda: f"simulate-{uuid.uuid4().hex[:8]}")
    clock: ShiftedClock | None = None
    instant: datetime | None = None
    marks: list[Mark] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    handle: Any = None
    next_due: datetime | None = None  # the workflow's next step, as of the last settle
    pdfs: bool = False                # render the invoice PDFs the e-mails carry (--pdf)
    workflow_sandbox: bool = True     # BILLING_WORKFLOW_SANDBOX, as the worker reads it

    @property
    def org_id(self) -> str:
        return self.scenario.org.id

    @property
    def workflow_id(self) -> str:
        from workflows.messages import workflow_id_for
        return workflow_id_for(self.org_id)

    async def _sleep_until(self, moment: datetime) -> None:
        delta = moment - await self.env.get_current_time()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    # -- settling ---------------------------------------------------------------------------------

    async def _last_event_id(self) -> int:
        from db.queries import last_event_id

        def read() -> int:
            with self.db.transaction() as session:
                return last_event_id(session, self.org_id)
        return await asyncio.to_thread(read)

    async def _settle(self) -> None:
        """Wait until the workflow has done everything due at the current instant."""
        from temporalio.service import RPCError
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_SECONDS
        failing_since: float | None = None
        pause = FIRST_LOOK_SECONDS
        while True:
            try:
                problem, due = await workflow_busy(self.env.client, self.workflow_id, self.instant, self.clock)
            except RPCError as err:  # a hiccup of the test server: ask again
                problem, due = f"test server: {err}", None
            if problem is None:
                self.next_due = due
                return
            if problem.startswith(TASK_FAILED):
                # A workflow task that keeps failing is a bug in the workflow, not slowness.
                failing_since = failing_since or loop.time()
                if loop.time() - failing_since > FAILING_TASK_SECONDS:
                    raise SimulationFailed(f"the org workflow is stuck at {self.clock.text(self.instant)}: {problem}")
            else:
                failing_since = None
            if loop.time() > deadline:
                raise SimulationFailed(f"the org workflow did not settle at {self.clock.text(self.instant)} within "
                                       f"{SETTLE_TIMEOUT_SECONDS:.0f} s: {problem}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_LOOK_SECONDS)

    async def _settle_and_mark(self) -> datetime | None:
        """Settle at the current instant, note the last event written; returns the next step's time."""
        await self._settle()
        self.marks.append(Mark(self.instant, await self._last_event_id()))
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
            outcome = await send_operation(self.env.client, self.org_id, self._shifted(action.request))
            log.info("actions[%d] %s: %s", action.index, action.kind, outcome.message)
        except OperationRefused as err:
            await self._reject(action, err.message)

    def _shifted(self, request):
        """A moment a request names (a report's `reported_at`) on the shifted clock the run uses."""
        from dataclasses import fields, replace
        from domain.requests import Kind
        moments = {item.name: self.clock.shifted(datetime.fromisoformat(getattr(request, item.name)))
                   for item in fields(request)
                   if item.metadata.get("kind") == Kind.INSTANT and getattr(request, item.name)}
        return replace(request, **{name: moment.isoformat() for name, moment in moments.items()})

    async def _reject(self, action: Action, message: str) -> None:
        log.info("actions[%d] %s refused: %s", action.index, action.kind, message)
        self.rejections.append(Rejection(self.instant, await self._last_event_id(), action,
                                         self.clock.unshift_message(message)))

    # -- the whole run ------------------------------------------------------------------------------

    async def execute(self) -> dict[str, Any]:
        from activities.mail import SmtpConfig
        from activities.payments import SandboxGateway
        from db.orgs import set_card
        from services.orgs import create_org
        from domain.onboarding import paid_for_one_cycle
        from workers.runtime.worker import Components, build_worker
        from workflows.org import OrgWorkflow
        from workflows.starter import org_handle, start_org_workflow

        scenario = self.scenario
        self.clock = ShiftedClock.after(scenario.start, scenario.until, await self.env.get_current_time())
        start = self.clock.shifted(scenario.start)
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
                                gateway=SandboxGateway(self.db), attach_pdfs=self.pdfs)
        async with build_worker(self.env.client, self.task_queue, components,
                                graceful_shutdown=timedelta(seconds=10), workflow_sandbox=self.workflow_sandbox):
            await start_org_workflow(self.env.client, scenario.org.id, self.task_queue, scenario.org.name,
                                     scenario.org.admin_email)
            self.handle = org_handle(self.env.client, scenario.org.id)
            for action in scenario.actions:
                await self._advance_to(self.clock.shifted(action.at))
                await self._apply(action)
            await self._advance_to(self.clock.shifted(scenario.until))
            # Safe now: nothing is in flight, so the query is answered at once.
            view = await self.handle.query(OrgWorkflow.state)
        events = await asyncio.to_thread(self._timeline)
        return {"org": scenario.org.id, "events": events, "final": final_state(view.snapshot, self.clock)}

    def _timeline(self) -> list[dict[str, Any]]:
        from db.queries import event_log
        with self.db.transaction() as session:
            log_written = event_log(session, self.org_id)
        return timeline(log_written, self.mail.message_ids(), self.marks, self.rejections, self.clock)


_runtime = None


def _quiet_runtime():
    """A Temporal runtime whose core logs only errors: --json output stays clean on stderr too."""
    global _runtime
    if _runtime is None:
        from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
        _runtime = Runtime(telemetry=TelemetryConfig(
            logging=LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")), metrics=None))
    return _runtime


def _outcome(task: asyncio.Future) -> Any:
    """A finished task's result or exception; None if it did not finish."""
    if not task.done() or task.cancelled():
        return None
    return task.exception() or task.result()


async def run_scenario(scenario: Scenario, catalog, database_url: str | None = None,
                       keep_org: bool = False, pdfs: bool = False) -> dict[str, Any]:
    """Run a parsed scenario; returns the timeline document of SIMULATE.md. `keep_org` leaves the
    simulated org in `database_url` (tests that read what the run wrote); the command never does.
    `pdfs`: the receipts carry their invoice as a PDF, as in production; a dry run renders no
    document unless asked (`--pdf`)."""
    if pdfs:
        from activities.documents import require_pdf_renderer
        require_pdf_renderer()
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from workers.runtime.search_attributes import api_types
    from workers.simulate.database import prepare_database, remove_org
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
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="billing-simulate-", dir=scratch_dir()))
        if throwaway:
            database_url = f"sqlite:///{Path(folder) / 'simulate.db'}"
        mail = MailCapture().start()
        stack.callback(mail.stop)
        # The test server starts while the migrations run. Each is awaited to its end even when
        # the run is cancelled meanwhile: a server started must be known to be shut down.
        starting = [asyncio.ensure_future(start_env(guarded_test_server(folder))),
                    asyncio.ensure_future(asyncio.to_thread(prepare_database, database_url, scenario.org.id,
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
                    stack.callback(remove_org, db, scenario.org.id)
        for outcome in (db, env):
            if isinstance(outcome, BaseException):
                raise outcome
        return await _Run(scenario, catalog, db, mail, env, pdfs=pdfs,
                          workflow_sandbox=workflow_sandbox_configured()).execute()


def load_and_run(path: Path, database_url: str | None = None, keep_org: bool = False,
                 pdfs: bool = False) -> dict[str, Any]:
    """Parse and run a scenario file with the configured catalog and policy (tests, bench)."""
    from workers.simulate.scenario import load_scenario
    catalog, policy = configured()
    scenario = load_scenario(path, catalog, policy)
    return asyncio.run(run_scenario(scenario, catalog, database_url, keep_org, pdfs))


def max_input_file_mb() -> int:
    from workers.runtime.config import Settings
    return Settings().max_input_file_mb


def workflow_sandbox_configured() -> bool:
    """BILLING_WORKFLOW_SANDBOX: the simulator runs the workflows as the worker does, inside the
    SDK's sandbox or, as deployed, outside it (12-15% less CPU per simulated year:
    docs/reliability.md, "`billing simulate`, an org-year")."""
    from workers.runtime.config import Settings
    return Settings().workflow_sandbox


def configured():
    """The catalog and the policy the environment configures (BILLING_*)."""
    from domain.catalog import load_catalog
    from workers.runtime.config import Settings
    settings = Settings()
    return load_catalog(settings.catalog_path), settings.policy
