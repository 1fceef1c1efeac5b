"""Usage reports and contact counts are facts with a time (issue 22; DOMAIN.md, "Usage reports"):
each report is applied once, one older than a report already applied for the same user (or org)
changes nothing, and none is dropped: not while a change holds the org, not while its workflow
hands over to a new run. Every signal after an org's first used to be dropped (one business key
for them all)."""

import asyncio
import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.models import Organisation, User
from domain import requests as rq
from domain.storage import MB_PER_GB
from workflows.messages import OrgWorkflowInput

GOOD = "4242424242424242"
QUOTA_GB = 30   # Standard


async def applied(stack, org_id: str, received: int):
    """The org's state once its workflow has received `received` reports (signals and Updates, in
    all its runs) and applied each one, effects included. A signal has no answer to wait for."""
    for _ in range(1200):
        state = await stack.state(org_id)
        if state.reports_received >= received and state.reports_waiting == 0:
            return state
        await asyncio.sleep(0.025)
    raise AssertionError(f"{state.reports_received} of {received} reports received, {state.reports_waiting} waiting")


def _usage(stack, org_id: str) -> dict[str, tuple[int, bool]]:
    with stack.db.transaction() as session:
        return {email: (mb, blocked) for email, mb, blocked in session.execute(
            select(User.email, User.storage_mb, User.blocked).where(User.org_id == org_id))}


async def test_each_users_report_is_applied_the_issue_reproduction(stack, smtp_sink):
    """wile 150 GB blocks wile; road 200 GB blocks road; wile 1 GB unblocks wile (the second and
    third reports were dropped: road was never blocked, wile never unblocked)."""
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD,
                                        users=[("wile@x.test", 10.0), ("road@x.test", 10.0)])
        handle = stack.handle(org_id)
        await stack.state(org_id)
        await handle.signal("usage_reported", {"user": "wile@x.test", "storage_gb": 150})
        assert (await applied(stack, org_id, 1)).snapshot.blocked_users == ["wile@x.test"]
        await handle.signal("usage_reported", {"user": "road@x.test", "storage_gb": 200})
        assert (await applied(stack, org_id, 2)).snapshot.blocked_users == ["wile@x.test", "road@x.test"]
        await handle.signal("usage_reported", {"user": "wile@x.test", "storage_gb": 1})
        assert (await applied(stack, org_id, 3)).snapshot.blocked_users == ["road@x.test"]
    blocked_mail = sorted(m.recipients[0] for m in smtp_sink.for_org(org_id, "storage_blocked")
                          if m.recipients[0] != f"admin@{org_id}.test")
    assert blocked_mail == ["road@x.test", "wile@x.test"]
    assert [m.part("plain").count("wile@x.test") > 0 for m in smtp_sink.for_org(org_id, "user_unblocked")] == [True]
    assert _usage(stack, org_id)["wile@x.test"] == (1 * MB_PER_GB, False)


def _feed(rng: random.Random, start, users: list[str]) -> tuple[list[dict], dict[str, dict]]:
    """Eight reports per user, measured at different times over the month before `start` (one
    report's id per measurement), a fifth of them sent twice, all shuffled: 1,000 signals."""
    sent, newest = [], {}
    for user in users:
        minutes = sorted(rng.sample(range(1, 30 * 24 * 60), 8))
        for i, before in enumerate(minutes):
            report = {"user": user, "storage_gb": rng.choice([0.5, 12, 29.5, 31, 45, 80]),
                      "report_id": f"{user}/{i}", "reported_at": (start - timedelta(minutes=before)).isoformat()}
            sent.append(report)
            if i == 0:   # the fewest minutes before start: the newest
                newest[user] = report
    sent += rng.sample(sent, 1000 - len(sent))
    rng.shuffle(sent)
    return sent, newest


def _counts(rng: random.Random, start) -> tuple[list[dict], dict]:
    """The same for the org's contact count: 800 counts, 200 sent again."""
    sent = [{"contacts": rng.randrange(0, 6000), "report_id": f"crm/{i}",
             "reported_at": (start - timedelta(seconds=i * 97 + 1)).isoformat()} for i in range(800)]
    newest = sent[0]
    sent += rng.sample(sent, 200)
    rng.shuffle(sent)
    return sent, newest


