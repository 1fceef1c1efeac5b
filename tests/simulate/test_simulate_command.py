"""`billing simulate --example`, the readable table, a run on PostgreSQL, and the workflows in or out
of the SDK's sandbox."""

import json

import pytest
import yaml

from tests.simulate.conftest import EXAMPLES, at, brief, events, simulate

SIMULATE_MD_EXAMPLE = """\
start: "2026-01-31T09:00:00+00:00"
until: "P120D"
policy:
  trial_days: 15
  retry_days: [1, 3, 5, 7]
  large_account_licences: 100
org:
  id: acme
  admin_email: admin@acme.test
  locale: en
  currency: USD
  plan: trial
  cycle: monthly
  licences: 3
  card: "4242424242424242"
  auto_allocate_storage: false
  users:
    - {email: admin@acme.test, storage_gb: 1}
    - {email: b@acme.test, storage_gb: 12}
actions:
  - {at: P10D, do: upgrade, plan: standard, cycle: monthly}
  - {at: P10D, do: update_card, card: "4242424242424242"}
  - {at: P40D, do: add_licences, count: 2}
  - {at: P41D, do: add_user, email: c@acme.test, storage_gb: 0}
  - {at: P50D, do: buy_storage, unit_gb: 25, count: 1}
  - {at: P51D, do: allocate_storage, user: b@acme.test, unit_gb: 25}
  - {at: P60D, do: set_usage, user: b@acme.test, storage_gb: 40}
  - {at: P70D, do: request_downgrade, plan: mail_lite_5, requested_by: rina@billing.test}
  - {at: P71D, do: cancel_downgrade, requested_by: rina@billing.test}
  - {at: P75D, do: cancel, requested_by: admin@acme.test}
  - {at: P76D, do: undo_cancel, requested_by: admin@acme.test}
  - {at: P77D, do: retry_payment, requested_by: rina@billing.test}
  - {at: P80D, do: switch_to_yearly}
"""


def test_the_contract_example_scenario_is_valid(tmp_path):
    from domain.catalog import load_catalog
    from domain.policy import Policy
    from workers.simulate.scenario import load_scenario
    path = tmp_path / "contract.yaml"
    path.write_text(SIMULATE_MD_EXAMPLE, encoding="utf-8")
    parsed = load_scenario(path, load_catalog(), Policy())
    assert [a.kind for a in parsed.actions][:3] == ["upgrade", "update_card", "add_licences"]
    assert len(parsed.actions) == 13


def test_example_prints_a_commented_scenario_that_runs(tmp_path):
    printed = simulate("--example")
    assert printed.exit_code == 0
    text = printed.stdout
    assert text.lstrip().startswith("#") and text.count("#") > 20
    raw = yaml.safe_load(text)
    assert {"start", "until", "org", "actions"} <= set(raw)
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")

    doc = simulate(path, "--json").doc
    assert doc["org"] == "acme"
    # The trial converts at its end; the declining card puts the org in dunning; a working card pays.
    assert brief(doc, "status", "plan_changed", "action_rejected") == [
        ("2026-01-31 09:00", "status", "trialing"),
        ("2026-02-11 09:00", "action_rejected", "update_card"),
        ("2026-02-15 09:00", "plan_changed", "standard"),
        ("2026-02-15 09:00", "status", "active"),
        ("2026-02-15 09:00", "status", "past_due"),
        ("2026-02-17 09:00", "status", "active"),
        ("2026-03-12 09:00", "action_rejected", "request_downgrade"),
    ]
    rejected = events(doc, "action_rejected")
    assert rejected[0]["error"] == "card ending 0002 was rejected by the gateway; the previous card stays in place"
    # The refusal quotes the renewal date in the scenario's calendar.
    assert rejected[1]["error"] == ("downgrades are accepted only 15 to 30 days before the renewal date "
                                    "(2026-03-15); it is 3 days away")
    assert [(e["at"], e["total"], e["kind"]) for e in events(doc, "invoice", status="open")] == [
        (at("2026-02-15 09:00"), 600, "trial_conversion"),   # 2 x $3.00
        (at("2026-02-20 09:00"), 246, "proration"),          # $3.00 x 23/28
        (at("2026-02-23 09:00"), 286, "proration"),          # $4.00 x 20/28
        (at("2026-03-15 09:00"), 1300, "renewal"),           # 3 x $3.00 + $4.00
    ]
    assert brief(doc, "user_blocked", "user_unblocked") == [
        ("2026-02-22 09:00", "user_blocked", "b@acme.test"), ("2026-02-23 09:00", "user_unblocked", "b@acme.test")]
    assert doc["final"] == {**doc["final"], "plan": "standard", "status": "active", "cycle": "monthly",
                            "renews_at": at("2026-04-15 09:00"), "licences": 3, "blocked_users": []}


