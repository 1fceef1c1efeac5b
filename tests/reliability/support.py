"""Fault-injection tools for the reliability tests: a restartable Temporal dev server, a TCP
proxy that can cut PostgreSQL off, orgs whose renewal falls due seconds from now, and the
exactly-once ledger read back from the database."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from temporalio.client import Client

from db.models import EmailMessage, GatewayCharge, Invoice, Payment
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from db.orgs import set_card
from services.orgs import create_org
from db.session import Database
from domain.catalog import Catalog
from domain.cards import sandbox_tokenise
from domain.policy import Policy
from workers.runtime.binaries import temporal_cli
from workers.runtime.search_attributes import dev_server_flags

ROOT = Path(__file__).resolve().parents[2]
GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000341"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(condition: Callable[[], Awaitable[bool] | bool], timeout: float, what: str,
                     interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# ---- the Temporal dev server, as a process we can stop and start again --------------------------

class DevServer:
    """`temporal server start-dev` on fixed loopback ports, optionally file-backed, so it can be
    stopped (even killed) and started again where it left off."""

    def __init__(self, workdir: Path, db_filename: Path | None = None) -> None:
        self.port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.db_filename = db_filename
        self.log = workdir / f"temporal-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port),
                "--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port), "--headless",
                "--log-level", "warn", *dev_server_flags()]
        if self.db_filename is not None:
            args += ["--db-filename", str(self.db_filename)]
        return args

    async def start(self, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"dev server exited with {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                client = await Client.connect(self.address)
                await client.count_workflows()  # the frontend answers and the namespace exists
                return
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


# ---- a TCP proxy that can make PostgreSQL unreachable ---------------------------------------------

class TcpProxy:
    """Forwards 127.0.0.1:port to a target on its own event loop thread. `cut()` closes every open
    connection and refuses new ones (accept, then close at once: the client sees the server drop
    the connection, as when the database host restarts); `restore()` forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.up = True
        self.refused = 0
        self.forwarded = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> "TcpProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def cut(self) -> None:
        """Returns once every connection is closed: nothing reaches the target after this."""
        async def _cut() -> None:
            self.up = False
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        asyncio.run_coroutine_threadsafe(_cut(), self._loop).result(10)

    def restore(self) -> None:
        async def _restore() -> None:
            self.up = True
        asyncio.run_coroutine_threadsafe(_restore(), self._loop).result(10)

    def stop(self) -> None:
        async def _stop() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        if not self.up:  # cut while we were connecting
            self.refused += 1
            writer.transport.abort()
            up_writer.transport.abort()
            return
        self.forwarded += 1
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# ---- orgs and the exactly-once ledger ----------------------------------------------------------

def renewal_org(db: Database, catalog: Catalog, policy: Policy, org_id: str, due: datetime,
                card: str = GOOD_CARD, plan: str = "standard") -> None:
    """A monthly paid org whose first cycle started one month before `due`: it renews at `due`."""
    new = validate_new_org(NewOrg(id=org_id, name=f"Org {org_id}", admin_email=f"admin@{org_id}.test",
                                  users=[NewUser(f"user@{org_id}.test", 1.0)], plan=plan, cycle="monthly"),
                           catalog)
    with db.transaction() as session:
        start = due - relativedelta(months=1)
        create_org(session, paid_for_one_cycle(new, start, "tests"), catalog, policy, start)
        details = sandbox_tokenise(card)
        set_card(session, org_id, details.token, details.brand, details.last4)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def due_in(seconds: float) -> datetime:
    """A due instant `seconds` from now, whole milliseconds (as stored by every backend)."""
    moment = now_utc() + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Ledger:
    """Per org: renewal invoices (number, status), payments rows, gateway charges, receipts."""
    invoices: dict[str, list[tuple[str, str]]]
    payments: dict[str, int]
    gateway_charges: dict[str, int]
    receipts_outbox: dict[str, int]


