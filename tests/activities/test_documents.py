"""Invoices and statements as documents (activities/documents.py): PDF and HTML in the org's
language, attached to the receipt, and the statement finance asks for at month end. PDF text
is read back with pypdf, as a reader of the file would see it."""

import io
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities.billing import BillingActivities
from activities.documents import SAMPLE_SELLER, Documents, PdfRenderer, pdf, translations
from activities.mail import MailActivities, SmtpConfig, TemplateRenderer
from activities.templates import TEMPLATES_DIR
from activities.messages import ChargeInput, EmailRequest, InvoiceOp, RenewalInput
from activities.payments import PaymentActivities, SandboxGateway
from db.invoices import InvoiceDocument, invoice_by_number, invoice_document, paid_invoice, set_invoice_status, statement
from db.models import Invoice, OrgEvent, Payment
from db.session import Database
from db.orgs import set_card
from services.orgs import create_org
from domain import emails
from domain.decisions import EmailLine
from domain.storage import AutoAllocation, BlockedUser, Verdict, storage_emails
from domain.cards import sandbox_tokenise
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from domain.states import InvoiceKind, InvoiceStatus
from domain.statement import Buyer, EntryKind
from domain.subscription import Item
from workers.cli import app

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)
RENEWAL = datetime(2026, 2, 28, 9, 0, tzinfo=timezone.utc)


def text_of(document: bytes) -> list[str]:
    assert document.startswith(b"%PDF-")
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(document)).pages]


def paid_renewal(db, catalog, org_id: str, locale: str = "id", currency: str = "IDR",
                 card_number: str = "4242424242424242", attempts: int = 1) -> str:
    """An org on Standard with 3 users whose first renewal was charged (`attempts` times) and,
    with a good card, paid; the invoice number."""
    org = validate_new_org(NewOrg(id=org_id, name="Toko Maju", admin_email=f"admin@{org_id}.test", locale=locale,
                                  currency=currency, plan="standard", cycle="monthly",
                                  users=[NewUser(f"b@{org_id}.test", 1), NewUser(f"c@{org_id}.test", 1)]), catalog)
    card = sandbox_tokenise(card_number)
    with db.transaction() as session:
        create_org(session, paid_for_one_cycle(org, START, "tests"), catalog, Policy(), START)
        set_card(session, org_id, card.token, card.brand, card.last4)
    billing = BillingActivities(db, catalog, Policy())
    number = billing.open_renewal(RenewalInput(org_id, RENEWAL, RENEWAL)).invoice.number
    for attempt in range(1, attempts + 1):
        result = ActivityEnvironment().run(PaymentActivities(db, SandboxGateway(db)).charge_invoice,
                                           ChargeInput(org_id, number, attempt, RENEWAL + timedelta(days=attempt - 1)))
    if result.outcome == "succeeded":
        billing.settle_paid_invoice(InvoiceOp(org_id, number, RENEWAL))
    return number


def simulated(folder: Path, scenario: str) -> str:
    """Run a scenario through `billing simulate` (the real workflow and activities) into a SQLite
    file that stays; its URL. The run's years are shifted 400 ahead."""
    from workers.simulate.run import load_and_run
    (folder / "scenario.yaml").write_text(scenario)
    url = f"sqlite:///{folder / 'simulated.db'}"
    load_and_run(folder / "scenario.yaml", url, keep_org=True)
    return url


@pytest.fixture
def documents(catalog) -> Documents:
    return Documents(catalog, SAMPLE_SELLER)


def test_an_indonesian_invoice_pdf_reads_in_indonesian_with_rupiah(pg_db, catalog, documents):
    number = paid_renewal(pg_db, catalog, "toko")
    with pg_db.transaction() as session:
        [page] = text_of(pdf(documents.invoice_html(invoice_document(session, number))))
    assert number in page
    assert "Rp135.000" in page            # 3 x Rp45.000, whole rupiah, dotted thousands
    for label in ("Faktur", "Ditagihkan kepada", "Tanggal terbit", "Dibayar pada", "Keterangan", "Harga satuan",
                  "Lisensi Workplace Standard", "LUNAS", "Kartu Visa •••• 4242", "Percobaan: 1", "NPWP"):
        assert label in page, label
    assert "28 Feb 2026 – 30 Mar 2026" in page    # the line's period: Feb 28 to Mar 30, both included
    assert "Invoice" not in page and "Paid" not in page


