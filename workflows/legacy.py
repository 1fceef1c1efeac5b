"""Effects for activity results recorded before decisions carried their effects.

Until the billing model (histories v1-v3 in tests/replay), the workflow itself knew what to do
after each activity; the activities answered without `effects`. A run recorded then replays on
today's code: its results come from its history, so this module derives from them the effects
the old workflow code would have carried out, in its order. Only results whose `effects` is
None reach here, so branching on them is deterministic. Delete it, with the v1-v3 histories,
once no run predates the billing model (docs/reliability.md, "Retire a patch")."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from activities.messages import ChargeResult, LegacyEnforcement, StepResult
from domain import emails
from domain.decisions import (ChargePurpose, Effect, Email, FinalAction, check_storage, collect,
                              final_dunning_action, send)
from domain.lifecycle import is_large_account
from domain.policy import Policy
from domain.states import FREE_PLAN, OrgStatus
from domain.storage import AutoAllocation, BlockedUser, Verdict, storage_emails
from domain.subscription import CatalogFacts, OrgSnapshot


@dataclass(frozen=True)
class Origin:
    """What the workflow was doing when it got the result."""
    activity: str
    key: str
    charge: ChargeResult | None = None
    purpose: ChargePurpose | None = None
    request: Any = None       # the Update's request, for apply_change
    announce: Email | None = None


def effects(result: StepResult, origin: Origin, policy: Policy, catalog: CatalogFacts, now: datetime) -> list[Effect]:
    org = result.snapshot

    def name(plan_id: str) -> str:
        plan = catalog.plan(plan_id)
        return plan.name if plan else plan_id

    def plan_changed(before: str, after: str, reason: str) -> Effect:
        return send(emails.plan_changed(origin.key, before, after, name(before), name(after), reason, now))

    def failed(charge: ChargeResult, next_retry, final_action) -> Effect:
        return send(emails.payment_failed(charge.invoice_number, charge.attempt, charge.amount, charge.reason,
                                          next_retry, final_action))

    found: list[Effect] = []
    activity, charge = origin.activity, origin.charge
    if activity == "open_renewal":
        if result.previous_plan and result.previous_plan != org.plan:
            found += [plan_changed(result.previous_plan, org.plan, "cancelled" if result.moved_to_free else "downgrade"),
                      check_storage(origin.key)]
        if result.invoice is not None:
            found.append(collect(ChargePurpose.CYCLE))
    elif activity == "convert_trial":
        found += [plan_changed("professional", org.plan, "trial_converted"), collect(ChargePurpose.CYCLE)]
    elif activity == "expire_trial":
        found.append(check_storage(origin.key, announce=emails.trial_expired(org.trial_ends_at, name(FREE_PLAN))))
    elif activity == "settle_paid_invoice":
        found.append(send(emails.receipt(charge.invoice_number, charge.amount, None, [], None, None)))
        if result.previous_plan and result.previous_plan != org.plan:
            found += [plan_changed(result.previous_plan, org.plan, "upgrade"), check_storage(origin.key)]
    elif activity == "enter_dunning":
        found.append(failed(charge, org.next_retry_at, None))
    elif activity == "record_failed_attempt" and origin.purpose == ChargePurpose.RETRY:
        if org.next_retry_at is not None:
            found.append(failed(charge, org.next_retry_at, None))
        else:
            large = is_large_account(max(org.licences, org.user_count), policy)
            found.append(final_dunning_action(FinalAction.ESCALATE if large else FinalAction.FREE))
    elif activity == "record_failed_attempt":
        found.append(failed(charge, org.next_retry_at, "escalated" if org.status == OrgStatus.ESCALATED else None))
    elif activity == "write_off_and_free":
        found += [failed(charge, None, "free"), plan_changed(result.previous_plan, FREE_PLAN, "payment_failed"),
                  check_storage(origin.key)]
    elif activity == "escalate":
        found += [failed(charge, None, "escalated"),
                  send(emails.escalation(charge.invoice_number, charge.attempt, policy.staff_notify_email,
                                         org.licences, charge.amount, org.first_response_due or now,
                                         org.determination_due or now))]
    elif activity == "enforce_storage":
        found += [send(email) for email in _storage(result.enforcement, origin, org, unblocked=False)]
    elif activity == "apply_change":
        found += _after_change(result, origin, org, plan_changed)
    return found


def _after_change(result: StepResult, origin: Origin, org: OrgSnapshot, plan_changed) -> list[Effect]:
    request = origin.request
    kind = type(request).__name__
    found: list[Effect] = []
    if result.invoice is not None:
        found.append(collect(ChargePurpose.CHANGE))
    found += [send(email) for email in _storage(result.enforcement, origin, org, unblocked=True)]
    if result.plan_changed_to:
        reason = "staff_downgrade" if kind == "ResolveEscalationRequest" else "cancelled"
        found += [plan_changed(result.plan_changed_from or "", result.plan_changed_to, reason),
                  check_storage(origin.key)]
    if kind == "DowngradeRequest":
        found.append(send(emails.downgrade_scheduled(origin.key, org.plan, org.scheduled.plan or org.plan,
                                                     org.scheduled.licences or org.licences, request.requested_by,
                                                     org.renews_at)))
    elif kind == "CancelRequest" and org.status == OrgStatus.CANCELLING:
        found.append(send(emails.cancellation_scheduled(origin.key, org.plan, org.renews_at)))
    elif kind in ("UpdateCardRequest", "RetryPaymentRequest") or (
            kind == "ResolveEscalationRequest" and request.action == "retry"):
        if org.open_invoice and org.has_card:
            in_dunning = org.open_invoice == org.dunning_invoice
            attempt = (org.dunning_attempts if in_dunning else (org.pending.attempts if org.pending else 0)) + 1
            found.append(collect(ChargePurpose.EXTRA if in_dunning else ChargePurpose.CHANGE, org.open_invoice, attempt))
    return found


def _storage(enforcement: LegacyEnforcement | None, origin: Origin, org: OrgSnapshot, unblocked: bool) -> list[Email]:
    if enforcement is None:
        return []
    verdict = Verdict(blocked=[BlockedUser(b.email, b.usage_mb, b.quota_mb, b.reason) for b in enforcement.blocked],
                      unblocked=list(enforcement.unblocked) if unblocked else [],
                      auto_allocated=[AutoAllocation(*_split(a)) for a in enforcement.auto_allocated])
    return storage_emails(verdict, origin.key, org.admin_email, origin.announce, sum(h.free for h in org.storage))


def _split(allocation: str) -> tuple[str, int]:
    user, unit = allocation.rsplit(":", 1)  # the old payloads' "email:unit_gb"
    return user, int(unit)

