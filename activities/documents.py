"""Invoices and statements as documents, in the org's language: one template each, rendered to
HTML, and to PDF by WeasyPrint. Labels go through Babel's translations
(templates/locale/<locale>/LC_MESSAGES/messages.po, read as they are: no compile step), dates and
money through Babel's formats (IDR in whole rupiah, USD with cents).

The admin downloads them (`billing invoice`, `billing statement`); the receipt and the
payment_failed e-mails carry the invoice as a PDF."""

import hashlib
import importlib
import logging
import multiprocessing
import os
import signal
import threading
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.exc import IntegrityError

from activities.templates import TEMPLATES_DIR
from db.invoices import InvoiceDocument
from domain.cards import card_label
from domain.catalog import Catalog
from domain.decisions import EmailLine
from domain.money import format_money
from domain.periods import last_day_billed
from domain.statement import EntryKind, Statement
from domain.states import InvoiceStatus
from domain.subscription import ItemKind
from domain.tax import percent

if TYPE_CHECKING:
    from db.session import Database

LOCALES_DIR = TEMPLATES_DIR / "locale"


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices (BILLING_SELLER_* settings)."""
    name: str
    address: str
    tax_number: str


# A sample issuer until BILLING_SELLER_NAME, _ADDRESS and _TAX_NUMBER say who really invoices.
SAMPLE_SELLER = Seller("Billing Demo PT", "Jl. Jenderal Sudirman 1\nJakarta 10220\nIndonesia", "01.234.567.8-901.000")


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    catalog_file = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not catalog_file.is_file():
        return NullTranslations()   # English: the messages are written in it
    with catalog_file.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@lru_cache(maxsize=None)
def _environment(locale: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True, undefined=StrictUndefined,
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(locale), newstyle=True)
    return env


def _serve_the_worker() -> None:
    """Each renderer process's start. Ctrl-C reaches the whole process group: the worker drains
    and shuts the pool down itself; a renderer interrupted on its own would print a traceback and
    fail the render in flight. And a renderer lives no longer than its worker: killed (kill -9,
    out of memory), the worker cannot stop it, and it was left running, adopted by PID 1, ~100 MB
    each time; the resource tracker multiprocessing started beside it waits for its last client
    and ends with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_the_worker, name="exit-with-the-worker", daemon=True).start()


def _exit_with_the_worker() -> None:
    # The spawning parent holds the other end of this sentinel (a pipe) until it exits, however it
    # exits: no polling, and none of PR_SET_PDEATHSIG's surprise when the thread that started the
    # process ends while the worker lives on.
    multiprocessing.parent_process().join()
    os._exit(1)


class PdfRenderer:
    """Renders HTML to PDF: in this process, or in a pool of `processes` processes. A render is
    ~70 ms of CPU-bound Python; in the worker's process it holds the GIL, which the event loop
    driving every workflow needs too (in a renewal storm, the PDFs were over 40% of the worker's
    time). Processes are started ("spawn": the worker runs threads) on the first render."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, html: str) -> bytes:
        if not self.processes:
            with self._lock:  # one at a time: the GIL allows no parallelism anyway
                return pdf(html)
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_serve_the_worker)
        return self._pool.submit(pdf, html).result()

    def pids(self) -> list[int]:
        """The pool's processes (for measuring their CPU)."""
        return list(self._pool._processes) if self._pool else []  # noqa: SLF001  (no public accessor)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


