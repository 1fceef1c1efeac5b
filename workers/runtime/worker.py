"""The worker: the only place where workflows, activities and configuration meet.

`python -m workers.runtime.worker` runs it; SIGTERM (or Ctrl-C) stops polling and lets in-flight
activities finish (graceful shutdown) before the process exits."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.billing import BillingActivities
from activities.documents import (SAMPLE_SELLER, Documents, PdfRenderer, PdfRendererMissing, Seller,
                                  require_pdf_renderer)
from activities.errors import Places, ReadableFailures, database_address
from activities.outages import OUTAGES
from activities.mail import MailActivities, SmtpConfig
from activities.webhooks import DeliveryActivities
from activities.reconcile import DEFAULT_STUCK_AFTER, ReconcileActivities
from activities.gateways import PaymentGateway
from activities.gateways.sandbox import SandboxGateway
from activities.payments import PaymentActivities
from db.migrate import upgrade
from db.orgs import sync_plans
from db.session import Database
from domain.catalog import Catalog, load_catalog
from domain.delivery import Webhooks
from domain.errors import DomainError, InvalidInput
from domain.policy import Policy
from workers.runtime import logs
from workers.runtime.config import Settings, load_settings
from workers.runtime.gauges import OrgGauges
from workers.runtime.org_workflows import TemporalOrgWorkflows
from workers.runtime.schedules import reconcile_schedule_at_start, stuck_after
from workers.runtime.temporal import connect, worker_runtime
from workflows.calls import documents_queue
from workflows.delivery import EntitlementDeliveryWorkflow, delivery_queue
from workflows.org import OrgWorkflow
from workflows.starter import start_deliveries
from workflows.reconcile import RECONCILE_SCHEDULE_ID, ReconcileWorkflow

log = logging.getLogger("billing.worker")


@dataclass
class Components:
    db: Database
    catalog: Catalog
    policy: Policy
    smtp: SmtpConfig
    gateway: PaymentGateway
    seller: Seller = SAMPLE_SELLER
    # Where receipts' PDFs are rendered (BILLING_PDF_PROCESSES): by default in this process.
    pdf: PdfRenderer = field(default_factory=PdfRenderer)
    # The mail platform's endpoints (BILLING_WEBHOOK_*): none, no delivery worker.
    webhooks: Webhooks = field(default_factory=Webhooks)
    # False: e-mails carry no invoice PDF and none is rendered (`billing simulate` unless --pdf).
    attach_pdfs: bool = True

    def places(self, client: Client) -> Places:
        return Places(database=database_address(self.db.url), smtp=f"{self.smtp.host}:{self.smtp.port}",
                      temporal=client.service_client.config.target_host)

    def mail(self) -> MailActivities:
        """The mailer; the invoice's PDF, kept once rendered, attached to the e-mails that carry it."""
        return MailActivities(self.db, self.smtp, documents=Documents(self.catalog, self.seller, self.pdf, db=self.db),
                              attach_pdfs=self.attach_pdfs)

    def activities(self, mail: MailActivities | None = None) -> list:
        """The org queue's activities. send_email among them for runs begun before 1.1, which send
        e-mails as local activities (workflows.org, MAIL_ON_DOCUMENTS_QUEUE)."""
        billing = BillingActivities(self.db, self.catalog, self.policy)
        payments = PaymentActivities(self.db, self.gateway)
        return [billing.load_org, billing.expire_trial, billing.convert_trial, billing.open_renewal,
                billing.settle_paid_invoice, billing.enter_dunning, billing.record_failed_attempt,
                billing.write_off_and_free, billing.escalate, billing.apply_change, billing.apply_reports,
                billing.open_account, billing.discard_opening,
                payments.charge_invoice, (mail or self.mail()).send_email]


def smtp_from(settings: Settings) -> SmtpConfig:
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                      password=settings.smtp_password, starttls=settings.smtp_starttls, sender=settings.mail_from)


