"""`make run`: the whole stack on a laptop. Temporal dev server with its Web UI (state kept in
var/temporal.db), the worker, SQLite (var/billing.db), an SMTP capture server saving every
message under var/mail/, and the demo orgs of workers/stack/demo.py (no clock is compressed: their
lives started in the past). Ctrl-C stops everything cleanly.

`--var DIR` and `--ui-port N` move the files and the Web UI; the Temporal address and the SMTP
port are the worker's settings (BILLING_TEMPORAL_ADDRESS, BILLING_SMTP_PORT)."""

import argparse
import asyncio
import logging
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from activities.documents import PdfRendererMissing
from workers.runtime import logs
from workers.runtime.binaries import temporal_cli
from workers.runtime.config import load_settings
from workers.runtime.schedules import create_reconcile_schedule
from workers.runtime.search_attributes import dev_server_flags
from workers.runtime.temporal import DATA_CONVERTER
from workers.runtime.worker import components_from, configured_worker, delivering
from domain.cards import sandbox_tokenise, stripe_test_card
from workers.stack.demo import seed_demo
from workers.stack.ports import Port, PortBusy, check_free
from workers.stack.smtp_capture import start_capture
from workers.stack.var_dir import VarFromAnotherVersion, claim

log = logging.getLogger("billing.embedded")


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.stack.embedded", description=__doc__.splitlines()[0])
    parser.add_argument("--var", type=Path, default=Path("var"),
                        help="folder of the Temporal and billing databases, the logs and the e-mails (var)")
    parser.add_argument("--ui-port", type=int, default=8233, help="port of the Temporal Web UI (8233)")
    parser.add_argument("--promised-times-divided-by", type=positive, default=1, metavar="N",
                        help="the timed demo orgs (the README's ~60 s, ~90 s and ~2 min after the start) "
                             "come true N times sooner (1)")
    return parser.parse_args(argv)


async def wait_for_temporal(address: str, process: subprocess.Popen, log_file: Path, timeout: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited with code {process.returncode}; see {log_file}")
        try:
            return await Client.connect(address, data_converter=DATA_CONVERTER)
        except Exception:  # noqa: BLE001
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main(args: argparse.Namespace) -> None:
    logs.configure("text")
    for noisy in ("mail.log", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    var = args.var
    claim(var)
    os.environ.setdefault("BILLING_DATABASE_URL", f"sqlite:///{var / 'billing.db'}")
    settings = load_settings()
    host, _, port = settings.temporal_address.rpartition(":")
    check_free([Port(settings.smtp_host, settings.smtp_port, "the SMTP capture", "BILLING_SMTP_PORT"),
                Port(host, int(port), "the Temporal dev server", "BILLING_TEMPORAL_ADDRESS"),
                Port(host, args.ui_port, "the Temporal Web UI", "python -m workers.stack.embedded --ui-port N")])
    smtp = start_capture(var / "mail", settings.smtp_host, settings.smtp_port)
    server_log = var / "temporal.log"
    server = subprocess.Popen(
        [temporal_cli(), "server", "start-dev", "--ip", host if host != "localhost" else "127.0.0.1",
         "--port", port or "7233", "--ui-port", str(args.ui_port), "--db-filename", str(var / "temporal.db"),
         "--log-level", "warn", *dev_server_flags()],
        stdout=open(server_log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    components = None
    try:
        client = await wait_for_temporal(settings.temporal_address, server, server_log)
        components = components_from(settings)
        worker = configured_worker(client, settings, components, graceful_shutdown=timedelta(seconds=10))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # With BILLING_WEBHOOK_URL and BILLING_WEBHOOK_SECRET set, entitlements are delivered too.
        async with worker, delivering(client, settings.temporal_task_queue, components, timedelta(seconds=10)):
            card_for = stripe_test_card if settings.gateway == "stripe" else sandbox_tokenise
            created = await seed_demo(client, components, settings.temporal_task_queue, datetime.now(timezone.utc),
                                      card_for=card_for,
                                      promised_times_divided_by=args.promised_times_divided_by)
            if created:
                log.info("demo orgs started: %s", ", ".join(created))
            await create_reconcile_schedule(client, settings.temporal_task_queue)
            # The database is the source of truth: restart any org workflow the server lost.
            from workflows.reconcile import ReconcileWorkflow
            await client.start_workflow(ReconcileWorkflow.run, id="billing-reconcile-startup",
                                        task_queue=settings.temporal_task_queue,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            print(f"\n  Temporal UI   http://localhost:{args.ui_port}/namespaces/default/workflows"
                  f"\n  E-mails       {var / 'mail'}/*.eml   (SMTP capture on "
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
        asyncio.run(main(arguments()))
    except KeyboardInterrupt:
        pass
    except (PdfRendererMissing, VarFromAnotherVersion, PortBusy) as err:
        raise SystemExit(f"cannot start: {err}") from None
