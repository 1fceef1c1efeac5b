"""The worker's Prometheus endpoint (one per process, the Temporal runtime's exporter) serves
the business counters beside the SDK's own metrics, including counters incremented in sync
activities running on the worker's thread pool, and the stuck-org gauges each reconciliation sets."""

import time
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.worker import Worker

from activities.reconcile import ReconcileActivities
from tests.devserver.support import DECLINING, GOOD, eventually, paid_org_renewing_at
from tests.devserver.test_reconcile import reconcile_on, stuck_org_stack, until_stuck_reported
from tests.support.smtp import free_port
from workers.temporal import metrics_runtime
from workers.worker import build_worker
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
    runtime = metrics_runtime(port)  # what `python -m workers.worker` uses, on BILLING_METRICS_PORT
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
            assert value(samples, "billing_emails_sent_total", template="receipt", **ours) == 1
            assert value(samples, "billing_emails_sent_total", template="payment_failed", **ours) == 1
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
    assert "temporal_activity_execution_latency_bucket" in names and "temporal_worker_task_slots_available" in names


async def test_reconcile_sets_the_stuck_orgs_gauge_by_reason(dev_stack):
    stack = dev_stack
    port = free_port()
    client = await Client.connect(stack.client.service_client.config.target_host,
                                  namespace=stack.client.namespace, runtime=metrics_runtime(port))
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
        patient = ReconcileActivities(stack.db, stack.policy, client, stack.task_queue)
        async with Worker(client, task_queue=f"{reconcile_queue}-patient", workflows=[ReconcileWorkflow],
                          activities=[patient.reconcile_orgs]):
            await reconcile_on(client, f"{reconcile_queue}-patient")
        _, samples = scrape(port)
        calm = {"task_queue": f"{reconcile_queue}-patient"}
        assert value(samples, "billing_orgs_stuck", reason="activity_failing", **calm) == 0
        assert value(samples, "billing_orgs_stuck", reason="step_overdue", **calm) == 0