def gateway_from(settings: Settings, db: Database) -> PaymentGateway:
    """BILLING_GATEWAY: the sandbox, or Stripe with its key (never logged)."""
    if settings.gateway == "stripe":
        # Imported here: the Stripe SDK takes a good part of a second to import on a loaded machine,
        # which the sandbox's users (`billing simulate`, tests) never need.
        from activities.gateways.stripe import StripeConfig, StripeGateway
        key = settings.stripe_api_key_value
        if not key:
            raise InvalidInput("BILLING_GATEWAY=stripe needs STRIPE_API_KEY or STRIPE_API_KEY_FILE")
        return StripeGateway(db, StripeConfig(key, settings.stripe_api_base, settings.stripe_off_session,
                                              settings.stripe_timeout_seconds))
    return SandboxGateway(db)


def components_from(settings: Settings, migrate: bool = True) -> Components:
    require_pdf_renderer()   # receipts carry a PDF: a worker that cannot render one does not start
    catalog = load_catalog(settings.catalog_path)
    if migrate:
        upgrade(settings.database_url)
    db = Database(settings.database_url)
    with db.transaction() as session:
        sync_plans(session, catalog)
    return Components(db=db, catalog=catalog, policy=settings.policy, smtp=smtp_from(settings),
                      gateway=gateway_from(settings, db), seller=settings.seller, pdf=PdfRenderer(settings.pdf_processes),
                      webhooks=settings.webhooks)


class Workers:
    """The org queue's worker and, unless documents are served elsewhere, the documents' queue's
    worker beside it in this process: started and drained together (`async with`)."""

    def __init__(self, org: Worker, documents: Worker | None) -> None:
        self.org, self.documents = org, documents
        self._running = contextlib.AsyncExitStack()

    def config(self) -> dict:
        return self.org.config()

    async def __aenter__(self) -> "Workers":
        for worker in (self.org, self.documents):
            if worker is not None:
                await self._running.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc) -> bool | None:
        return await self._running.__aexit__(*exc)


def documents_worker(client: Client, task_queue: str, components: Components, mail: MailActivities | None = None,
                     concurrency: int = 8, mail_per_second: float | None = None,
                     graceful_shutdown: timedelta = timedelta(seconds=60)) -> Worker:
    """The documents' queue beside `task_queue` (workflows.calls.documents_queue): e-mails, with the
    invoice PDFs they carry. mail_per_second is the SMTP provider's rate: Temporal's task-queue
    activity rate limit, kept by the server across every documents worker."""
    return Worker(client, task_queue=documents_queue(task_queue), activities=[(mail or components.mail()).send_email],
                  interceptors=[ReadableFailures(components.places(client), OUTAGES.succeeded)],
                  max_concurrent_activities=concurrency, max_task_queue_activities_per_second=mail_per_second,
                  graceful_shutdown_timeout=graceful_shutdown)


def build_worker(client: Client, task_queue: str, components: Components, max_threads: int = 16,
                 graceful_shutdown: timedelta = timedelta(seconds=60), workflow_sandbox: bool = True,
                 max_cached_workflows: int = 1000, stuck_threshold: timedelta = DEFAULT_STUCK_AFTER,
                 serve_documents: bool = True, documents_concurrency: int = 8,
                 mail_per_second: float | None = None) -> Workers:
    """workflow_sandbox=False runs workflow code without the SDK's sandbox: the same code and
    decisions, without the runtime guard against non-deterministic calls, for ~40% less worker
    CPU per renewal and about twice the renewals/s (docs/reliability.md, "What limits
    throughput"). Tests and the replay check keep the sandbox, so a forbidden call still fails CI.
    serve_documents=False leaves the documents' queue to workers elsewhere
    (`python -m workers.runtime.documents`)."""
    reconciler = ReconcileActivities(components.db, components.policy, TemporalOrgWorkflows(client, task_queue),
                                     stuck_after=stuck_threshold)
    mail = components.mail()
    org = Worker(client, task_queue=task_queue, workflows=[OrgWorkflow, ReconcileWorkflow],
                 activities=components.activities(mail) + [reconciler.reconcile_orgs],
                 activity_executor=ThreadPoolExecutor(max_workers=max_threads),
                 interceptors=[ReadableFailures(components.places(client), OUTAGES.succeeded)],
                 max_concurrent_activities=max_threads,
                 max_concurrent_local_activities=max_threads,
                 # No more workflow tasks taken at once than local activities can run: under load, a
                 # task taken beyond that waits for a slot or the loop, outlives its timeout, and its
                 # local activities (a charge among them) run again in its retry (137 at 2,000 orgs,
                 # issue 27). The others wait in the server's queue, where waiting costs nothing.
                 max_concurrent_workflow_tasks=max_threads,
                 max_cached_workflows=max_cached_workflows,
                 workflow_runner=SandboxedWorkflowRunner() if workflow_sandbox else UnsandboxedWorkflowRunner(),
                 graceful_shutdown_timeout=graceful_shutdown)
    documents = documents_worker(client, task_queue, components, mail, documents_concurrency, mail_per_second,
                                 graceful_shutdown) if serve_documents else None
    return Workers(org, documents)