def test_a_void_invoice_says_so_on_its_face(pg_db, catalog, documents):
    number = paid_renewal(pg_db, catalog, "batal", locale="en", currency="USD")
    with pg_db.transaction() as session:
        set_invoice_status(session, invoice_by_number(session, number), InvoiceStatus.VOID, RENEWAL + timedelta(days=2))
    with pg_db.transaction() as session:
        [page] = text_of(pdf(documents.invoice_html(invoice_document(session, number))))
    assert "VOID" in page and "This invoice is void: nothing is owed on it." in page
    assert "Voided on" in page and "Mar 2, 2026" in page
    assert "$9.00" in page                 # USD with cents


def test_an_unpaid_invoice_shows_its_declined_attempts(pg_db, catalog, documents):
    number = paid_renewal(pg_db, catalog, "tolak", card_number="4000000000000341", attempts=2)
    with pg_db.transaction() as session:
        [page] = text_of(pdf(documents.invoice_html(invoice_document(session, number))))
    assert "BELUM DIBAYAR" in page and "Upaya pembayaran" in page
    assert "Ditolak · Kartu Visa •••• 0341 · terakhir pada 1 Mar 2026 · Percobaan: 2" in page
    assert "Dibayar pada" not in page


def test_a_share_of_a_period_says_pro_rata_and_a_credit_shows_no_unit_price(documents):
    month = (RENEWAL, datetime(2026, 3, 28, 9, tzinfo=timezone.utc))
    half = (RENEWAL + timedelta(days=14), month[1])
    lines = [EmailLine("", 1800, *month, Item.licence("standard"), 2, 900),
             EmailLine("", 450, *half, Item.licence("standard"), 1, 900),
             EmailLine("", -150, *half, Item.storage(25), -1, 300)]
    doc = InvoiceDocument("INV-pr-0001", InvoiceKind.PRORATION, InvoiceStatus.OPEN, None, "USD", 2100, RENEWAL,
                          *month, Buyer("pr", "Pro Rata", "admin@pr.test", "en", None), lines, [])
    full, share, credit = documents.line_rows(doc.lines, doc.currency, doc.buyer.locale)
    assert (full["description"], full["unit"], full["amount"]) == ("Workplace Standard licence", "$9.00", "$18.00")
    assert (share["description"], share["unit"], share["amount"]) == \
        ("Workplace Standard licence, pro rata", "$9.00", "$4.50")
    assert share["period"] == "Mar 14, 2026 – Mar 27, 2026"
    assert (credit["description"], credit["unit"], credit["amount"]) == \
        ("Credit for unused Storage unit 25 GB", "", "-$1.50")


def test_forty_lines_run_over_two_pages_with_the_table_header_on_each(catalog, documents):
    lines = [EmailLine("", 100, START + timedelta(days=i), RENEWAL, Item.storage(5), 1, 100) for i in range(40)]
    doc = InvoiceDocument("INV-long-0001", InvoiceKind.PRORATION, InvoiceStatus.OPEN, None, "USD", 4000, START,
                          START, RENEWAL, Buyer("long", "Long Co", "admin@long.test", "en", "1 Main St\nSpringfield"),
                          lines, [])
    pages = text_of(pdf(documents.invoice_html(doc)))
    assert len(pages) == 2
    for page in pages:
        assert "Description" in page and "Unit price" in page and "Amount" in page
    assert "Springfield" in pages[0] and "Total" in pages[-1] and "$40.00" in pages[-1]


async def test_an_indonesian_receipt_lists_the_invoice_lines_as_the_pdf_does(pg_db, catalog, smtp_sink, documents):
    number = paid_renewal(pg_db, catalog, "kuitansi")
    mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port), documents=documents)
    with pg_db.transaction() as session:
        lines = paid_invoice(session, number).lines          # what the payment decision sends
    email = emails.receipt(number, 135000, "Visa •••• 4242", lines, RENEWAL, datetime(2026, 3, 31, 9, tzinfo=timezone.utc))
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of("kuitansi", RENEWAL, email))
    [received] = smtp_sink.for_org("kuitansi", "receipt")
    text = received.part("plain")
    assert "Periode tagihan: 28 Februari 2026 – 30 Maret 2026" in text      # the last day billed, as on the PDF
    assert "Lisensi Workplace Standard (28 Februari 2026 – 30 Maret 2026): Rp135.000" in text
    [attachment] = received.message.iter_attachments()
    assert "28 Feb 2026 – 30 Mar 2026" in text_of(attachment.get_content())[0]


