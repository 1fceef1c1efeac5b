"""The documents' worker on its own: `python -m workers.runtime.documents` serves the documents'
task queue beside BILLING_TEMPORAL_TASK_QUEUE (`<queue>-documents`: e-mails and the invoice PDFs
they carry), on this machine or another, while org workers run with BILLING_SERVE_DOCUMENTS=false.
BILLING_MAIL_PER_SECOND is the SMTP provider's rate, kept by Temporal across every documents
worker; BILLING_DOCUMENTS_CONCURRENCY the e-mails one worker sends at once. SIGTERM drains."""

import asyncio
import logging
import signal
from datetime import timedelta

from workers.runtime.config import Settings
from workers.runtime.temporal import connect
from workers.runtime.worker import components_from, documents_worker, start
from workflows.calls import documents_queue

log = logging.getLogger("billing.documents")


async def run_documents_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    components = components_from(settings, migrate=False)   # the org worker migrates the database
    client = await connect(settings)
    worker = documents_worker(client, settings.temporal_task_queue, components,
                              concurrency=settings.documents_concurrency, mail_per_second=settings.mail_per_second,
                              graceful_shutdown=timedelta(seconds=settings.graceful_shutdown_seconds))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("documents worker polling %s on %s", documents_queue(settings.temporal_task_queue),
             settings.temporal_address)
    async with worker:
        await stop.wait()
        log.info("stopping: draining in-flight e-mails (up to %ss)", settings.graceful_shutdown_seconds)
    components.pdf.shutdown()
    components.db.dispose()


def main() -> None:
    start(run_documents_worker)


if __name__ == "__main__":
    main()
