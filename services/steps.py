"""The steps of an org's life that read more than its state to decide (services.unit_of_work.Step):
a change checked against the stored users and the reports applied, a batch of reports, an invoice
paid."""

from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from db.invoices import paid_invoice
from db.orgs import end_opening
from db.state import StoredUsers, reported_stamps
from domain import reports
from domain.catalog import Catalog
from domain.decisions import Context, Decision
from domain.operations import decide, decide_reports, operation_of
from domain.payments import invoice_paid
from domain.states import InvoiceKind
from domain.subscription import OrgSnapshot, catalog_facts
from services.unit_of_work import Step


def change(org_id: str, request: Any, catalog: Catalog) -> tuple[str, Step]:
    """An operation's request, checked again on the stored state (a change applied since the
    workflow's own check counts) and its users on the stored ones; named by its operation."""
    operation = operation_of(request)

    def step(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
        ctx = replace(ctx, reported=reported_stamps(session, org_id, reports.subjects(operation.name, request)))
        return decide(operation, state, request, ctx, catalog_facts(catalog, state.currency),
                      StoredUsers(session, org_id))
    return operation.name, step


def reports_sent(org_id: str, sent: list[tuple[str, Any]], catalog: Catalog) -> Step:
    """Usage reports and contact counts that arrived as signals, decided at once: the newest per
    user (and for the org's contacts) applied when newer than the one stored."""
    def step(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
        named = [subject for name, request in sent for subject in reports.subjects(name, request)]
        ctx = replace(ctx, reported=reported_stamps(session, org_id, sorted(set(named))))
        return decide_reports(state, sent, ctx, catalog_facts(catalog, state.currency), StoredUsers(session, org_id))
    return step


def paid(org_id: str, invoice_number: str) -> Step:
    """An invoice paid: what waited for it applies; a new customer's opening ends."""
    def step(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
        invoice = paid_invoice(session, invoice_number)
        if invoice.kind == InvoiceKind.OPENING:
            end_opening(session, org_id, "paid")
        return invoice_paid(state, invoice, ctx)
    return step
