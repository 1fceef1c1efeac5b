"""The org lifecycle workflow: one per organisation, for its whole life.

It sleeps until the next step of the policy (domain.lifecycle.next_step): a trial reminder,
the trial end, the renewal, a dunning retry. Billing staff and admins change the org through
validated Updates; every change goes through an activity that writes the database (the
source of truth) and returns a fresh snapshot. The run continues-as-new after each renewal,
so the history of an org stays small however many years it lives."""

import asyncio
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.mail import MailActivities
    from activities.messages import (ChangeInput, ChangeResult, ChargeInput, ChargeResult, DunningUpdate,
                                     EmailRequest, Enforcement, InvoiceInfo, InvoiceOp, OrgContext, OrgOp,
                                     RenewalInput)
    from activities.payments import PaymentActivities
    import domain.requests as rq
    from domain import rules
    from domain.errors import DomainError
    from domain.lifecycle import Step, StepKind, next_retry_after, next_step
    from domain.policy import Policy
    from domain.snapshot import CatalogFacts, OrgSnapshot
    from domain.states import FREE_PLAN, OrgStatus
    from workflows import search_attributes as sa
    from workflows.messages import ChangeOutcome, OrgStateView, OrgWorkflowInput

# Database and SMTP outages are retried until they pass: the workflow waits, nothing is lost.
INFRA_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=60)


def _operation(kind: str, request_type: type, check: Callable[..., None], description: str):
    """Declare one Update: a validator (refusals leave no trace in history) and a handler
    that applies the change through the database."""

    async def handler(self: "OrgWorkflow", request: Any) -> ChangeOutcome:
        return await self._change(kind, request, check)

    def validator(self: "OrgWorkflow", request: Any) -> None:
        self._validate(check, request)

    handler.__name__ = validator.__name__ = kind
    handler.__annotations__ = {"request": request_type, "return": ChangeOutcome}
    validator.__annotations__ = {"request": request_type, "return": None}
    update = workflow.update(name=kind, description=description)(handler)
    update.validator(validator)
    return update