@pytest.mark.parametrize("template", ["receipt", "payment_failed"])
async def test_the_e_mail_carries_the_invoice_as_a_pdf(pg_db, catalog, smtp_sink, documents, template):
    org_id = f"mail{template[:4]}"
    number = paid_renewal(pg_db, catalog, org_id, locale="en", currency="USD")
    mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port), documents=documents)
    email = (emails.receipt(number, 900, "Visa •••• 4242", [], RENEWAL, RENEWAL + timedelta(days=31))
             if template == "receipt" else emails.payment_failed(number, 1, 900, "card_declined", None, None))
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of(org_id, RENEWAL, email))
    [received] = smtp_sink.for_org(org_id, template)
    [attachment] = [part for part in received.message.iter_attachments()]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{number}.pdf"
    [page] = text_of(attachment.get_content())
    assert number in page and "$9.00" in page


async def test_a_receipt_pdf_rendered_in_a_process_beside_the_worker_reads_the_same(pg_db, catalog, smtp_sink):
    """BILLING_PDF_PROCESSES: the render leaves the worker's process (its GIL), not the e-mail."""
    renderer = PdfRenderer(processes=1)
    try:
        number = paid_renewal(pg_db, catalog, "beside", locale="en", currency="USD")
        documents = Documents(catalog, SAMPLE_SELLER, renderer)
        mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port), documents=documents)
        email = emails.receipt(number, 900, "Visa •••• 4242", [], RENEWAL, RENEWAL + timedelta(days=31))
        await ActivityEnvironment().run(mailer.send_email, EmailRequest.of("beside", RENEWAL, email))
        [pid] = renderer.pids()
        assert pid != os.getpid()
        # Ctrl-C reaches the renderer too (one process group): it leaves it to the worker.
        os.kill(pid, signal.SIGINT)
        assert text_of(renderer.render("<p>still here</p>"))[0].strip() == "still here"
        assert renderer.pids() == [pid]
    finally:
        renderer.shutdown()
    [received] = smtp_sink.for_org("beside", "receipt")
    [attachment] = received.message.iter_attachments()
    [page] = text_of(attachment.get_content())
    assert number in page and "$9.00" in page and "Paid" in page


def test_a_statement_over_three_months_matches_the_database_to_the_unit(tmp_path, catalog):
    """The real pipeline (billing simulate, SQLite): renewals, a purchase, a declined renewal paid
    after dunning, a change left unpaid and voided. Then the statement of three months in the
    middle, against the invoices, payments and status changes the database holds."""
    url = simulated(tmp_path, '''
start: "2026-01-31T09:00:00+00:00"
until: P150D
org: {id: books, admin_email: admin@books.test, plan: standard, cycle: monthly, card: "4242424242424242",
      users: [{email: b@books.test, storage_gb: 1}]}
actions:
  - {at: P10D, do: add_licences, count: 2}
  - {at: P40D, do: update_card, card: "4000000000000341"}
  - {at: P45D, do: buy_addon, addon: support_essentials}
  - {at: P62D, do: update_card, card: "4242424242424242"}
''')
    db = Database(url)
    with db.transaction() as session:
        first = session.scalar(select(func.min(Invoice.created_at)).where(Invoice.org_id == "books"))
        start = datetime(first.year, 3, 1, tzinfo=timezone.utc)       # the run is shifted 400 years
        end = datetime(first.year, 6, 1, tzinfo=timezone.utc)
        found = statement(session, "books", start, end)
        invoices = list(session.scalars(select(Invoice).where(Invoice.org_id == "books")))
        paid = list(session.scalars(select(Payment).join(Invoice).where(Invoice.org_id == "books",
                                                                          Payment.outcome == "succeeded")))
        ended = [(e.at, e.data["number"]) for e in session.scalars(select(OrgEvent).where(
            OrgEvent.org_id == "books", OrgEvent.type == "invoice")) if e.data["status"] in ("void", "uncollectible")]
    db.dispose()
    totals = {invoice.number: invoice.total for invoice in invoices}

    def owed(low, high) -> int:
        issued = sum(i.total for i in invoices if low <= i.created_at < high)
        payments = sum(p.amount for p in paid if low <= p.created_at < high)
        written = sum(totals[number] for at, number in ended if low <= at < high)
        return issued - payments - written

    assert found.opening == owed(datetime.min.replace(tzinfo=timezone.utc), start)
    assert found.closing == found.opening + owed(start, end)
    assert sum(e.amount for e in found.entries if e.kind == EntryKind.INVOICE) == \
        sum(i.total for i in invoices if start <= i.created_at < end)
    assert -sum(e.amount for e in found.entries if e.kind == EntryKind.PAYMENT) == \
        sum(p.amount for p in paid if start <= p.created_at < end)
    kinds = {e.kind for e in found.entries}
    assert {EntryKind.INVOICE, EntryKind.PAYMENT, EntryKind.VOIDED} <= kinds   # the history has all three
    assert len([e for e in found.entries if e.kind == EntryKind.INVOICE]) >= 3


