"""Migration 0002 (the billing model) on a database that already holds orgs, SQLite (a laptop's
embedded stack) and PostgreSQL: nothing is lost and every org's state reads back."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from db.invoices import invoice_document, statement
from db.migrate import upgrade
from db.session import Database
from db.snapshots import load_state
from domain.policy import Policy
from domain.statement import EntryKind
from domain.states import OrgStatus
from domain.subscription import Item, Scheduled, UnitCount
from tests.support.databases import create_pg_database, drop_pg_database, require_postgres

START = datetime(2026, 1, 31, 9, tzinfo=timezone.utc)
RENEWS = datetime(2026, 2, 28, 9, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    require_postgres()
    name, url = create_pg_database()
    yield url
    drop_pg_database(name)


def _rows_of_an_old_org(url: str) -> None:
    """One org as the code before the billing model wrote it."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as c:
        c.execute(t["plans"].insert(), [dict(id="standard", name="Workplace Standard", quota_mb=30720, user_cap=None),
                                        dict(id="free", name="Free", quota_mb=5120, user_cap=5)])
        c.execute(t["organisations"].insert().values(id="old", name="Old Co", admin_email="a@old.test", locale="en",
                                                     currency="USD", auto_allocate_storage=False, contacts=2500,
                                                     created_at=START))
        c.execute(t["users"].insert().values(org_id="old", email="a@old.test", storage_mb=0, is_admin=True,
                                             blocked=False, seq=1, created_at=START))
        invoice = c.execute(t["invoices"].insert().values(
            number="INV-old-0001", org_id="old", business_key="k1", kind="proration", status="open", currency="USD",
            total=150, period_start=START, period_end=RENEWS, created_at=START)).inserted_primary_key[0]
        c.execute(t["subscriptions"].insert().values(
            org_id="old", plan_id="standard", status="active", cycle="monthly", cycle_anchor=START,
            period_start=START, renews_at=RENEWS, licences=3, scheduled_plan="standard", scheduled_licences=2,
            cancel_at_period_end=False, pending_invoice_id=invoice,
            pending_change={"kind": "buy_storage", "unit_gb": 25, "count": 1, "summary": "1 x 25 GB storage",
                            "requested_at": "2026-02-10T09:00:00+00:00"},
            dunning_attempts=0, dunning_retries_done=0, tier_contacts=2000, version=1))
        c.execute(t["storage_units"].insert().values(org_id="old", size_gb=5, remove_at_period_end=True,
                                                     purchased_at=START))
        c.execute(t["org_addons"].insert().values(org_id="old", addon_id="support_essentials",
                                                  remove_at_period_end=False))
        c.execute(t["emails"].insert().values(org_id="old", template="trial_ending",
                                              occasion="trial:2026-01-30T09:00:00+00:00:3d", recipient="a@old.test",
                                              message_id="<m1>", status="sent", requested_at=START))
    engine.dispose()


def test_orgs_written_before_the_billing_model_read_back_whole(empty_database):
    upgrade(empty_database, "0001")
    _rows_of_an_old_org(empty_database)
    upgrade(empty_database)
    db = Database(empty_database)
    with db.transaction() as session:
        state = load_state(session, "old", Policy())
    db.dispose()

    assert state.status == OrgStatus.ACTIVE and state.plan == "standard" and state.licences == 3
    # 2,500 contacts on a 2,000 tier: 500 wait for a tier raise.
    assert (state.subscribers.subscribed, state.subscribers.awaiting) == (2000, 500)
    # A licence-only cut keeps no plan; the unit's removal and the add-on stay as they were.
    assert state.scheduled == Scheduled(plan=None, licences=2, storage=[UnitCount(5, 1)])
    assert state.addons == ["support_essentials"]
    assert state.pending.operation == "buy_storage" and state.pending.request == {"unit_gb": 25, "count": 1}
    assert state.pending.invoice == "INV-old-0001"
    assert state.trial_reminders_sent == [3]
    # The ledger starts with what the org holds, billed over its current period at the catalog price.
    billed = {(span.item, span.quantity, span.amount) for span in state.ledger}
    assert billed == {(Item.licence("standard"), 3, 900), (Item.storage(5), 1, 100),
                      (Item.tier("campaigns_contacts"), 2, 1000), (Item.addon("support_essentials"), 1, 5000)}
    assert all((span.start, span.end) == (START, RENEWS) for span in state.ledger)


