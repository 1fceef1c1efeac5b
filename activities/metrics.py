"""Business counters. They go through the Temporal runtime's metric meter, so the worker's one
Prometheus endpoint serves them beside the SDK's own metrics (the SDK exporter adds no suffix, so names carry `_total`)."""

from temporalio import activity


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
