"""The Temporal server gone from under a worker process: its log says so in one line, in the
worker's own format. Before, the SDK core wrote a warning per retried poll itself, with ANSI
colour codes, into a file (489 of them in a fault run). The count while it lasts and the line
at its end are tested in tests/activities/test_outage_log.py; the database's outage with a real
worker in test_database_outage.py."""

import asyncio
import signal
import subprocess
import uuid

import pytest

from tests.reliability.support import (DevServer, kill_process_group, start_worker, wait_polling, wait_until,
                                       worker_environment)

pytestmark = [pytest.mark.postgres, pytest.mark.devserver]


async def test_temporal_out_is_one_line_without_colour_codes(pg_url, tmp_path):
    server = DevServer(tmp_path)
    log = tmp_path / "worker.log"
    worker: subprocess.Popen | None = None
    try:
        await server.start()
        worker = start_worker(worker_environment(pg_url, server.address, 1, f"t-{uuid.uuid4().hex[:6]}"), log)
        await wait_polling(worker, log)
        polling = len(log.read_text())
        server.stop(signal.SIGKILL)
        # The core warns from a poll's sixth retry on (about 5 s), then at every retry.
        await wait_until(lambda: log.read_text().count("gRPC call") >= 1, 30, "the worker to say Temporal is out")
        await asyncio.sleep(3)   # more retries, each counted, none written
        await server.start()
        assert worker.poll() is None
        told = log.read_text()[polling:]
        assert "\x1b" not in told, told
        lines = told.splitlines()
        assert len(lines) <= 3 and len(told) <= 1500, told
        [outage] = [line for line in lines if "Temporal outage" in line]
        assert "WARNING" in outage and "Temporal outage: Temporal unreachable: gRPC call poll_" in outage, outage
    finally:
        if worker is not None:
            kill_process_group(worker)
        server.stop()
