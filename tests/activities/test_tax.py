"""Issue 26, done when: an Indonesian buyer's renewal of 2 Standard licences (Rp 45.000 each)
shows subtotal Rp 90.000, DPP Rp 82.500, PPN 12% Rp 9.900 and total Rp 99.900 in its PDF, its
receipt (received over SMTP) and `billing invoice list --json`, and Rp 99.900 is charged; a buyer
elsewhere is charged the subtotal. The real activities on PostgreSQL, the sandbox gateway, the
mailer with its documents, and the command line; the buyer's country set by `billing org tax`."""

import io
import json
from datetime import datetime, timedelta, timezone

import pypdf
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities.billing import BillingActivities
from activities.documents import SAMPLE_SELLER, Documents, pdf
from activities.mail import MailActivities, SmtpConfig
from activities.messages import ChargeInput, EmailRequest, InvoiceOp, RenewalInput
from activities.payments import PaymentActivities, SandboxGateway
from db.invoices import issue_invoice, statement
from db.models import GatewayCharge, OrgEvent, Organisation, Payment
from db.orgs import set_card
from db.snapshots import load_state
from domain import emails
from domain.billing import Line
from services.orgs import create_org
from domain.cards import sandbox_tokenise
from domain.decisions import Draft, EffectKind, InvoiceDraft
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from domain.statement import EntryKind
from domain.states import InvoiceKind
from domain.subscription import Item
from workers.cli import app

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
RENEWAL = datetime(2026, 2, 28, 9, 0, tzinfo=timezone.utc)
NPWP = "01.234.567.8-901.000"


def create(db, catalog, org_id: str, country: str | None, locale: str = "id", currency: str = "IDR") -> None:
    """An org on Standard with 2 users (2 licences), moved in paid through its first renewal."""
    org = validate_new_org(NewOrg(id=org_id, name="Toko Maju", admin_email=f"admin@{org_id}.test", locale=locale,
                                  currency=currency, plan="standard", cycle="monthly",
                                  users=[NewUser(f"b@{org_id}.test", 1)], country=country,
                                  tax_id=NPWP if country else None), catalog)
    card = sandbox_tokenise("4242424242424242")
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, START, "tests"), catalog, Policy(), START)
        set_card(session, org_id, card.token, card.brand, card.last4)


async def renew_and_pay(db, catalog, smtp_sink, org_id: str) -> tuple[str, int]:
    """The renewal invoiced, charged and settled, its receipt sent by the mailer as the workflow
    would: the invoice number and the amount the gateway was asked for."""
    billing = BillingActivities(db, catalog, Policy())
    number = billing.open_renewal(RenewalInput(org_id, RENEWAL, RENEWAL)).invoice.number
    charged = ActivityEnvironment().run(PaymentActivities(db, SandboxGateway(db)).charge_invoice,
                                        ChargeInput(org_id, number, 1, RENEWAL))
    assert charged.outcome == "succeeded"
    settled = billing.settle_paid_invoice(InvoiceOp(org_id, number, RENEWAL))
    mailer = MailActivities(db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                            documents=Documents(catalog, SAMPLE_SELLER))
    for effect in settled.effects:
        if effect.kind == EffectKind.EMAIL:
            await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, RENEWAL, effect.email))
    return number, charged.amount


def flat(text: str) -> str:
    return " ".join(text.split())


