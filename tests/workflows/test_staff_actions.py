"""Billing staff and admin actions: validated Updates, the downgrade window, cancellation at the
cycle end, one pending change at a time, the audit trail."""

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

from db.models import Invoice, OrgEvent, Payment, Subscription, User
from domain import requests as rq
from domain.states import ChargeOutcome
from workers.runtime.operations import OperationRefused

GOOD, DECLINING = "4242424242424242", "4000000000000341"
STAFF = "rina@billing.test"


def db_fingerprint(db, org_id: str) -> tuple:
    with db.transaction() as session:
        sub = session.get(Subscription, org_id)
        return (sub.version, sub.plan_id, sub.licences, sub.scheduled_plan, str(sub.status),
                session.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == org_id)),
                session.scalar(select(func.count()).select_from(User).where(User.org_id == org_id)),
                session.scalar(select(func.count()).select_from(OrgEvent).where(OrgEvent.org_id == org_id)))


WORKFLOW_TASK_EVENTS = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED}


async def history_length(stack, org_id: str) -> int:
    """Events other than workflow tasks: the time-skipping server has no speculative workflow
    tasks, so it records the task that ran the validator; a real server records nothing (the
    dev-server tests check the exact length)."""
    events = (await stack.handle(org_id).fetch_history()).events
    return len([e for e in events if e.event_type not in WORKFLOW_TASK_EVENTS])


async def assert_refused(stack, org_id: str, request, message: str) -> None:
    before_db, before_history = db_fingerprint(stack.db, org_id), await history_length(stack, org_id)
    with pytest.raises(OperationRefused) as refused:
        await stack.send(org_id, request)
    assert message in refused.value.message
    assert db_fingerprint(stack.db, org_id) == before_db
    assert await history_length(stack, org_id) == before_history


async def test_refusals_are_clear_change_nothing_and_leave_no_history(stack):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD, start=start,
                                        users=[("b@x.test", 1.0), ("c@x.test", 1.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=10))
        await assert_refused(stack, org_id, rq.DowngradeRequest("standard", requested_by=STAFF, reason="cheaper"),
                             "only 15 to 30 days before the renewal date")
        await stack.advance_to(renewal + timedelta(days=10, hours=1))  # 20 days before the next renewal
        await assert_refused(stack, org_id,
                             rq.DowngradeRequest("standard", licences=2, requested_by=STAFF, reason="fewer"),
                             "2 licences is below usage: the org has 3 users")
        await assert_refused(stack, org_id, rq.DowngradeRequest("standard", requested_by="admin@x.test", reason="x"),
                             "only billing staff may request a downgrade")
        await assert_refused(stack, org_id, rq.UpgradeRequest("platinum"), "unknown plan 'platinum'")
        await assert_refused(stack, org_id, rq.AddLicencesRequest(-2),
                             "count: must be at least 1, got -2")
        await stack.send(org_id, rq.CancelRequest(requested_by=f"admin@{org_id}.test"))
        await assert_refused(stack, org_id, rq.AddLicencesRequest(1),
                             "the subscription is cancelled")
        await assert_refused(stack, org_id, rq.CancelRequest(requested_by="a@x.test"),
                             "already cancelled")
        with pytest.raises(OperationRefused, match="unknown org 'nope'"):
            await stack.send("nope", rq.AddLicencesRequest(1))


async def test_second_change_waits_until_the_first_invoice_is_paid(stack):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=DECLINING)
        await stack.advance_to(await stack.now() + timedelta(days=3))
        outcome = await stack.send(org_id, rq.AddLicencesRequest(2))
        assert outcome.payment is ChargeOutcome.DECLINED and "waits for payment" in outcome.message
        await assert_refused(stack, org_id, rq.UpgradeRequest("professional"),
                             "waiting for payment of invoice")
        assert (await stack.state(org_id)).snapshot.licences == 1  # not applied until paid
        from domain.cards import sandbox_tokenise
        good = sandbox_tokenise(GOOD)
        outcome = await stack.send(org_id, rq.UpdateCardRequest(good.token, good.brand, good.last4))
        assert outcome.payment == "succeeded"
        state = await stack.state(org_id)
        assert state.snapshot.licences == 3 and state.snapshot.pending is None
        outcome = await stack.send(org_id, rq.UpgradeRequest("professional"))
        assert outcome.payment == "succeeded"


async def test_downgrade_twenty_days_before_renewal_applies_at_the_renewal(stack, smtp_sink):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD, start=start,
                                        users=[("big@x.test", 45.0), ("ok@x.test", 10.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=20))
        outcome = await stack.send(org_id, rq.DowngradeRequest(
            "standard", requested_by=STAFF, reason="customer asked by phone"))
        assert "scheduled" in outcome.message
        assert len(smtp_sink.for_org(org_id, "downgrade_scheduled")) == 1
        await stack.advance_to(renewal - timedelta(minutes=1))
        assert (await stack.state(org_id)).snapshot.plan == "professional"
        await stack.advance_to(renewal + timedelta(hours=1))
        state = await stack.state(org_id)

    assert state.snapshot.plan == "standard"
    assert state.snapshot.blocked_users == ["big@x.test"]  # 45 GB > Standard's 30 GB
    with stack.db.transaction() as session:
        renewal_charge = session.scalars(select(Payment).order_by(Payment.id.desc())
                                         .join(Invoice).where(Invoice.org_id == org_id)).first()
        assert renewal_charge.amount == 3 * 300  # three licences at the Standard price
        assert abs(renewal_charge.created_at - renewal) < timedelta(minutes=1)
        request = session.scalars(select(OrgEvent).where(OrgEvent.org_id == org_id, OrgEvent.type == "request")).one()
        assert (request.actor, request.reason, request.data["operation"]) == (
            STAFF, "customer asked by phone", "request_downgrade")