def ledger(db: Database, org_ids: list[str]) -> Ledger:
    with db.transaction() as session:
        invoices = {o: [] for o in org_ids}
        for org_id, number, status in session.execute(
                select(Invoice.org_id, Invoice.number, Invoice.status).where(Invoice.org_id.in_(org_ids))
                .order_by(Invoice.id)):
            invoices[org_id].append((number, str(status)))
        payments = dict.fromkeys(org_ids, 0)
        for org_id, count in session.execute(
                select(Invoice.org_id, func.count(Payment.id)).join(Payment, Payment.invoice_id == Invoice.id)
                .where(Invoice.org_id.in_(org_ids)).group_by(Invoice.org_id)):
            payments[org_id] = count
        charges = dict.fromkeys(org_ids, 0)
        for key in session.scalars(select(GatewayCharge.idempotency_key)):
            org_id = key.split(":", 1)[0]
            if org_id in charges:
                charges[org_id] += 1
        receipts = dict.fromkeys(org_ids, 0)
        for org_id, count in session.execute(
                select(EmailMessage.org_id, func.count(EmailMessage.id))
                .where(EmailMessage.org_id.in_(org_ids), EmailMessage.template == "receipt",
                       EmailMessage.status == "sent").group_by(EmailMessage.org_id)):
            receipts[org_id] = count
    return Ledger(invoices, payments, charges, receipts)


def count_rows(db: Database, model: type) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def paid_renewals(db: Database, org_ids: list[str]) -> int:
    """Orgs whose renewal invoice is paid and whose receipt has been sent."""
    book = ledger(db, org_ids)
    return sum(1 for o in org_ids if [s for _, s in book.invoices[o]] == ["paid"] and book.receipts_outbox[o] == 1)


def assert_exactly_once(db: Database, org_ids: list[str], sink_counts: dict[str, int]) -> None:
    """Every org: one renewal invoice, paid; one payments row; one gateway charge; one receipt
    in the outbox and one in the SMTP server's mailbox."""
    book = ledger(db, org_ids)
    problems = []
    for org_id in org_ids:
        got = ([s for _, s in book.invoices[org_id]], book.payments[org_id], book.gateway_charges[org_id],
               book.receipts_outbox[org_id], sink_counts.get(org_id, 0))
        if got != (["paid"], 1, 1, 1, 1):
            problems.append(f"{org_id}: invoices={got[0]} payments={got[1]} gateway={got[2]} "
                            f"outbox_receipts={got[3]} smtp_receipts={got[4]}")
    assert not problems, "not exactly once:\n" + "\n".join(problems)


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL a subprocess started with start_new_session=True, with everything it spawned
    (still there when the subprocess itself is gone)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


# ---- a worker as deployed: its own process, configured by BILLING_* variables --------------------

def worker_environment(database_url: str, temporal_address: str, smtp_port: int, task_queue: str,
                       **settings: str) -> dict[str, str]:
    """This process's environment and the worker's BILLING_* settings (`settings` by name, e.g.
    PDF_PROCESSES="1"); metrics on a free port, a 5 s graceful shutdown."""
    return {**os.environ, "BILLING_DATABASE_URL": database_url, "BILLING_TEMPORAL_ADDRESS": temporal_address,
            "BILLING_SMTP_HOST": "127.0.0.1", "BILLING_SMTP_PORT": str(smtp_port),
            "BILLING_TEMPORAL_TASK_QUEUE": task_queue, "BILLING_METRICS_PORT": str(free_port()),
            "BILLING_GRACEFUL_SHUTDOWN_SECONDS": "5", **{f"BILLING_{k}": v for k, v in settings.items()}}


def start_worker(env: dict[str, str], log: Path, module: str = "workers.runtime.worker") -> subprocess.Popen:
    """`python -m <module>` in a session of its own (so kill_process_group ends all it started),
    its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


async def wait_polling(process: subprocess.Popen, log: Path, starts: int = 1) -> None:
    """Until the worker's log says it polls, for the `starts`-th time."""
    def polling() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        return log.read_text().count("worker polling") >= starts
    await wait_until(polling, 60, "the worker to poll")
