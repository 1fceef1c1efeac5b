"""`billing org create` on a paid plan, as a user runs it (a subprocess): a new customer pays its
first cycle with the card piped on standard input, a declined card creates nothing (exit 1, one
line) and the command can be run again with another card; an existing customer moved in gives
--paid-through (audited, no charge, first renewal on that date); bad input is one line and
writes nothing. Against the time-skipping server, PostgreSQL and the SMTP sink."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from db.models import Invoice, OpeningAttempt, Organisation, OrgEvent, Payment, User
from tests.support.cli import STAFF, billing, billing_now, stack_env

GOOD, DECLINING, REJECTED = "4242424242424242", "4000000000000341", "4000000000000002"
NOWHERE = "127.0.0.1:1"   # no Temporal: these refusals come before anything is sent


def create_args(org_id: str, *extra: str) -> list[str]:
    return ["org", "create", org_id, "--name", "New Co", "--admin", f"admin@{org_id}.test", "--plan", "standard",
            "--cycle", "monthly", "--user", f"b@{org_id}.test:1", *extra]


def nothing_of(db, org_id: str) -> bool:
    with db.transaction() as session:
        return not any(session.scalar(select(func.count()).select_from(model).where(column == org_id))
                       for model, column in ((Organisation, Organisation.id), (User, User.org_id),
                                             (Invoice, Invoice.org_id), (OrgEvent, OrgEvent.org_id)))


async def test_a_new_customer_pays_at_creation_and_a_declined_card_creates_nothing(stack, smtp_sink):
    env = stack_env(stack)
    stack.started.append("clinew")
    async with stack.worker():
        declined = await billing(*create_args("clinew"), stdin=f"{DECLINING}\n", **env)
        assert declined.code == 1 and declined.out == "" and declined.err_lines == [
            "error: org clinew not created: the card ending 0341 was declined (card_declined); nothing was saved; "
            "run the command again with another card"], declined
        assert nothing_of(stack.db, "clinew")
        assert (await billing("org", "show", "clinew", **env)).code == 1      # no org, no running workflow

        paid = await billing(*create_args("clinew"), stdin=f"{GOOD}\n", **env)
        assert paid.code == 0 and paid.err == "", paid
        assert "org clinew created on standard (monthly); paid INV-clinew-0001; renews on" in paid.out
        assert "($6.00 charged to visa ending 4242)" in paid.out and GOOD not in paid.out
        shown = json.loads((await billing("org", "show", "clinew", "--json", **env)).out)
    with stack.db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == "clinew")).all()
        charged = session.execute(select(Payment.idempotency_key, Payment.amount, Payment.outcome)
                                  .where(Payment.invoice_id == invoice.id)).all()
        attempts = session.scalars(select(OpeningAttempt.outcome).where(OpeningAttempt.org_id == "clinew")
                                   .order_by(OpeningAttempt.attempt)).all()
    assert (invoice.kind, invoice.status, invoice.total) == ("opening", "paid", 600)   # 2 licences x $3.00
    assert [tuple(c) for c in charged] == [("clinew:INV-clinew-0001:2", 600, "succeeded")]
    assert attempts == ["declined", "paid"]
    renews = datetime.fromisoformat(shown["renews_at"])
    assert (shown["status"], shown["plan"], shown["licences"], renews.month) == (
        "active", "standard", 2, invoice.created_at.month % 12 + 1)              # one cycle later
    assert [m.recipients for m in smtp_sink.for_org("clinew", "receipt")] == [["admin@clinew.test"]]


async def test_an_existing_customer_moved_in_pays_nothing_and_renews_on_its_paid_through_date(stack):
    env = stack_env(stack)
    stack.started.append("climoved")
    paid_through = (datetime.now(timezone.utc) + timedelta(days=12)).strftime("%Y-%m-%d")
    async with stack.worker():
        run = await billing(*create_args("climoved", "--paid-through", paid_through, "--by", STAFF), **env)
        assert run.code == 0 and run.err == "", run
        assert f"moved in, paid through {paid_through} 00:00 UTC (no charge)" in run.out
        shown = json.loads((await billing("org", "show", "climoved", "--json", **env)).out)
        history = json.loads((await billing("org", "history", "climoved", "--json", **env)).out)
    assert shown["renews_at"] == f"{paid_through}T00:00:00+00:00" and shown["status"] == "active"
    [moved_in] = [e for e in history["events"] if e["event"] == "moved_in"]
    assert moved_in["by"] == STAFF and moved_in["details"]["paid_through"] == f"{paid_through}T00:00:00+00:00"
    with stack.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == "climoved")) == 0


@pytest.mark.parametrize("extra, stdin, code, message", [
    ([], "", 2, "error: --plan standard: a new customer pays its first cycle now: give its card on standard input "
                "(echo NUMBER | billing org create ...) or at the prompt; an existing customer moved in from another "
                "system needs --paid-through DATE --by STAFF_EMAIL instead (no charge, first renewal on DATE)"),
    ([], f"{REJECTED}\n", 1, "error: org acme not created: card ending 0002 was rejected by the gateway; "
                             "nothing was saved"),
    ([], "4242 4242 4242 4243\n", 2, "error: org acme not created: card: number ending 4243 fails the checksum; "
                                     "nothing was saved"),
    (["--paid-through", "2099-01-01"], "", 2, "error: --by: --paid-through needs --by naming the billing staff"),
    (["--paid-through", "2099-01-01", "--by", "admin@acme.test"], "", 1,
     "error: --paid-through: only billing staff may move in a customer"),
    (["--paid-through", "2020-01-01", "--by", STAFF], "", 2, "error: paid_through: 2020-01-01 00:00 UTC is not after now"),
    (["--paid-through", "2099-01-01", "--by", STAFF], "", 2, "error: paid_through: 2099-01-01 is more than one monthly "
                                                             "cycle away"),
    (["--paid-through", "soon", "--by", STAFF], "", 2, "error: --paid-through: 'soon' is not a date"),
])
def test_bad_input_is_one_line_and_writes_nothing(sqlite_url, sqlite_db, extra, stdin, code, message):
    run = billing_now(*create_args("acme", *extra), stdin=stdin, BILLING_DATABASE_URL=sqlite_url,
                      BILLING_TEMPORAL_ADDRESS=NOWHERE, BILLING_BILLING_STAFF=STAFF)
    assert run.code == code and run.out == "" and len(run.err_lines) == 1, run
    assert run.err_lines[0].startswith(message), run.err_lines[0]
    assert nothing_of(sqlite_db, "acme")


def test_paid_through_is_only_for_a_paid_plan(sqlite_url, sqlite_db):
    run = billing_now("org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test", "--paid-through",
                      "2099-01-01", "--by", STAFF, BILLING_DATABASE_URL=sqlite_url, BILLING_TEMPORAL_ADDRESS=NOWHERE,
                      BILLING_BILLING_STAFF=STAFF)
    assert run.code == 2 and run.err_lines == [
        "error: paid_through: only an org on a paid plan has a cycle paid elsewhere; the plan is trial"], run
