"""A platform that was away reads the current version: GET /v1/orgs/{id}/entitlements behind
the API key, and `billing org entitlements`; operators see each endpoint with `billing webhook
status` and send an org's again with `billing webhook resend` (real HTTP, the CLI as a process)."""

import json
from datetime import datetime, timezone
from pathlib import Path

import jsonschema

from activities.billing import BillingActivities
from activities.messages import ChangeInput
from db.entitlements import current_document, mark_delivered
from domain.policy import Policy
from domain.requests import AddUserRequest, SetUsageRequest
from tests.entitlements.test_webhooks import SECRET, START, trial_org
from tests.support.cli import billing
from tests.support.http import call, serving
from workers.api.app import Service, create_app
from workers.api.routes import ROUTES

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "entitlements.schema.json").read_text())
POLICY = Policy(billing_staff=("rina@billing.test",))


def blocked_trial(db, catalog) -> str:
    org_id = trial_org(db, catalog, POLICY, "acme")
    billing_ = BillingActivities(db, catalog, POLICY)
    billing_.apply_change(ChangeInput(org_id, AddUserRequest(email="b@acme.test"), key="k1", at=START))
    billing_.apply_change(ChangeInput(org_id, SetUsageRequest(user="b@acme.test", storage_gb=101.5), key="k2",
                                      at=START))
    return org_id


async def test_the_api_answers_the_current_version_behind_the_key(sqlite_db, catalog):
    org_id = blocked_trial(sqlite_db, catalog)
    with sqlite_db.transaction() as session:
        expected = current_document(session, org_id)
    async with serving(create_app(Service(db=sqlite_db, api_key="k3y"), ROUTES)) as url:
        key = {"Authorization": "Bearer k3y"}
        answer = await call("GET", f"{url}/v1/orgs/acme/entitlements", headers=key)
        unknown = await call("GET", f"{url}/v1/orgs/nobody/entitlements", headers=key)
        unknown_long = await call("GET", f"{url}/v1/orgs/{'x' * 5000}/entitlements", headers=key)
        keyless = await call("GET", f"{url}/v1/orgs/acme/entitlements")
    assert answer.status == 200 and answer.body == expected and expected["version"] == 3
    jsonschema.validate(answer.body, SCHEMA)
    assert answer.headers["etag"] == '"3"'
    assert [u["email"] for u in answer.body["users"] if u["blocked"]] == ["b@acme.test"]
    assert (unknown.status, unknown.body) == (404, {"error": "unknown org 'nobody'"})
    # Named cut to a line, as the CLI names it (it was echoed whole).
    assert (unknown_long.status, unknown_long.body) == (404, {"error": "unknown org 'xxxxxxxxxxxxxxxxxxxxxxxxxxx... "
                                                                       "(5000 characters)"})
    assert keyless.status == 401


async def test_the_cli_shows_entitlements_and_each_endpoints_state_and_resends(sqlite_db, catalog):
    org_id = blocked_trial(sqlite_db, catalog)
    env = {"BILLING_DATABASE_URL": sqlite_db.url, "BILLING_WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "BILLING_WEBHOOK_SECRET": SECRET}
    shown = await billing("org", "entitlements", org_id, "--json", **env)
    assert shown.code == 0 and json.loads(shown.out)["version"] == 3
    text = await billing("org", "entitlements", org_id, **env)
    assert "version 3" in text.out and "archiving, ediscovery, smime" in text.out
    assert "b@acme.test" in text.out and "storage" in text.out
    missing = await billing("org", "entitlements", "nobody", **env)
    assert (missing.code, missing.err_lines) == (1, ["error: unknown org 'nobody' in the database "
                                                     "(BILLING_DATABASE_URL)"])

    status = json.loads((await billing("webhook", "status", "--json", **env)).out)["endpoints"]
    assert [(e["endpoint"], e["state"], e["pending_orgs"], e["oldest_undelivered"]) for e in status] == [
        ("default", "healthy", 1, START.isoformat())]
    with sqlite_db.transaction() as session:
        mark_delivered(session, "default", org_id, 3, datetime.now(timezone.utc))
    assert json.loads((await billing("webhook", "status", "--json", **env)).out)["endpoints"][0]["pending_orgs"] == 0
    resent = await billing("webhook", "resend", org_id, **env)
    assert resent.code == 0 and "version 3" in resent.out
    assert json.loads((await billing("webhook", "status", "--json", **env)).out)["endpoints"][0]["pending_orgs"] == 1
    assert (await billing("webhook", "resend", "nobody", **env)).code == 1
    # The table: the endpoint's row, its oldest undelivered version's moment to the second.
    [row] = [line for line in (await billing("webhook", "status", **env)).out.splitlines() if "default" in line]
    assert "healthy" in row and f"{START:%Y-%m-%d %H:%M:%S}" in row

    bad = await billing("webhook", "status", **{**env, "BILLING_WEBHOOK_SECRET": "s3cret"})
    assert (bad.code, bad.err_lines) == (2, ["error: BILLING_WEBHOOK.secrets[0]: a webhook secret starts with "
                                             "'whsec_' (Standard Webhooks)"])


async def test_resend_with_no_endpoint_configured_says_nothing_is_sent(sqlite_db, catalog):
    """It answered `will be sent again to every endpoint` with none configured, and forgot the
    deliveries made: nothing was to be sent."""
    org_id = blocked_trial(sqlite_db, catalog)
    with sqlite_db.transaction() as session:
        mark_delivered(session, "default", org_id, 3, datetime.now(timezone.utc))
    resent = await billing("webhook", "resend", org_id, BILLING_DATABASE_URL=sqlite_db.url)
    assert (resent.code, resent.out, resent.err_lines) == (1, "", [
        "error: nothing to send: no webhook endpoint is configured (BILLING_WEBHOOK_URL, "
        "BILLING_WEBHOOK_ENDPOINTS_FILE); the mail platform can read version 3 at GET /v1/orgs/acme/entitlements"])
    env = {"BILLING_DATABASE_URL": sqlite_db.url, "BILLING_WEBHOOK_URL": "http://127.0.0.1:9/hook",
           "BILLING_WEBHOOK_SECRET": SECRET}
    assert json.loads((await billing("webhook", "status", "--json", **env)).out)["endpoints"][0]["pending_orgs"] == 0