async def test_an_indonesian_renewal_shows_dpp_and_ppn_everywhere_and_charges_the_total(pg_db, pg_url, catalog,
                                                                                        smtp_sink, monkeypatch):
    create(pg_db, catalog, "pajak", None)
    result = CliRunner().invoke(app, ["org", "tax", "pajak", "--country", "id", "--tax-id", NPWP, "--by",
                                      "rina@billing.test"], env={"BILLING_DATABASE_URL": pg_url})
    assert result.exit_code == 0, result.output
    assert "country ID" in result.output
    number, asked = await renew_and_pay(pg_db, catalog, smtp_sink, "pajak")

    assert asked == 99900
    with pg_db.transaction() as session:
        assert [p.amount for p in session.scalars(select(Payment))] == [99900]
        assert [c.amount for c in session.scalars(select(GatewayCharge))] == [99900]
        [audited] = session.scalars(select(OrgEvent).where(OrgEvent.type == "tax_details"))
        assert (audited.data, audited.actor) == ({"country": "ID", "tax_id": NPWP}, "rina@billing.test")

    [receipt] = smtp_sink.for_org("pajak", "receipt")
    text = receipt.part("plain")
    for line in ("Subtotal: Rp90.000", "DPP: Rp82.500", "PPN 12%: Rp9.900", "Total: Rp99.900",
                 "Jumlah dibayar: Rp99.900"):
        assert line in text, line
    html = flat(receipt.part("html"))
    assert "PPN 12%" in html and "Rp82.500" in html and "Rp99.900" in html

    [attachment] = receipt.message.iter_attachments()
    [page] = [flat(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(attachment.get_content())).pages]
    for shown in ("Subtotal Rp90.000", "DPP Rp82.500", "PPN 12% Rp9.900", "Total Rp99.900", f"NPWP: {NPWP}"):
        assert shown in page, shown
    assert page.count(f"NPWP: {NPWP}") == 2      # the seller's and the buyer's (here the same sample number)

    listed = CliRunner().invoke(app, ["invoice", "list", "pajak", "--json"], env={"BILLING_DATABASE_URL": pg_url})
    assert listed.exit_code == 0, listed.output
    [invoice] = [i for i in json.loads(listed.output) if i["number"] == number]
    assert {k: invoice[k] for k in ("subtotal", "tax_base", "tax_rate", "tax_name", "tax", "total", "currency")} == {
        "subtotal": 90000, "tax_base": 82500, "tax_rate": "0.12", "tax_name": "PPN", "tax": 9900, "total": 99900,
        "currency": "IDR"}

    with pg_db.transaction() as session:     # the statement's balances are with tax
        found = statement(session, "pajak", START, RENEWAL + timedelta(days=1))
    assert [(e.kind, e.amount) for e in found.entries] == [(EntryKind.INVOICE, 99900), (EntryKind.PAYMENT, -99900)]
    assert found.closing == 0
    [page] = [flat(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(
        pdf(Documents(catalog, SAMPLE_SELLER).statement_html(found)))).pages]
    assert f"Faktur {number} (termasuk PPN 12% Rp9.900) Rp99.900" in page


async def test_a_buyer_elsewhere_is_charged_the_subtotal(pg_db, pg_url, catalog, smtp_sink):
    create(pg_db, catalog, "ekspor", "SG", locale="en", currency="USD")
    number, asked = await renew_and_pay(pg_db, catalog, smtp_sink, "ekspor")
    assert asked == 600                  # 2 x $3.00, no tax: an export of services
    [receipt] = smtp_sink.for_org("ekspor", "receipt")
    assert "Total: $6.00" in receipt.part("plain") and "Tax base" not in receipt.part("plain")
    [attachment] = receipt.message.iter_attachments()
    [page] = [flat(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(attachment.get_content())).pages]
    assert "Subtotal $6.00 VAT 0% $0.00 Total $6.00" in page and "Tax base" not in page
    listed = CliRunner().invoke(app, ["invoice", "list", "ekspor", "--json"], env={"BILLING_DATABASE_URL": pg_url})
    [invoice] = [i for i in json.loads(listed.output) if i["number"] == number]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (600, 0, 600)


def test_a_bad_country_is_one_line_exit_2_and_changes_nothing(pg_db, pg_url, catalog):
    create(pg_db, catalog, "salah", "ID")
    for args, message in ((["--country", "XX"], "country: 'XX' is not an ISO 3166 alpha-2 country code"),
                          (["--country", "Indonesia"], "country: 'INDONESIA' is not an ISO 3166 alpha-2"),
                          (["--country", "ID", "--tax-id", "<b>"], "tax_id: '<b>' is not a tax number")):
        result = CliRunner().invoke(app, ["org", "tax", "salah", *args], env={"BILLING_DATABASE_URL": pg_url})
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    unknown = CliRunner().invoke(app, ["org", "tax", "nobody", "--country", "ID"], env={"BILLING_DATABASE_URL": pg_url})
    assert unknown.exit_code == 1 and "unknown org 'nobody'" in unknown.output
    with pg_db.transaction() as session:
        org = session.get(Organisation, "salah")
        assert (org.country, org.tax_id) == ("ID", NPWP)
        assert not list(session.scalars(select(OrgEvent).where(OrgEvent.type == "tax_details")))


