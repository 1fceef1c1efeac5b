"""`make run` as a new user meets it: the embedded stack started as the Makefile starts it (in a
temporary folder, on free ports), the README's demo promises checked as they come true, and every
query docs/operations.md and the README give to paste (ready-to-paste queries, saved views)
answered with rows.

The stack runs with --promised-times-divided-by 3: the timed orgs come true at a third of the
README's times (its exact times are checked on every day of the year by tests/test_demo_anchors.py),
and the run takes about a minute instead of two and a half."""

import asyncio
import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.binaries import temporal_cli_or_skip
from tests.support.receiver import Receiver
from tests.support.smtp import free_port
from workers.stack.demo import DECLINES_AFTER, DEMO_ORGS, RENEWS_SOON_AFTER, TRIAL_ENDS_AFTER

pytestmark = pytest.mark.devserver

REPO = Path(__file__).resolve().parents[1]
# The dev server and the migrations start before the demo's clock does: a promise may come true
# this much later than its time counted from the process start.
SLACK = 40.0
DIVIDED_BY = 3  # --promised-times-divided-by: the README's times, this many times sooner
QUERY = re.compile(r"^[A-Z][A-Za-z]+ (=|!=|<|>|<=|>=|IN|NOT IN|IS|STARTS_WITH|BETWEEN) ")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DATETIME = re.compile(r'"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z"')


def mails(folder: Path, org_id: str, template: str) -> list[EmailMessage]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["X-Billing-Org"] == org_id and message["X-Billing-Template"] == template:
            found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


async def has_status(client: Client, org_id: str, status: str) -> bool:
    query = f'OrgId = "{org_id}" AND OrgStatus = "{status}" AND ExecutionStatus = "Running"'
    return (await client.count_workflows(query)).count == 1


# The README's table, "What happens after the start": seconds, org, what a user sees then.
async def trial_ended_with_two_users_blocked(client: Client, mail: Path) -> bool:
    blocked = mails(mail, "demo-trial-ending", "storage_blocked")
    to_admin = [m for m in blocked if m["To"] == "admin@kopi.test"]
    return (await has_status(client, "demo-trial-ending", "free")
            and bool(mails(mail, "demo-trial-ending", "trial_expired")) and len(to_admin) == 1
            and "budi@kopi.test" in text_of(to_admin[0]) and "dewi@kopi.test" in text_of(to_admin[0])
            and "sari@kopi.test" not in text_of(to_admin[0]))


async def renewed_with_a_receipt(client: Client, mail: Path) -> bool:
    receipts = mails(mail, "demo-renews-soon", "receipt")
    return len(receipts) == 1 and any(part.get_content_type() == "application/pdf"
                                      for part in receipts[0].iter_attachments())


async def renewed_with_ppn(client: Client, mail: Path) -> bool:
    receipts = mails(mail, "demo-ppn", "receipt")
    return len(receipts) == 1 and "PPN 12%" in text_of(receipts[0]) and "DPP" in text_of(receipts[0])


async def declined_into_dunning(client: Client, mail: Path) -> bool:
    failed = mails(mail, "demo-card-declines", "payment_failed")
    return len(failed) == 1 and await has_status(client, "demo-card-declines", "past_due")


def after_the_start(promised: timedelta) -> float:
    return promised.total_seconds() / DIVIDED_BY


PROMISES = [(after_the_start(TRIAL_ENDS_AFTER), "demo-trial-ending", trial_ended_with_two_users_blocked),
            (after_the_start(RENEWS_SOON_AFTER), "demo-renews-soon", renewed_with_a_receipt),
            (after_the_start(RENEWS_SOON_AFTER), "demo-ppn", renewed_with_ppn),
            (after_the_start(DECLINES_AFTER), "demo-card-declines", declined_into_dunning)]


