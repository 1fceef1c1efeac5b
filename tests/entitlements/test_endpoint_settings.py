"""The endpoints the worker delivers to, from BILLING_WEBHOOK_URL/SECRET and the endpoints file:
two secrets at once during a rotation; a bad URL, secret or file refused in one line naming it."""

from datetime import timedelta

import pytest

from domain.errors import InvalidInput
from workers.runtime.config import Settings

NEW = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


def test_one_endpoint_from_the_environment_and_more_from_the_file(tmp_path):
    file = tmp_path / "endpoints.yaml"
    file.write_text(f"endpoints:\n  - {{name: mail-eu, url: 'https://eu.example/hook', secrets: [{OLD}, {NEW}]}}\n"
                    f"  - {{name: mail-us, url: 'https://us.example/hook', secrets: {NEW}}}\n")
    webhooks = Settings(webhook_url="http://127.0.0.1:9/hook", webhook_secret=f"{OLD} {NEW}",
                        webhook_endpoints_file=str(file), webhook_retry_max_seconds=60).webhooks
    assert [(e.name, e.url, len(e.secrets)) for e in webhooks.endpoints] == [
        ("default", "http://127.0.0.1:9/hook", 2), ("mail-eu", "https://eu.example/hook", 2),
        ("mail-us", "https://us.example/hook", 1)]
    assert webhooks.retry.longest == timedelta(seconds=60) and webhooks.retry.failing_after == timedelta(days=3)
    assert Settings().webhooks.endpoints == ()


def test_the_retry_doubles_up_to_its_ceiling_and_fails_after_three_days():
    retry = Settings(webhook_retry_max_seconds=60).webhooks.retry
    from datetime import datetime, timezone
    now = datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert [(retry.next_attempt(n, now) - now).total_seconds() for n in (1, 2, 3, 4, 5, 40)] == [5, 10, 20, 40, 60, 60]
    assert [str(retry.state(since, now)) for since in (None, now - timedelta(days=2), now - timedelta(days=3))] == [
        "healthy", "retrying", "failing"]


@pytest.mark.parametrize("settings, message", [
    ({"webhook_url": "http://x/hook"}, "BILLING_WEBHOOK_URL and BILLING_WEBHOOK_SECRET: set both, or neither"),
    ({"webhook_url": "ftp://x/hook", "webhook_secret": NEW}, "BILLING_WEBHOOK.url: must be an http:// or https:// URL"),
    ({"webhook_url": "http://x/h", "webhook_secret": "whsec_***"}, "BILLING_WEBHOOK.secrets[0]: the part after"),
    ({"webhook_url": "http://x/h", "webhook_secret": f"{NEW} {OLD} {NEW}"},
     "BILLING_WEBHOOK.secrets: one secret, or two while one is rotated"),
    ({"webhook_endpoints_file": "/nonexistent/endpoints.yaml"},
     "BILLING_WEBHOOK_ENDPOINTS_FILE /nonexistent/endpoints.yaml: No such file"),
])
def test_a_bad_setting_is_refused_naming_it(settings, message):
    with pytest.raises(InvalidInput) as refused:
        Settings(**settings).webhooks
    assert refused.value.message.startswith(message)


def test_two_endpoints_of_one_name_are_refused(tmp_path):
    file = tmp_path / "endpoints.yaml"
    file.write_text(f"endpoints:\n  - {{name: a, url: 'https://a/h', secrets: [{NEW}]}}\n"
                    f"  - {{name: a, url: 'https://b/h', secrets: [{NEW}]}}\n")
    with pytest.raises(InvalidInput, match="two endpoints named 'a'"):
        Settings(webhook_endpoints_file=str(file)).webhooks
