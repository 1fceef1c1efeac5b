"""One org's unit of work on PostgreSQL: each decision activity answers the state it stored (the
snapshot a fresh read gives), storage enforcement included; the ledger's rows are updated, not
rewritten."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from activities.billing import BillingActivities
from activities.messages import ChangeInput, InvoiceOp, OrgOp, RenewalInput, StepResult
from db.models import BilledSpanRow, Invoice, User
from db.snapshots import load_state
from domain import requests as rq
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from services.orgs import create_org

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
STAFF = "rina@billing.test"
ADMIN = "admin@uow.test"
POLICY = Policy(billing_staff=(STAFF,))


def _org(db, catalog, org_id: str, users: list[NewUser], **fields) -> BillingActivities:
    new = validate_new_org(NewOrg(id=org_id, name="Unit Co", admin_email=ADMIN, users=users, **fields), catalog)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(new, START, "tests"), catalog, POLICY, START)
    return BillingActivities(db, catalog, POLICY)


def _answered_as_stored(db, org_id: str, result: StepResult) -> StepResult:
    with db.transaction() as session:
        assert result.snapshot == load_state(session, org_id, POLICY)
    return result


def _blocked(db, org_id: str) -> dict[str, str]:
    with db.transaction() as session:
        return dict(session.execute(select(User.email, User.blocked_reason).where(
            User.org_id == org_id, User.blocked.is_(True))).all())


def test_every_decision_answers_the_state_it_stored(pg_db, catalog):
    users = [NewUser("b@uow.test", 1.0), NewUser("c@uow.test", 1.0), NewUser(ADMIN, 1.0)]  # the admin third
    billing = _org(pg_db, catalog, "uow", users, plan="standard", cycle="monthly", licences=6,
                   auto_allocate_storage=True)
    at = START + timedelta(days=10)
    steps = iter(range(100))

    def change(request, when=None) -> StepResult:
        return _answered_as_stored(pg_db, "uow", billing.apply_change(
            ChangeInput("uow", request, key=f"update:uow:{next(steps)}", at=when or at)))

    def paid(result: StepResult) -> StepResult:
        return _answered_as_stored(pg_db, "uow", billing.settle_paid_invoice(
            InvoiceOp("uow", result.invoice.number, at)))

    change(rq.SetUsageRequest("b@uow.test", 40.0))
    assert _blocked(pg_db, "uow") == {"b@uow.test": "storage"}
    paid(change(rq.BuyStorageRequest(25, 1)))               # auto-allocated to b: unblocked
    assert _blocked(pg_db, "uow") == {}
    change(rq.SetUsageRequest("b@uow.test", 10.0))            # b's unit goes back to the pool
    change(rq.AddUserRequest("d@uow.test", 50.0))             # over quota and the pool's 25 GB: blocked
    change(rq.ImportUsageRequest([("c@uow.test", 35.0), ("d@uow.test", 1.0)]))
    assert _blocked(pg_db, "uow") == {}
    paid(change(rq.BuyStorageRequest(25, 1)))
    change(rq.AllocateStorageRequest(ADMIN, 25))
    change(rq.SetUsageRequest(ADMIN, 70.0))
    assert _blocked(pg_db, "uow") == {ADMIN: "storage"}
    change(rq.DowngradeRequest("mail_lite_10", requested_by=STAFF, reason="cost"))
    renewal = load_state_of(pg_db, "uow").renews_at
    result = _answered_as_stored(pg_db, "uow", billing.open_renewal(RenewalInput("uow", renewal, renewal)))
    assert result.snapshot.plan == "mail_lite_10"
    assert _blocked(pg_db, "uow") == {ADMIN: "storage"}   # c keeps its 25 GB unit: 35 GB covered


def test_a_trial_ending_on_the_free_plan_answers_who_its_user_cap_blocked(pg_db, catalog):
    users = [NewUser(f"u{n}@uow.test", 1.0) for n in range(6)] + [NewUser(ADMIN, 7.0)]   # the admin last
    billing = _org(pg_db, catalog, "capped", users)
    end = load_state_of(pg_db, "capped").trial_ends_at
    result = _answered_as_stored(pg_db, "capped", billing.expire_trial(OrgOp("capped", end, "trial_end")))
    assert result.snapshot.plan == "free"
    # The admin keeps a seat (blocked for storage) and the 4 oldest the others; the 2 newest wait.
    assert _blocked(pg_db, "capped") == {ADMIN: "storage", "u4@uow.test": "user_cap", "u5@uow.test": "user_cap"}
    assert result.snapshot.blocked_users == ["u4@uow.test", "u5@uow.test", ADMIN]


def test_the_ledger_keeps_its_rows_and_changes_only_what_a_decision_changes(pg_db, catalog):
    billing = _org(pg_db, catalog, "ledger", [NewUser("b@uow.test", 1.0)], plan="standard", cycle="monthly",
                   licences=3)
    first = _spans(pg_db, "ledger")
    at = START + timedelta(days=10)
    billing.apply_change(ChangeInput("ledger", rq.DowngradeRequest("mail_lite_10", requested_by=STAFF,
                                                                   reason="cost"), key="update:ledger:1", at=at))
    assert _spans(pg_db, "ledger") == first   # the same rows, untouched

    bought = billing.apply_change(ChangeInput("ledger", rq.AddLicencesRequest(2), key="update:ledger:2", at=at))
    billing.settle_paid_invoice(InvoiceOp("ledger", bought.invoice.number, at))
    after_purchase = _spans(pg_db, "ledger")
    assert {row: span for row, span in after_purchase.items() if row in first} == first
    added = {span for row, span in after_purchase.items() if row not in first}
    assert added and {span[-1] for span in added} == {bought.invoice.number}

    renewal = load_state_of(pg_db, "ledger").renews_at
    renewed = billing.open_renewal(RenewalInput("ledger", renewal, renewal))
    rows = _spans(pg_db, "ledger")
    assert not set(rows) & set(after_purchase)   # the spans of the cycle that ended are gone
    assert {span[-1] for span in rows.values()} == {renewed.invoice.number}
    assert len(rows) == len(renewed.snapshot.ledger)


def load_state_of(db, org_id: str):
    with db.transaction() as session:
        return load_state(session, org_id, POLICY)


def _spans(db, org_id: str) -> dict[int, tuple]:
    with db.transaction() as session:
        return {row.id: (row.item_kind, row.item_code, row.quantity, row.start, row.end, row.amount, number)
                for row, number in session.execute(
                    select(BilledSpanRow, Invoice.number).outerjoin(Invoice, Invoice.id == BilledSpanRow.invoice_id)
                    .where(BilledSpanRow.org_id == org_id))}


def test_an_opening_retried_after_its_commit_answers_as_it_did_and_writes_nothing_again(pg_db, catalog):
    """A new customer's opening is a decision taken before the org's rows exist (domain.steps.Taken);
    an activity retried after its transaction committed finds the answer recorded by its key."""
    from activities.messages import OpeningInput
    from db.models import OpeningAttempt, OrgEvent
    from domain.cards import sandbox_tokenise

    new = validate_new_org(NewOrg(id="opened", name="Opened Co", admin_email="admin@opened.test", plan="standard",
                                  cycle="monthly", users=[NewUser("b@opened.test", 40.0)]), catalog)
    billing = BillingActivities(pg_db, catalog, POLICY)
    opening = OpeningInput(new, sandbox_tokenise("4242424242424242"), START)
    first = _answered_as_stored(pg_db, "opened", billing.open_account(opening))
    again = billing.open_account(opening)

    assert first.invoice.number == "INV-opened-0001" and first.invoice.total > 0
    assert again == first and first.snapshot.status == "active"
    with pg_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == "opened")) == 1
        assert session.scalar(select(func.count()).select_from(OpeningAttempt)
                              .where(OpeningAttempt.org_id == "opened")) == 1
        # Written once: the opening's invoice, then its entitlements' first version after its answer.
        types = list(session.scalars(select(OrgEvent.type).where(OrgEvent.org_id == "opened").order_by(OrgEvent.id)))
    assert types.count("invoice") == 1 and types.count("entitlements") == 1 and types.count("operation") == 1
    assert types.index("invoice") < types.index("operation") < types.index("entitlements")


def test_a_change_retried_after_its_commit_answers_as_it_did_without_deciding_again(pg_db, catalog):
    """The answer recorded by the change's key (db.org_store) is the one a retry gets, effects and
    invoice included; nothing is decided or written twice."""
    from db.models import OrgEvent

    billing = _org(pg_db, catalog, "again", [NewUser(ADMIN, 1.0)], plan="standard", cycle="monthly", licences=2)
    change = ChangeInput("again", rq.BuyStorageRequest(25, 1), key="update:again:1", at=START + timedelta(days=3))
    first = _answered_as_stored(pg_db, "again", billing.apply_change(change))
    again = billing.apply_change(change)

    assert first.invoice is not None and first.invoice.total > 0 and first.effects
    assert again == first
    with pg_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.org_id == "again")) == 1
        assert session.scalar(select(func.count()).select_from(OrgEvent).where(
            OrgEvent.org_id == "again", OrgEvent.type == "operation")) == 1
