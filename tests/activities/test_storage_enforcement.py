"""Set-based storage enforcement on PostgreSQL: correct and idempotent for a 10,000-user org."""

from datetime import datetime, timezone

from sqlalchemy import select

from db.models import Subscription, User
from services.storage import enforce_storage
from tests.support.bulk import create_large_org

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def usage(i: int) -> int:
    return 6 * 1024 if i % 10 == 3 else 1024  # every tenth user (i = 3, 13, ...) is over 5 GB


def test_ten_thousand_users_are_enforced_in_one_call_and_idempotently(pg_db, catalog):
    create_large_org(pg_db, catalog, "huge", 10_000, usage, AT, plan="standard")
    with pg_db.transaction() as session:
        first = enforce_storage(session, "huge", catalog, AT)
    assert first.blocked == []  # Standard's 30 GB covers everyone

    with pg_db.transaction() as session:
        session.get(Subscription, "huge").plan_id = "free"
        result = enforce_storage(session, "huge", catalog, AT)
    over_quota = {f"u{i}@huge.test" for i in range(10_000) if usage(i) > 5 * 1024}
    beyond_cap = {f"u{i}@huge.test" for i in range(5, 10_000)}  # admin + 4 oldest keep their seats
    by_reason = {}
    for blocked in result.blocked:
        by_reason.setdefault(blocked.reason, set()).add(blocked.email)
    assert by_reason["storage"] == over_quota
    assert by_reason["user_cap"] == beyond_cap - over_quota
    assert "u0@huge.test" not in by_reason["user_cap"]

    with pg_db.transaction() as session:
        again = enforce_storage(session, "huge", catalog, AT)
        blocked_rows = session.scalar(select(User.id).where(User.org_id == "huge", User.blocked.is_(True))
                                      .order_by(User.id.desc()).limit(1))
    assert again.blocked == [] and again.unblocked == []
    assert blocked_rows is not None
