from workers.runtime.binaries import temporal_test_server
import shutil
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from db.migrate import upgrade
from db.orgs import sync_plans
from db.session import Database
from domain.catalog import load_catalog
from domain.policy import Policy
from tests.support.databases import create_pg_database, drop_pg_database, require_postgres
from tests.support.smtp import SmtpSink
from tests.support.stack import Stack
from workers.runtime.search_attributes import api_types
from workers.runtime.temporal import DATA_CONVERTER



def pytest_sessionstart(session):
    """Invoices are PDFs: without the pango libraries the suite fails at once, saying what to
    install, rather than skipping what the receipts depend on."""
    from activities.documents import PdfRendererMissing, require_pdf_renderer
    try:
        require_pdf_renderer()
    except PdfRendererMissing as err:
        pytest.exit(str(err), returncode=1)


# The files that take longest, longest first (`pytest --durations=80`, summed per file, on a
# quiet machine). `make test` hands whole files to its processes in collection order
# (--dist loadfile --no-loadscope-reorder): these start first, and the many short files fill in
# around them, instead of a two-minute file starting last and the run waiting for it alone.
# A file missing here only starts later; the list need not be exact.
LONGEST_FILES = [
    "tests/devserver/test_entitlement_delivery.py",
    "tests/test_cli_operations.py",
    "tests/devserver/test_ui_browser.py",
    "tests/stripe/test_worker_killed.py",
    "tests/devserver/test_usage_updates.py",
    "tests/reliability/test_database_outage.py",
    "tests/test_demo_stack.py",
    "tests/stripe/test_demo_on_stripe.py",
    "tests/stripe/test_outage.py",
    "tests/workflows/test_scale.py",
    "tests/test_cli_commands.py",
    "tests/reliability/test_worker_killed.py",
    "tests/reliability/test_temporal_restart.py",
    "tests/reliability/test_worker_children.py",
    "tests/reliability/test_temporal_outage_log.py",
    "tests/domain/test_model_invariants.py",
    "tests/devserver/test_org_list.py",
    "tests/simulate/test_simulate_safety.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {path: place for place, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: the rest keep their order


async def register_search_attributes(client, namespace: str = "default") -> None:
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=namespace, search_attributes=api_types()))


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def ts_env():
    """A time-skipping server per test (it starts in well under a second): one test's work
    left in flight can never hold another test's clock."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_test_server(), data_converter=DATA_CONVERTER)
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


# Each test gets its own database, copied from one migrated once per test process: the
# migrations (about a second each time) run once, not for each of some 300 tests.
@pytest.fixture(scope="session")
def migrated_pg_database():
    require_postgres()
    name, url = create_pg_database("billing_migrated")
    upgrade(url)
    yield name
    drop_pg_database(name)


@pytest.fixture
def pg_url(migrated_pg_database):
    name, url = create_pg_database(template=migrated_pg_database)
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "billing.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path, migrated_sqlite_file):
    shutil.copyfile(migrated_sqlite_file, tmp_path / "billing.db")
    return f"sqlite:///{tmp_path / 'billing.db'}"


def _database(url: str, catalog) -> Database:
    db = Database(url)
    with db.transaction() as session:
        sync_plans(session, catalog)
    return db


@pytest.fixture
def pg_db(pg_url, catalog):
    db = _database(pg_url, catalog)
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(sqlite_url, catalog):
    db = _database(sqlite_url, catalog)
    yield db
    db.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def stack(ts_env, pg_db, catalog, smtp_sink):
    """The real workflows and activities on the time-skipping server, PostgreSQL and SMTP."""
    stack = Stack(env=ts_env, db=pg_db, catalog=catalog, policy=Policy(billing_staff=("rina@billing.test",)),
                  smtp_port=smtp_sink.port, task_queue=f"tq-{uuid.uuid4().hex[:8]}")
    yield stack
    await stack.terminate_all()
