"""Each invoice's PDF is rendered once per state of the invoice and kept (invoice_pdfs): the
e-mails that carry it and `billing invoice render` read it back; a new state (voided) renders anew."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities.documents import SAMPLE_SELLER, Documents
from activities.mail import MailActivities, SmtpConfig
from activities.messages import EmailRequest
from db.invoices import invoice_by_number, invoice_document, set_invoice_status
from db.models import InvoicePdf
from domain import emails
from domain.states import InvoiceStatus
from tests.activities.test_documents import RENEWAL, paid_renewal, text_of
from workers.cli import app


def kept(db) -> list[bytes]:
    with db.transaction() as session:
        return list(session.scalars(select(InvoicePdf.pdf).order_by(InvoicePdf.id)))


def receipt(number: str):
    return emails.receipt(number, 900, "Visa •••• 4242", [], RENEWAL, RENEWAL + timedelta(days=31))


@pytest.mark.postgres
async def test_a_receipt_and_its_resend_carry_the_pdf_rendered_once(pg_db, catalog, smtp_sink):
    number = paid_renewal(pg_db, catalog, "once", locale="en", currency="USD")
    mailer = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                            documents=Documents(catalog, SAMPLE_SELLER, db=pg_db))
    await ActivityEnvironment().run(mailer.send_email, EmailRequest.of("once", RENEWAL, receipt(number)))
    [stored] = kept(pg_db)
    assert number in text_of(stored)[0]
    # Another worker (a fresh Documents: nothing in memory) attaching the same invoice reads it back.
    again = MailActivities(pg_db, SmtpConfig(host="127.0.0.1", port=smtp_sink.port),
                           documents=Documents(catalog, SAMPLE_SELLER, db=pg_db))
    copy = replace_occasion(receipt(number), "resent")
    await ActivityEnvironment().run(again.send_email, EmailRequest.of("once", RENEWAL, copy))
    first, second = smtp_sink.for_org("once", "receipt")
    [a] = first.message.iter_attachments()
    [b] = second.message.iter_attachments()
    assert a.get_content() == b.get_content() == stored
    assert kept(pg_db) == [stored]


def replace_occasion(email, occasion: str):
    from dataclasses import replace
    return replace(email, occasion=occasion)


def test_invoice_render_reads_the_kept_pdf_and_a_new_state_renders_anew(sqlite_db, catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_db.url)
    number = paid_renewal(sqlite_db, catalog, "render", locale="en", currency="USD")
    runner = CliRunner()
    result = runner.invoke(app, ["invoice", "render", number, "--pdf", str(tmp_path / "a.pdf")])
    assert result.exit_code == 0, result.output
    [stored] = kept(sqlite_db)
    assert (tmp_path / "a.pdf").read_bytes() == stored
    result = runner.invoke(app, ["invoice", "render", number, "--pdf", str(tmp_path / "b.pdf")])
    assert result.exit_code == 0 and (tmp_path / "b.pdf").read_bytes() == stored
    assert len(kept(sqlite_db)) == 1
    # The e-mail of the same state attaches the same document.
    with sqlite_db.transaction() as session:
        document = invoice_document(session, number)
    assert Documents(catalog, SAMPLE_SELLER, db=sqlite_db).invoice_pdf(document) == stored
    # Voided: a new state, a new PDF that says so; the paid one is kept beside it.
    with sqlite_db.transaction() as session:
        set_invoice_status(session, invoice_by_number(session, number), InvoiceStatus.VOID, RENEWAL + timedelta(days=2))
    result = runner.invoke(app, ["invoice", "render", number, "--pdf", str(tmp_path / "c.pdf")])
    assert result.exit_code == 0, result.output
    paid, void = kept(sqlite_db)
    assert paid == stored and (tmp_path / "c.pdf").read_bytes() == void
    assert "Void" in text_of(void)[0] and "Void" not in text_of(paid)[0]
    with sqlite_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InvoicePdf)) == 2


def test_invoice_render_without_the_pdf_renderer_is_one_line_and_writes_neither_file(sqlite_db, catalog, tmp_path,
                                                                                      monkeypatch):
    import activities.documents
    monkeypatch.setenv("BILLING_DATABASE_URL", sqlite_db.url)
    number = paid_renewal(sqlite_db, catalog, "nopango", locale="en", currency="USD")

    def missing() -> None:
        raise activities.documents.PdfRendererMissing("PDF rendering needs Pango: apt-get install libpango-1.0-0")
    monkeypatch.setattr(activities.documents, "require_pdf_renderer", missing)
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(app, ["invoice", "render", number, "--html", str(out / "a.html"),
                                      "--pdf", str(out / "a.pdf")], env={"COLUMNS": "200"})
    assert (result.exit_code, result.output) == (
        1, "error: PDF rendering needs Pango: apt-get install libpango-1.0-0\n")
    assert list(out.iterdir()) == [] and kept(sqlite_db) == []
