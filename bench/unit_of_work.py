"""Prints the CPU one step's unit of work takes (load -> decide -> commit), with no Temporal
around it: usage reports through BillingActivities.apply_change on four small orgs, in a SQLite
file. To compare two commits, run it in each checkout in turn, several times: the machine's
swing is larger than most changes.

    .venv/bin/python bench/unit_of_work.py [changes]
"""

import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.billing import BillingActivities  # noqa: E402
from activities.messages import ChangeInput  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.session import Database  # noqa: E402
from domain import requests as rq  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org  # noqa: E402
from domain.policy import Policy  # noqa: E402
from services.orgs import create_org  # noqa: E402

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
ORGS = 4


def main(changes: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        db, catalog, policy = Database(url), load_catalog(), Policy()
        for n in range(ORGS):
            new = validate_new_org(NewOrg(id=f"org{n}", name="Bench", admin_email=f"admin@org{n}.test",
                                          plan="standard", cycle="monthly", licences=5,
                                          users=[NewUser(f"admin@org{n}.test", 1.0), NewUser(f"b@org{n}.test", 1.0)]),
                                   catalog)
            with db.transaction() as session:
                create_org(session, paid_for_one_cycle(new, START, "bench"), catalog, policy, START)
        billing = BillingActivities(db, catalog, policy)
        started = time.process_time()
        for i in range(changes):
            org = f"org{i % ORGS}"
            billing.apply_change(ChangeInput(org, rq.SetUsageRequest(f"b@{org}.test", float(i % 7)),
                                             key=f"usage:{i}", at=START + timedelta(days=1, minutes=i)))
        cpu = time.process_time() - started
        db.dispose()
    print(f"{changes} changes: {cpu * 1000 / changes:.2f} ms of CPU each ({cpu:.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
