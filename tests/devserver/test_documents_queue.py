"""Documents on a task queue of their own: a renewal is charged and settled while no documents
worker runs; its receipt (with the invoice's PDF) waits on `<queue>-documents` and is sent once one
starts, rate-limited to the SMTP provider's rate (BILLING_MAIL_PER_SECOND)."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from db.models import Invoice, InvoicePdf, Payment
from tests.activities.test_documents import text_of
from tests.devserver.support import GOOD, eventually, paid_org_renewing_at
from workers.runtime.worker import build_worker, documents_worker
from workflows.calls import documents_queue

pytestmark = [pytest.mark.devserver, pytest.mark.postgres]


async def test_a_renewal_is_charged_without_a_documents_worker_and_its_receipt_follows(dev_stack, smtp_sink):
    stack = dev_stack
    renewal = datetime.now(timezone.utc) + timedelta(seconds=3)
    org_id = await paid_org_renewing_at(stack, renewal, GOOD)
    handle = stack.handle(org_id)
    async with build_worker(stack.client, stack.task_queue, stack.components(), serve_documents=False,
                            graceful_shutdown=timedelta(seconds=5)):
        async def charged_and_receipt_waiting():
            with stack.db.transaction() as session:
                invoice = session.scalars(select(Invoice).where(Invoice.org_id == org_id, Invoice.kind == "renewal")
                                          ).one()
                [payment] = session.scalars(select(Payment).where(Payment.invoice_id == invoice.id)).all()
                assert payment.outcome == "succeeded" and invoice.status == "paid"
            [pending] = (await handle.describe()).raw_description.pending_activities
            assert pending.activity_type.name == "send_email"
            return invoice.number
        number = await eventually(charged_and_receipt_waiting, timeout=30, interval=0.2)
        await asyncio.sleep(1)
        assert smtp_sink.for_org(org_id, "receipt") == []     # nothing renders or sends it on the org queue
        documents = documents_worker(stack.client, stack.task_queue, stack.components(), mail_per_second=5,
                                     graceful_shutdown=timedelta(seconds=5))
        assert documents.config()["task_queue"] == documents_queue(stack.task_queue)
        assert documents.config()["max_task_queue_activities_per_second"] == 5
        async with documents:
            async def receipt_sent():
                [received] = smtp_sink.for_org(org_id, "receipt")
                return received
            received = await eventually(receipt_sent, timeout=30, interval=0.2)
    [attachment] = received.message.iter_attachments()
    with stack.db.transaction() as session:
        [stored] = session.scalars(select(InvoicePdf.pdf).join(Invoice, Invoice.id == InvoicePdf.invoice_id).where(
            Invoice.number == number)).all()
    assert attachment.get_content() == stored and number in text_of(stored)[0]
