"""SIGTERM (here: the stop event it sets) lets in-flight activities finish before the worker exits."""

import asyncio
from datetime import timedelta

from sqlalchemy import select

from db.models import EmailMessage
from tests.support.smtp import SmtpSink, free_port
from workers.runtime.config import Settings
from workers.runtime.worker import run_worker


class SlowSink(SmtpSink):
    def __init__(self, delay: float) -> None:
        super().__init__()
        original, self.delay = self.handler.handle_DATA, delay

        async def slow(server, session, envelope):  # noqa: ANN001
            await asyncio.sleep(self.delay)
            return await original(server, session, envelope)
        self.handler.handle_DATA = slow


async def test_stopping_the_worker_drains_the_email_in_flight(stack, pg_url):
    sink = SlowSink(delay=3.0).start()
    try:
        settings = Settings(temporal_address=stack.client.service_client.config.target_host,
                            temporal_task_queue=stack.task_queue, database_url=pg_url, smtp_port=sink.port,
                            metrics_port=free_port(), graceful_shutdown_seconds=30)
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(settings, stop))
        start = await stack.now()
        org_id = await stack.create_org(start=start - timedelta(days=15) + timedelta(seconds=1))
        for _ in range(100):  # wait until the trial_expired e-mail is being delivered
            with stack.db.transaction() as session:
                outbox = session.scalar(select(EmailMessage.status).where(EmailMessage.org_id == org_id,
                                                                           EmailMessage.template == "trial_expired"))
            if outbox == "sending":
                break
            await asyncio.sleep(0.1)
        assert outbox == "sending" and sink.for_org(org_id, "trial_expired") == []
        stop.set()
        await asyncio.wait_for(worker, timeout=30)
        assert [m.template for m in sink.for_org(org_id)] == ["trial_expired"]
        with stack.db.transaction() as session:
            assert session.scalar(select(EmailMessage.status).where(
                EmailMessage.org_id == org_id, EmailMessage.template == "trial_expired")) == "sent"
    finally:
        sink.stop()
