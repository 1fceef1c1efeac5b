"""The `billing` console script run as a user runs it: a subprocess, its exit code, and what
it printed on standard output and standard error."""

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BILLING = str(Path(sys.executable).parent / "billing")  # the console script installed in the venv
STAFF = "rina@billing.test"


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def text(self) -> str:
        """Both streams, whitespace collapsed: what a person reads."""
        return " ".join((self.out + " " + self.err).split())


def stack_env(stack, **extra: str) -> dict[str, str]:
    """The settings that point the CLI at a test stack's Temporal, task queue and database."""
    return {"BILLING_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host,
            "BILLING_TEMPORAL_NAMESPACE": stack.client.namespace, "BILLING_TEMPORAL_TASK_QUEUE": stack.task_queue,
            "BILLING_DATABASE_URL": stack.db.url, "BILLING_BILLING_STAFF": STAFF, **extra}


async def billing(*args: str, stdin: str | None = None, **env: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        BILLING, *args, env={**os.environ, "COLUMNS": "200", **env}, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin.encode() if stdin is not None else b""), 120)
    return Run(process.returncode, out.decode(), err.decode())


def billing_now(*args: str, stdin: str | None = None, **env: str) -> Run:
    """`billing` from a test that has no event loop running."""
    done = subprocess.run([BILLING, *args], input=stdin or "", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **env})
    return Run(done.returncode, done.stdout, done.stderr)
