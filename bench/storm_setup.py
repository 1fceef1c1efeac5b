"""Setting a renewal storm up: orgs created in bulk (some with a declining card), their renewal
set to one instant, their workflows started, the SMTP sink and the documents worker as processes
of their own. Used by bench/renewal_storm.py."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dateutil.relativedelta import relativedelta
from sqlalchemy import update

from db.models import Subscription
from db.session import Database
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from services.orgs import create_org
from workflows.starter import start_org_workflow

ROOT = Path(__file__).resolve().parents[1]
GOOD, DECLINING = "4242424242424242", "4000000000000341"

def start_documents_worker(db_url: str, temporal: str, queue: str, smtp_port: int, pdf_processes: int
                           ) -> subprocess.Popen:
    env = {**os.environ, "BILLING_DATABASE_URL": db_url, "BILLING_TEMPORAL_ADDRESS": temporal,
           "BILLING_TEMPORAL_TASK_QUEUE": queue, "BILLING_SMTP_PORT": str(smtp_port),
           "BILLING_PDF_PROCESSES": str(pdf_processes), "BILLING_GRACEFUL_SHUTDOWN_SECONDS": "10"}
    return subprocess.Popen([sys.executable, "-m", "workers.runtime.documents"], cwd=ROOT, env=env)


# ---- setting up --------------------------------------------------------------------------------

def create_orgs(db: Database, catalog, policy: Policy, n: int, decline_share: float, prefix: str,
                card_for: Callable) -> list[str]:
    """Monthly Standard orgs with two users each; every 1/decline_share-th has the declining card."""
    placeholder = datetime.now(timezone.utc) - relativedelta(months=1) + timedelta(days=1)
    good, declining = card_for(GOOD), card_for(DECLINING)
    every = round(1 / decline_share) if decline_share > 0 else 0
    org_ids = [f"{prefix}{i:05d}" for i in range(n)]
    for start in range(0, n, 500):
        batch = org_ids[start:start + 500]
        with db.transaction() as session:
            for org_id in batch:
                create_org(session, paid_for_one_cycle(validate_new_org(NewOrg(
                    id=org_id, name=f"Storm {org_id}", admin_email=f"admin@{org_id}.test",
                    users=[NewUser(f"user@{org_id}.test", 2.0)], plan="standard", cycle="monthly"), catalog),
                    placeholder, "bench"), catalog, policy, placeholder)
        with db.transaction() as session:
            for i, org_id in enumerate(batch, start=start):
                card = declining if every and i % every == every - 1 else good
                session.execute(update(Subscription).where(Subscription.org_id == org_id).values(
                    card_token=card.token, card_brand=card.brand, card_last4=card.last4))
    return org_ids


def set_renewal(db: Database, org_ids: list[str], due: datetime) -> None:
    start = due - relativedelta(months=1)
    with db.transaction() as session:
        session.execute(update(Subscription).where(Subscription.org_id.in_(org_ids))
                        .values(cycle_anchor=start, period_start=start, renews_at=due))


async def start_workflows(client, org_ids: list[str], task_queue: str, concurrency: int = 64) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(org_id: str) -> None:
        async with semaphore:
            await start_org_workflow(client, org_id, task_queue)
    await asyncio.gather(*(one(o) for o in org_ids))


def start_smtp_sink() -> tuple[subprocess.Popen, int]:
    from tests.support.smtp import free_port
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
                                "-l", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, port
