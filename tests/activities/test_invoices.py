"""Invoices in the database: renewal lines, numbering, and the document the admin downloads."""

from datetime import datetime, timezone

from activities.billing import BillingActivities
from activities.documents import SAMPLE_SELLER, Documents
from activities.messages import RenewalInput
from db.invoices import invoice_document
from services.orgs import create_org
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)


def test_renewal_invoice_is_numbered_once_and_renders_in_the_org_language(pg_db, catalog):
    org = validate_new_org(NewOrg(id="inv", name="Invoice <Co>", admin_email="admin@inv.test", locale="id",
                                  currency="IDR", plan="mail_premium", cycle="monthly",
                                  users=[NewUser("b@inv.test", 1.0)]), catalog)
    with pg_db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, START, "tests"), catalog, Policy(), START)
    renewal = datetime(2026, 2, 28, 9, 0, tzinfo=timezone.utc)
    activities = BillingActivities(pg_db, catalog, Policy())
    first = activities.open_renewal(RenewalInput("inv", renewal, renewal))
    again = activities.open_renewal(RenewalInput("inv", renewal, renewal))  # a retried activity
    assert first.invoice.number == again.invoice.number == "INV-inv-0001"
    assert first.effects == again.effects  # the retry repeats the first answer, the charge included
    assert first.invoice.total == 2 * 60000 and first.invoice.currency == "IDR"
    with pg_db.transaction() as session:
        html = Documents(catalog, SAMPLE_SELLER).invoice_html(invoice_document(session, "INV-inv-0001"))
    assert "Invoice &lt;Co&gt;" in html
    # Two Mail Premium licences, Rp60.000 each; the days billed, Feb 28 to Mar 30, both included.
    assert "Lisensi Mail Premium" in html and "Rp120.000" in html and "28 Feb 2026 – 30 Mar 2026" in html
