"""The operators' reads (db/queries.py) on PostgreSQL: the org list's database answer reads every
org at once, in as many queries for 40 orgs as for 4."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import event

from services.orgs import create_org
from db.queries import org_states
from db.snapshots import load_state
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy

START = datetime(2026, 1, 31, 9, tzinfo=timezone.utc)


def _orgs(db, catalog, prefix: str, count: int) -> None:
    """`count` orgs of 5 users: trials, free orgs whose last user is blocked (12 GB on a 5 GB plan),
    and paid orgs moved in."""
    for n in range(count):
        org_id = f"{prefix}{n:02d}"
        users = [NewUser(f"u{i}@{org_id}.test", 12 if i == 4 else 1) for i in range(5)]
        plan = {0: {"plan": "trial"}, 1: {"plan": "free"}, 2: {"plan": "standard", "cycle": "monthly"}}[n % 3]
        new = validate_new_org(NewOrg(id=org_id, name=f"Org {org_id}", admin_email=users[0].email, users=users,
                                      **plan), catalog)
        with db.transaction() as session:
            create_org(session, paid_for_one_cycle(new, START - timedelta(days=n), "tests"), catalog, Policy(),
                       START - timedelta(days=n))


def _statements(db, read) -> tuple[int, object]:  # noqa: ANN001
    count = 0

    def counted(*_args) -> None:  # noqa: ANN002
        nonlocal count
        count += 1
    event.listen(db.engine, "before_cursor_execute", counted)
    try:
        with db.transaction() as session:
            result = read(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", counted)
    return count, result


def test_org_states_read_every_org_in_a_fixed_number_of_queries(pg_db, catalog):
    policy = Policy()
    _orgs(pg_db, catalog, "few", 4)
    few, states = _statements(pg_db, lambda session: org_states(session, policy))
    assert [state.org_id for state in states] == ["few00", "few01", "few02", "few03"]
    _orgs(pg_db, catalog, "many", 36)
    many, states = _statements(pg_db, lambda session: org_states(session, policy))
    assert len(states) == 40
    assert many == few, "the org list's database answer reads orgs one by one"

    # Each state is the one the activities read for that org alone.
    with pg_db.transaction() as session:
        for state in states:
            assert state == load_state(session, state.org_id, policy), state.org_id
    free = next(state for state in states if state.org_id == "many01")
    assert free.plan == "free" and free.blocked_users == ["u4@many01.test"] and free.user_count == 5


def test_org_states_filter_by_status_and_plan(pg_db, catalog):
    _orgs(pg_db, catalog, "org", 6)
    with pg_db.transaction() as session:
        assert [s.org_id for s in org_states(session, Policy(), statuses=("trialing",))] == ["org00", "org03"]
        assert [s.org_id for s in org_states(session, Policy(), plans=("standard",))] == ["org02", "org05"]
        assert [s.org_id for s in org_states(session, Policy(), statuses=("active", "free"),
                                             plans=("free",))] == ["org01", "org04"]
        assert org_states(session, Policy(), statuses=("past_due",)) == []
