"""The Stripe worker killed with SIGKILL at the two dangerous moments of a renewal's charge:
the PaymentIntent created (its id stored) but not confirmed, and confirmed by the server with
nothing recorded on our side. After a second worker takes over, the invoice is paid once, with
one payments row, one receipt, and localstripe holds exactly ONE succeeded PaymentIntent for
the attempt.

The worker is a real `python -m tests.reliability.slow_stripe_worker` process configured from
BILLING_* variables (BILLING_GATEWAY=stripe, against localstripe), on a Temporal dev server. Its
gateway stops at the moment named and writes a marker file; the test checks on the server that
the kill landed there. The charge runs as a local activity inside the workflow task, so the
second worker takes over once the server times the killed worker's task out (10 s)."""

import os
import signal
import subprocess
import uuid

import pytest
from sqlalchemy import select
from temporalio.client import Client

from db.models import Invoice, Payment
from db.orgs import set_card
from domain.policy import Policy
from tests.reliability.support import (DevServer, count_rows, due_in, kill_process_group, paid_renewals,
                                       renewal_org, start_worker, wait_polling, wait_until, worker_environment)
from tests.stripe.conftest import API_KEY, intents_for
from tests.support.smtp import SmtpSink
from workflows.starter import start_org_workflow

pytestmark = [pytest.mark.postgres, pytest.mark.devserver]

SLOW_STRIPE_WORKER = "tests.reliability.slow_stripe_worker"
# What the server holds for the intent when the worker is killed at each moment.
STATUS_AT_KILL = {"create": "requires_confirmation", "confirm": "succeeded"}


def paid_invoice(db, org_id: str) -> tuple[str, int, list[tuple[int, str, int, str | None]]]:
    """The org's one invoice (its number and total) and its payments rows."""
    with db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == org_id)).all()
        rows = session.execute(select(Payment.attempt, Payment.outcome, Payment.amount, Payment.gateway_charge_id)
                               .where(Payment.invoice_id == invoice.id)).all()
        return invoice.number, invoice.total, [(a, str(o), m, c) for a, o, m, c in rows]


@pytest.mark.parametrize("moment", ["create", "confirm"])
async def test_stripe_worker_killed_charges_once(moment, pg_url, pg_db, catalog, localstripe, on_server, tmp_path):
    server = DevServer(tmp_path)
    sink = SmtpSink().start()
    queue = f"stripekill-{uuid.uuid4().hex[:6]}"
    log, marker = tmp_path / "worker.log", tmp_path / "paused"
    worker: subprocess.Popen | None = None
    try:
        await server.start()
        env = worker_environment(pg_url, server.address, sink.port, queue, GATEWAY="stripe", PDF_PROCESSES="0",
                                 TEST_STRIPE_PAUSE=moment, TEST_STRIPE_PAUSE_MARKER=str(marker))
        env.update(STRIPE_API_KEY=API_KEY, STRIPE_API_BASE=localstripe.url, STRIPE_OFF_SESSION="false")
        client = await Client.connect(server.address)
        worker = start_worker(env, log, SLOW_STRIPE_WORKER)
        await wait_polling(worker, log, 1)

        org_id = f"sk{uuid.uuid4().hex[:8]}"
        renewal_org(pg_db, catalog, Policy(), org_id, due_in(2))
        with pg_db.transaction() as session:   # localstripe's test card instead of the sandbox's
            set_card(session, org_id, "pm_card_visa", "visa", "4242")
        await start_org_workflow(client, org_id, queue)

        await wait_until(marker.exists, 30, f"the worker to pause after {moment}", interval=0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        [intent] = intents_for(on_server, org_id)
        assert intent.status == STATUS_AT_KILL[moment], "the kill should land at the moment named"
        assert count_rows(pg_db, Payment) == 0, "nothing should be recorded on our side yet"

        worker = start_worker(env, log)   # a normal worker
        await wait_polling(worker, log, 2)
        await wait_until(lambda: paid_renewals(pg_db, [org_id]) == 1, 40, "the renewal to be paid")

        number, total, payments = paid_invoice(pg_db, org_id)
        intents = intents_for(on_server, org_id)
        assert [(pi.status, pi.metadata["attempt"]) for pi in intents] == [("succeeded", "1")]
        [intent] = intents
        assert intent.amount == total
        assert intent.metadata.to_dict() == {"org": org_id, "invoice": number, "attempt": "1"}
        assert payments == [(1, "succeeded", total, intent.id)]
        assert len(sink.for_org(org_id, "receipt")) == 1
    finally:
        if worker is not None:
            kill_process_group(worker)
        server.stop()
        sink.stop()
