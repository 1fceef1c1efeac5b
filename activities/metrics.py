"""Business counters and gauges. They go through the Temporal runtime's metric meter, so the worker's one
Prometheus endpoint serves them beside the SDK's own metrics (the SDK exporter adds no suffix, so names carry `_total`)."""

import time

from temporalio import activity
from temporalio.common import MetricMeter


def count(name: str, description: str, value: int = 1, **labels: str) -> None:
    if value <= 0:
        return
    try:
        meter = activity.metric_meter()
    except RuntimeError:
        return  # outside an activity (CLI, tests calling the code directly)
    meter.create_counter(name, description).add(value, labels)


def charge(outcome: str) -> None:
    count("billing_charges_total", "Charges sent to the payment gateway", outcome=outcome)


def dunning(event: str) -> None:
    count("billing_dunning_total", "Dunning transitions", event=event)


def users_blocked(number: int) -> None:
    count("billing_users_blocked_total", "Users blocked for storage or the free plan's user cap", value=number)


def email_sent(template: str) -> None:
    count("billing_emails_sent_total", "E-mails delivered to the SMTP server", template=template)


def orgs_stuck(by_reason: dict[str, int]) -> None:
    """Set by every reconciliation run, zeros included. A gauge lives in the worker process that
    set it, and runs land on any replica: `billing_reconcile_last_run_timestamp_seconds` tells
    which replica's value is the latest (docs/operations.md, "Stuck orgs")."""
    try:
        meter = activity.metric_meter()
    except RuntimeError:
        return
    gauge = meter.create_gauge("billing_orgs_stuck", "Orgs found stuck by the last reconciliation run")
    for reason, number in by_reason.items():
        gauge.set(number, {"reason": reason})
    meter.create_gauge("billing_reconcile_last_run_timestamp_seconds",
                       "When this process last finished a reconciliation run (Unix time)").set(int(time.time()))


def delivery_gauges(endpoint: str, waiting: int, oldest_seconds: float, failing: bool) -> None:
    """Set by the endpoint's delivery loop every few seconds (activities/webhooks.py)."""
    try:
        meter = activity.metric_meter()
    except RuntimeError:
        return
    labels = {"endpoint": endpoint}
    meter.create_gauge("billing_entitlements_pending",
                       "Orgs whose latest entitlements the endpoint has not confirmed").set(waiting, labels)
    meter.create_gauge("billing_entitlements_oldest_undelivered_seconds",
                       "Age of the oldest entitlements version the endpoint has not confirmed").set(
        int(oldest_seconds), labels)
    meter.create_gauge("billing_entitlements_endpoint_failing",
                       "1 while the endpoint has failed for three days (webhooks still retried)").set(
        int(failing), labels)


def org_gauges(meter: MetricMeter, orgs_by_status: dict[str, int], escalations_overdue: dict[str, int]) -> None:
    """Counted from the database by every worker process (workers/runtime/gauges.py), so every replica
    exports the same values: read them with `max`, never `sum`."""
    orgs = meter.create_gauge("billing_orgs", "Orgs per status, as the database holds them")
    for status, number in orgs_by_status.items():
        orgs.set(number, {"status": status})
    overdue = meter.create_gauge("billing_escalations_overdue",
                                 "Escalated orgs past their first-response or determination deadline")
    for deadline, number in escalations_overdue.items():
        overdue.set(number, {"deadline": deadline})