def test_invoice_status_times_move_from_the_event_log_onto_the_invoices(empty_database):
    """Migration 0008: when an invoice was voided, written off or credited is read from the
    invoice itself, filled from the log for invoices written before."""
    upgrade(empty_database, "0007")
    engine = sa.create_engine(empty_database)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    day = [START + timedelta(days=d) for d in range(7)]
    with engine.begin() as c:
        c.execute(t["organisations"].insert().values(id="old", name="Old Co", admin_email="a@old.test", locale="en",
                                                     currency="USD", auto_allocate_storage=False, created_at=START))
        for n, status, total in ((1, "void", 300), (2, "uncollectible", 900), (3, "credited", -200), (4, "open", 900)):
            c.execute(t["invoices"].insert().values(number=f"INV-old-000{n}", org_id="old", business_key=f"k{n}",
                                                    kind="proration", status=status, currency="USD", total=total,
                                                    created_at=day[0]))
        log = [(day[0], "INV-old-0001", "open"), (day[1], "INV-old-0002", "open"), (day[2], "INV-old-0001", "void"),
               (day[3], "INV-old-0003", "credited"), (day[4], "INV-old-0002", "uncollectible"),
               (day[5], "INV-old-0002", "uncollectible")]   # a repeated entry: the first one counts
        c.execute(t["org_events"].insert(), [dict(org_id="old", at=at, type="invoice",
                                                  data={"number": number, "status": status, "total": 0})
                                             for at, number, status in log])
    engine.dispose()
    upgrade(empty_database)
    db = Database(empty_database)
    with db.transaction() as session:
        taken = {number: invoice_document(session, number).status_at
                 for number in ("INV-old-0001", "INV-old-0002", "INV-old-0003", "INV-old-0004")}
        found = statement(session, "old", START, day[6])
    db.dispose()
    assert taken == {"INV-old-0001": day[2], "INV-old-0002": day[4], "INV-old-0003": day[3], "INV-old-0004": None}
    assert [(e.at, e.kind, e.invoice) for e in found.entries if e.kind in (EntryKind.VOIDED, EntryKind.WRITTEN_OFF)] \
        == [(day[2], EntryKind.VOIDED, "INV-old-0001"), (day[4], EntryKind.WRITTEN_OFF, "INV-old-0002")]


def test_invoices_issued_before_tax_keep_their_totals_with_no_tax_and_orgs_no_country(empty_database):
    """Migration 0011: an invoice's subtotal is its lines (its total plus the account credit it
    used), its tax none; an org has no country (no tax) until it is given one."""
    upgrade(empty_database, "0010")
    engine = sa.create_engine(empty_database)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as c:
        c.execute(t["organisations"].insert().values(id="old", name="Old Co", admin_email="a@old.test", locale="id",
                                                     currency="IDR", auto_allocate_storage=False, created_at=START))
        for n, total, credit in ((1, 135000, 0), (2, 90000, 45000), (3, -30000, 0)):
            c.execute(t["invoices"].insert().values(number=f"INV-old-000{n}", org_id="old", business_key=f"k{n}",
                                                    kind="renewal", status="paid", currency="IDR", total=total,
                                                    credit_applied=credit, created_at=START))
    engine.dispose()
    upgrade(empty_database)
    db = Database(empty_database)
    with db.transaction() as session:
        docs = [invoice_document(session, f"INV-old-000{n}") for n in (1, 2, 3)]
        buyer = docs[0].buyer
    db.dispose()
    assert [(d.subtotal, d.tax, d.tax_base, d.tax_name, d.total) for d in docs] == [
        (135000, 0, 0, None, 135000), (135000, 0, 0, None, 90000), (-30000, 0, 0, None, -30000)]
    assert (buyer.country, buyer.tax_id) == (None, None)