async def test_cancel_then_undo_renews_normally(stack, smtp_sink):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=5))
        outcome = await stack.send(org_id, rq.CancelRequest(requested_by=f"admin@{org_id}.test"))
        assert outcome.status == "cancelling"
        assert len(smtp_sink.for_org(org_id, "cancellation_scheduled")) == 1
        outcome = await stack.send(org_id, rq.UndoCancelRequest(requested_by=f"admin@{org_id}.test"))
        assert outcome.status == "active"
        await stack.advance_to(renewal + timedelta(hours=1))
        state = await stack.state(org_id)
    assert state.snapshot.status == "active" and state.snapshot.plan == "standard"
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1


@pytest.mark.parametrize("locale, texts", [
    ("en", {"downgrade_cancelled": ("Downgrade cancelled: {org} stays on Workplace Professional",
                                    "stays on the Workplace Professional plan with 3 licences"),
            "cancellation_undone": ("Cancellation undone: your Workplace Professional subscription for {org} "
                                    "continues", "keeps the Workplace Professional plan and renews on")}),
    ("id", {"downgrade_cancelled": ("Penurunan paket dibatalkan: {org} tetap menggunakan Workplace Professional",
                                    "tetap menggunakan paket Workplace Professional dengan 3 lisensi"),
            "cancellation_undone": ("Pembatalan diurungkan: langganan Workplace Professional untuk {org} berlanjut",
                                    "tetap menggunakan paket Workplace Professional dan diperpanjang pada")}),
])
async def test_a_cancelled_downgrade_and_an_undone_cancellation_are_each_announced_once(stack, smtp_sink, locale,
                                                                                       texts):
    """Issue 22: both were announced by e-mail when scheduled, and nothing said they were off."""
    async with stack.worker():
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD, locale=locale,
                                        currency="IDR" if locale == "id" else "USD",
                                        users=[("b@x.test", 1.0), ("c@x.test", 1.0)])
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.advance_to(renewal - timedelta(days=20))
        admin = f"admin@{org_id}.test"
        await stack.send(org_id, rq.DowngradeRequest("standard", requested_by=STAFF,
                                                                           reason="cost"))
        await stack.send(org_id, rq.CancelDowngradeRequest(requested_by=STAFF, reason="call"))
        await stack.send(org_id, rq.CancelRequest(requested_by=admin))
        await stack.send(org_id, rq.UndoCancelRequest(requested_by=admin))
        await stack.advance_to(renewal + timedelta(hours=1))
        await stack.settle(org_id)
    for template, (subject, sentence) in texts.items():
        [mail] = smtp_sink.for_org(org_id, template)
        assert mail.recipients == [admin]
        assert mail.subject == subject.format(org=f"Org {org_id}")
        assert sentence in mail.part("plain") and sentence in re.sub(r"<[^>]+>", "", mail.part("html"))


async def test_cancellation_moves_the_org_to_free_at_the_cycle_end(stack):
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        renewal = (await stack.state(org_id)).snapshot.renews_at
        await stack.send(org_id, rq.CancelRequest(requested_by=f"admin@{org_id}.test"))
        await stack.advance_to(renewal - timedelta(minutes=1))
        assert (await stack.state(org_id)).snapshot.status == "cancelling"
        await stack.advance_to(renewal + timedelta(minutes=5))
        state = await stack.state(org_id)
    assert state.snapshot.plan == "free" and state.snapshot.status == "free"
    with stack.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Payment).join(Invoice)
                              .where(Invoice.org_id == org_id)) == 0


async def test_concurrent_updates_from_two_clients_are_serialised(stack):
    from temporalio.client import Client
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD)
        other = await Client.connect(stack.client.service_client.config.target_host)
        from workers.runtime.operations import send_operation
        results = await asyncio.gather(
            send_operation(stack.client, org_id, rq.AddLicencesRequest(2)),
            send_operation(other, org_id, rq.AddLicencesRequest(3)),
            send_operation(stack.client, org_id, rq.AddUserRequest("x@x.test", 1.0)),
            return_exceptions=True)
        state = await stack.state(org_id)
    successes = [r for r in results if not isinstance(r, BaseException)]
    assert len(successes) >= 2
    with stack.db.transaction() as session:
        paid = session.scalars(select(Invoice.total).where(Invoice.org_id == org_id, Invoice.status == "paid")).all()
    # Every accepted purchase is paid and applied: 1 + 2 + 3 licences, nothing lost.
    assert state.snapshot.licences == 6
    assert len(paid) == 2