@pytest.mark.slow   # 2,000 signals: 10-20 s
async def test_a_thousand_usage_and_contact_reports_shuffled_repeated_and_late_across_a_new_run(stack):
    """1,000 usage signals for 100 users and 1,000 contact counts, shuffled, a fifth of each sent
    twice, most of them older than one sent before; sent while the org renews (its workflow
    continues as new) and while Updates hold it. Every user ends with the usage of their newest
    report, blocked exactly when it is over the quota; the org with its newest contact count."""
    rng = random.Random(22)
    users = [f"u{i:02d}@x.test" for i in range(100)]
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start,
                                        licences=101, users=[(u, 0.0) for u in users])
        handle = stack.handle(org_id)
        first_run = (await handle.describe()).run_id
        await stack.send(org_id, rq.ChangeTierRequest(3000))
        renews_at = (await stack.state(org_id)).snapshot.renews_at
        usage, newest_usage = _feed(rng, start, users)
        counts, newest_count = _counts(rng, start)
        signals = [("usage_reported", r) for r in usage] + [("contacts_reported", c) for c in counts]
        rng.shuffle(signals)

        async def send(part) -> None:
            for name, payload in part:
                await handle.signal(name, payload)

        async def updates_meanwhile() -> None:  # changes holding the org's lock between reports
            await stack.send(org_id, rq.BuyStorageRequest(unit_gb=5, count=1))
            await stack.send(org_id, rq.AddLicencesRequest(1))

        await asyncio.gather(send(signals[:1000]), updates_meanwhile())
        # The rest while the org renews and hands over to its next run: the renewal falls due, in
        # real time, half a second after they start.
        await stack.advance_to(renews_at - timedelta(seconds=0.5))
        await send(signals[1000:])
        await stack.advance_to(renews_at + timedelta(hours=1))
        state = await applied(stack, org_id, 2000)
        last_run = (await handle.describe()).run_id
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        [handed_over] = await stack.client.data_converter.decode(started.input.payloads, [OrgWorkflowInput])
    assert last_run != first_run and state.snapshot.renews_at > renews_at   # renewed: a new run
    assert handed_over.reports   # received while the renewal held the org, applied by the next run
    stored = _usage(stack, org_id)
    expected = {user: (round(report["storage_gb"] * MB_PER_GB), report["storage_gb"] > QUOTA_GB)
                for user, report in newest_usage.items()}
    assert {user: stored[user] for user in users} == expected
    assert sorted(state.snapshot.blocked_users) == sorted(u for u, (_, blocked) in expected.items() if blocked)
    subscribed = min(newest_count["contacts"], 3000)
    assert (state.snapshot.subscribers.subscribed, state.snapshot.subscribers.awaiting) == (
        subscribed, newest_count["contacts"] - subscribed)
    with stack.db.transaction() as session:
        org = session.get(Organisation, org_id)
        assert org.contacts_report_id == newest_count["report_id"]


async def test_an_update_older_than_a_report_applied_or_sent_twice_changes_nothing(stack):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start,
                                        users=[("b@x.test", 1.0)])
        at = (start - timedelta(hours=1)).isoformat()
        first = await stack.send(org_id, rq.SetUsageRequest("b@x.test", 40.0, report_id="m-2",
                                                                          reported_at=at))
        again = await stack.send(org_id, rq.SetUsageRequest("b@x.test", 40.0, report_id="m-2",
                                                                          reported_at=at))
        older = await stack.send(org_id, rq.SetUsageRequest(
            "b@x.test", 2.0, report_id="m-1", reported_at=(start - timedelta(hours=2)).isoformat()))
        await stack.handle(org_id).signal("usage_reported", {"user": "b@x.test", "storage_gb": 3.0,
                                                             "reported_at": (start - timedelta(days=1)).isoformat()})
        state = await applied(stack, org_id, 4)
        later = await stack.send(org_id, rq.SetUsageRequest("b@x.test", 4.0))   # now: the newest
    assert first.message == "b@x.test uses 40 GB"
    assert again.message == "b@x.test: this report was already applied; nothing changed"
    hour = start.replace(microsecond=0) - timedelta(hours=1)
    assert older.message == (f"b@x.test: a newer report is already applied (from {hour:%Y-%m-%d %H:%M:%S} UTC); "
                             f"this one, from {hour - timedelta(hours=1):%Y-%m-%d %H:%M:%S} UTC, changes nothing")
    assert state.snapshot.blocked_users == ["b@x.test"]   # still 40 GB: the late signal changed nothing
    assert later.message == "b@x.test uses 4 GB" and _usage(stack, org_id)["b@x.test"] == (4 * MB_PER_GB, False)


async def test_a_report_dated_in_the_future_is_refused_and_a_bad_signal_dropped(stack):
    async with stack.worker():
        start = await stack.now()
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start,
                                        users=[("b@x.test", 1.0)])
        tomorrow = (start + timedelta(days=1)).isoformat()
        try:
            await stack.send(org_id, rq.SetUsageRequest("b@x.test", 40.0, reported_at=tomorrow))
        except Exception as err:  # noqa: BLE001
            refused = str(err)
        handle = stack.handle(org_id)
        await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 40.0, "reported_at": tomorrow})
        await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 40.0, "reported": "today"})
        await handle.signal("contacts_reported", {"contacts": -1})
        await handle.signal("usage_reported", {"user": "b@x.test", "storage_gb": 2.0})
        # Received: the report dated tomorrow, the negative count, 2 GB (the refused Update never
        # reached its handler; the unknown field is named before a report is counted).
        state = await applied(stack, org_id, 3)
        description = await handle.describe()
    assert refused.startswith(f"reported_at: {tomorrow} is after now")
    assert description.status.name == "RUNNING"
    assert _usage(stack, org_id)["b@x.test"] == (2 * MB_PER_GB, False) and state.snapshot.subscribers.total == 0