def test_a_credit_note_is_kept_as_account_credit_and_shows_on_the_statement(tmp_path, documents):
    """A yearly switch crediting more than the year costs (tests/simulate/unbilled/1-credit-note.yaml,
    through the real pipeline): nothing is charged, the $124.82 is the org's credit, the next two
    purchases use it up (the first entirely, the second in part) and the statement balances."""
    url = simulated(tmp_path, (ROOT / "tests" / "simulate" / "unbilled" / "1-credit-note.yaml").read_text())
    db = Database(url)
    with db.transaction() as session:
        invoices = {i.number: i for i in session.scalars(select(Invoice).where(Invoice.org_id == "unbilled1"))}
        payments = {i: [p.amount for p in session.scalars(select(Payment).where(Payment.invoice_id == invoices[i].id))]
                    for i in invoices}
        year = invoices["INV-unbilled1-0001"].created_at.year
        february = statement(session, "unbilled1", datetime(year, 2, 1, tzinfo=timezone.utc),
                             datetime(year, 3, 1, tzinfo=timezone.utc))
        note = invoice_document(session, "INV-unbilled1-0002")
        used = invoice_document(session, "INV-unbilled1-0004")
    db.dispose()
    assert [(i.status, i.total, i.credit_applied) for i in invoices.values()] == [
        ("paid", 14464, 0), ("credited", -12482, 0), ("paid", 0, 3923), ("paid", 39112, 8559)]
    assert payments == {"INV-unbilled1-0001": [14464], "INV-unbilled1-0002": [], "INV-unbilled1-0003": [],
                        "INV-unbilled1-0004": [39112]}   # nothing charged for the credit note, nor what it covered
    balance, rows = february.opening, []
    for entry in february.entries:
        balance += entry.amount
        rows.append((entry.invoice[-4:], entry.kind, entry.amount, balance))
    assert rows == [("0001", EntryKind.INVOICE, 14464, 14464), ("0001", EntryKind.PAYMENT, -14464, 0),
                    ("0002", EntryKind.CREDIT_NOTE, -12482, -12482),     # the org is owed $124.82
                    ("0003", EntryKind.INVOICE, 3923, -8559),            # a 25 GB unit for the year, from credit
                    ("0004", EntryKind.INVOICE, 47671, 39112),           # support: $85.59 of it from credit
                    ("0004", EntryKind.PAYMENT, -39112, 0)]
    assert (february.opening, february.closing) == (0, 0)
    [page] = text_of(pdf(documents.invoice_html(note)))
    assert "CREDITED" in page and "This is a credit note" in page and "-$124.82" in page
    [page] = text_of(pdf(documents.invoice_html(used)))
    assert "Account credit applied" in page and "-$85.59" in page and "$391.12" in page
    [page] = text_of(pdf(documents.statement_html(february)))
    page = " ".join(page.split())   # table cells wrap
    assert "Credit note INV-unbilled1-0002: kept as account credit $124.82 -$124.82" in page
    assert "Invoice INV-unbilled1-0004 ($85.59 paid from account credit) $476.71 $391.12" in page


# ---- translations --------------------------------------------------------------------------------

