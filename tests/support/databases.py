"""Throwaway databases: a fresh PostgreSQL database per test (CI requires the server), or a
SQLite file."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get("BILLING_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def postgres_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as err:  # noqa: BLE001
        return str(err).splitlines()[0]


def require_postgres() -> None:
    problem = postgres_available()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI (127.0.0.1:5432, user postgres): {problem}")
    pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 ({problem}); start it with "
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def create_pg_database(prefix: str = "billing_test", template: str | None = None) -> tuple[str, str]:
    """An empty database, or a copy of `template` (a database nobody is connected to)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
