"""A worker killed with SIGKILL takes its helper processes with it: the process that renders
receipts' PDFs (BILLING_PDF_PROCESSES) and the resource tracker multiprocessing starts beside
it. Left running, each crash leaked ~100 MB to PID 1 (issue 22).

Only the worker's own pid is killed, as the kernel's OOM killer or `kill -9 <pid>` would: its
process group (its children) is left alone, so nothing but the worker's death can end them."""

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from domain.policy import Policy
from tests.reliability.support import (DevServer, due_in, kill_process_group, paid_renewals, renewal_org,
                                       start_worker, wait_polling, wait_until, worker_environment)
from tests.support.smtp import SmtpSink
from workflows.starter import start_org_workflow

pytestmark = [pytest.mark.postgres, pytest.mark.devserver]


def children(pid: int) -> dict[int, str]:
    """The live processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent (PID 1 here) to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_the_pdf_renderer_and_resource_tracker_die_with_a_killed_worker(pg_url, pg_db, catalog, tmp_path):
    server = DevServer(tmp_path)
    sink = SmtpSink().start()
    queue = f"orphans-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "worker.log"
    worker: subprocess.Popen | None = None
    try:
        await server.start()
        worker = start_worker(worker_environment(pg_url, server.address, sink.port, queue, PDF_PROCESSES="1"), log)
        await wait_polling(worker, log)
        # A renewal's receipt carries its invoice as a PDF: the first render starts the renderer.
        org_id = f"o{uuid.uuid4().hex[:8]}"
        renewal_org(pg_db, catalog, Policy(), org_id, due_in(1))
        await start_org_workflow(await Client.connect(server.address), org_id, queue)
        await wait_until(lambda: paid_renewals(pg_db, [org_id]) == 1, 60, "the receipt")
        [receipt] = sink.for_org(org_id, "receipt")
        assert [part.get_content_type() for part in receipt.message.iter_attachments()] == ["application/pdf"]

        helpers = children(worker.pid)
        assert any("spawn_main" in cmd for cmd in helpers.values()), helpers
        assert any("resource_tracker" in cmd for cmd in helpers.values()), helpers
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        await wait_until(lambda: not any(alive(pid) for pid in helpers), 5, f"the worker's helpers {helpers} to exit")
    finally:
        if worker is not None:
            kill_process_group(worker)
        server.stop()
        sink.stop()