class Documents:
    RECENT_PDFS = 64

    def __init__(self, catalog: Catalog, seller: Seller, renderer: PdfRenderer | None = None,
                 db: "Database | None" = None) -> None:
        self.catalog, self.seller = catalog, seller
        self.renderer = renderer or PdfRenderer()
        # Where each invoice's PDF is kept once rendered, per state (None: rendered every time).
        self.db = db
        # PDFs recently rendered or being rendered, by the invoice's state: mail threads sending
        # the same invoice at once wait for the first render instead of repeating it.
        self._recent: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def state_of(html: str) -> str:
        """An invoice's state as its PDF shows it: a digest of its HTML (every field printed, the
        seller, the template), so a paid, voided or retried invoice, or a new template, is a new state."""
        return hashlib.sha256(html.encode("utf-8")).hexdigest()

    def invoice_pdf(self, doc: InvoiceDocument) -> bytes:
        """The invoice's PDF as it stands: rendered once per state and kept (invoice_pdfs), then
        read back by every e-mail that carries it and by `billing invoice render`."""
        html = self.invoice_html(doc)
        state = self.state_of(html)
        with self._lock:
            rendering = self._recent.get(state)
            mine = rendering is None
            if mine:
                rendering = self._recent[state] = Future()
                while len(self._recent) > self.RECENT_PDFS:
                    self._recent.popitem(last=False)
            self._recent.move_to_end(state)
        if mine:
            try:
                rendering.set_result(self._stored_or_rendered(doc.number, state, html))
            except BaseException as err:
                with self._lock:
                    self._recent.pop(state, None)  # a failed render is tried again next time
                rendering.set_exception(err)
        return rendering.result()

    def _stored_or_rendered(self, number: str, state: str, html: str) -> bytes:
        from db.invoices import store_pdf, stored_pdf
        if self.db is None:
            return self.renderer.render(html)
        with self.db.transaction() as session:
            kept = stored_pdf(session, number, state)
        if kept is not None:
            return kept
        content = self.renderer.render(html)
        try:
            with self.db.transaction() as session:
                store_pdf(session, number, state, content, datetime.now(timezone.utc))
        except IntegrityError:
            pass   # another process kept this state meanwhile: the same document
        return content

    def invoice_html(self, doc: InvoiceDocument) -> str:
        locale = doc.buyer.locale
        _ = translations(locale).gettext
        money = self._money(doc.currency, locale)
        lines = self.line_rows(doc.lines, doc.currency, locale)
        paid = [p for p in doc.payments if p.outcome == "succeeded"]
        payment = declined = None
        if paid:
            last = paid[-1]
            payment = {"card": card_label(last.card_brand, last.card_last4), "date": self._date(last.at, locale),
                       "attempts": len(doc.payments), "amount": money(last.amount)}
        elif doc.payments:        # attempted, never paid: what the card said, and when last
            last = doc.payments[-1]
            declined = {"card": card_label(last.card_brand, last.card_last4), "date": self._date(last.at, locale),
                        "attempts": len(doc.payments)}
        return _environment(locale).get_template("documents/invoice.html.j2").render(
            locale=locale, seller=self.seller, buyer=doc.buyer, number=doc.number, status=str(doc.status),
            status_label=_STATUS[doc.status](_), status_date=self._date(doc.status_at, locale),
            issued=self._date(doc.issued_at, locale), period=self._period(doc.period_start, doc.period_end, locale),
            lines=lines, charges=money(sum(l.amount for l in doc.lines if l.amount > 0)),
            credits=money(sum(l.amount for l in doc.lines if l.amount < 0)),
            has_credits=any(l.amount < 0 for l in doc.lines), subtotal=money(doc.subtotal),
            tax=self.tax_rows(doc, locale), total=money(doc.total), payment=payment, declined=declined,
            credit_applied=money(-doc.credit_applied) if doc.credit_applied else None)

    def tax_rows(self, doc: InvoiceDocument, locale: str) -> dict[str, str | None]:
        """The invoice's tax as issued, in the org's language: its base (DPP) when taxed, the tax
        named with its rate ("PPN 12%"), or none at all (an export: 0%)."""
        _ = translations(locale).gettext
        money = self._money(doc.currency, locale)
        taxed = doc.tax_details
        untaxed = _("VAT") + " " + percent(Decimal(0))
        return {"base": money(taxed.base) if taxed.name else None, "label": taxed.label or untaxed,
                "amount": money(taxed.amount)}

    def statement_html(self, statement: Statement) -> str:
        locale = statement.buyer.locale
        _ = translations(locale).gettext
        money = self._money(statement.currency, locale)
        balance, rows = statement.opening, []
        for entry in statement.entries:
            balance += entry.amount
            what = _ENTRY[entry.kind](_) % {"number": entry.invoice}
            if entry.tax_label:
                what += " " + _("(%(label)s %(tax)s included)") % {"label": entry.tax_label, "tax": money(entry.tax)}
            if entry.credit_used:
                what += " " + _("(%(credit)s paid from account credit)") % {"credit": money(entry.credit_used)}
            card = card_label(entry.card_brand, entry.card_last4)
            rows.append({"date": self._date(entry.at, locale), "what": f"{what} ({card})" if card else what,
                         "charge": money(entry.amount) if entry.amount > 0 else "",
                         "credit": money(-entry.amount) if entry.amount < 0 else "", "balance": money(balance)})
        return _environment(locale).get_template("documents/statement.html.j2").render(
            locale=locale, seller=self.seller, buyer=statement.buyer, start=self._date(statement.start, locale),
            end=self._date(statement.last_day, locale), opening=money(statement.opening),
            closing=money(statement.closing), rows=rows)

    def line_rows(self, lines: list[EmailLine], currency: str, locale: str,
                  date_format: str = "medium") -> list[dict[str, Any]]:
        """Invoice lines as printed, on the invoice and in the receipt: what each bills in the
        org's language, its period, quantity, unit price and amount. A share of a period is
        marked pro rata (its amount is not quantity x unit price); a credit shows no unit price."""
        _ = translations(locale).gettext
        money = self._money(currency, locale)
        rows = []
        for line in lines:
            description = self.describe(line, locale)
            if line.item is not None and 0 < line.amount != line.quantity * line.unit_amount:
                description = _("%(item)s, pro rata") % {"item": description}
            rows.append({"description": description, "period": self._period(line.start, line.end, locale, date_format),
                         "quantity": abs(line.quantity), "unit": money(line.unit_amount) if line.amount > 0 else "",
                         "amount": money(line.amount)})
        return rows

    def describe(self, line: EmailLine, locale: str) -> str:
        """A line in the org's language, from what it bills (lines from before itemised
        invoices keep the words they were issued with)."""
        if line.item is None:
            return line.description
        _ = translations(locale).gettext
        item = line.item
        if item.kind == ItemKind.LICENCE:
            name = _("%(plan)s licence") % {"plan": self.catalog.plans[item.code].name}
        elif item.kind == ItemKind.STORAGE:
            name = _("Storage unit %(size)s GB") % {"size": item.code}
        elif item.kind == ItemKind.TIER:
            # The line's quantity counts blocks of `step` contacts (its unit price is a block's).
            addon = self.catalog.tiered_addons[item.code]
            name = _("%(addon)s, per %(contacts)s contacts") % {
                "addon": addon.name, "contacts": format_decimal(addon.step, locale=locale)}
        else:
            name = self.catalog.flat_addons[item.code].name
        return _("Credit for unused %(item)s") % {"item": name} if line.amount < 0 else name

    @staticmethod
    def _money(currency: str, locale: str) -> Callable[[int], str]:
        return lambda amount: format_money(amount, currency, locale)

    @staticmethod
    def _date(moment: datetime | None, locale: str, date_format: str = "medium") -> str | None:
        return format_date(moment, format=date_format, locale=locale) if moment else None

    def _period(self, start: datetime | None, end: datetime | None, locale: str,
                date_format: str = "medium") -> str | None:
        """The days billed, both ends included."""
        if start is None or end is None:
            return None
        return (f"{self._date(start, locale, date_format)} – "
                f"{self._date(last_day_billed(start, end), locale, date_format)}")


