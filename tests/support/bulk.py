"""Bulk-loading a large org straight into the database (for enforcement tests and benchmarks)."""

from datetime import datetime

from sqlalchemy import insert

from db.models import User
from domain.onboarding import NewOrg, paid_for_one_cycle, validate_new_org
from services.orgs import create_org
from domain.policy import Policy


def create_large_org(db, catalog, org_id: str, users: int, usage_mb, at: datetime, plan: str = "free") -> None:  # noqa: ANN001
    """`usage_mb(i)` gives user i's usage; user 0 is the admin."""
    org = validate_new_org(NewOrg(id=org_id, name=org_id, admin_email=f"u0@{org_id}.test", users=[],
                                  plan=plan, cycle=None if plan == "free" else "monthly"), catalog)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, at, "tests"), catalog, Policy(), at)
        session.execute(insert(User), [
            {"org_id": org_id, "email": f"u{i}@{org_id}.test", "storage_mb": usage_mb(i), "is_admin": False,
             "seq": i + 1, "created_at": at, "blocked": False} for i in range(1, users)])
        session.query(User).filter(User.org_id == org_id, User.is_admin.is_(True)).update(
            {"storage_mb": usage_mb(0)})
