"""The database cut off right after the SMTP server accepted a message: the message is recorded
sent once the database answers, and is never delivered a second time (issue 22: 7 of 8
duplicate e-mails of a fault run came from this moment).

The mailer reaches PostgreSQL through the TCP proxy of tests/reliability/support.py; the SMTP
sink cuts it in its DATA handler, after keeping the message and before the mailer reads the
server's 250. What a retry in another process cannot know (it sends again, same Message-ID)
is shown too: that is the one window left (docs/reliability.md)."""

import asyncio
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities, SmtpConfig
from db.models import EmailMessage, OrgEvent
from db.session import Database
from domain.periods import boundary
from domain.policy import Policy
from domain.states import Cycle
from tests.activities.test_mailer import expired_mail, make_org
from tests.reliability.support import GOOD_CARD, TcpProxy, assert_exactly_once, paid_renewals, wait_until
from tests.support.smtp import SinkHandler, SmtpSink
from tests.support.stack import Stack

pytestmark = [pytest.mark.postgres]


@dataclass
class CutOnAcceptance(SinkHandler):
    """Keeps a message, then cuts the database off before answering 250, for `outage` seconds
    (None: until the test restores it); `cuts` times in all."""
    proxy: TcpProxy | None = None
    outage: float | None = 2.0
    cuts: int = 1

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250") and self.cuts > 0:
            self.cuts -= 1
            self.proxy.cut()
            if self.outage is not None:
                threading.Timer(self.outage, self.proxy.restore).start()
        return reply


@pytest.fixture
def behind_proxy(pg_url):
    """(the database through a proxy that can cut it, the proxy)"""
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    db = Database(target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    yield db, proxy
    db.dispose()
    proxy.stop()


def outbox(db: Database, org_id: str) -> list[tuple[str, str]]:
    with db.transaction() as session:
        return list(session.execute(select(EmailMessage.status, EmailMessage.message_id)
                                    .where(EmailMessage.org_id == org_id)).tuples())


def email_events(db: Database, org_id: str) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(OrgEvent)
                              .where(OrgEvent.org_id == org_id, OrgEvent.type == "email"))


async def test_the_attempt_waits_for_the_database_and_records_the_mail_sent(pg_db, catalog, behind_proxy):
    db, proxy = behind_proxy
    sink = SmtpSink(CutOnAcceptance(proxy=proxy, outage=2.0)).start()
    try:
        make_org(pg_db, catalog, "cutorg", "Cut Org")
        mailer = MailActivities(db, SmtpConfig(host="127.0.0.1", port=sink.port))
        result = await ActivityEnvironment().run(mailer.send_email, expired_mail("cutorg"))
        assert proxy.refused > 0, "the mark should have met the cut"
        assert result.delivered == ["admin@cutorg.test"]
        [received] = sink.for_org("cutorg")
        assert outbox(pg_db, "cutorg") == [("sent", received.message["Message-ID"])]
        assert email_events(pg_db, "cutorg") == 1 and mailer.accepted == {}
    finally:
        sink.stop()


async def test_an_attempt_ended_during_the_cut_leaves_its_retry_only_the_mark(pg_db, catalog, behind_proxy):
    """The attempt's timeout ends it while the database is still out (the SDK cancels it): the
    next attempt, in the same process, records the message sent and delivers nothing."""
    db, proxy = behind_proxy
    sink = SmtpSink(CutOnAcceptance(proxy=proxy, outage=None)).start()
    try:
        make_org(pg_db, catalog, "longcut", "Long Cut")
        mailer = MailActivities(db, SmtpConfig(host="127.0.0.1", port=sink.port))
        env = ActivityEnvironment()
        attempt = asyncio.create_task(env.run(mailer.send_email, expired_mail("longcut")))
        await wait_until(lambda: proxy.refused > 0, 20, "the mark to meet the cut", interval=0.05)
        assert outbox(pg_db, "longcut")[0][0] == "sending" and not attempt.done()
        env.cancel()
        with pytest.raises(BaseException):
            await attempt
        proxy.restore()

        retried = await ActivityEnvironment().run(mailer.send_email, expired_mail("longcut"))
        assert retried.delivered == ["admin@longcut.test"]
        assert len(sink.for_org("longcut")) == 1
        assert [status for status, _ in outbox(pg_db, "longcut")] == ["sent"] and email_events(pg_db, "longcut") == 1
        again = await ActivityEnvironment().run(mailer.send_email, expired_mail("longcut"))
        assert again.delivered == [] and len(sink.for_org("longcut")) == 1
    finally:
        sink.stop()


async def test_another_process_cannot_tell_and_sends_again_with_the_same_message_id(pg_db, catalog, behind_proxy):
    """The window left: a `sending` row whose process died before the mark. Nothing is lost; the
    copy carries the Message-ID of the first, which receivers recognise."""
    db, proxy = behind_proxy
    sink = SmtpSink(CutOnAcceptance(proxy=proxy, outage=None)).start()
    try:
        make_org(pg_db, catalog, "diedorg", "Died Org")
        env = ActivityEnvironment()
        attempt = asyncio.create_task(env.run(MailActivities(db, SmtpConfig(host="127.0.0.1", port=sink.port))
                                              .send_email, expired_mail("diedorg")))
        await wait_until(lambda: proxy.refused > 0, 20, "the mark to meet the cut", interval=0.05)
        env.cancel()
        with pytest.raises(BaseException):
            await attempt
        proxy.restore()

        other_worker = MailActivities(db, SmtpConfig(host="127.0.0.1", port=sink.port))
        await ActivityEnvironment().run(other_worker.send_email, expired_mail("diedorg"))
        first, second = sink.for_org("diedorg")
        assert first.message["Message-ID"] == second.message["Message-ID"]
        assert [status for status, _ in outbox(pg_db, "diedorg")] == ["sent"] and email_events(pg_db, "diedorg") == 1
    finally:
        sink.stop()


async def test_renewals_whose_receipts_meet_a_database_cut_are_each_mailed_once(ts_env, pg_db, catalog,
                                                                                 behind_proxy):
    """The workflows, the worker and its activities as deployed, the database cut off for 3 s
    as the SMTP server accepts the first receipt and again on the third."""
    db, proxy = behind_proxy
    handler = CutOnAcceptance(proxy=proxy, outage=3.0, cuts=2)
    sink = SmtpSink(handler).start()
    stack = Stack(env=ts_env, db=db, catalog=catalog, policy=Policy(), smtp_port=sink.port,
                  task_queue=f"cut-{uuid.uuid4().hex[:6]}")
    try:
        async with stack.worker():
            start = await stack.now()
            orgs = [await stack.create_org(plan="standard", cycle="monthly", card=GOOD_CARD, start=start)
                    for _ in range(4)]
            await stack.advance_to(boundary(start, Cycle.MONTHLY, 1) + timedelta(minutes=5))
            await wait_until(lambda: paid_renewals(pg_db, orgs) == len(orgs), 60, "every receipt recorded sent")
        assert handler.cuts == 0 and proxy.refused > 0
        assert_exactly_once(pg_db, orgs, {o: len(sink.for_org(o, "receipt")) for o in orgs})
        assert len({m.message["Message-ID"] for m in sink.messages}) == len(sink.messages)
    finally:
        sink.stop()
        await stack.terminate_all()
