"""Within Temporal's limits (issue 14): a usage file for a 50,000-user org goes in 5 Updates of
10,000 rows, not one per row, and leaves the org working and renewing. (Thousands of single reports:
tests/devserver/test_usage_updates.py.)"""

import asyncio
import os
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select

from db.models import Payment, User
from domain import requests as rq
from domain.limits import Limits

GOOD = "4242424242424242"


async def test_a_50000_row_usage_file_for_a_50000_user_org_leaves_it_working(stack, tmp_path):
    users = 50_000
    stack = stack.with_policy(limits=Limits(users_per_org=users + 10))
    start = await stack.now()
    emails = [f"user{i:05d}@big.example" for i in range(users)]
    async with stack.worker():
        org_id = await stack.create_org(plan="standard", cycle="monthly", card=GOOD, start=start, licences=users + 1,
                                        users=[(email, 0.0) for email in emails])
        renews_at = (await stack.state(org_id)).snapshot.renews_at
        path = tmp_path / "usage.csv"
        path.write_bytes(("\ufeffemail,storage_gb\n" + "".join(f"{e},{(i % 20) / 4}\n" for i, e in enumerate(emails)))
                         .encode("utf-8"))
        env = {**os.environ, "BILLING_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
               "BILLING_DATABASE_URL": stack.db.url, "BILLING_MAX_USERS_PER_ORG": str(users + 10)}
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "workers.cli", "usage", "import",
                                                       org_id, str(path), env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT)
        out, _ = await process.communicate()
        elapsed = time.monotonic() - began
        output = " ".join(out.decode().split())
        assert process.returncode == 0, output
        assert f"usage of 50,000 user(s) imported into {org_id} in 5 update(s)" in output
        outcome = await stack.send(org_id, rq.SetUsageRequest(emails[7], 9.0))  # still served
        assert outcome.message == f"{emails[7]} uses 9 GB"
        await stack.advance_to(renews_at + timedelta(hours=1))
        state = await stack.state(org_id)
    print(f"50,000-row import in {elapsed:.1f} s")
    with stack.db.transaction() as session:
        total = session.scalar(select(func.sum(User.storage_mb)).where(User.org_id == org_id))
        payments = session.execute(select(Payment.amount)).scalars().all()
    expected = sum(round((i % 20) / 4 * 1024) for i in range(users)) - round(1.75 * 1024) + 9 * 1024
    assert total == expected
    assert payments == [(users + 1) * 300] and state.snapshot.renews_at > renews_at
