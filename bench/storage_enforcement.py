"""Prints how long storage enforcement takes for a 10,000-user org on PostgreSQL.

    .venv/bin/python bench/storage_enforcement.py [users]
"""

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.migrate import upgrade  # noqa: E402
from db.models import Subscription  # noqa: E402
from db.orgs import sync_plans  # noqa: E402
from db.session import Database  # noqa: E402
from services.storage import enforce_storage  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from tests.support.bulk import create_large_org  # noqa: E402
from tests.support.databases import create_pg_database, drop_pg_database  # noqa: E402


def main(users: int) -> None:
    name, url = create_pg_database()
    try:
        upgrade(url)
        db, catalog = Database(url), load_catalog()
        with db.transaction() as session:
            sync_plans(session, catalog)
        at = datetime.now(timezone.utc)
        create_large_org(db, catalog, "bench", users, lambda i: 6144 if i % 10 == 3 else 1024, at, plan="standard")
        with db.transaction() as session:
            session.get(Subscription, "bench").plan_id = "free"
        started = time.perf_counter()
        with db.transaction() as session:
            result = enforce_storage(session, "bench", catalog, at)
        first = time.perf_counter() - started
        started = time.perf_counter()
        with db.transaction() as session:
            enforce_storage(session, "bench", catalog, at)
        second = time.perf_counter() - started
        print(f"users={users} blocked={len(result.blocked)} enforce={first:.2f}s re-run (idempotent)={second:.2f}s")
        db.dispose()
    finally:
        drop_pg_database(name)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
