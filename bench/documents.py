"""Invoices and statements as documents: how long the admin waits for a PDF.

    .venv/bin/python bench/documents.py            # 20 warm renders of each
    .venv/bin/python bench/documents.py --runs 50

Builds an org in a scratch SQLite database with a year of paid monthly renewals (the real
activities: renewal, charge, settlement), then prints the time to render one invoice PDF warm
(fonts and templates loaded by a first render, as in a running worker) and a 12-month statement
PDF: the median and the slowest run, with the CPU each took; and the invoice as the e-mails get
it, kept once rendered (read back from invoice_pdfs). The aim for one invoice is under 300 ms; figures swing 2-3x
with the machine's load, so compare runs made side by side."""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.testing import ActivityEnvironment  # noqa: E402

from activities.billing import BillingActivities  # noqa: E402
from activities.documents import SAMPLE_SELLER, Documents, pdf  # noqa: E402
from activities.messages import ChargeInput, InvoiceOp, RenewalInput  # noqa: E402
from activities.payments import PaymentActivities, SandboxGateway  # noqa: E402
from db.invoices import invoice_document, statement  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.orgs import set_card, sync_plans  # noqa: E402
from services.orgs import create_org
from db.session import Database  # noqa: E402
from domain.cards import sandbox_tokenise  # noqa: E402
from domain.catalog import load_catalog  # noqa: E402
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org  # noqa: E402
from domain.periods import boundary  # noqa: E402
from domain.policy import Policy  # noqa: E402
from domain.states import Cycle  # noqa: E402

START = datetime(2026, 1, 31, 9, 0, tzinfo=timezone.utc)


def a_year_of_renewals(db: Database, catalog) -> list[str]:
    org = validate_new_org(NewOrg(id="bench", name="Toko Maju", admin_email="admin@bench.test", locale="id",
                                  currency="IDR", plan="standard", cycle="monthly",
                                  users=[NewUser(f"u{i}@bench.test", 1) for i in range(12)]), catalog)
    card = sandbox_tokenise("4242424242424242")
    with db.transaction() as session:
        sync_plans(session, catalog)
        create_org(session, paid_for_one_cycle(org, START, "bench"), catalog, Policy(), START)
        set_card(session, "bench", card.token, card.brand, card.last4)
    billing, payments = BillingActivities(db, catalog, Policy()), PaymentActivities(db, SandboxGateway(db))
    numbers = []
    for month in range(1, 13):
        at = boundary(START, Cycle.MONTHLY, month)
        number = billing.open_renewal(RenewalInput("bench", at, at)).invoice.number
        ActivityEnvironment().run(payments.charge_invoice, ChargeInput("bench", number, 1, at))
        billing.settle_paid_invoice(InvoiceOp("bench", number, at))
        numbers.append(number)
    return numbers


def timed(render, runs: int) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU milliseconds of each render (CPU: what a renewal storm pays, whatever
    the machine's other load)."""
    size = len(render())                       # warm: fonts, templates, translations loaded
    times, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        render()
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return times, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    catalog = load_catalog()
    documents = Documents(catalog, SAMPLE_SELLER)
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        db = Database(url)
        numbers = a_year_of_renewals(db, catalog)

        def one_invoice() -> bytes:
            with db.transaction() as session:
                document = invoice_document(session, numbers[-1])
            return pdf(documents.invoice_html(document))

        def year_statement() -> bytes:
            with db.transaction() as session:
                found = statement(session, "bench", START, boundary(START, Cycle.MONTHLY, 13))
            return pdf(documents.statement_html(found))

        kept = Documents(catalog, SAMPLE_SELLER, db=db)   # rendered once per state, then read back

        def kept_invoice() -> bytes:
            with db.transaction() as session:
                document = invoice_document(session, numbers[-1])
            return kept.invoice_pdf(document)

        for name, render in (("invoice PDF, warm", one_invoice), ("invoice PDF, kept", kept_invoice),
                             ("12-month statement PDF", year_statement)):
            times, cpu, size = timed(render, args.runs)
            print(f"{name:<24} median {statistics.median(times):6.0f} ms (CPU {statistics.median(cpu):4.0f} ms)   "
                  f"slowest {max(times):6.0f} ms   {size / 1024:5.0f} KiB   ({args.runs} runs)")
        db.dispose()


if __name__ == "__main__":
    main()
