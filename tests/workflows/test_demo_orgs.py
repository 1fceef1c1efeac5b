"""The demo's orgs whose renewal came days before the demo starts, created as `make run` creates
them (workers.stack.demo) on the time-skipping server: their workflows catch up at once, and the
invoices they issue carry the renewal's date, not the day the demo started."""

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from db.models import Invoice, Payment
from workers.stack.demo import DEMO_ORGS, seed_demo
from workflows.search_attributes import scheduled_change


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



def _readme_bullet(starts: str) -> list[str]:
    """The demo orgs a bullet of the README's demo list names."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    bullet = text[text.index(f"- {starts}"):]
    bullet = bullet[:bullet.index("\n- ")] if "\n- " in bullet else bullet
    return re.findall(r"`(demo-[a-z0-9-]+|acme)`", bullet)


def test_the_readme_names_every_demo_org_and_no_other():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert set(re.findall(r"`(demo-[a-z0-9-]+)`", text)) | {"acme"} == {demo.id for demo in DEMO_ORGS}
    assert f"- {len(DEMO_ORGS)} demo orgs" in text


async def test_the_demo_orgs_the_readme_lists_as_scheduled_changes_have_one_and_the_waiting_one_waits(stack):
    """README: each org of "Changes at the renewal" shows in its ScheduledChange column; it listed
    demo-waiting-payment (a change waiting for payment, nothing scheduled) and demo-free there too."""
    scheduled = _readme_bullet("Changes at the renewal")
    waiting = _readme_bullet("A change waiting for payment")
    assert scheduled and waiting == ["demo-waiting-payment"]
    now = (await stack.now()).replace(microsecond=0)
    async with stack.worker():
        created = await seed_demo(stack.client, stack.components(), stack.task_queue, now,
                                  [demo for demo in DEMO_ORGS if demo.id in scheduled + waiting])
        stack.started += created
        snapshots = {}
        for org_id in created:
            await stack.settle(org_id)
            snapshots[org_id] = (await stack.state(org_id)).snapshot
    assert {org_id: scheduled_change(s) is not None for org_id, s in snapshots.items()} == {
        org_id: org_id in scheduled for org_id in scheduled + waiting}
    org = snapshots["demo-waiting-payment"]
    assert (org.pending.summary, org.licences) == ("add 5 licence(s)", 1)
    with stack.db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == "demo-waiting-payment")).all()
        assert (invoice.number, str(invoice.status)) == (org.pending.invoice, "open")
