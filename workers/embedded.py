"""`make run`: the whole stack on a laptop. Temporal dev server with its Web UI (state kept in
var/temporal.db), the worker, SQLite (var/billing.db), an SMTP capture server saving every
message under var/mail/, and a few demo orgs: one trial ends within two minutes of the first
start (it is created with a trial that began 15 days ago; no clock is compressed).
Ctrl-C stops everything cleanly."""

import asyncio
import logging
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from domain.onboarding import NewOrg, NewUser, validate_new_org
from db.orgs import create_org, set_card
from domain.cards import sandbox_tokenise
from workers import logs
from workers.binaries import temporal_cli
from workers.config import Settings
from workers.schedules import create_reconcile_schedule
from workers.search_attributes import dev_server_flags
from workers.smtp_capture import start_capture
from activities.documents import PdfRendererMissing
from workers.worker import components_from, configured_worker
from workflows.starter import start_org_workflow

log = logging.getLogger("billing.embedded")
VAR = Path("var")


def demo_orgs(now: datetime) -> list[tuple[NewOrg, datetime, str | None]]:
    """(org, when its life started, sandbox card)."""
    def users(domain: str, *specs: tuple[str, float]) -> list[NewUser]:
        return [NewUser(f"{name}@{domain}", gb) for name, gb in specs]
    return [
        (NewOrg(id="demo-trial-ending", name="Warung Kopi <Demo>", admin_email="admin@kopi.test", locale="id",
                currency="IDR", users=users("kopi.test", ("admin", 1.0), ("sari", 3.0), ("budi", 5.1), ("dewi", 12.0))),
         now - timedelta(days=15) + timedelta(seconds=90), None),
        (NewOrg(id="demo-new-trial", name="Acme Mail", admin_email="admin@acme.test",
                users=users("acme.test", ("admin", 0.5), ("bob", 2.0))), now, None),
        (NewOrg(id="demo-renews-soon", name="Globex", admin_email="admin@globex.test", plan="standard",
                cycle="monthly", users=users("globex.test", ("admin", 4.0), ("hank", 20.0))),
         now - timedelta(days=30) + timedelta(minutes=3), "4242424242424242"),
        (NewOrg(id="demo-card-declines", name="Initech", admin_email="admin@initech.test", plan="mail_premium",
                cycle="monthly", users=users("initech.test", ("admin", 1.0), ("peter", 8.0))),
         now - timedelta(days=30) + timedelta(minutes=4), "4000000000000341"),
    ]


def seed_demo(components, settings: Settings) -> list[NewOrg]:  # noqa: ANN001
    created = []
    now = datetime.now(timezone.utc)
    for org, started, card in demo_orgs(now):
        valid = validate_new_org(org, components.catalog)
        with components.db.transaction() as session:
            from db.models import Organisation
            if session.get(Organisation, valid.id) is not None:
                continue
            create_org(session, valid, components.catalog, components.policy, started)
            if card:
                details = sandbox_tokenise(card)
                set_card(session, valid.id, details.token, details.brand, details.last4)
        created.append(valid)
    return created


async def wait_for_temporal(address: str, process: subprocess.Popen, timeout: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}; see var/temporal.log")
        try:
            return await Client.connect(address)
        except Exception:  # noqa: BLE001
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main() -> None:
    logs.configure("text")
    for noisy in ("mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    VAR.mkdir(exist_ok=True)
    os.environ.setdefault("BILLING_DATABASE_URL", f"sqlite:///{VAR / 'billing.db'}")
    settings = Settings()
    smtp = start_capture(VAR / "mail", settings.smtp_host, settings.smtp_port)
    host, _, port = settings.temporal_address.partition(":")
    server = subprocess.Popen(
        [temporal_cli(), "server", "start-dev", "--ip", host if host != "localhost" else "127.0.0.1",
         "--port", port or "7233", "--ui-port", "8233", "--db-filename", str(VAR / "temporal.db"),
         "--log-level", "warn", *dev_server_flags()],
        stdout=open(VAR / "temporal.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    components = None
    try:
        client = await wait_for_temporal(settings.temporal_address, server)
        components = components_from(settings)
        worker = configured_worker(client, settings, components, graceful_shutdown=timedelta(seconds=10))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            for org in seed_demo(components, settings):
                await start_org_workflow(client, org.id, settings.temporal_task_queue, org.name, org.admin_email)
                log.info("demo org %s started", org.id)
            await create_reconcile_schedule(client, settings.temporal_task_queue)
            # The database is the source of truth: restart any org workflow the server lost.
            from workflows.reconcile import ReconcileWorkflow
            await client.start_workflow(ReconcileWorkflow.run, id="billing-reconcile-startup",
                                        task_queue=settings.temporal_task_queue,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            print("\n  Temporal UI   http://localhost:8233/namespaces/default/workflows"
                  "\n  E-mails       var/mail/*.eml   (SMTP capture on "
                  f"{settings.smtp_host}:{settings.smtp_port})"
                  f"\n  Database      {settings.database_url}"
                  "\n  CLI           .venv/bin/billing org show demo-trial-ending"
                  "\n  Stop          Ctrl-C\n", flush=True)
            await stop.wait()
            log.info("stopping the worker (draining activities)")
    finally:
        if components is not None:
            components.db.dispose()
        smtp.stop()
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        log.info("stopped")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except PdfRendererMissing as err:
        raise SystemExit(f"cannot start: {err}") from None