def test_every_document_label_has_an_indonesian_translation():
    from babel.messages.extract import extract_from_file
    used = set()
    for path in sorted((TEMPLATES_DIR / "documents").glob("*.j2")):
        used |= {message for _, message, _, _ in extract_from_file("jinja2.ext.babel_extract", str(path))}
    source = Path(__file__).resolve().parents[2] / "activities" / "documents.py"
    used |= {message for _, message, _, _ in extract_from_file("python", str(source))}
    indonesian = translations("id")
    untranslated = sorted(m for m in used if isinstance(m, str) and indonesian.gettext(m) == m
                          and m not in ("Subtotal", "Total"))     # the same word in Indonesian
    assert len(used) > 40 and untranslated == []


SAMPLES = {
    "trial_ending": emails.trial_ending(START, 3, "Workplace Professional"),
    "trial_expired": replace(emails.trial_expired(START, "Free"), values={"plan_name": "Free",
                                                                          "blocked_users": ["b@toko.test"]}),
    "plan_changed": emails.plan_changed("k", "professional", "standard", "Workplace Professional",
                                        "Workplace Standard", "downgrade", START),
    "receipt": emails.receipt("INV-toko-0001", 135000, "Visa •••• 4242", [], START, RENEWAL),
    "credit_note": emails.receipt("INV-toko-0002", -135000, "Visa •••• 4242", [], START, RENEWAL),
    "payment_failed": emails.payment_failed("INV-toko-0001", 2, 135000, "card_declined", RENEWAL, "free"),
    "escalation": emails.escalation("INV-toko-0001", 5, "staff@billing.test", 120, 135000, START, RENEWAL),
    "downgrade_scheduled": emails.downgrade_scheduled("k", "Workplace Professional", "Workplace Standard", 3,
                                                      "rina@billing.test", RENEWAL),
    "cancellation_scheduled": emails.cancellation_scheduled("k", "Workplace Standard", RENEWAL),
    "downgrade_cancelled": emails.downgrade_cancelled("k", "Workplace Professional", 5, "Workplace Standard", 3,
                                                      "rina@billing.test", RENEWAL),
    "cancellation_undone": emails.cancellation_undone("k", "Workplace Standard", RENEWAL),
    "downgrade_not_applied": emails.downgrade_not_applied("k", "Workplace Professional", 5, "Workplace Standard", 5,
                                                          "user_cap", RENEWAL, user_cap=3, users=5),
    **{email.template: email for email in storage_emails(
        Verdict(blocked=[BlockedUser("b@toko.test", 12 * 1024, 5 * 1024, "storage")], unblocked=["c@toko.test"],
                auto_allocated=[AutoAllocation("d@toko.test", 25), AutoAllocation("d@toko.test", 5)]),
        "k", "admin@toko.test", None, free_units_left=1)},
}


def _context(email, locale: str) -> dict:
    from babel.dates import format_date
    from domain.money import format_money
    context = {"org_name": "Warung Kopi", "org_id": "toko", "admin_email": "admin@toko.test",
               "recipient": "admin@toko.test", "locale": locale, "recipient_is_admin": True, "lines": [],
               **email.values}
    context.update({k: format_money(v, "IDR", locale) for k, v in email.money.items()})
    context.update({k: format_date(v, format="long", locale=locale) for k, v in email.dates.items()})
    return context