@workflow.defn(name="OrgLifecycle")
class OrgWorkflow:
    """Continue-as-new happens only after a timer-driven step (trial end, renewal, dunning
    outcome), never straight after an Update: the history of one run stays one cycle long,
    and an Update is never completed in the same task that closes its run."""

    @workflow.init
    def __init__(self, input: OrgWorkflowInput) -> None:
        self.org_id = input.org_id
        self.org: OrgSnapshot | None = None
        self.policy: Policy | None = None
        self.catalog: CatalogFacts | None = None
        self.step: Step | None = None
        self._changed = False
        self._continue_as_new = False
        self._lock = asyncio.Lock()
        self._published: dict[str, Any] = {}

    # ---- the policy loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrgWorkflowInput) -> None:
        context = await self._load_org(input.org_id)
        self.org, self.policy, self.catalog = context.snapshot, context.policy, context.catalog
        workflow.upsert_memo({"org_name": self.org.name, "admin_email": self.org.admin_email})
        while not self._continue_as_new:
            self._publish()
            assert self.step is not None
            if not await self._sleep_until(self.step.due):
                continue  # woken by a change: decide again on the fresh snapshot
            async with self._lock:
                step = next_step(self.org, self.policy, workflow.now())
                if step.due is not None and step.due <= workflow.now():
                    await self._perform(step)
            if workflow.info().is_continue_as_new_suggested():
                self._continue_as_new = True
        # Drain Updates in flight before handing over to the next run.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
        # The closed run keeps accurate search attributes in visibility. Patched: runs recorded
        # before this call existed replay without it (tests/replay, docs/reliability.md).
        if workflow.patched("publish-before-continue-as-new"):
            self._publish()
        workflow.continue_as_new(OrgWorkflowInput(self.org_id))

    async def _sleep_until(self, due: datetime | None) -> bool:
        """True when `due` was reached, False when a change woke the workflow first."""
        self._changed = False
        try:
            if due is None:
                await workflow.wait_condition(lambda: self._changed or self._continue_as_new)
            else:
                delay = max(timedelta(0), due - workflow.now())
                await workflow.wait_condition(lambda: self._changed or self._continue_as_new, timeout=delay,
                                              timeout_summary=self.step.summary if self.step else None)
            return False
        except asyncio.TimeoutError:
            return True

    async def _perform(self, step: Step) -> None:
        if step.kind == StepKind.SEND_TRIAL_REMINDER:
            await self._send_trial_reminder(step.reminder_days or 0)
        elif step.kind == StepKind.END_TRIAL:
            await self._end_trial()
        elif step.kind == StepKind.RENEW:
            await self._renew()
        elif step.kind == StepKind.RETRY_PAYMENT:
            await self._scheduled_retry()

    async def _send_trial_reminder(self, days: int) -> None:
        org = self.org
        await self._email("trial_ending", f"trial:{org.trial_ends_at.isoformat()}:{days}d",
                          values={"days_left": days, "trial_plan_name": self._plan_name(org.plan)},
                          dates={"trial_ends_on": org.trial_ends_at})
        self.org = org.with_changes(trial_reminders_sent=sorted({*org.trial_reminders_sent, days}))

    async def _end_trial(self) -> None:
        op = OrgOp(self.org_id, workflow.now(), key=f"trial_end:{self.org.trial_ends_at.isoformat()}")
        if self.org.trial_choice_plan:
            before = self.org.plan
            result = await self._db(BillingActivities.convert_trial, op, summary="convert trial to the chosen plan")
            self.org = result.snapshot
            await self._plan_changed_email(before, self.org.plan, "trial_converted")
            await self._collect_cycle(result.invoice, started_at=self.org.period_start)
        else:
            result = await self._db(BillingActivities.expire_trial, op, summary="trial expired: move to free")
            self.org = result.snapshot
            enforcement = await self._enforce_storage(op.key)
            await self._email("trial_expired", f"trial:{self.org.trial_ends_at.isoformat()}",
                              values={"plan_name": self._plan_name(FREE_PLAN),
                                      "blocked_users": [b.email for b in enforcement.blocked]})
            await self._storage_emails(enforcement, op.key)
        self._continue_as_new = True

    async def _renew(self) -> None:
        period_start = self.org.renews_at
        result = await self._db(BillingActivities.open_renewal,
                                RenewalInput(self.org_id, period_start, workflow.now()),
                                summary=f"open renewal {period_start:%Y-%m-%d}")
        self.org = result.snapshot
        key = f"renewal:{period_start.isoformat()}"
        if result.previous_plan != self.org.plan:
            reason = "cancelled" if result.moved_to_free else "downgrade"
            await self._plan_changed_email(result.previous_plan, self.org.plan, reason, occasion=key)
            await self._storage_emails(await self._enforce_storage(key), key)
        if result.invoice is not None:
            await self._collect_cycle(result.invoice, started_at=period_start)
        self._continue_as_new = True

    # ---- charging and dunning ----------------------------------------------------------------

    async def _collect_cycle(self, invoice: InvoiceInfo | None, started_at: datetime) -> None:
        """First charge of a cycle; a decline starts the dunning ladder."""
        if invoice is None:
            return
        charge = await self._charge(invoice.number, attempt=1)
        if charge.outcome == "succeeded":
            await self._settle(charge)
            return
        next_retry = next_retry_after(started_at, self.policy, 0)
        result = await self._db(BillingActivities.enter_dunning,
                                DunningUpdate(self.org_id, invoice.number, workflow.now(), attempt=1,
                                              started_at=started_at, next_retry_at=next_retry),
                                summary=f"enter dunning on {invoice.number}")
        self.org = result.snapshot
        await self._payment_failed_email(charge, next_retry, final_action=None)

    async def _scheduled_retry(self) -> None:
        invoice = self.org.dunning_invoice
        charge = await self._charge(invoice, attempt=self.org.dunning_attempts + 1)
        if charge.outcome == "succeeded":
            await self._settle(charge)
            self._continue_as_new = True
            return
        retries_done = self.org.dunning_retries_done + 1
        next_retry = next_retry_after(self.org.dunning_started_at, self.policy, retries_done)
        result = await self._db(BillingActivities.record_failed_attempt,
                                DunningUpdate(self.org_id, invoice, workflow.now(), attempt=charge.attempt,
                                              scheduled=True, next_retry_at=next_retry),
                                summary=f"retry {retries_done} declined")
        self.org = result.snapshot
        if next_retry is not None:
            await self._payment_failed_email(charge, next_retry, final_action=None)
        elif self.org.large_account:
            await self._escalate(charge)
        else:
            await self._final_downgrade(charge)

    async def _escalate(self, charge: ChargeResult) -> None:
        """Our choice (DOMAIN.md): a large org is never downgraded for non-payment; billing staff
        get an S1-Critical case with its deadlines."""
        now = workflow.now()
        first = now + timedelta(hours=self.policy.escalation_first_response_hours)
        determination = now + timedelta(hours=self.policy.escalation_determination_hours)
        result = await self._db(BillingActivities.escalate,
                                DunningUpdate(self.org_id, charge.invoice_number, now, first_response_due=first,
                                              determination_due=determination),
                                summary="escalate to billing staff (S1-Critical)")
        self.org = result.snapshot
        await self._payment_failed_email(charge, None, final_action="escalated")
        await self._email("escalation", f"escalation:{charge.invoice_number}:{charge.attempt}",
                          to=[self.policy.staff_notify_email],
                          values={"severity": "S1-Critical", "reason": "payment_failed",
                                  "licences": self.org.licences, "invoice_number": charge.invoice_number,
                                  "first_response_due": f"{first:%Y-%m-%d %H:%M} UTC",
                                  "determination_due": f"{determination:%Y-%m-%d %H:%M} UTC"},
                          money={"amount": charge.amount})

    async def _final_downgrade(self, charge: ChargeResult) -> None:
        result = await self._db(BillingActivities.write_off_and_free,
                                DunningUpdate(self.org_id, charge.invoice_number, workflow.now()),
                                summary=f"write off {charge.invoice_number}, move to free")
        self.org = result.snapshot
        key = f"dunning_final:{charge.invoice_number}"
        await self._payment_failed_email(charge, None, final_action="free")
        await self._plan_changed_email(result.previous_plan, FREE_PLAN, "payment_failed", occasion=key)
        await self._storage_emails(await self._enforce_storage(key), key)
        self._continue_as_new = True

    async def _retry_open_invoice(self) -> ChargeResult | None:
        """An unscheduled attempt (card updated, staff retry): does not move the ladder on."""
        org = self.org
        invoice = org.open_invoice
        if invoice is None or not org.has_card:
            return None
        in_dunning = invoice == org.dunning_invoice
        attempt = (org.dunning_attempts if in_dunning else org.pending_attempts) + 1
        charge = await self._charge(invoice, attempt)
        if charge.outcome == "succeeded":
            await self._settle(charge)
        elif in_dunning:
            result = await self._db(BillingActivities.record_failed_attempt,
                                    DunningUpdate(self.org_id, invoice, workflow.now(), attempt=attempt,
                                                  scheduled=False, next_retry_at=org.next_retry_at),
                                    summary="extra attempt declined")
            self.org = result.snapshot
            await self._payment_failed_email(charge, self.org.next_retry_at,
                                             final_action=None if self.org.next_retry_at else
                                             ("escalated" if self.org.status == OrgStatus.ESCALATED else None))
        else:
            self.org = (await self._db(BillingActivities.load_org, self.org_id, summary="reload org")).snapshot
        return charge

    async def _charge(self, invoice_number: str, attempt: int) -> ChargeResult:
        return await workflow.execute_activity_method(
            PaymentActivities.charge_invoice, ChargeInput(self.org_id, invoice_number, attempt, workflow.now()),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=INFRA_RETRY,
            summary=f"charge {invoice_number} attempt {attempt}")

    async def _settle(self, charge: ChargeResult) -> None:
        result = await self._db(BillingActivities.settle_paid_invoice,
                                InvoiceOp(self.org_id, charge.invoice_number, workflow.now()),
                                summary=f"settle {charge.invoice_number}")
        self.org = result.snapshot
        await self._email("receipt", f"receipt:{charge.invoice_number}",
                          values={"invoice_number": charge.invoice_number, "lines": [],
                                  "card": f"{(self.org.card_brand or 'card').title()} •••• {self.org.card_last4}"
                                  if self.org.card_last4 else None, "period_start": None, "period_end": None},
                          money={"amount": charge.amount})
        if result.previous_plan != self.org.plan:
            key = f"paid:{charge.invoice_number}"
            await self._plan_changed_email(result.previous_plan, self.org.plan, "upgrade", occasion=key)
            await self._storage_emails(await self._enforce_storage(key), key)

    # ---- storage -------------------------------------------------------------------------------

    async def _enforce_storage(self, key: str) -> Enforcement:
        result = await self._db(BillingActivities.enforce_storage, OrgOp(self.org_id, workflow.now(), key=key),
                                summary="enforce storage quotas")
        self.org = result.snapshot
        return result.enforcement

    async def _storage_emails(self, enforcement: Enforcement | None, key: str) -> None:
        if enforcement is None:
            return
        if enforcement.blocked:
            users = [{"email": b.email, "usage": f"{b.usage_mb / 1024:.1f} GB", "quota": f"{b.quota_mb / 1024:g} GB",
                      "reason": b.reason} for b in enforcement.blocked]
            await self._email("storage_blocked", f"blocked:{key}",
                              to=[self.org.admin_email] + [b.email for b in enforcement.blocked
                                                           if b.email != self.org.admin_email],
                              values={"users": users})
        for allocation in enforcement.auto_allocated:
            user, unit = allocation.rsplit(":", 1)
            await self._email("storage_auto_allocated", f"auto:{key}:{allocation}",
                              values={"user": user, "unit_gb": int(unit),
                                      "remaining_units": sum(h.free for h in self.org.storage)})

    # ---- updates from the admin and billing staff ---------------------------------------------------

    def _validate(self, check: Callable[..., None], request: Any) -> None:
        if self.org is None:
            return  # still loading: the handler validates once the snapshot is there
        try:
            check(self.org, self.policy, self.catalog, request, workflow.now())
        except DomainError as err:
            raise ApplicationError(err.message, type=err.type, non_retryable=True) from None

    async def _change(self, kind: str, request: Any, check: Callable[..., None]) -> ChangeOutcome:
        await workflow.wait_condition(lambda: self.org is not None)
        async with self._lock:
            # Checked again under the lock: a concurrent change may have been applied since.
            self._validate(check, request)
            update_id = workflow.current_update_info().id if workflow.current_update_info() else kind
            result: ChangeResult = await self._db(
                BillingActivities.apply_change,
                ChangeInput(self.org_id, kind, asdict(request), key=f"update:{self.org_id}:{update_id}",
                            at=workflow.now()),
                summary=f"{kind} requested by {getattr(request, 'requested_by', '') or 'admin'}")
            self.org = result.snapshot
            outcome = await self._after_change(kind, request, result, key=f"update:{update_id}")
            self._changed = True
            self._publish()
            return outcome

    async def _after_change(self, kind: str, request: Any, result: ChangeResult, key: str) -> ChangeOutcome:
        charge: ChargeResult | None = None
        if result.invoice is not None:
            charge = await self._charge(result.invoice.number, attempt=1)
            if charge.outcome == "succeeded":
                await self._settle(charge)
            else:
                self.org = (await self._db(BillingActivities.load_org, self.org_id, summary="reload org")).snapshot
        await self._storage_emails(result.enforcement, key)
        if result.enforcement and result.enforcement.unblocked:
            for user in result.enforcement.unblocked:
                await self._email("user_unblocked", f"unblocked:{key}:{user}", values={"user": user})
        if result.plan_changed_to:
            await self._plan_changed_email(result.plan_changed_from or "", result.plan_changed_to,
                                           "staff_downgrade" if kind == "resolve_escalation" else "cancelled",
                                           occasion=key)
            await self._storage_emails(await self._enforce_storage(key), key)
        if kind == "request_downgrade":
            await self._email("downgrade_scheduled", key,
                              values={"from_plan_name": self._plan_name(self.org.plan),
                                      "to_plan_name": self._plan_name(self.org.scheduled_plan or ""),
                                      "licences": self.org.scheduled_licences or self.org.licences,
                                      "requested_by": request.requested_by},
                              dates={"effective_on": self.org.renews_at})
        elif kind == "cancel" and self.org.status == OrgStatus.CANCELLING:
            await self._email("cancellation_scheduled", key, values={"plan_name": self._plan_name(self.org.plan)},
                              dates={"effective_on": self.org.renews_at})
        elif kind in ("update_card", "retry_payment") or (kind == "resolve_escalation" and request.action == "retry"):
            charge = await self._retry_open_invoice() or charge
        message = result.message
        if charge is not None:
            message += (f"; paid {charge.invoice_number}" if charge.outcome == "succeeded" else
                        f"; payment of {charge.invoice_number} declined ({charge.reason})"
                        + ("; the change waits for payment" if self.org.pending_invoice else ""))
        return ChangeOutcome(message=message, status=str(self.org.status),
                             invoice=charge.invoice_number if charge else None,
                             amount=charge.amount if charge else None,
                             payment=charge.outcome if charge else None,
                             decline_reason=charge.reason if charge else None)

    upgrade = _operation("upgrade", rq.UpgradeRequest, rules.check_upgrade,
                         "Upgrade the plan (during a trial: from the trial end)")
    add_licences = _operation("add_licences", rq.AddLicencesRequest, rules.check_add_licences,
                              "Buy licences, charged pro rata to the renewal date")
    add_user = _operation("add_user", rq.AddUserRequest, rules.check_add_user, "Add a user (needs a free licence)")
    buy_storage = _operation("buy_storage", rq.BuyStorageRequest, rules.check_buy_storage,
                             "Buy storage units, charged pro rata")
    remove_storage = _operation("remove_storage", rq.RemoveStorageRequest, rules.check_remove_storage,
                                "Remove unallocated storage units from the next renewal")
    allocate_storage = _operation("allocate_storage", rq.AllocateStorageRequest, rules.check_allocate_storage,
                                  "Allocate a storage unit to a user")
    set_usage = _operation("set_usage", rq.SetUsageRequest, rules.check_set_usage, "Report a user's mailbox usage")
    buy_addon = _operation("buy_addon", rq.BuyAddonRequest, rules.check_buy_addon, "Buy a flat add-on")
    remove_addon = _operation("remove_addon", rq.RemoveAddonRequest, rules.check_remove_addon,
                              "Remove a flat add-on at the next renewal")
    change_tier = _operation("change_tier", rq.ChangeTierRequest, rules.check_change_tier,
                             "Raise (now, pro rata) or lower (next cycle) the subscriber tier")
    set_contacts = _operation("set_contacts", rq.SetContactsRequest, rules.check_set_contacts,
                              "Report the number of subscriber contacts")
    switch_to_yearly = _operation("switch_to_yearly", rq.SwitchToYearlyRequest, rules.check_switch_to_yearly,
                                  "Switch a monthly org to yearly billing now")
    update_card = _operation("update_card", rq.UpdateCardRequest, rules.check_update_card,
                             "Store a new card token; retries an open invoice at once")
    request_downgrade = _operation("request_downgrade", rq.DowngradeRequest, rules.check_request_downgrade,
                                   "Staff: schedule a downgrade for the cycle end (15-30 days before renewal)")
    cancel_downgrade = _operation("cancel_downgrade", rq.CancelDowngradeRequest, rules.check_cancel_downgrade,
                                  "Staff: cancel a scheduled downgrade")
    cancel = _operation("cancel", rq.CancelRequest, rules.check_cancel,
                        "Cancel the subscription at the cycle end")
    undo_cancel = _operation("undo_cancel", rq.UndoCancelRequest, rules.check_undo_cancel,
                             "Undo a cancellation before the cycle end")
    retry_payment = _operation("retry_payment", rq.RetryPaymentRequest, rules.check_retry_payment,
                               "Staff: retry the open invoice now")
    resolve_escalation = _operation("resolve_escalation", rq.ResolveEscalationRequest,
                                    rules.check_resolve_escalation,
                                    "Staff: resolve an escalation (extend, downgrade or retry)")

    @workflow.signal(name="usage_reported")
    async def usage_reported(self, request: rq.SetUsageRequest) -> None:
        """Usage feeds arrive as signals (fire and forget); bad ones are dropped with a log line."""
        try:
            await self._change("set_usage", request, rules.check_set_usage)
        except ApplicationError as err:
            workflow.logger.warning("usage report dropped: %s", err.message)

    @workflow.query(name="state")
    def state(self) -> OrgStateView:
        if self.org is None:
            raise ApplicationError("the org workflow is still loading")
        step = self.step or next_step(self.org, self.policy, workflow.now())
        return OrgStateView(snapshot=self.org, next_action=step.summary, next_action_at=step.due,
                            history_length=workflow.info().get_current_history_length())

    # ---- helpers -----------------------------------------------------------------------------

    async def _load_org(self, org_id: str) -> OrgContext:
        """Every run starts from the database, the source of truth. A local activity: a read that
        takes milliseconds needs no task queue round trip, and every renewal starts a run, so
        in a month-end storm this is one server task in six saved. Patched: runs recorded while
        it was a regular activity replay as one (tests/replay)."""
        if workflow.patched("load-org-as-local-activity"):
            return await workflow.execute_local_activity_method(
                BillingActivities.load_org, org_id, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=INFRA_RETRY, summary="load org")
        return await self._db(BillingActivities.load_org, org_id, summary="load org")

    async def _db(self, method: Callable[..., Any], arg: Any, summary: str) -> Any:
        return await workflow.execute_activity_method(method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                                                      retry_policy=INFRA_RETRY, summary=summary)

    async def _email(self, template: str, occasion: str, values: dict[str, Any] | None = None,
                     money: dict[str, int] | None = None, dates: dict[str, datetime] | None = None,
                     to: list[str] | None = None) -> None:
        await workflow.execute_activity_method(
            MailActivities.send_email,
            EmailRequest(self.org_id, template, occasion, workflow.now(), to=to or [], values=values or {},
                         money=money or {}, dates=dates or {}),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=INFRA_RETRY, summary=f"e-mail {template}")

    async def _plan_changed_email(self, before: str, after: str, reason: str, occasion: str = "") -> None:
        if before == after or (reason == "trial_expired"):
            return
        await self._email("plan_changed", f"plan:{occasion or reason}:{before}->{after}",
                          values={"from_plan_name": self._plan_name(before), "to_plan_name": self._plan_name(after),
                                  "reason": reason},
                          dates={"effective_on": workflow.now()})

    async def _payment_failed_email(self, charge: ChargeResult, next_retry: datetime | None,
                                    final_action: str | None) -> None:
        started = self.org.dunning_started_at
        if next_retry is not None and started is not None and \
                next_retry == started + timedelta(days=self.policy.retry_days[-1]):
            # Before the last retry, say what its failure would mean.
            final_action = "escalated" if self.org.large_account else "free"
        await self._email("payment_failed", f"failed:{charge.invoice_number}:{charge.attempt}",
                          values={"invoice_number": charge.invoice_number, "attempt": charge.attempt,
                                  "reason": charge.reason or "declined", "final_action": final_action,
                                  "grace_note": None, "next_retry_on": None},
                          money={"amount": charge.amount},
                          dates={"next_retry_on": next_retry} if next_retry else {})

    def _plan_name(self, plan_id: str) -> str:
        plan = self.catalog.plan(plan_id) if self.catalog else None
        return plan.name if plan else plan_id

    def _publish(self) -> None:
        """Keep the Temporal UI self-explaining: search attributes, current details, memo."""
        org = self.org
        self.step = next_step(org, self.policy, workflow.now())
        values: dict[str, Any] = {"OrgId": org.org_id, "OrgStatus": str(org.status), "Plan": org.plan,
                                  "BillingCycle": str(org.cycle) if org.cycle else "none",
                                  "NextActionAt": self.step.due, "DunningAttempt": org.dunning_attempts,
                                  "LargeAccount": org.large_account}
        keys = {"OrgId": sa.ORG_ID, "OrgStatus": sa.ORG_STATUS, "Plan": sa.PLAN, "BillingCycle": sa.BILLING_CYCLE,
                "NextActionAt": sa.NEXT_ACTION_AT, "DunningAttempt": sa.DUNNING_ATTEMPT,
                "LargeAccount": sa.LARGE_ACCOUNT}
        updates = []
        for name, value in values.items():
            if self._published.get(name, object()) != value:
                key = keys[name]
                updates.append(key.value_set(value) if value is not None else key.value_unset())
                self._published[name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        when = f"at {self.step.due:%Y-%m-%d %H:%M} UTC" if self.step.due else "no timer"
        workflow.set_current_details(f"**{org.status}** on {org.plan}: next, {self.step.summary} ({when})")
