"""Entitlement changes delivered to a local mail platform receiver, on PostgreSQL.

    .venv/bin/python bench/entitlements.py                 # 10,000 changes over 1,000 orgs
    .venv/bin/python bench/entitlements.py --changes 2000 --orgs 200 --threads 4
    .venv/bin/python bench/entitlements.py --drain --orgs 10000   # a backlog of 10,000 orgs' versions

N trial orgs with two users each are created (each one's first version is stored and delivered
before the clock starts); then `--changes` usage reports are decided by the production activity
(BillingActivities.apply_change, `--threads` at once), each moving a user over or under the
trial's 100 GB quota, so each one changes the org's entitlements (a user blocked or unblocked):
one new version per change. Meanwhile the production delivery activity
(activities/webhooks.py, run by the SDK's activity environment in this process) sends them to
the reference receiver (bench/platform_receiver.py, its own process, verifying every signature).

Measured: changes decided per second; messages delivered and their rate; change -> delivered
(the version's decision time to the arrival at the receiver of that version or a later one of
the same org: the latest wins, so a version superseded before it was sent counts as delivered by
its successor) p99. With --drain: no change; the orgs' first versions wait until every org is
created, then the delivery starts: messages/s to drain the backlog."""

import argparse
import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from temporalio.testing import ActivityEnvironment  # noqa: E402

from activities.billing import BillingActivities  # noqa: E402
from activities.messages import ChangeInput  # noqa: E402
from activities.webhooks import DeliveryActivities  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.entitlements import backlog  # noqa: E402
from db.orgs import sync_plans  # noqa: E402
from services.orgs import create_org  # noqa: E402
from db.session import Database  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from domain.onboarding import NewOrg, NewUser, validate_new_org  # noqa: E402
from domain.policy import Policy  # noqa: E402
from domain.requests import SetUsageRequest  # noqa: E402
from tests.support.databases import create_pg_database, drop_pg_database  # noqa: E402
from platform_receiver import delivery_figures, start_receiver  # noqa: E402


async def deliver_until(delivery: DeliveryActivities, done: asyncio.Event) -> None:
    while not done.is_set():
        await ActivityEnvironment().run(delivery.deliver_entitlements, "platform")


async def bench(orgs: int, changes: int, threads: int, drain: bool = False) -> None:
    catalog, policy = load_catalog(), Policy()
    name, url = create_pg_database("billing_bench")
    receiver, webhooks, out = start_receiver()
    db = Database(url)
    try:
        upgrade(url)
        with db.transaction() as session:
            sync_plans(session, catalog)
        start = datetime.now(timezone.utc)
        org_ids = [f"e{i:05d}" for i in range(orgs)]
        for first in range(0, orgs, 500):
            with db.transaction() as session:
                for org_id in org_ids[first:first + 500]:
                    create_org(session, validate_new_org(NewOrg(
                        id=org_id, name=org_id, admin_email=f"admin@{org_id}.test",
                        users=[NewUser(f"u@{org_id}.test", 1.0)]), catalog), catalog, policy, start)
        delivery = DeliveryActivities(db, webhooks, run_seconds=5)
        done = asyncio.Event()
        drained = time.time()
        delivering = asyncio.create_task(deliver_until(delivery, done))
        while True:   # every org's first version delivered before the clock starts
            await asyncio.sleep(0.5)
            with db.transaction() as session:
                if backlog(session, "platform")[0] == 0:
                    break
        if drain:
            done.set()
            await delivering
            receiver.terminate()
            receiver.wait(30)
            arrivals = [at for _, _, at, _ in json.loads(out.read_text())["log"]]
            print(f"{len(arrivals)} orgs' versions waiting, delivered in {max(arrivals) - drained:.1f} s: "
                  f"{len(arrivals) / (max(arrivals) - drained):.0f}/s (load average {os.getloadavg()[0]:.1f})")
            return
        billing = BillingActivities(db, catalog, policy)

        def change(i: int) -> None:
            org_id = org_ids[i % orgs]
            over = (i // orgs) % 2 == 0   # each round moves the user over the quota, the next back under
            billing.apply_change(ChangeInput(org_id, SetUsageRequest(user=f"u@{org_id}.test",
                                                                      storage_gb=150.0 if over else 1.0),
                                             key=f"bench:{i}", at=datetime.now(timezone.utc)))
        t0, since = time.time(), datetime.now(timezone.utc)
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(threads) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, change, i) for i in range(changes)))
        decided = time.time() - t0
        while True:
            await asyncio.sleep(0.5)
            with db.transaction() as session:
                if backlog(session, "platform")[0] == 0:
                    break
        done.set()
        await delivering
        receiver.terminate()
        receiver.wait(30)
        messages, versions, p99 = delivery_figures(db, out, since)
        last = max(at for _, _, at, _ in json.loads(out.read_text())["log"])
    finally:
        if receiver.poll() is None:
            receiver.terminate()
            receiver.wait(30)
        db.dispose()
        drop_pg_database(name)
    print(f"{versions} changes (new versions) over {orgs} orgs, {threads} deciding threads "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"  decided: {versions / decided:.0f} changes/s ({decided:.1f} s)")
    print(f"  delivered: {messages} messages in {last - t0:.1f} s from the first change: {messages / (last - t0):.0f}/s "
          f"({versions - messages} versions superseded before they were sent)")
    print(f"  change -> delivered p99: {p99 * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--drain", action="store_true", help="deliver a backlog of every org's first version")
    args = parser.parse_args()
    asyncio.run(bench(args.orgs, args.changes, args.threads, args.drain))