def _data(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _data(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _data(v)]
    return [value] if isinstance(value, str) else []


def _sentences(text: str, context: dict) -> set[str]:
    """Runs of prose the template wrote: at least two words of three letters or more once tags,
    addresses and the data it was given (org and plan names) are taken out ("0 GB / 5 GB" is not
    a sentence; "Your plan changed" is)."""
    plain = re.sub(r"<[^>]+>|[\w.+-]+@[\w.-]+", " ", text)
    for value in sorted(_data(context), key=len, reverse=True):
        plain = plain.replace(value, " ")
    return {" ".join(s.split()) for s in re.split(r"[.!?:\n]", plain)
            if len(re.findall(r"[^\W\d_]{3,}", s)) >= 2}


@pytest.mark.parametrize("template", sorted(p.name for p in (TEMPLATES_DIR / "en").iterdir() if p.is_dir()))
def test_indonesian_e_mails_carry_no_english_sentence(template):
    email = SAMPLES[template]
    renderer = TemplateRenderer()
    en_context, id_context = _context(email, "en"), _context(email, "id")
    english = renderer.render(template, "en", en_context)
    indonesian = renderer.render(template, "id", id_context)
    for part in ("subject", "text", "html"):
        leftovers = _sentences(getattr(english, part), en_context) & _sentences(getattr(indonesian, part), id_context)
        assert leftovers == set(), (part, leftovers)


# ---- the command line ------------------------------------------------------------------------------

@pytest.fixture
def cli_db(sqlite_db, catalog, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_db.url)
    return paid_renewal(sqlite_db, catalog, "cli", locale="en", currency="USD")


def test_invoice_and_statement_files_from_the_command_line(cli_db, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["invoice", cli_db, "--pdf", str(tmp_path / "i.pdf"), "--html", str(tmp_path / "i.html")])
    assert result.exit_code == 0, result.output
    assert cli_db in text_of((tmp_path / "i.pdf").read_bytes())[0]
    assert "<html" in (tmp_path / "i.html").read_text()
    result = runner.invoke(app, ["statement", "cli", "--from", "2026-02-01", "--to", "2026-02-28", "--pdf",
                                 str(tmp_path / "s.pdf")])
    assert result.exit_code == 0, result.output
    [page] = text_of((tmp_path / "s.pdf").read_bytes())
    assert "Opening balance" in page and "Closing balance" in page and f"Payment of {cli_db}" in page
    history = runner.invoke(app, ["invoices", "cli", "--json"], env={"COLUMNS": "200"})
    assert history.exit_code == 0 and '"number": "' + cli_db + '"' in history.output


@pytest.mark.parametrize("args, code, message", [
    (["invoice", "INV-nope-0001", "--pdf", "{tmp}/x.pdf"], 1, "unknown invoice INV-nope-0001"),
    (["invoice", "{number}", "--pdf", "{tmp}/missing/x.pdf"], 2, "folder {tmp}/missing does not exist"),
    (["invoice", "{number}"], 2, "say where to write the invoice"),
    (["statement", "cli", "--from", "2026-03-01", "--to", "2026-02-01", "--pdf", "{tmp}/x.pdf"], 2,
     "--from 2026-03-01 comes after --to 2026-02-01"),
    (["statement", "cli", "--from", "March", "--to", "2026-02-01", "--pdf", "{tmp}/x.pdf"], 2,
     "--from: 'March' is not a date"),
    (["statement", "nobody", "--from", "2026-01-01", "--to", "2026-02-01", "--pdf", "{tmp}/x.pdf"], 1,
     "unknown org 'nobody'"),
    (["statement", "cli", "--from", "2026-03-01T10:00", "--to", "2026-03-02", "--pdf", "{tmp}/x.pdf"], 2,
     "--from: '2026-03-01T10:00' is not a date; use YYYY-MM-DD"),
    (["invoice", "{number}", "--pdf", "{tmp}/fifo"], 2, "cannot write {tmp}/fifo: it is not a regular file"),
    (["invoice", "{number}", "--pdf", "/proc/x.pdf"], 2, "cannot write /proc/x.pdf: "),
    (["invoice", "{number}", "--html", "{tmp}/ok.html", "--pdf", "/proc/x.pdf"], 2, "cannot write /proc/x.pdf: "),
    (["invoice", "{number}", "--pdf", "-", "--html", "-"], 2, "only one output can go to standard output"),
    (["invoice", ""], 2, "give an invoice number"),
])
def test_bad_input_is_one_line_and_writes_nothing(cli_db, tmp_path, args, code, message):
    os.mkfifo(tmp_path / "fifo")      # a device or a pipe is not replaced by a file
    args = [a.format(tmp=tmp_path, number=cli_db) for a in args]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == code
    assert message.format(tmp=tmp_path) in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.glob("**/*.pdf")) == [] and list(tmp_path.glob("**/*.html")) == []
    assert list(tmp_path.glob("**/.*partial")) == [] and (tmp_path / "fifo").is_fifo()


