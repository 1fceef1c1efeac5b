"""Charges happen exactly once, even when the activity fails after the gateway accepted."""

from datetime import timedelta

from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

from activities.gateways import ChargeAttempt, GatewayResult
from activities.gateways.sandbox import SandboxGateway
from db.models import GatewayCharge, Invoice, Payment

GOOD_CARD = "4242424242424242"


class AcceptThenCrash(SandboxGateway):
    """The gateway takes the money, then the connection drops before we hear back."""

    def __init__(self, db) -> None:  # noqa: ANN001
        super().__init__(db)
        self.calls = 0

    def charge(self, attempt: ChargeAttempt) -> GatewayResult:
        self.calls += 1
        result = super().charge(attempt)
        if self.calls == 1:
            raise ConnectionResetError("connection reset after the gateway accepted the charge")
        return result


async def test_charge_retried_after_gateway_accepted_is_charged_once(stack, smtp_sink):
    gateway = AcceptThenCrash(stack.db)
    stack.gateway = gateway
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="professional", cycle="monthly", card=GOOD_CARD, start=start)
        await stack.advance_to(start + timedelta(days=32))
        state = await stack.state(org_id)

    assert gateway.calls == 2
    with stack.db.transaction() as session:
        invoices = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).all()
        assert [(str(i.status), i.total) for i in invoices] == [("paid", 600)]
        assert session.scalar(select(func.count()).select_from(GatewayCharge)
                              .where(GatewayCharge.idempotency_key.like(f"{org_id}:%"))) == 1
        payments = session.scalars(select(Payment).where(Payment.invoice_id == invoices[0].id)).all()
        assert [(p.attempt, p.idempotency_key) for p in payments] == [(1, f"{org_id}:{invoices[0].number}:1")]
    assert len(smtp_sink.for_org(org_id, "receipt")) == 1
    assert state.snapshot.status == "active"


async def test_history_stays_bounded_over_three_years(stack):
    start = await stack.now()
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD_CARD, start=start)
        first_run = (await stack.handle(org_id).describe()).run_id
        for half_year in range(1, 7):  # one long sleep RPC would time out on a loaded machine
            await stack.advance_to(start + timedelta(days=half_year * (3 * 365 + 2) / 6))
        state = await stack.state(org_id)
        current = await stack.handle(org_id).describe()
        first_history = await stack.client.get_workflow_handle(f"org-{org_id}", run_id=first_run).fetch_history()
        current_history = await stack.handle(org_id).fetch_history()

    with stack.db.transaction() as session:
        renewals = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == org_id))
    assert renewals == 36
    assert state.snapshot.status == "active"
    assert current.run_id != first_run
    assert first_history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # One renewal per run: a run's history is a few dozen events, whatever the org's age.
    assert len(first_history.events) < 80
    assert len(current_history.events) < 80