def test_clearing_the_country_stops_the_tax_for_the_invoices_issued_after(pg_db, pg_url, catalog):
    create(pg_db, catalog, "pindah", "ID")
    result = CliRunner().invoke(app, ["org", "tax", "pindah", "--country", ""], env={"BILLING_DATABASE_URL": pg_url})
    assert result.exit_code == 0 and f"country none, tax number {NPWP}" in result.output   # the NPWP stays
    shown = CliRunner().invoke(app, ["org", "show", "pindah", "--json"],
                               env={"BILLING_DATABASE_URL": pg_url, "BILLING_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert (json.loads(shown.stdout)["country"], json.loads(shown.stdout)["tax_id"]) == (None, NPWP)
    cleared = CliRunner().invoke(app, ["org", "tax", "pindah", "--country", "", "--tax-id", ""],
                                 env={"BILLING_DATABASE_URL": pg_url})
    assert "country none, tax number none" in cleared.output
    renewal = BillingActivities(pg_db, catalog, Policy()).open_renewal(RenewalInput("pindah", RENEWAL, RENEWAL))
    assert renewal.invoice.total == 90000


def test_org_create_refuses_a_bad_country_in_one_line_before_anything_is_sent(tmp_path):
    result = CliRunner().invoke(app, ["org", "create", "acme", "--name", "Acme", "--admin", "admin@acme.test",
                                      "--country", "XX"],
                                env={"BILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}",
                                     "BILLING_TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "country: 'XX' is not an ISO 3166 alpha-2 country code" in result.output
    assert not (tmp_path / "none.db").exists()


async def _sent(db, catalog, smtp_sink, org_id: str, email) -> tuple[str, str, str]:
    """The e-mail as received over SMTP: its text, its HTML and its PDF's text."""
    mailer = MailActivities(db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                            documents=Documents(catalog, SAMPLE_SELLER))
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, RENEWAL, email))
    [received] = smtp_sink.for_org(org_id, email.template)
    [attachment] = received.message.iter_attachments()
    [page] = [flat(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(attachment.get_content())).pages]
    return received.part("plain"), flat(received.part("html")), page


async def test_a_declined_indonesian_renewal_says_what_its_total_is_made_of(pg_db, catalog, smtp_sink):
    create(pg_db, catalog, "tolak", "ID")
    billing = BillingActivities(pg_db, catalog, Policy())
    number = billing.open_renewal(RenewalInput("tolak", RENEWAL, RENEWAL)).invoice.number
    text, html, page = await _sent(pg_db, catalog, smtp_sink, "tolak",
                                   emails.payment_failed(number, 1, 99900, "card_declined", None, None))
    made_of = "Total faktur: Rp90.000 + PPN 12% Rp9.900 (DPP Rp82.500) = Rp99.900"
    assert made_of in text and made_of in html
    assert "DPP Rp82.500 PPN 12% Rp9.900 Total Rp99.900" in page and "BELUM DIBAYAR" in page


async def test_an_english_invoice_for_a_buyer_in_indonesia_names_the_tax_base(pg_db, catalog, smtp_sink):
    create(pg_db, catalog, "english", "ID", locale="en", currency="USD")
    number, asked = await renew_and_pay(pg_db, catalog, smtp_sink, "english")
    assert asked == 666                   # $6.00, DPP $5.50, PPN 12% $0.66
    [receipt] = smtp_sink.for_org("english", "receipt")
    for line in ("Subtotal: $6.00", "Tax base: $5.50", "PPN 12%: $0.66", "Total: $6.66"):
        assert line in receipt.part("plain"), line
    [attachment] = receipt.message.iter_attachments()
    [page] = [flat(p.extract_text()) for p in pypdf.PdfReader(io.BytesIO(attachment.get_content())).pages]
    assert "Subtotal $6.00 Tax base $5.50 PPN 12% $0.66 Total $6.66" in page and f"Tax number: {NPWP}" in page


async def test_a_credit_note_e_mail_shows_the_negative_tax_kept_as_credit(pg_db, catalog, smtp_sink):
    create(pg_db, catalog, "kredit", "ID")
    line = Line("credit", Item.licence("standard"), -2, 45000, -90000, RENEWAL, RENEWAL + timedelta(days=28))
    with pg_db.transaction() as session:
        state = load_state(session, "kredit", Policy())
        draft = Draft(state)
        draft.bill(InvoiceDraft(InvoiceKind.CYCLE_SWITCH, [line]), catalog, RENEWAL)
        invoice, _ = issue_invoice(session, "kredit", "note", draft.decision("noted").invoice, "IDR", RENEWAL)
        number, total = invoice.number, invoice.total
    assert total == -99900
    text, _, page = await _sent(pg_db, catalog, smtp_sink, "kredit",
                                emails.receipt(number, total, None, [], RENEWAL, None))
    for shown in ("Subtotal: -Rp90.000", "DPP: -Rp82.500", "PPN 12%: -Rp9.900",
                  "Disimpan sebagai kredit akun: Rp99.900"):
        assert shown in text, shown
    assert "DPP -Rp82.500 PPN 12% -Rp9.900 Total -Rp99.900" in page