def build_delivery_worker(client: Client, task_queue: str, components: Components,
                          graceful_shutdown: timedelta = timedelta(seconds=60)) -> Worker | None:
    """The entitlement deliveries' worker, on a task queue of its own (workflows/delivery.py), or
    None when no endpoint is configured."""
    if not components.webhooks.endpoints:
        return None
    delivery = DeliveryActivities(components.db, components.webhooks)
    return Worker(client, task_queue=delivery_queue(task_queue), workflows=[EntitlementDeliveryWorkflow],
                  activities=[delivery.deliver_entitlements], graceful_shutdown_timeout=graceful_shutdown)


@contextlib.asynccontextmanager
async def delivering(client: Client, task_queue: str, components: Components,
                     graceful_shutdown: timedelta = timedelta(seconds=60)) -> AsyncIterator[None]:
    """While inside: each endpoint's delivery workflow started and its worker polling."""
    worker = build_delivery_worker(client, task_queue, components, graceful_shutdown)
    if worker is None:
        yield
        return
    async with worker:
        await start_deliveries(client, task_queue, [e.name for e in components.webhooks.endpoints])
        yield


def configured_worker(client: Client, settings: Settings, components: Components,
                      graceful_shutdown: timedelta | None = None) -> Workers:
    """The worker as the environment configures it (BILLING_*)."""
    return build_worker(client, settings.temporal_task_queue, components,
                        graceful_shutdown=graceful_shutdown or timedelta(seconds=settings.graceful_shutdown_seconds),
                        workflow_sandbox=settings.workflow_sandbox, max_cached_workflows=settings.max_cached_workflows,
                        stuck_threshold=stuck_after(settings), serve_documents=settings.serve_documents,
                        documents_concurrency=settings.documents_concurrency,
                        mail_per_second=settings.mail_per_second)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    components = components_from(settings)
    runtime = worker_runtime(settings.metrics_port)
    client = await connect(settings, runtime=runtime)
    worker = configured_worker(client, settings, components)
    if settings.reconcile_schedule:
        await reconcile_schedule_at_start(client, settings.temporal_task_queue)
        log.info("reconciliation schedule %s in place", RECONCILE_SCHEDULE_ID)
    gauges = OrgGauges(components.db, runtime.metric_meter, timedelta(seconds=settings.gauge_refresh_seconds),
                       components.places(client))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling %s on %s (metrics on :%s)", settings.temporal_task_queue, settings.temporal_address,
             settings.metrics_port)
    async with worker, delivering(client, settings.temporal_task_queue, components,
                                  timedelta(seconds=settings.graceful_shutdown_seconds)):
        refreshing = asyncio.create_task(gauges.run(stop))
        await stop.wait()
        log.info("stopping: draining in-flight activities (up to %ss)", settings.graceful_shutdown_seconds)
    await refreshing
    components.pdf.shutdown()
    components.db.dispose()
    log.info("worker stopped")


def start(run) -> None:  # noqa: ANN001  (run: Settings -> a coroutine serving until stopped)
    """A worker process's start, whichever queue it serves: a bad setting, catalog, policy or a
    missing PDF renderer stops it in one line, exit 2."""
    settings = load_settings()
    logs.configure(settings.log_format)
    try:
        asyncio.run(run(settings))
    except DomainError as err:  # a bad catalog or policy: say what, do not start
        log.error("cannot start: %s", err.message)
        raise SystemExit(2) from None
    except PdfRendererMissing as err:
        log.error("cannot start: %s", err)
        raise SystemExit(2) from None


def main() -> None:
    start(run_worker)


if __name__ == "__main__":
    main()