def ready_to_paste_queries() -> list[str]:
    """The queries of docs/operations.md's tables (ready-to-paste queries, saved views) and of
    the README's query blocks, as a user would copy them."""
    operations = (REPO / "docs" / "operations.md").read_text()
    queries = [q for line in operations.splitlines() if line.startswith("|")
               for q in re.findall(r"`([^`]+)`", line) if QUERY.match(q)]
    blocks, block = [], None
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("```"):  # a fence opens a block, or closes the open one
            if block is not None:
                blocks.append(block)
            block = [] if block is None else None
        elif block is not None and line.strip():
            block.append(line.strip())
    queries += [line for block in blocks if all(QUERY.match(line) for line in block) for line in block]
    return list(dict.fromkeys(queries))



async def connect(address: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"make run exited with {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            client = await Client.connect(address)
            await client.count_workflows()
            return client
        except Exception:  # noqa: BLE001  (not up yet)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_the_demo_keeps_the_readme_s_promises(tmp_path):
    temporal_cli_or_skip()
    queries = ready_to_paste_queries()
    assert len(queries) >= 12, queries
    var, log = tmp_path / "var", tmp_path / "embedded.log"
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "TEMPORAL_"))}
    env.update(BILLING_TEMPORAL_ADDRESS=address, BILLING_SMTP_PORT=str(free_port()))
    # The mail platform: a reference receiver verifying each webhook's signature.
    platform = await Receiver(WEBHOOK_SECRET).up()
    env.update(BILLING_WEBHOOK_URL=platform.url, BILLING_WEBHOOK_SECRET=WEBHOOK_SECRET)
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "workers.stack.embedded", "--var", str(var),
                                    "--ui-port", str(free_port()), "--promised-times-divided-by", str(DIVIDED_BY)],
                                   cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.monotonic()
    # The docs' dates are examples: a week from now stands for them, so the check lasts.
    week_ahead = f'"{datetime.now(timezone.utc) + timedelta(days=7):%Y-%m-%dT%H:%M:%SZ}"'
    try:
        client = await connect(address, process, log)
        came_true: dict[str, float] = {}
        rows_from: dict[str, float] = {}
        deadline = started + max(after for after, _, _ in PROMISES) + SLACK
        while (len(came_true) < len(PROMISES) or len(rows_from) < len(queries)) and time.monotonic() < deadline:
            assert process.poll() is None, f"make run exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            for _, org_id, check in PROMISES:
                if org_id not in came_true and await check(client, var / "mail"):
                    came_true[org_id] = time.monotonic() - started
            for query in queries:
                if query not in rows_from and (await client.count_workflows(DATETIME.sub(week_ahead, query))).count:
                    rows_from[query] = time.monotonic() - started
            await asyncio.sleep(1)
        print("\npromises came true after (s):", {org: round(at) for org, at in came_true.items()},
              f"\nevery query had rows {max(rows_from.values(), default=0):.0f} s after the start, the last: "
              f"{max(rows_from, key=rows_from.get, default='')}")
        told = platform.current.get("demo-trial-ending")
        assert told is not None and told["plan"]["id"] == "free", "demo-trial-ending's platform was told its end"
        assert sorted(u["email"] for u in told["users"] if u["blocked"]) == ["budi@kopi.test", "dewi@kopi.test"]
        arrived = next(r.at for r in platform.log if r.org_id == "demo-trial-ending" and r.version == told["version"])
        late_by = arrived - datetime.fromisoformat(told["as_of"]).timestamp()
        print(f"demo-trial-ending's platform told {late_by:.1f} s after its trial's end")
        assert late_by < 60, "told within a minute of the end"
        assert platform.refused == 0
        for after, org_id, _ in PROMISES:
            assert org_id in came_true, f"{org_id}: not done {after + SLACK:.0f} s after the start"
            assert after - 2 <= came_true[org_id] <= after + SLACK, f"{org_id} at {came_true[org_id]:.0f} s"
        assert [q for q in queries if q not in rows_from] == [], "these queries list no org"
        late = {q: round(at) for q, at in rows_from.items() if at > 60}
        assert late == {}, "the README promises rows within a minute"

        running = {execution.id async for execution in client.list_workflows('ExecutionStatus = "Running"')}
        assert {f"org-{demo.id}" for demo in DEMO_ORGS} <= running
        # Every demo org's Updates were accepted (a refusal is logged by billing.demo and left out).
        assert "billing.demo" not in log.read_text()

        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await platform.down()