def test_documents_go_through_a_link_to_standard_output_and_over_any_range(cli_db, tmp_path):
    runner = CliRunner()
    target = tmp_path / "kept" / "invoice.pdf"
    target.parent.mkdir()
    (tmp_path / "link.pdf").symlink_to(target)
    result = runner.invoke(app, ["invoice", cli_db, "--pdf", str(tmp_path / "link.pdf")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.pdf").is_symlink() and cli_db in text_of(target.read_bytes())[0]
    piped = CliRunner().invoke(app, ["invoice", cli_db, "--pdf", "-"])
    assert piped.exit_code == 0 and cli_db in text_of(piped.stdout_bytes)[0]
    whole = runner.invoke(app, ["statement", "cli", "--from", "0001-01-01", "--to", "9999-12-31", "--json"])
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["closing"] == 0        # the one invoice was paid


# ---- a machine without pango ------------------------------------------------------------------------

@pytest.fixture
def without_pango(tmp_path):
    """A Python path on which importing WeasyPrint fails as it does when pango is missing."""
    fake = tmp_path / "nopango" / "weasyprint"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise OSError("cannot load library \'libpango-1.0-0\'")\n')
    return {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}", "BILLING_DATABASE_URL":
            f"sqlite:///{tmp_path / 'none.db'}"}


@pytest.mark.parametrize("command, code", [
    (["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/domain/test_money.py"], 1),   # make test
    (["-m", "workers.runtime.worker"], 2),
])
def test_without_pango_the_tests_and_the_worker_stop_saying_what_to_install(without_pango, command, code):
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=without_pango, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == code
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in done.stdout + done.stderr
    assert "passed" not in done.stdout and "skipped" not in done.stdout


def test_a_yearly_switch_invoice_shows_the_credit_for_what_ends(tmp_path, monkeypatch):
    """Through the real pipeline: the switch bills the year and credits the unused rest of the
    month, and the PDF the admin downloads shows both, the subtotal, the credit and the total."""
    from domain.money import format_money
    url = simulated(tmp_path, '''
start: "2026-01-31T09:00:00+00:00"
until: P20D
org: {id: yearly, admin_email: admin@yearly.test, plan: standard, cycle: monthly, card: "4242424242424242",
      users: [{email: b@yearly.test, storage_gb: 1}]}
actions:
  - {at: P10D, do: switch_to_yearly}
''')
    db = Database(url)
    with db.transaction() as session:
        [invoice] = session.scalars(select(Invoice).where(Invoice.org_id == "yearly"))
        charged = sum(line.amount for line in invoice.lines if line.amount > 0)
        credited = -sum(line.amount for line in invoice.lines if line.amount < 0)
        number, total = invoice.number, invoice.total
    db.dispose()
    assert credited > 0 and total == charged - credited
    monkeypatch.setenv("BILLING_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["invoice", number, "--pdf", str(tmp_path / "y.pdf")])
    assert result.exit_code == 0, result.output
    [page] = text_of((tmp_path / "y.pdf").read_bytes())
    assert "Credit for unused Workplace Standard licence" in page
    for label, amount in (("Charges", charged), ("Credits", -credited), ("Subtotal", charged - credited),
                          ("VAT0%", 0), ("Total", total)):   # a buyer with no country: no tax
        assert f"{label}{format_money(amount, 'USD', 'en')}" in page.replace(" ", ""), label
    assert "PAID" in page


def test_the_billing_address_set_from_the_command_line_is_on_the_invoice(cli_db, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["org", "address", "cli", "Jl. Merdeka 5\\nBandung 40111", "--by", "rina@billing.test"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["invoice", cli_db, "--pdf", str(tmp_path / "a.pdf")]).exit_code == 0
    page = text_of((tmp_path / "a.pdf").read_bytes())[0]
    assert "Jl. Merdeka 5\nBandung 40111" in page
    assert "billing_address" in runner.invoke(app, ["org", "history", "cli"], env={"COLUMNS": "300"}).output
    for args, message in ((["org", "address", "cli", "\\n".join("line" for _ in range(7))],
                           "billing address: at most 6 lines, got 7"),
                          (["org", "address", "nobody", "Somewhere"], "unknown org 'nobody'")):
        refused = runner.invoke(app, args, env={"COLUMNS": "300"})
        assert refused.exit_code != 0 and message in refused.output and len(refused.output.splitlines()) == 1
    assert runner.invoke(app, ["org", "address", "cli", ""]).exit_code == 0
    assert runner.invoke(app, ["invoice", cli_db, "--pdf", str(tmp_path / "b.pdf")]).exit_code == 0
    assert "Bandung" not in text_of((tmp_path / "b.pdf").read_bytes())[0]
