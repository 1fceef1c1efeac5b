"""Dunning: failed renewals are retried on the ladder, then the org goes free (or, if large,
is escalated). Declines are business outcomes; outages are retried by Temporal."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from activities.gateways import ChargeAttempt, GatewayResult, GatewayUnavailable
from activities.gateways.sandbox import SandboxGateway
from db.models import GatewayCharge, Invoice, OrgEvent, Payment, Subscription
from domain import requests as rq
from domain.cards import sandbox_tokenise
from workers.runtime.operations import OperationRefused

DECLINING = "4000000000000341"
GOOD = "4242424242424242"


def attempts(db, org_id: str) -> list[tuple[datetime, str, str | None]]:
    with db.transaction() as session:
        rows = session.execute(select(Payment.created_at, Payment.outcome, Payment.decline_reason)
                               .join(Invoice, Invoice.id == Payment.invoice_id)
                               .where(Invoice.org_id == org_id).order_by(Payment.id)).all()
    return [(at, str(outcome), reason) for at, outcome, reason in rows]


def close(a: datetime, b: datetime) -> bool:
    # The test server's clock runs in real time while work is in flight: allow for a slow machine.
    return abs(a - b) < timedelta(minutes=1)


async def paid_org(stack, card: str, plan: str = "standard", **fields) -> tuple[str, datetime]:
    start = await stack.now()
    org_id = await stack.create_org(plan=plan, cycle="monthly", card=card, start=start, **fields)
    state = await stack.state(org_id)
    return org_id, state.snapshot.renews_at


# Both ways the worker can run workflow code (BILLING_WORKFLOW_SANDBOX): the same decisions.
SANDBOX_ON_AND_OFF = pytest.mark.parametrize("workflow_sandbox", [True, False], ids=["sandboxed", "unsandboxed"])


@SANDBOX_ON_AND_OFF
async def test_declining_card_is_retried_on_schedule_then_the_org_goes_free(stack, smtp_sink, workflow_sandbox):
    stack.workflow_sandbox = workflow_sandbox
    async with stack.worker():
        org_id, renewal = await paid_org(stack, DECLINING, users=[("big@x.test", 12.0)])
        await stack.advance_to(renewal + timedelta(hours=1))
        state = await stack.state(org_id)
        assert state.snapshot.status == "past_due" and state.snapshot.plan == "standard"
        assert state.snapshot.next_retry_at == renewal + timedelta(days=1)
        await stack.advance_to(renewal + timedelta(days=8))
        state = await stack.state(org_id)

    schedule = [renewal + timedelta(days=d) for d in (0, 1, 3, 5, 7)]
    made = attempts(stack.db, org_id)
    assert [outcome for _, outcome, _ in made] == ["declined"] * 5
    assert all(close(at, due) for (at, _, _), due in zip(made, schedule, strict=True))
    failed = smtp_sink.for_org(org_id, "payment_failed")
    assert len(failed) == 5
    assert all(close(m.message["Date"].datetime, due) for m, due in zip(failed, schedule, strict=True))
    assert "free" in failed[-1].part("plain").lower()
    assert state.snapshot.plan == "free" and state.snapshot.status == "free"
    assert state.snapshot.blocked_users == ["big@x.test"]  # 12 GB: within Standard's 30 GB, over free's 5 GB
    with stack.db.transaction() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).one()
        assert str(invoice.status) == "uncollectible"
    assert len(smtp_sink.for_org(org_id, "plan_changed")) == 1
    assert len(smtp_sink.for_org(org_id, "storage_blocked")) == 2  # the admin and the blocked user


@SANDBOX_ON_AND_OFF
async def test_card_fixed_on_day_four_pays_at_once_and_ends_dunning(stack, smtp_sink, workflow_sandbox):
    stack.workflow_sandbox = workflow_sandbox
    async with stack.worker():
        org_id, renewal = await paid_org(stack, DECLINING)
        await stack.advance_to(renewal + timedelta(days=4))
        good = sandbox_tokenise(GOOD)
        outcome = await stack.send(org_id, rq.UpdateCardRequest(good.token, good.brand, good.last4,
                                                                                requested_by="admin@x.test"))
        assert outcome.payment == "succeeded" and outcome.status == "active"
        await stack.advance_to(renewal + timedelta(days=10))
        state = await stack.state(org_id)

    made = attempts(stack.db, org_id)
    assert [outcome for _, outcome, _ in made] == ["declined", "declined", "declined", "succeeded"]
    assert close(made[-1][0], renewal + timedelta(days=4))
    assert state.snapshot.status == "active" and state.snapshot.dunning_attempts == 0
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1
    assert len(smtp_sink.for_org(org_id, "payment_failed")) == 3


async def test_a_rejected_card_is_refused_and_the_old_card_stays(stack):
    from domain.errors import CardRejected
    with pytest.raises(CardRejected, match="rejected by the gateway"):
        sandbox_tokenise("4000000000000002")
    async with stack.worker():
        org_id, _ = await paid_org(stack, GOOD)
        with pytest.raises(OperationRefused, match="token"):
            await stack.send(org_id, rq.UpdateCardRequest("4000000000000002", "visa", "0002"))
    with stack.db.transaction() as session:
        assert session.get(Subscription, org_id).card_last4 == "4242"


class OutageOnFirstRetry(SandboxGateway):
    def __init__(self, db) -> None:  # noqa: ANN001
        super().__init__(db)
        self.outages = 0

    def charge(self, attempt: ChargeAttempt) -> GatewayResult:
        if attempt.attempt == 2 and self.outages < 3:
            self.outages += 1
            raise GatewayUnavailable("503 from the gateway")
        return super().charge(attempt)


async def test_gateway_outage_during_a_retry_is_not_a_dunning_attempt(stack):
    gateway = OutageOnFirstRetry(stack.db)
    stack.gateway = gateway
    async with stack.worker():
        org_id, renewal = await paid_org(stack, DECLINING)
        await stack.advance_to(renewal + timedelta(days=2))
        state = await stack.state(org_id)

    assert gateway.outages == 3
    made = attempts(stack.db, org_id)
    assert [outcome for _, outcome, _ in made] == ["declined", "declined"]
    assert state.snapshot.dunning_attempts == 2 and state.snapshot.dunning_retries_done == 1
    with stack.db.transaction() as session:
        keys = session.scalars(select(GatewayCharge.idempotency_key)
                               .where(GatewayCharge.idempotency_key.like(f"{org_id}:%"))).all()
    assert sorted(k.rsplit(":", 1)[1] for k in keys) == ["1", "2"]


async def test_large_account_is_escalated_instead_of_downgraded(stack, smtp_sink):
    stack.policy = stack.policy.__class__(**{**stack.policy.__dict__, "large_account_licences": 3})
    async with stack.worker():
        org_id, renewal = await paid_org(stack, DECLINING, users=[("b@x.test", 1.0), ("c@x.test", 1.0)])
        await stack.advance_to(renewal + timedelta(days=7, hours=1))
        state = await stack.state(org_id)
        assert state.snapshot.status == "escalated" and state.snapshot.plan == "standard"
        escalated_at = renewal + timedelta(days=7)
        assert close(state.snapshot.first_response_due, escalated_at + timedelta(hours=3))
        assert close(state.snapshot.determination_due, escalated_at + timedelta(hours=8))
        with pytest.raises(OperationRefused, match="billing staff"):
            await stack.send(org_id, rq.ResolveEscalationRequest("downgrade", requested_by="admin@x.test", reason="x"))
        outcome = await stack.send(org_id, rq.ResolveEscalationRequest(
            "downgrade", requested_by="rina@billing.test", reason="customer agreed to the free plan"))
        assert outcome.status == "free"
    [mail] = smtp_sink.for_org(org_id, "escalation")
    assert mail.recipients == ["billing-staff@localhost"]
    assert "S1-Critical" in mail.part("plain")
    with stack.db.transaction() as session:
        escalation = session.scalars(select(OrgEvent).where(OrgEvent.org_id == org_id,
                                                            OrgEvent.type == "escalated")).one()
        assert escalation.data["severity"] == "S1"
        resolution = session.scalars(select(OrgEvent).where(OrgEvent.org_id == org_id, OrgEvent.type == "request",
                                                            OrgEvent.actor == "rina@billing.test")).one()
        assert resolution.reason == "customer agreed to the free plan"


async def test_cancellation_during_dunning_ends_the_subscription_at_once(stack, smtp_sink):
    async with stack.worker():
        org_id, renewal = await paid_org(stack, DECLINING)
        await stack.advance_to(renewal + timedelta(days=2))
        with pytest.raises(OperationRefused, match="unpaid"):
            await stack.send(org_id, rq.DowngradeRequest(
                "mail_lite_5", requested_by="rina@billing.test", reason="asked"))
        outcome = await stack.send(org_id, rq.CancelRequest(requested_by=f"admin@{org_id}.test"))
        assert outcome.status == "free"
        await stack.advance_to(renewal + timedelta(days=9))
        state = await stack.state(org_id)

    assert state.snapshot.plan == "free"
    assert len(attempts(stack.db, org_id)) == 2  # no retries after the cancellation
    with stack.db.transaction() as session:
        invoice = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).one()
        assert str(invoice.status) == "void"
