"""The worker's Prometheus endpoint (one per process, the Temporal runtime's exporter) serves
the business counters beside the SDK's own metrics, including counters incremented in sync
activities running on the worker's thread pool, the stuck-org gauges each reconciliation sets, and
the org gauges every worker counts from the database."""

import asyncio
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from temporalio.client import Client
from temporalio.worker import Worker

from activities.errors import Places
from activities.reconcile import ReconcileActivities
from db.models import Subscription
from db.session import Database
from domain.states import OrgStatus
from tests.devserver.support import DECLINING, GOOD, create_db_only_org, eventually, paid_org_renewing_at
from tests.devserver.test_reconcile import reconcile_on, stuck_org_stack, until_stuck_reported
from tests.support.smtp import free_port
from workers.runtime.config import Settings
from workers.runtime.gauges import OrgGauges
from workers.runtime.org_workflows import TemporalOrgWorkflows
from workers.runtime.temporal import worker_runtime
from workers.runtime.worker import build_worker, run_worker
from workflows.calls import documents_queue
from workflows.reconcile import ReconcileWorkflow

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


def scrape(port: int) -> tuple[str, dict[tuple[str, frozenset], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return text, {(sample.name, frozenset(sample.labels.items())): sample.value
                  for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of `name` over the samples carrying all of `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_prometheus_endpoint_serves_business_counters_after_charges(dev_stack):
    stack = dev_stack
    port = free_port()
    runtime = worker_runtime(port)  # what `python -m workers.runtime.worker` uses, on BILLING_METRICS_PORT
    client = await Client.connect(stack.client.service_client.config.target_host,
                                  namespace=stack.client.namespace, runtime=runtime)
    async with build_worker(client, stack.task_queue, stack.components(), graceful_shutdown=timedelta(seconds=5)):
        now = await stack.now()
        paid = await paid_org_renewing_at(stack, now - timedelta(minutes=1), GOOD)       # renewal charged: paid
        declined = await paid_org_renewing_at(stack, now - timedelta(minutes=1), DECLINING)  # declined: dunning

        async def charged():
            assert (await stack.state(paid)).snapshot.renews_at > now
            assert (await stack.state(declined)).snapshot.dunning_attempts == 1
        await eventually(charged)

        ours = {"task_queue": stack.task_queue}

        async def exported():
            text, samples = scrape(port)
            assert value(samples, "billing_charges_total", outcome="succeeded", **ours) == 1
            assert value(samples, "billing_charges_total", outcome="declined", **ours) == 1
            assert value(samples, "billing_dunning_total", event="entered", **ours) == 1
            # E-mails are sent on the documents' queue (workflows.calls.documents_queue).
            documents = {"task_queue": documents_queue(stack.task_queue)}
            assert value(samples, "billing_emails_sent_total", template="receipt", **documents) == 1
            assert value(samples, "billing_emails_sent_total", template="payment_failed", **documents) == 1
            return text, samples
        text, samples = await eventually(exported, timeout=5)

    # Exposed under their exact names (the exporter adds no suffix: no `_total_total`).
    for name in ("billing_charges_total", "billing_dunning_total", "billing_emails_sent_total"):
        assert f"# TYPE {name} counter" in text
    assert "_total_total" not in text
    # The business counters carry the activity's labels; the SDK's own metrics are there too.
    names = {name for name, _ in samples}
    (_, labels), = [(n, dict(ls)) for (n, ls), _ in samples.items()
                    if n == "billing_charges_total" and ("outcome", "succeeded") in ls]
    assert labels["activity_type"] == "charge_invoice" and labels["namespace"] == stack.client.namespace
    assert labels["task_queue"] == stack.task_queue
    assert "# TYPE temporal_request counter" in text
    # Steps run as local activities first (workflows/org.py): their latency has its own histogram.
    assert "temporal_local_activity_execution_latency_bucket" in names
    assert "temporal_worker_task_slots_available" in names


async def test_reconcile_sets_the_stuck_orgs_gauge_by_reason(dev_stack):
    stack = dev_stack
    port = free_port()
    client = await Client.connect(stack.client.service_client.config.target_host,
                                  namespace=stack.client.namespace, runtime=worker_runtime(port))
    before = time.time()
    async with stuck_org_stack(stack, client) as (_stuck, _healthy, reconcile_queue):
        report = await until_stuck_reported(client, reconcile_queue)
        assert (report.activity_failing, report.step_overdue) == (1, 1)
        ours = {"task_queue": reconcile_queue}

        async def exported():
            text, samples = scrape(port)
            assert value(samples, "billing_orgs_stuck", reason="activity_failing", **ours) == 1
            assert value(samples, "billing_orgs_stuck", reason="step_overdue", **ours) == 1
            assert value(samples, "billing_reconcile_last_run_timestamp_seconds", **ours) >= int(before)
            return text
        text = await eventually(exported, timeout=5)
        assert "# TYPE billing_orgs_stuck gauge" in text
        assert "# TYPE billing_reconcile_last_run_timestamp_seconds gauge" in text

        # The gauge is the last run's count, not a running total: healthy again, it reads 0.
        patient = ReconcileActivities(stack.db, stack.policy, TemporalOrgWorkflows(client, stack.task_queue))
        async with Worker(client, task_queue=f"{reconcile_queue}-patient", workflows=[ReconcileWorkflow],
                          activities=[patient.reconcile_orgs]):
            await reconcile_on(client, f"{reconcile_queue}-patient")
        _, samples = scrape(port)
        calm = {"task_queue": f"{reconcile_queue}-patient"}
        assert value(samples, "billing_orgs_stuck", reason="activity_failing", **calm) == 0
        assert value(samples, "billing_orgs_stuck", reason="step_overdue", **calm) == 0


def orgs_in_the_database(stack, statuses: dict[str, str]) -> None:
    """Orgs with these statuses (id: status), without workflows: the gauges read the database only."""
    now = datetime.now(timezone.utc)
    for org_id, status in statuses.items():
        create_db_only_org(stack, org_id, start=now - timedelta(days=3), plan="standard", cycle="monthly")
        with stack.db.transaction() as session:
            session.execute(update(Subscription).where(Subscription.org_id == org_id).values(status=status))


def escalate(stack, org_id: str, first_response_due: datetime, determination_due: datetime) -> None:
    with stack.db.transaction() as session:
        session.execute(update(Subscription).where(Subscription.org_id == org_id).values(
            status=OrgStatus.ESCALATED, first_response_due=first_response_due, determination_due=determination_due))


async def test_every_worker_exports_orgs_per_status_and_overdue_escalations_counted_from_the_database(
        dev_stack, pg_url):
    stack = dev_stack
    now = datetime.now(timezone.utc)
    orgs_in_the_database(stack, {"a1": "active", "a2": "active", "a3": "active", "p1": "past_due", "f1": "free",
                                 "e1": "active", "e2": "active", "e3": "active"})
    escalate(stack, "e1", now - timedelta(hours=1), now + timedelta(hours=4))      # first response overdue
    escalate(stack, "e2", now - timedelta(hours=9), now - timedelta(hours=4))      # both overdue
    escalate(stack, "e3", now + timedelta(hours=2), now + timedelta(hours=7))      # within its deadlines
    port = free_port()
    settings = Settings(temporal_address=stack.client.service_client.config.target_host,
                        temporal_task_queue=stack.task_queue, database_url=pg_url, metrics_port=port,
                        gauge_refresh_seconds=1)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    try:
        async def exported(expected: dict[str, int], first_response: int, determination: int):
            _, samples = scrape(port)
            by_status = {status: value(samples, "billing_orgs", status=status) for status in OrgStatus}
            assert by_status == expected, by_status
            assert value(samples, "billing_escalations_overdue", deadline="first_response") == first_response
            assert value(samples, "billing_escalations_overdue", deadline="determination") == determination
        await eventually(lambda: exported({"trialing": 0, "active": 3, "past_due": 1, "cancelling": 0, "free": 1,
                                           "escalated": 3}, 2, 1), timeout=20)
        # Staff resolve e2 (it is active again): the next refresh, about a second later, says so.
        with stack.db.transaction() as session:
            session.execute(update(Subscription).where(Subscription.org_id == "e2").values(
                status=OrgStatus.ACTIVE, first_response_due=None, determination_due=None))
        await eventually(lambda: exported({"trialing": 0, "active": 4, "past_due": 1, "cancelling": 0, "free": 1,
                                           "escalated": 2}, 1, 0), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)


async def test_a_failed_refresh_logs_one_line_and_keeps_the_last_values(dev_stack, caplog):
    stack = dev_stack
    orgs_in_the_database(stack, {"p1": "past_due", "p2": "past_due"})
    port = free_port()
    runtime = worker_runtime(port)   # held: the endpoint lives as long as its runtime
    gauges = OrgGauges(stack.db, runtime.metric_meter, timedelta(seconds=60))
    gauges.refresh()
    closed = free_port()
    gauges.db = Database(f"postgresql+psycopg2://postgres@127.0.0.1:{closed}/billing")
    gauges.places = Places(database=f"127.0.0.1:{closed}")
    stop = asyncio.Event()
    stop.set()
    await gauges.run(stop)   # one refresh, then it sees the stop
    gauges.db.dispose()
    lines = [r.getMessage() for r in caplog.records if r.name == "billing.gauges"]
    assert lines == [f"org gauges not refreshed, keeping the last values: database unreachable: connection refused "
                     f"at 127.0.0.1:{closed}"]
    _, samples = scrape(port)
    assert value(samples, "billing_orgs", status="past_due") == 2
