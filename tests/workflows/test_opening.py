"""A new customer's org on a paid plan pays its first cycle when it is created (DOMAIN.md): the
org's workflow, started with the opening (update-with-start), writes the org and its invoice,
charges it, and answers; a declined card leaves nothing of the org, and the id can be opened
again with another card. On the time-skipping server, with real PostgreSQL and SMTP."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from db.models import (EmailMessage, GatewayCharge, Invoice, OpeningAttempt, Organisation, OrgEvent, Payment,
                       Subscription, User)
from domain import requests as rq
from domain.cards import sandbox_tokenise
from domain.onboarding import NewOrg, NewUser, validate_new_org
from workers.runtime.operations import OperationRefused
from workflows.messages import Opening
from workflows.starter import open_org

GOOD, DECLINING = "4242424242424242", "4000000000000341"


def new_customer(catalog, org_id: str) -> NewOrg:
    return validate_new_org(NewOrg(id=org_id, name="New Co", admin_email=f"admin@{org_id}.test", plan="standard",
                                   cycle="monthly", users=[NewUser(f"b@{org_id}.test", 40.0)]), catalog)


async def open_with(stack, org_id: str, card: str):
    stack.started.append(org_id)
    return await open_org(stack.client, Opening(new_customer(stack.catalog, org_id), sandbox_tokenise(card)),
                          stack.task_queue)


def rows_of(db, org_id: str) -> dict[str, int]:
    with db.transaction() as session:
        counts = {model.__tablename__: session.scalar(select(func.count()).select_from(model).where(
            (model.id if model is Organisation else model.org_id) == org_id))
            for model in (Organisation, User, Subscription, Invoice, OrgEvent, EmailMessage)}
        counts["payments"] = session.scalar(select(func.count()).select_from(Payment).join(Invoice).where(
            Invoice.org_id == org_id))
        return counts


async def test_a_new_customer_pays_its_first_cycle_at_creation(stack, smtp_sink):
    async with stack.worker():
        start = await stack.now()
        outcome = await open_with(stack, "newco", GOOD)
        view = await stack.state("newco")
    assert (outcome.payment, outcome.status, outcome.amount, outcome.invoice) == (
        "succeeded", "active", 600, "INV-newco-0001")           # 2 Standard licences, $3.00 each
    with stack.db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == "newco")).all()
        [payment] = session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
        attempts = session.scalars(select(OpeningAttempt.outcome).where(OpeningAttempt.org_id == "newco")).all()
        assert session.get(Subscription, "newco").card_last4 == "4242"
    assert (invoice.kind, invoice.status, invoice.total) == ("opening", "paid", 600)
    assert timedelta(0) <= invoice.created_at - start < timedelta(minutes=1)   # issued at creation...
    assert view.snapshot.renews_at == invoice.created_at + relativedelta(months=1)   # ...renewing a month later
    assert (payment.idempotency_key, payment.outcome) == ("newco:INV-newco-0001:1", "succeeded")
    assert attempts == ["paid"]
    [receipt] = smtp_sink.for_org("newco", "receipt")
    assert "INV-newco-0001" in receipt.part("plain") and "$6.00" in receipt.part("plain")
    # Opened once paid: the user over Standard's 30 GB is blocked from then on.
    assert view.snapshot.blocked_users == ["b@newco.test"]


async def test_a_declined_card_leaves_nothing_and_the_id_opens_with_another_card(stack, smtp_sink):
    async with stack.worker():
        declined = await open_with(stack, "nope", DECLINING)
        assert (declined.status, declined.payment, declined.decline_reason) == ("declined", "declined",
                                                                               "card_declined")
        assert "not created" in declined.message
        assert set(rows_of(stack.db, "nope").values()) == {0}   # no org, user, invoice, payment, event, e-mail
        assert (await stack.handle("nope").describe()).status.name == "COMPLETED"   # no workflow runs
        with pytest.raises(OperationRefused, match="unknown org 'nope'"):
            await stack.send("nope", rq.AddLicencesRequest(1))
        opened = await open_with(stack, "nope", GOOD)
        assert (opened.status, opened.payment) == ("active", "succeeded")
        await stack.settle("nope")
    assert smtp_sink.for_org("nope", "payment_failed") == []
    with stack.db.transaction() as session:
        attempts = session.execute(select(OpeningAttempt.attempt, OpeningAttempt.outcome, OpeningAttempt.card_last4)
                                   .where(OpeningAttempt.org_id == "nope").order_by(OpeningAttempt.attempt)).all()
        keys = session.scalars(select(GatewayCharge.idempotency_key).where(
            GatewayCharge.idempotency_key.startswith("nope:")).order_by(GatewayCharge.created_at)).all()
        [payment] = session.scalars(select(Payment.idempotency_key).join(Invoice).where(Invoice.org_id == "nope")).all()
    # The second attempt is charged under a key of its own: the gateway does not answer it with the decline.
    assert [tuple(a) for a in attempts] == [(1, "declined", "0341"), (2, "paid", "4242")]
    assert keys == ["nope:INV-nope-0001:1", "nope:INV-nope-0001:2"] and payment == "nope:INV-nope-0001:2"


async def test_a_new_customer_in_indonesia_is_charged_its_first_cycle_with_ppn(stack, smtp_sink):
    """Issue 26: the opening invoice of 2 Standard licences at Rp 45.000 is Rp 90.000, DPP Rp 82.500,
    PPN 12% Rp 9.900; the workflow charges Rp 99.900."""
    org = validate_new_org(NewOrg(id="tokobaru", name="Toko Baru", admin_email="admin@tokobaru.test", plan="standard",
                                  cycle="monthly", locale="id", currency="IDR", country="ID",
                                  tax_id="01.234.567.8-901.000", users=[NewUser("b@tokobaru.test", 1.0)]),
                           stack.catalog)
    stack.started.append(org.id)
    async with stack.worker():
        outcome = await open_org(stack.client, Opening(org, sandbox_tokenise(GOOD)), stack.task_queue)
    assert (outcome.payment, outcome.amount) == ("succeeded", 99900)
    with stack.db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == org.id)).all()
        [charge] = session.scalars(select(GatewayCharge).where(
            GatewayCharge.idempotency_key.startswith(f"{org.id}:"))).all()
        assert (session.get(Organisation, org.id).country, session.get(Organisation, org.id).tax_id) == (
            "ID", "01.234.567.8-901.000")
    assert (invoice.subtotal, invoice.tax_base, invoice.tax_name, invoice.tax_rate, invoice.tax, invoice.total) == (
        90000, 82500, "PPN", "0.12", 9900, 99900)
    assert charge.amount == 99900
    [receipt] = smtp_sink.for_org(org.id, "receipt")
    assert "PPN 12%: Rp9.900" in receipt.part("plain") and "Total: Rp99.900" in receipt.part("plain")
