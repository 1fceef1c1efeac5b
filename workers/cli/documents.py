"""`billing invoice list|render|statement`: the payment history and the documents (PDF, HTML,
JSON). `billing invoices`, `billing invoice NUMBER` and `billing statement` are their former
names, kept working (hidden)."""

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.table import Table

from workers.cli.common import (JSON_OPTION_HELP, ExitCode, app, configured_catalog, console, database, errors, fail,
                                group, print_json, settings, to_jsonable, unknown_org)

invoice_app = group("invoice")


@invoice_app.command("list")
def invoice_list(org_id: str = typer.Argument(..., help="Org id"),
                 as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Payment history: every invoice with its status and payments (the card, the date, the outcome)."""
    from db.invoices import invoice_document
    from db.queries import invoice_numbers, org_locale
    from domain.money import format_money
    with database().transaction() as session:
        locale = org_locale(session, org_id)
        if locale is None:
            unknown_org(org_id)
        documents = [invoice_document(session, number) for number in invoice_numbers(session, org_id)]
    if as_json:
        print_json([{key: value for key, value in to_jsonable(doc).items() if key not in ("buyer", "lines")}
                    for doc in documents])
        return
    table = Table(title=f"invoices of {org_id}")
    for column in ("number", "date", "kind", "subtotal", "tax", "total", "status", "payments"):
        table.add_column(column)
    for doc in documents:
        tax = format_money(doc.tax, doc.currency, locale)
        table.add_row(doc.number, f"{doc.issued_at:%Y-%m-%d}", str(doc.kind),
                      format_money(doc.subtotal, doc.currency, locale),
                      f"{tax} ({doc.tax_details.label})" if doc.tax_name else tax,
                      format_money(doc.total, doc.currency, locale), str(doc.status), ", ".join(
                          f"#{p.attempt} {p.at:%Y-%m-%d} {p.outcome}" + (f" ({p.decline_reason})" if p.decline_reason
                                                                         else "")
                          + (f" {p.card_brand} {p.card_last4}" if p.card_last4 else "") for p in doc.payments))
    console.print(table)


def _documents(keep_pdfs: bool = False):
    """keep_pdfs: an invoice's PDF is read from, or kept in, the database (rendered once per state
    of the invoice, as the e-mails that carry it are)."""
    from activities.documents import Documents
    config = settings()
    return Documents(configured_catalog(), config.seller, db=database() if keep_pdfs else None)


STDOUT = Path("-")


def _writable(*paths: Path | None) -> None:
    """Refuse a path that cannot be written before anything is rendered. `-` is standard output
    (for one of them)."""
    if sum(path == STDOUT for path in paths) > 1:
        fail("only one output can go to standard output (-)", ExitCode.USAGE)
    for path in paths:
        if path is None or path == STDOUT:
            continue
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            fail(f"cannot write {path}: folder {folder} does not exist", ExitCode.USAGE)
        if path.is_dir():
            fail(f"cannot write {path}: it is a folder", ExitCode.USAGE)
        if path.exists() and not path.resolve().is_file():
            fail(f"cannot write {path}: it is not a regular file", ExitCode.USAGE)
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            fail(f"cannot write {path}: permission denied", ExitCode.USAGE)


def _rendered(html: str, html_path: Path | None, pdf_path: Path | None,
              as_pdf: Callable[[], bytes] | None = None) -> list[tuple[Path, bytes]]:
    """Every output asked for, in memory: nothing is written until all of them rendered. The PDF
    is `as_pdf()` when given (an invoice's, kept in the database), else the HTML's."""
    from activities.documents import PdfRendererMissing, pdf
    outputs = []
    if html_path is not None:
        outputs.append((html_path, html.encode("utf-8")))
    if pdf_path is not None:
        try:
            outputs.append((pdf_path, as_pdf() if as_pdf else pdf(html)))
        except PdfRendererMissing as err:
            fail(str(err))
    return outputs


def _write(outputs: list[tuple[Path, bytes]]) -> list[str]:
    """Write the outputs, all or none; the files written."""
    from activities.documents import write_documents
    files = [(path.resolve(), content) for path, content in outputs if path != STDOUT]  # through a symlink
    try:
        write_documents(files)
    except OSError as err:
        fail(f"cannot write {err.filename}: {err.strerror or err}", ExitCode.USAGE)
    for path, content in outputs:
        if path == STDOUT:
            sys.stdout.buffer.write(content)
            sys.stdout.flush()
    return [str(path) for path, _ in outputs if path != STDOUT]


@invoice_app.command("render")
def invoice_render(number: str = typer.Argument(..., help="Invoice number, e.g. INV-acme-0001"),
                   pdf: Optional[Path] = typer.Option(None, "--pdf", help="Write the invoice as PDF here (- for standard output)"),
                   html: Optional[Path] = typer.Option(None, "--html", help="Write the invoice as HTML here (- for standard output)")) -> None:
    """An invoice as a document, in the org's language: PDF and/or HTML."""
    from db.invoices import invoice_document
    if not number.strip():
        fail("give an invoice number, e.g. INV-acme-0001", ExitCode.USAGE)
    if pdf is None and html is None:
        fail("say where to write the invoice: --pdf FILE and/or --html FILE (- for standard output)", ExitCode.USAGE)
    _writable(pdf, html)
    with database().transaction() as session:
        try:
            document = invoice_document(session, number)
        except LookupError as err:
            fail(str(err))
    documents = _documents(keep_pdfs=True)
    outputs = _rendered(documents.invoice_html(document), html, pdf, lambda: documents.invoice_pdf(document))
    written = _write(outputs)
    if written:   # on stderr: standard output may be carrying the document
        errors.print(f"invoice {number} written to {' and '.join(written)}", highlight=False, soft_wrap=True)


def _day(text: str, option: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day (nothing else: not a time, not 20260301)."""
    from datetime import date
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date; use YYYY-MM-DD", ExitCode.USAGE)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


@invoice_app.command("statement")
def statement_render(org_id: str = typer.Argument(..., help="Org id"),
                     start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (UTC)"),
                     end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (UTC), included"),
                     pdf: Optional[Path] = typer.Option(None, "--pdf", help="Write the statement as PDF here (- for standard output)"),
                     html: Optional[Path] = typer.Option(None, "--html", help="Write the statement as HTML here (- for standard output)"),
                     as_json: bool = typer.Option(False, "--json", help="Print the statement as JSON")) -> None:
    """Statement of account: every invoice and payment between two days, with the balances.

    The opening and closing balance the org owes (what finance asks for at month end)."""
    from datetime import date, timedelta
    from db.invoices import statement
    first, last = _day(start, "--from"), _day(end, "--to")
    if first > last:
        fail(f"--from {start} comes after --to {end}", ExitCode.USAGE)
    if pdf is None and html is None and not as_json:
        fail("say what to produce: --pdf FILE, --html FILE and/or --json", ExitCode.USAGE)
    if as_json and STDOUT in (pdf, html):
        fail("--json prints to standard output: write the document to a file", ExitCode.USAGE)
    _writable(pdf, html)
    # The range ends where the day after --to begins (9999-12-31 has no day after it).
    end_of_range = last + timedelta(days=1) if last.date() < date.max else datetime.max.replace(tzinfo=timezone.utc)
    with database().transaction() as session:
        try:
            found = statement(session, org_id, first, end_of_range)
        except LookupError:   # an unknown org
            unknown_org(org_id)
    outputs = _rendered(_documents().statement_html(found), html, pdf) if pdf or html else []
    if as_json:
        print_json({**to_jsonable(found), "closing": found.closing})
    if outputs:
        written = _write(outputs)
        if written:
            errors.print(f"statement of {org_id} written to {' and '.join(written)}", highlight=False,
                         soft_wrap=True)


def _former_names() -> None:
    app.command("invoices", hidden=True)(invoice_list)
    app.command("statement", hidden=True)(statement_render)


_former_names()