# Words looked up when a document is rendered, in its locale; written as _("...") calls so that
# Babel's extraction (and the translation test) finds them.
_STATUS: dict[InvoiceStatus, Callable[[Callable[[str], str]], str]] = {
    InvoiceStatus.PAID: lambda _: _("Paid"), InvoiceStatus.OPEN: lambda _: _("Open"),
    InvoiceStatus.VOID: lambda _: _("Void"), InvoiceStatus.UNCOLLECTIBLE: lambda _: _("Uncollectible"),
    InvoiceStatus.CREDITED: lambda _: _("Credited")}
_ENTRY: dict[EntryKind, Callable[[Callable[[str], str]], str]] = {
    EntryKind.INVOICE: lambda _: _("Invoice %(number)s"), EntryKind.PAYMENT: lambda _: _("Payment of %(number)s"),
    EntryKind.CREDIT_NOTE: lambda _: _("Credit note %(number)s: kept as account credit"),
    EntryKind.VOIDED: lambda _: _("%(number)s void"), EntryKind.WRITTEN_OFF: lambda _: _("%(number)s written off")}


PANGO_MISSING = ("WeasyPrint cannot load the pango libraries it renders PDF with; on Debian or Ubuntu: "
                 "apt-get install libpango-1.0-0 libpangoft2-1.0-0 (README, \"Invoices as documents\")")


class PdfRendererMissing(RuntimeError):
    pass


def require_pdf_renderer() -> None:
    """Fail now, naming what to install, rather than at the first receipt: the worker, the
    embedded stack and the test suite call it as they start."""
    try:
        importlib.import_module("weasyprint")   # importing it loads the pango libraries
    except OSError as err:
        raise PdfRendererMissing(f"{PANGO_MISSING}: {err}") from None


def pdf(html: str) -> bytes:
    require_pdf_renderer()
    from weasyprint import HTML
    # WeasyPrint turns fontTools' logger to DEBUG while it subsets fonts (it collects the warnings
    # itself): kept from the root logger's handlers, or every PDF prints a screenful of DEBUG lines.
    logging.getLogger("fontTools").propagate = False
    return HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()


def write_documents(outputs: list[tuple[Path, bytes]]) -> None:
    """Write every file or none: each goes to a hidden partial file first, and only when all are
    written are they renamed into place (a half-written invoice is worse than none)."""
    partials = [(path.with_name(f".{path.name}.partial"), path) for path, _ in outputs]
    for (partial, path), (_, content) in zip(partials, outputs):
        try:
            partial.write_bytes(content)
        except OSError as err:
            for written, _ in partials:
                written.unlink(missing_ok=True)
            raise OSError(err.errno, err.strerror, str(path)) from err
    for partial, path in partials:
        partial.replace(path)
