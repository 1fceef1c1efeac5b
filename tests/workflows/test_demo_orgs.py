"""The demo's orgs whose renewal came days before the demo starts, created as `make run` creates
them (workers.stack.demo) on the time-skipping server: their workflows catch up at once, and the
invoices they issue carry the renewal's date, not the day the demo started."""

from datetime import timedelta

from sqlalchemy import select

from db.models import Invoice, Payment
from workers.stack.demo import DEMO_ORGS, seed_demo


async def test_dunning_and_written_off_demo_orgs_are_invoiced_on_their_renewal_date(stack):
    chosen = {"demo-dunning-2", "demo-written-off"}
    now = (await stack.now()).replace(microsecond=0)
    async with stack.worker():
        created = await seed_demo(stack.client, stack.components(), stack.task_queue, now,
                                  [demo for demo in DEMO_ORGS if demo.id in chosen])
        stack.started += created
        for org_id in created:
            await stack.settle(org_id)
    assert set(created) == chosen
    with stack.db.transaction() as session:
        for org_id in created:
            [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).all()
            # The renewal's cycle started days before the demo: the invoice is dated then.
            assert invoice.period_start < now - timedelta(days=1)
            assert invoice.created_at == invoice.period_start
            attempts = session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
            # The renewal's charge and the retries already due, each declined.
            assert [p.outcome for p in attempts] == ["declined"] * {"demo-dunning-2": 2, "demo-written-off": 5}[org_id]
        written_off = session.scalar(select(Invoice.status).where(Invoice.org_id == "demo-written-off"))
        assert written_off == "uncollectible"
