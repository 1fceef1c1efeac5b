"""The SMTP server refuses mail (451), then is down altogether, then comes back: every e-mail is
delivered once when it returns, none is lost, none doubled, and the charges are not repeated.

On the time-skipping server: the mailer's retries (INFRA_RETRY, backoff up to one minute) run
through simulated hours in a second or two of real time."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from db.models import EmailMessage
from domain.periods import boundary
from domain.policy import Policy
from domain.states import Cycle
from tests.reliability.support import GOOD_CARD, assert_exactly_once, wait_until
from tests.support.smtp import SinkHandler, SmtpSink
from tests.support.stack import Stack

pytestmark = [pytest.mark.postgres]


@dataclass
class CountingHandler(SinkHandler):
    refusals: int = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        if self.refuse:
            self.refusals += 1
        return await super().handle_DATA(server, session, envelope)


def outbox(db, org_ids: list[str]) -> list[tuple[str, str, str]]:
    with db.transaction() as session:
        return sorted(session.execute(select(EmailMessage.org_id, EmailMessage.template, EmailMessage.status)
                                      .where(EmailMessage.org_id.in_(org_ids))).tuples())


async def test_mail_waits_for_the_smtp_server_and_is_sent_once(ts_env, pg_db, catalog):
    sink = SmtpSink(CountingHandler(refuse=True)).start()
    stack = Stack(env=ts_env, db=pg_db, catalog=catalog, policy=Policy(), smtp_port=sink.port,
                  task_queue=f"smtp-{uuid.uuid4().hex[:6]}")
    try:
        async with stack.worker():
            start = await stack.now()
            orgs = [await stack.create_org(plan="standard", cycle="monthly", card=GOOD_CARD, start=start)
                    for _ in range(3)]
            renewal = boundary(start, Cycle.MONTHLY, 1)

            # 1. The server answers 451 to every message: renewals are charged, receipts wait.
            await stack.advance_to(renewal + timedelta(minutes=10))
            assert sink.messages == [] and sink.handler.refusals >= 3 * 5
            assert outbox(pg_db, orgs) == [(o, "receipt", "pending") for o in sorted(orgs)]

            # 2. The server is gone (connection refused) for an hour.
            sink.stop()
            refusals = sink.handler.refusals
            await stack.advance_to(renewal + timedelta(hours=1, minutes=10))
            assert sink.handler.refusals == refusals
            assert outbox(pg_db, orgs) == [(o, "receipt", "pending") for o in sorted(orgs)]

            # 3. Back on the same port: the next retry (at most a minute later) delivers.
            sink.handler.refuse = False
            sink.controller = Controller(sink.handler, hostname="127.0.0.1", port=sink.port)
            sink.start()
            await stack.advance_to(renewal + timedelta(hours=1, minutes=12))
            await wait_until(lambda: len(sink.messages) == 3, 20, "the receipts")

        assert outbox(pg_db, orgs) == [(o, "receipt", "sent") for o in sorted(orgs)]
        assert_exactly_once(pg_db, orgs, {o: len(sink.for_org(o, "receipt")) for o in orgs})
        # One Message-ID per receipt: a receiver could not have been shown a duplicate either.
        assert len({m.message["Message-ID"] for m in sink.messages}) == len(sink.messages) == 3
    finally:
        sink.stop()
        await stack.terminate_all()