SMALL = """\
start: "2027-06-01T08:30:00+00:00"
until: "P16D"
org:
  id: tiny
  admin_email: admin@tiny.test
  users: [{email: admin@tiny.test, storage_gb: 7}]
"""


def test_without_json_prints_a_table(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    result = simulate(path)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("simulation of org tiny", "2027-06-13 08:30:00", "email: trial_ending", "email: trial_expired",
                 "plan_changed", "user_blocked", "final state", "free"):
        assert text in out, text
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


PAID = """\
start: "2027-06-01T08:30:00+00:00"
until: "P40D"
org:
  id: paid
  admin_email: admin@paid.test
  plan: standard
  cycle: monthly
  card: "4242424242424242"
  users: [{email: admin@paid.test, storage_gb: 1}]
actions:
  - {at: P3D, do: add_licences, count: 1}
  - {at: P4D, do: update_card, card: "4000000000000341"}
"""


def _row_counts(url: str) -> dict[str, int]:
    """Rows per table, but the catalog's mirror (plans: written by any org's creation, shared)."""
    from sqlalchemy import create_engine, inspect, text
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {table: conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
                    for table in inspect(conn).get_table_names() if table != "plans"}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_runs_on_the_configured_database_and_leaves_it_empty(tmp_path, pg_url):
    """BILLING_DATABASE_URL is used when set and holds no org; the simulated org (its invoices,
    payments, gateway charges, events) is removed afterwards, so `billing reconcile` never meets
    it, and the same run can be made again."""
    path = tmp_path / "paid.yaml"
    path.write_text(PAID, encoding="utf-8")
    before = _row_counts(pg_url)
    first = simulate(path, "--json", env={"BILLING_DATABASE_URL": pg_url})
    doc = first.doc
    outcomes = [(e["amount"], e["outcome"]) for e in events(doc, "charge")]
    # The proration is paid, the renewal declined (and retried): payments and gateway charges were written.
    assert outcomes[0] == (270, "succeeded") and outcomes[1] == (600, "declined")
    assert _row_counts(pg_url) == before   # nothing of the org is left
    assert set(before.values()) == {0, 1}   # alembic_version's one row; every other table empty
    again = simulate(path, "--json", env={"BILLING_DATABASE_URL": pg_url})
    assert again.doc == doc
    assert _row_counts(pg_url) == before


@pytest.mark.postgres
def test_refuses_a_database_that_holds_orgs(tmp_path, pg_url):
    """A database with orgs simulate did not make is a real one: refused before anything is
    written, in one line naming the setting."""
    from sqlalchemy import create_engine, text
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, admin_email, locale, currency, "
                          "auto_allocate_storage, contacts_subscribed, contacts_awaiting, created_at) "
                          "VALUES ('real-org', 'Real', 'a@real.test', 'en', 'USD', false, 0, 0, now())"))
    engine.dispose()
    before = _row_counts(pg_url)
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    result = simulate(path, "--json", env={"BILLING_DATABASE_URL": pg_url})
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("simulation refused: BILLING_DATABASE_URL "), result.stderr
    assert "holds 1 org (real-org)" in result.stderr and "throwaway" in result.stderr
    assert _row_counts(pg_url) == before


LEAP_DAY = """\
start: "1600-02-29T00:00:00+00:00"
until: "P13M"
org:
  id: leap
  admin_email: a@leap.test
  plan: mail_lite_5
  cycle: yearly
  card: 4242424242424242
actions:
  - {at: P1M, do: add_licences, count: 1}
"""


def test_a_start_long_ago_keeps_its_calendar(tmp_path):
    """The run happens 400*k years later, where weekdays, leap years and month lengths are the
    same: a yearly cycle anchored on the leap day 1600-02-29 renews on 1601-02-28."""
    path = tmp_path / "leap.yaml"
    path.write_text(LEAP_DAY, encoding="utf-8")
    doc = simulate(path, "--json").doc
    assert [(e["at"], e["total"], e["kind"]) for e in events(doc, "invoice", status="open")] == [
        (at("1600-03-29 00:00"), 921, "proration"),   # $10.00 x 336/365 days, rounded half up
        (at("1601-02-28 00:00"), 2000, "renewal"),    # 2 x $10.00
    ]
    assert doc["final"]["renews_at"] == at("1602-02-28 00:00")


def test_outside_the_sandbox_as_deployed_the_timeline_is_the_same():
    """BILLING_WORKFLOW_SANDBOX=false (the deploy files' setting) runs the workflows outside the
    SDK's sandbox, for less CPU per simulated year: what the run prints does not change."""
    scenario = EXAMPLES / "dunning-recovered.yaml"
    sandboxed = simulate(scenario, "--json", env={"BILLING_WORKFLOW_SANDBOX": "true"}).doc
    as_deployed = simulate(scenario, "--json", env={"BILLING_WORKFLOW_SANDBOX": "false"}).doc
    assert events(as_deployed, "charge") and as_deployed == sandboxed
