"""Setting a renewal storm up: orgs created in bulk (some with a declining card; one of each
through services.orgs.create_org, the others copies of its rows), their renewal set to one
instant, their workflows started, the SMTP sink and the documents worker as processes of their
own. Used by bench/renewal_storm.py."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dateutil.relativedelta import relativedelta
from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import Subscription
from db.session import Database
from domain.cards import CardDetails
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from services.orgs import create_org
from tests.support.bulk import copy_orgs
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

# Orgs copied per transaction: a few bulk inserts each.
COPIED_PER_TRANSACTION = 2000


def create_orgs(db: Database, catalog, policy: Policy, n: int, decline_share: float, prefix: str,
                card_for: Callable, at: datetime | None = None) -> list[str]:
    """Monthly Standard orgs with two users each (the admin and one more), moved in paid until a
    day from now (`at` + one month, `at` a month less a day ago by default); every
    1/decline_share-th has the declining card. The first org with each card is created through
    services.orgs.create_org (create_storm_org); the others are copies of its rows
    (tests.support.bulk.copy_orgs): what create_org would write for them (tests/bench compares
    the two), at a few bulk inserts per thousand orgs instead of some twenty statements per org."""
    at = at or datetime.now(timezone.utc) - relativedelta(months=1) + timedelta(days=1)
    org_ids = [f"{prefix}{i:05d}" for i in range(n)]
    cards = [DECLINING if declines(i, decline_share) else GOOD for i in range(n)]
    templates: dict[str, str] = {}
    for org_id, card in zip(org_ids, cards):
        templates.setdefault(card, org_id)
    with db.transaction() as session:
        for card, org_id in templates.items():
            create_storm_org(session, org_id, card_for(card), catalog, policy, at)
    copies = {org_id: templates[card] for org_id, card in zip(org_ids, cards) if org_id not in templates.values()}
    batch = list(copies.items())
    for start in range(0, len(batch), COPIED_PER_TRANSACTION):
        with db.transaction() as session:
            copy_orgs(session, dict(batch[start:start + COPIED_PER_TRANSACTION]))
    return org_ids


def declines(i: int, decline_share: float) -> bool:
    """The i-th storm org has the declining card: every 1/decline_share-th."""
    every = round(1 / decline_share) if decline_share > 0 else 0
    return bool(every) and i % every == every - 1


def create_storm_org(session: Session, org_id: str, card: CardDetails, catalog, policy: Policy,
                     at: datetime) -> None:
    """One storm org through services.orgs.create_org, as an operator would create it, and its card."""
    create_org(session, paid_for_one_cycle(validate_new_org(NewOrg(
        id=org_id, name=f"Storm {org_id}", admin_email=f"admin@{org_id}.test",
        users=[NewUser(f"user@{org_id}.test", 2.0)], plan="standard", cycle="monthly"), catalog), at, "bench"),
        catalog, policy, at)
    session.execute(update(Subscription).where(Subscription.org_id == org_id).values(
        card_token=card.token, card_brand=card.brand, card_last4=card.last4))


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
