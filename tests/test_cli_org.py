"""`billing org create` refuses bad input with the field named, and writes nothing."""

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from db.models import Organisation, User
from workers.cli import app


@pytest.fixture
def cli_env(sqlite_url, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("BILLING_TEMPORAL_ADDRESS", "127.0.0.1:1")  # no server: must not be reached
    return sqlite_url


@pytest.mark.parametrize("args, field", [
    (["--admin", "not-an-email"], "admin_email"),
    (["--user", "bob@x.test:-3"], "users[0].storage_gb"),
    (["--user", "bob@x.test:lots"], "users[0].storage_gb"),
    (["--user", "bad email:1"], "users[0].email"),
    (["--locale", "fr"], "locale"),
    (["--currency", "EUR"], "currency"),
    (["--plan", "platinum"], "platinum"),
])
def test_bad_input_names_the_field_and_writes_nothing(cli_env, sqlite_db, args, field):
    base = {"--name": "Acme", "--admin": "admin@acme.test"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["org", "create", "acme"]
    for flag, value in base.items():
        argv += [flag, value]
    if "--user" in args:
        argv += ["--user", args[args.index("--user") + 1]]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code != 0
    assert field in result.output
    with sqlite_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 0
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_dunning_list_shows_attempts_and_next_retry(cli_env, sqlite_db, catalog):
    from datetime import datetime, timezone

    from activities.billing import BillingActivities
    from activities.messages import DunningUpdate, RenewalInput
    from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
    from services.orgs import create_org
    from domain.policy import Policy

    start = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
    renewal = datetime(2026, 2, 28, 9, 0, tzinfo=timezone.utc)
    org = validate_new_org(NewOrg(id="late", name="Late Co", admin_email="admin@late.test", users=[],
                                  plan="standard", cycle="monthly"), catalog)
    with sqlite_db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, start, "tests"), catalog, Policy(), start)
    activities = BillingActivities(sqlite_db, catalog, Policy())
    opened = activities.open_renewal(RenewalInput("late", renewal, renewal))
    activities.enter_dunning(DunningUpdate("late", opened.invoice.number, renewal, amount=opened.invoice.total,
                                           reason="card_declined"))
    result = CliRunner().invoke(app, ["dunning", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    line = next(row for row in result.output.splitlines() if "late" in row)
    assert "past_due" in line and "INV-late-0001" in line and "2026-03-01 09:00" in line and " 1 " in line


def test_show_prints_the_card_with_its_expiry_when_stripe_described_it(cli_env, sqlite_db, catalog):
    from datetime import datetime, timezone

    from db.orgs import set_card
    from services.orgs import create_org
    from db.payments import save_attached_card, save_stripe_customer
    from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
    from domain.policy import Policy

    start = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
    for org_id in ("onstripe", "sandboxed"):
        org = validate_new_org(NewOrg(id=org_id, name="Card Co", admin_email=f"admin@{org_id}.test", users=[],
                                      plan="standard", cycle="monthly"), catalog)
        with sqlite_db.transaction() as session:
            create_org(session, paid_for_one_cycle(org, start, "tests"), catalog, Policy(), start)
    with sqlite_db.transaction() as session:
        set_card(session, "onstripe", "pm_card_visa", "visa", "4242")
        save_stripe_customer(session, "onstripe", "cus_1", start)
    with sqlite_db.transaction() as session:
        save_attached_card(session, "onstripe", "pm_card_visa", "pm_1", "visa", "4242", 3, 2031)
        set_card(session, "sandboxed", "tok_sandbox_ok_4444", "mastercard", "4444")

    shown = CliRunner().invoke(app, ["org", "show", "onstripe"], env={"COLUMNS": "200"})
    as_json = CliRunner().invoke(app, ["org", "show", "onstripe", "--json"], env={"COLUMNS": "200"})
    sandboxed = CliRunner().invoke(app, ["org", "show", "sandboxed"], env={"COLUMNS": "200"})

    assert shown.exit_code == 0, shown.output
    [line] = [row for row in shown.output.splitlines() if " card " in row]
    assert "Visa •••• 4242, expires 03/2031" in line
    assert '"card_expiry": "03/2031"' in as_json.output
    [line] = [row for row in sandboxed.output.splitlines() if " card " in row]
    assert "Mastercard •••• 4444" in line and "expires" not in line


def test_show_gives_the_tax_details_billing_org_tax_stored_since_the_workflows_last_step(cli_env, sqlite_db, catalog,
                                                                                         monkeypatch):
    """`billing org tax` writes the database (invoices issued from then on read it there); the
    workflow's state answers with the details of its last step: org show said `country ID` after
    `--country ''` until the org's next change."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from db.snapshots import load_state
    from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
    from domain.policy import Policy
    from services.orgs import create_org
    from workers.cli import orgs

    start = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
    org = validate_new_org(NewOrg(id="pindah", name="Pindah", admin_email="admin@pindah.test", users=[],
                                  plan="standard", cycle="monthly", country="ID", tax_id="01.234.567.8-901.000"),
                           catalog)
    with sqlite_db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, start, "tests"), catalog, Policy(), start)
    with sqlite_db.transaction() as session:
        as_the_workflow_saw_it = load_state(session, "pindah", Policy())

    async def workflow_state(org_id):
        return SimpleNamespace(snapshot=as_the_workflow_saw_it, next_action=None, next_action_at=None)
    monkeypatch.setattr(orgs, "_state", workflow_state)
    cleared = CliRunner().invoke(app, ["org", "tax", "pindah", "--country", "SG", "--tax-id", ""])
    assert cleared.exit_code == 0, cleared.output

    shown = CliRunner().invoke(app, ["org", "show", "pindah"], env={"COLUMNS": "200"})
    as_json = CliRunner().invoke(app, ["org", "show", "pindah", "--json"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    [line] = [row for row in shown.output.splitlines() if " country " in row]
    assert "SG" in line and not [row for row in shown.output.splitlines() if " tax_id " in row]
    assert '"country": "SG"' in as_json.output and '"tax_id": null' in as_json.output
