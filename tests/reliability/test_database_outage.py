"""PostgreSQL unreachable for 30 s in the middle of a batch of renewals: the activities fail and
are retried with backoff, the workflows wait, and once the database is back every renewal
completes exactly once.

The worker reaches PostgreSQL through a TCP proxy on loopback. Cutting the proxy kills every
open connection (queries in flight fail, pooled connections go stale) and drops every new one
at once, as when the database host restarts. Real time on a dev server: with INFRA_RETRY the
retries come 1, 3, 7, 15 and 31 s after the first failure, so the test takes about 45 s."""

import re
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from db.models import Invoice, Payment
from db.session import Database
from domain.policy import Policy
from tests.reliability.support import (GOOD_CARD, DevServer, TcpProxy, assert_exactly_once, count_rows, due_in,
                                       kill_process_group, paid_renewals, renewal_org, start_worker, wait_polling,
                                       wait_until, worker_environment)
from tests.support.smtp import SmtpSink
from workflows.starter import org_handle, start_org_workflow

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.devserver]

ORGS = 10
OUTAGE_SECONDS = 30


async def max_activity_attempt(client, org_id: str) -> int:
    """The highest attempt of any activity in the org's workflow runs so far."""
    best = 1
    handle = org_handle(client, org_id)
    run_id = (await client.get_workflow_handle(handle.id).describe()).run_id
    seen: set[str] = set()
    # Walk from the first run: the renewal happened in the run that continued as new.
    async for execution in client.list_workflows(f"WorkflowId = '{handle.id}'"):
        seen.add(execution.run_id)
    seen.add(run_id)
    for run in seen:
        history = await client.get_workflow_handle(handle.id, run_id=run).fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                best = max(best, event.activity_task_started_event_attributes.attempt)
    return best


def charged_orgs(db: Database) -> set[str]:
    with db.transaction() as session:
        return set(session.scalars(select(Invoice.org_id).join(Payment, Payment.invoice_id == Invoice.id)))


async def test_database_outage_of_thirty_seconds_mid_renewal(pg_url, pg_db, catalog, tmp_path):
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    worker_url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    sink = SmtpSink().start()
    server = DevServer(tmp_path)
    queue = f"pg-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    worker = None
    try:
        await server.start()
        client = await Client.connect(server.address)
        worker = start_worker(worker_environment(worker_url, server.address, sink.port, queue), log)
        await wait_polling(worker, log)
        orgs = [f"p{uuid.uuid4().hex[:6]}{i:02d}" for i in range(ORGS)]
        first_due = due_in(2.5)
        for i, org_id in enumerate(orgs):
            renewal_org(pg_db, catalog, Policy(), org_id, first_due + timedelta(milliseconds=50 * i), GOOD_CARD)
            await start_org_workflow(client, org_id, queue)

        # Cut the database off once the first renewals are charged: the rest are mid-way.
        await wait_until(lambda: count_rows(pg_db, Payment) >= 1, 30, "the first charge", interval=0.02)
        log_before = len(log.read_text())
        proxy.cut()
        cut_at = time.monotonic()
        charged_before = count_rows(pg_db, Payment)
        await wait_until(lambda: time.monotonic() - cut_at >= OUTAGE_SECONDS, OUTAGE_SECONDS + 5, "the outage")
        during = paid_renewals(pg_db, orgs)
        assert proxy.refused > 0, "the worker should have tried the database during the outage"
        assert count_rows(pg_db, Payment) == charged_before, "nothing reaches the database while it is cut"
        # A step runs as a local activity first; after its local attempts it waits as a regular
        # activity, which the UI lists as pending (what ops look at to see why an org waits).
        pending = [a for org_id in orgs if org_id not in charged_orgs(pg_db)
                   for a in (await client.get_workflow_handle(f"org-{org_id}").describe())
                   .raw_description.pending_activities]
        assert pending and all(a.attempt >= 2 for a in pending), pending
        proxy.restore()

        await wait_until(lambda: paid_renewals(pg_db, orgs) == ORGS, 40, "every renewal after the outage")
        recovered = time.monotonic() - cut_at - OUTAGE_SECONDS
        receipts = {org_id: len(sink.for_org(org_id, "receipt")) for org_id in orgs}
        assert_exactly_once(pg_db, orgs, receipts)
        assert charged_before < ORGS and during < ORGS
        attempts = [await max_activity_attempt(client, org_id) for org_id in orgs]
        assert max(attempts) >= 4, f"activities should have been retried through the outage: {attempts}"
        # The worker's log: the outage in a few lines (it was 2,580 lines and 223 KB for these 10
        # orgs: a traceback per activity, a line per retry and per slow workflow task, in colour).
        outage_log = log.read_text()[log_before:]
        lines = outage_log.splitlines()
        assert len(lines) <= 12 and len(outage_log) <= 6000, outage_log
        assert "Traceback" not in outage_log and "SELECT" not in outage_log and "\x1b" not in outage_log, outage_log
        told = [re.search(r"database outage(: database unreachable| goes on, | over \()", line).group(1)
                for line in lines if "database outage" in line]
        assert told[0] == ": database unreachable" and told[-1] == " over (", outage_log
        assert told[1:-1] == [" goes on, "] * (len(told) - 2) and len(told) >= 3, outage_log   # every 30 s
        print(f"charged before the cut: {charged_before}; refused connections: {proxy.refused}; "
              f"all paid {recovered:.1f}s after the database returned; max attempts {max(attempts)}; "
              f"the outage's log: {len(lines)} lines, {len(outage_log)} bytes")
    finally:
        if worker is not None:
            kill_process_group(worker)
        server.stop()
        proxy.stop()
        sink.stop()
