"""Database activities: each one transaction, each idempotent by a business key, each
returning the org's fresh snapshot for the workflow to decide on."""

from dataclasses import asdict

from temporalio import activity

from activities.errors import business_errors_are_final_sync
from activities.messages import (BlockedUserInfo, ChangeInput, ChangeResult, DunningUpdate, Enforcement,
                                 EnforcementResult, InvoiceInfo, InvoiceOp, InvoiceResult, OrgContext, OrgOp,
                                 RenewalInput, RenewalResult, SettleResult)
from activities import metrics
from db import billing, changes, storage
from db.events import already_done, mark_done
from db.orgs import catalog_facts, get_org, load_snapshot
from db.session import Database
from domain.catalog import Catalog
from domain.policy import Policy
from domain.states import PlanChangeReason


def _enforcement(result: storage.EnforcementResult | None) -> Enforcement | None:
    if result is None:
        return None
    metrics.users_blocked(len(result.blocked))
    return Enforcement(blocked=[BlockedUserInfo(b.email, b.usage_mb, b.quota_mb, b.reason) for b in result.blocked],
                       unblocked=list(result.unblocked),
                       auto_allocated=[f"{a.email}:{a.unit_gb}" for a in result.auto_allocated])


def _invoice(ref: billing.InvoiceRef | None) -> InvoiceInfo | None:
    return InvoiceInfo(ref.number, ref.total, ref.currency) if ref else None


class BillingActivities:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def _snapshot(self, session, org_id: str):
        return load_snapshot(session, org_id, self.policy)

    @activity.defn
    @business_errors_are_final_sync
    def load_org(self, org_id: str) -> OrgContext:
        with self.db.transaction() as session:
            org, _ = get_org(session, org_id)
            return OrgContext(snapshot=self._snapshot(session, org_id), policy=self.policy,
                              catalog=catalog_facts(self.catalog, org.currency))

    @activity.defn
    @business_errors_are_final_sync
    def expire_trial(self, op: OrgOp) -> InvoiceResult:
        with self.db.transaction() as session:
            billing.expire_trial(session, op.org_id, op.at)
            return InvoiceResult(self._snapshot(session, op.org_id))

    @activity.defn
    @business_errors_are_final_sync
    def convert_trial(self, op: OrgOp) -> InvoiceResult:
        with self.db.transaction() as session:
            ref = billing.convert_trial(session, op.org_id, self.catalog, op.at)
            return InvoiceResult(self._snapshot(session, op.org_id), _invoice(ref))

    @activity.defn
    @business_errors_are_final_sync
    def open_renewal(self, request: RenewalInput) -> RenewalResult:
        with self.db.transaction() as session:
            previous = get_org(session, request.org_id)[1].plan_id
            opened = billing.open_renewal(session, request.org_id, request.period_start, self.catalog, request.at)
            return RenewalResult(self._snapshot(session, request.org_id), _invoice(opened.invoice),
                                 opened.moved_to_free, previous)

    @activity.defn
    @business_errors_are_final_sync
    def settle_paid_invoice(self, op: InvoiceOp) -> SettleResult:
        with self.db.transaction() as session:
            previous = get_org(session, op.org_id)[1].plan_id
            was_dunning = self._snapshot(session, op.org_id).dunning_invoice == op.invoice_number
            applied = billing.settle_paid_invoice(session, op.org_id, op.invoice_number, self.catalog, op.at)
            if was_dunning:
                metrics.dunning("recovered")
            return SettleResult(self._snapshot(session, op.org_id), applied, previous)

    @activity.defn
    @business_errors_are_final_sync
    def enter_dunning(self, update: DunningUpdate) -> InvoiceResult:
        with self.db.transaction() as session:
            billing.enter_dunning(session, update.org_id, update.invoice_number, update.started_at or update.at,
                                  update.next_retry_at, update.at)
            metrics.dunning("entered")
            return InvoiceResult(self._snapshot(session, update.org_id))

    @activity.defn
    @business_errors_are_final_sync
    def record_failed_attempt(self, update: DunningUpdate) -> InvoiceResult:
        with self.db.transaction() as session:
            billing.record_failed_attempt(session, update.org_id, update.invoice_number, update.attempt,
                                          update.scheduled, update.next_retry_at, update.at)
            return InvoiceResult(self._snapshot(session, update.org_id))

    @activity.defn
    @business_errors_are_final_sync
    def write_off_and_free(self, update: DunningUpdate) -> RenewalResult:
        with self.db.transaction() as session:
            previous = get_org(session, update.org_id)[1].plan_id
            billing.write_off_and_free(session, update.org_id, update.invoice_number,
                                       PlanChangeReason.PAYMENT_FAILED, update.at)
            metrics.dunning("final")
            return RenewalResult(self._snapshot(session, update.org_id), moved_to_free=True, previous_plan=previous)

    @activity.defn
    @business_errors_are_final_sync
    def escalate(self, update: DunningUpdate) -> InvoiceResult:
        with self.db.transaction() as session:
            billing.escalate(session, update.org_id, update.invoice_number, update.first_response_due,
                             update.determination_due, update.at)
            metrics.dunning("escalated")
            return InvoiceResult(self._snapshot(session, update.org_id))

    @activity.defn
    @business_errors_are_final_sync
    def apply_change(self, change: ChangeInput) -> ChangeResult:
        request_type = changes.REQUEST_TYPES[change.kind]
        request = request_type(**change.payload)
        with self.db.transaction() as session:
            if already_done(session, change.key):
                return ChangeResult(self._snapshot(session, change.org_id), "already applied")
            applied = changes.apply_change(session, change.org_id, change.kind, request, self.catalog, change.at,
                                           change.key)
            return ChangeResult(self._snapshot(session, change.org_id), applied.message, _invoice(applied.invoice),
                                _enforcement(applied.enforcement), applied.plan_changed_from,
                                applied.plan_changed_to)

    @activity.defn
    @business_errors_are_final_sync
    def enforce_storage(self, op: OrgOp) -> EnforcementResult:
        with self.db.transaction() as session:
            result = storage.enforce(session, op.org_id, op.at)
            if op.key and not already_done(session, op.key):
                mark_done(session, op.org_id, op.at, op.key, "enforce_storage",
                          data={"blocked": len(result.blocked), "unblocked": len(result.unblocked)})
            return EnforcementResult(self._snapshot(session, op.org_id), _enforcement(result))


def change_payload(request: object) -> dict:
    return asdict(request)  # type: ignore[arg-type]
