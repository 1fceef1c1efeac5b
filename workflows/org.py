"""The org lifecycle workflow: one per organisation, for its whole life.

It sleeps until the next step of the policy (domain.lifecycle.next_step): a trial reminder,
the trial end, the renewal, a dunning retry. Billing staff and admins change the org through
validated Updates, one per operation of domain.operations. Every change and every step is
decided by an activity (the domain's decision on the state in the database, the source of
truth) that returns a fresh snapshot and the decision's effects: e-mails, storage enforcement,
charges; this workflow carries them out in order and reacts to each charge's outcome. The run
continues-as-new after each renewal, so the history of an org stays small however many years
it lives."""

import asyncio
from datetime import datetime, timedelta
from typing import Any, Sequence

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.mail import MailActivities
    from activities.messages import (ChangeInput, ChargeInput, ChargeResult, DunningUpdate, EmailRequest,
                                     InvoiceOp, OpeningInput, OrgContext, OrgOp, RenewalInput, ReportsInput, SentReport,
                                     StepResult, reports_key)
    from activities.payments import PaymentActivities
    from domain import emails, reports
    from domain.decisions import Charge, ChargePurpose, EffectKind, Email, FinalAction
    from domain.errors import DomainError
    from domain.lifecycle import Step, StepKind, next_step
    from domain.operations import OPERATIONS, Operation
    from domain.org import InvoiceRef
    from domain.policy import Policy
    from domain.states import ChargeOutcome, OrgStatus
    from domain.limits import UPDATE_ID_MAX
    from domain.subscription import CatalogFacts, OrgSnapshot
    from domain.users import Roster
    from workflows import calls
    from workflows import search_attributes as sa
    from workflows import update_json
    from workflows.updates import HANDING_OVER, UPDATES, unknown_update
    from workflows.messages import (PAYMENT_SIGNAL, REPORT_SIGNALS, ChangeOutcome, Opening, OrgStateView,
                                    OrgWorkflowInput, PaymentNotice)

# Patches against 1.0 (docs/reliability.md): since 1.1 e-mails are regular activities on the
# documents' task queue (workflows/calls.py, `send`); since 1.2 a scheduled retry pays oldest first.
MAIL_ON_DOCUMENTS_QUEUE = "mail-on-documents-queue"
DUNNING_OLDEST_FIRST = "dunning-oldest-first"

# Temporal refuses Updates beyond 2,000 in one run; a run hands over to a new one well before.
UPDATES_PER_RUN = 1000
# Reports sent as signals (REPORT_SIGNALS) queue in the workflow and are decided in batches.
# Reports in one decision: a few hundred bytes each, well under Temporal's 2 MB payload limit.
REPORTS_PER_BATCH = 1000
# A run hands at most this many unapplied reports to the next (its input); it applies the rest first.
REPORTS_HANDED_OVER = 1000
# After an outage answered a batch, the next try waits this long (the lock stays free meanwhile).
REPORTS_RETRY = timedelta(seconds=30)


class OrgWorkflow:
    """Continue-as-new happens after a timer-driven step (trial end, renewal, dunning outcome),
    so the history of one run stays one cycle long; and, when many requests arrive within one
    cycle, before the run nears Temporal's limits (its Update count, or the history the server
    suggests continuing after), a second after the last request, so that no Update completes
    in the task that closes its run."""

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
        self.roster: Roster | None = None
        self._unvalidated: set[str] = set()  # Updates that arrived while the org was loading
        self._handing_over = False
        self._updates = 0
        # Reports received and not yet applied, in order of arrival (carried over continue-as-new),
        # and how many the org's workflow has received: each report's place (domain.reports).
        self._reports: list[SentReport] = list(input.reports)
        self._reports_received = input.reports_received
        self._one_report_at_a_time = 0   # after a batch failed for a bad value: find the report
        self._reports_in_flight = 0      # taken from the queue, their effects not yet carried out
        self._opening = input.opening
        self._opened: ChangeOutcome | None = None   # the answer to `opening`, once the first payment is decided
        self._final_after: list[tuple[FinalAction, ChargeResult]] | None = None   # during a retry: deferred
        self._paid_late = False   # payment_settled: the dunning invoice was paid after its decline

    # ---- the policy loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrgWorkflowInput) -> None:
        if input.opening is not None and not await self._open(input.opening):
            # Nothing of the org remains: the run ends once `opening` has its answer.
            await workflow.wait_condition(workflow.all_handlers_finished)
            return
        context = await calls.load_org(input.org_id)
        self.org, self.policy, self.catalog = context.snapshot, context.policy, context.catalog
        self.roster = Roster.unpack(context.users) if context.users is not None else None
        workflow.upsert_memo({"org_name": self.org.name, "admin_email": self.org.admin_email})
        while not self._continue_as_new:
            self._publish()
            assert self.step is not None
            if not await self._sleep_until(self.step.due) and not self._paid_late:
                if self._reports:
                    await self._apply_reports()
                # Woken by a change: decide again on the fresh snapshot, in a new run if this
                # one nears Temporal's limits.
                if self._near_limits():
                    self._handing_over = True  # new Updates are refused until the next run takes them
                    await workflow.sleep(timedelta(seconds=1))
                    self._continue_as_new = True
                continue
            async with self._lock:
                step = self._next_step()
                retry_now, self._paid_late = self._paid_late and step.kind == StepKind.RETRY_PAYMENT, False
                if step.due is not None and (step.due <= workflow.now() or retry_now):
                    await self._perform(step)
            if workflow.info().is_continue_as_new_suggested():
                self._continue_as_new = True
        # Drain Updates in flight before handing over to the next run, and apply reports beyond
        # what the next run's input should carry.
        while True:
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
            if len(self._reports) <= REPORTS_HANDED_OVER:
                break
            await self._apply_reports()
        # The closed run keeps accurate search attributes in visibility.
        self._publish()
        # Reports received since the last batch go to the next run: none is dropped.
        workflow.continue_as_new(OrgWorkflowInput(self.org_id, reports=list(self._reports),
                                                  reports_received=self._reports_received))

    async def _open(self, opening: Opening) -> bool:
        """A new customer (DOMAIN.md): write the org with its first cycle's invoice and charge it.
        Paid: the org lives on in this run. Declined: nothing of the org remains. Refused (an id
        taken): nothing was written. Either way `opening` answers. True when the org is open."""
        org = opening.org
        try:
            result = await calls.execute(BillingActivities.open_account,
                                         OpeningInput(org, opening.card, workflow.now()),
                                         f"open org {org.id} on {org.plan} ({org.cycle})")
        except ActivityError as err:
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.non_retryable):
                raise
            self._opened = ChangeOutcome(message=cause.message, status="refused")
            return False
        except ApplicationError as err:   # a local activity's refusal arrives unwrapped
            if not err.non_retryable:
                raise
            self._opened = ChangeOutcome(message=err.message, status="refused")
            return False
        charge = await self._carry_out(result)
        invoice = result.invoice
        if charge.outcome == ChargeOutcome.SUCCEEDED:
            org_now = self.org
            self._opened = ChangeOutcome(
                message=f"org {org.id} created on {org.plan} ({org.cycle}); paid {invoice.number}; renews on "
                        f"{org_now.renews_at:%Y-%m-%d}", status=str(org_now.status), invoice=invoice.number,
                amount=charge.amount, payment=charge.outcome)
            return True
        message = await calls.execute(BillingActivities.discard_opening,
                                      DunningUpdate(org.id, invoice.number, workflow.now(), attempt=charge.attempt,
                                                    amount=charge.amount, reason=charge.reason),
                                      f"first payment declined: discard org {org.id}")
        self._opened = ChangeOutcome(message=message, status="declined", invoice=invoice.number,
                                     amount=charge.amount, payment=charge.outcome, decline_reason=charge.reason)
        self.org = None   # nothing of it remains: the state query says so
        return False

    @workflow.update(name="opening", description="Wait for the answer to opening this org on a paid plan: its first "
                                                 "payment made, or declined (`billing org create` sends it)")
    async def opening(self) -> ChangeOutcome:
        await workflow.wait_condition(lambda: self._opened is not None)
        return self._opened

    @opening.validator
    def _opening_requested(self) -> None:
        if self._opening is None:
            raise ApplicationError(f"org {self.org_id} was not created by this run with a first payment; nothing "
                                   "to wait for", type="not_allowed", non_retryable=True)

    @property
    def _loaded(self) -> bool:
        """The org and its policy are known (a new customer's org exists before its policy is read)."""
        return self.org is not None and self.policy is not None

    @property
    def _discarded(self) -> bool:
        """A new customer's opening ended without an org (declined, or refused)."""
        return self._opened is not None and self.org is None

    def _next_step(self) -> Step:
        return next_step(self.org, self.policy, workflow.now())

    def _near_limits(self) -> bool:
        return self._updates >= UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested()

    async def _sleep_until(self, due: datetime | None) -> bool:
        """True when `due` was reached, False when a change woke the workflow first."""
        self._changed = False
        try:
            woken = lambda: self._changed or self._continue_as_new or bool(self._reports)  # noqa: E731
            if due is None:
                await workflow.wait_condition(woken)
            else:
                delay = max(timedelta(0), due - workflow.now())
                await workflow.wait_condition(woken, timeout=delay,
                                              timeout_summary=self.step.summary if self.step else None)
            return False
        except asyncio.TimeoutError:
            return True

    async def _perform(self, step: Step) -> None:
        if step.kind == StepKind.SEND_TRIAL_REMINDER:
            org, days = self.org, step.reminder_days or 0
            await self._send(emails.trial_ending(org.trial_ends_at, days, self._plan_name(org.plan)))
            self.org = org.with_changes(trial_reminders_sent=sorted({*org.trial_reminders_sent, days}))
        elif step.kind == StepKind.END_TRIAL:
            op = OrgOp(self.org_id, workflow.now(), key=f"trial_end:{self.org.trial_ends_at.isoformat()}")
            if self.org.trial_choice_plan:
                result = await calls.execute(BillingActivities.convert_trial, op, "convert trial to the chosen plan")
            else:
                result = await calls.execute(BillingActivities.expire_trial, op, "trial expired: move to free")
            await self._carry_out(result)
            self._continue_as_new = True
        elif step.kind == StepKind.RENEW:
            period_start = self.org.renews_at
            result = await calls.execute(BillingActivities.open_renewal,
                                         RenewalInput(self.org_id, period_start, workflow.now()),
                                         f"open renewal {period_start:%Y-%m-%d}")
            await self._carry_out(result)
            self._continue_as_new = True
        elif step.kind == StepKind.RETRY_PAYMENT:
            org = self.org
            if workflow.patched(DUNNING_OLDEST_FIRST):   # every unpaid cycle, oldest first
                await self._retry_oldest_first(org)
            else:   # 1.0 and 1.1: the arrears first, the dunning invoice (its outcome moves the ladder) last
                for unpaid in org.arrears:
                    await self._collect(Charge(ChargePurpose.EXTRA, unpaid.invoice, unpaid.attempts + 1), None)
                await self._collect(Charge(ChargePurpose.RETRY, org.dunning_invoice, org.dunning_attempts + 1), None)
            # Dunning ended (paid, or the final action): a new run starts from the outcome.
            self._continue_as_new = self.org.status not in (OrgStatus.PAST_DUE, OrgStatus.ESCALATED)

    async def _retry_oldest_first(self, org: OrgSnapshot) -> None:
        """The invoice dunning is on at its turn moves the ladder; its final action waits for the rest."""
        self._final_after = []
        for number, attempt in org.next_attempts.items():
            purpose = ChargePurpose.RETRY if number == self.org.dunning_invoice else ChargePurpose.EXTRA
            await self._collect(Charge(purpose, number, attempt), None)
        deferred, self._final_after = self._final_after, None
        for action, declined in deferred:
            await self._final_action(action, declined)

    # ---- effects of a decision ---------------------------------------------------------------

    async def _carry_out(self, result: StepResult, declined: ChargeResult | None = None) -> ChargeResult | None:
        """Carry out the effects of a decision in order (a storage check was carried out in the
        decision's own transaction: its e-mails are among them). `declined`: the charge whose
        decline was decided, for the final dunning action. Returns the last charge made."""
        self.org = result.snapshot
        charge = None
        for effect in result.effects:
            if effect.kind == EffectKind.EMAIL:
                await self._send(effect.email)
            elif effect.kind == EffectKind.CHARGE:
                charge = await self._collect(effect.charge, result.invoice)
            elif effect.kind == EffectKind.FINAL_DUNNING_ACTION and self._final_after is not None:
                self._final_after.append((effect.final_action, declined))   # a retry's other cycles first
            elif effect.kind == EffectKind.FINAL_DUNNING_ACTION:
                await self._final_action(effect.final_action, declined)
        return charge

    async def _collect(self, charge: Charge, issued: InvoiceRef | None) -> ChargeResult:
        """Charge an invoice; the outcome is the next decision: paid, or declined at its rung."""
        number = charge.invoice or issued.number
        result = await calls.execute(PaymentActivities.charge_invoice,
                                     ChargeInput(self.org_id, number, charge.attempt, workflow.now()),
                                     f"charge {number} attempt {charge.attempt}",   # an Update's waits at most:
                                     limit=calls.CHANGE_TIMEOUT if workflow.current_update_info() else None)
        if result.outcome == ChargeOutcome.SUCCEEDED:
            settled = await calls.execute(BillingActivities.settle_paid_invoice,
                                          InvoiceOp(self.org_id, number, workflow.now()), f"settle {number}")
            await self._carry_out(settled)
            return result
        if charge.purpose == ChargePurpose.CHANGE:  # the change keeps waiting for payment
            context: OrgContext = await calls.execute(BillingActivities.load_org, self.org_id, "reload org")
            self.org = context.snapshot
            return result
        if charge.purpose == ChargePurpose.OPENING:  # the org is discarded (_open)
            return result
        update = DunningUpdate(self.org_id, number, workflow.now(), attempt=result.attempt, amount=result.amount,
                               reason=result.reason, purpose=charge.purpose)
        if charge.purpose == ChargePurpose.CYCLE:
            declined = await calls.execute(BillingActivities.enter_dunning, update, f"enter dunning on {number}")
        else:
            declined = await calls.execute(BillingActivities.record_failed_attempt, update,
                                           f"attempt {result.attempt} on {number} declined")
        await self._carry_out(declined, result)
        return result

    async def _final_action(self, action: FinalAction, charge: ChargeResult) -> None:
        """After the last retry: the free plan, or (a large account) billing staff."""
        update = DunningUpdate(self.org_id, charge.invoice_number, workflow.now(), attempt=charge.attempt,
                               amount=charge.amount, reason=charge.reason)
        if action == FinalAction.ESCALATE:
            result = await calls.execute(BillingActivities.escalate, update, "escalate to billing staff (S1-Critical)")
        else:
            result = await calls.execute(BillingActivities.write_off_and_free, update,
                                         f"write off {charge.invoice_number}, move to free")
        await self._carry_out(result)

    async def _send(self, email: Email) -> None:
        request, summary = EmailRequest.of(self.org_id, workflow.now(), email), f"e-mail {email.template}"
        if workflow.patched(MAIL_ON_DOCUMENTS_QUEUE):
            await calls.send(MailActivities.send_email, request, summary)
        else:   # 1.0: a local activity first, on the org's own queue
            await calls.execute(MailActivities.send_email, request, summary)

    # ---- updates from the admin and billing staff ---------------------------------------------------

    def _validate(self, operation: Operation, request: Any) -> None:
        info = workflow.current_update_info()
        if info is not None and self._handing_over:
            # Accepted Updates would keep the run from draining, up to Temporal's 2,000 per run.
            raise ApplicationError(f"org {self.org_id} is handing over to a new run of its workflow; send the "
                                   "request again in a moment", type=HANDING_OVER, non_retryable=True)
        if info is not None and len(info.id) > UPDATE_ID_MAX:
            raise ApplicationError(f"update id: at most {UPDATE_ID_MAX} characters, got {len(info.id)}",
                                   type="invalid_input", non_retryable=True)
        if not self._loaded:  # still loading: the handler validates once the snapshot is there
            if info is not None:
                self._unvalidated.add(info.id)
            return
        try:
            operation.validate(self.org, self.policy, self.catalog, request, workflow.now(), self.roster)
        except DomainError as err:
            raise ApplicationError(err.message, type=err.type, non_retryable=True) from None

    async def _change(self, operation: Operation, request: Any, key: str) -> ChangeOutcome:
        """`key`: the change's business key (its Update's id), which makes it happen once."""
        await workflow.wait_condition(lambda: self._loaded or self._discarded)
        if self._discarded:   # a new customer's first payment was declined: there is no org
            raise ApplicationError(self._opened.message, type="unknown_org", non_retryable=True)
        info = workflow.current_update_info()
        if info is not None and info.id in self._unvalidated:
            self._unvalidated.discard(info.id)
            self._validate(operation, request)
        # A change applied since the validator ran is the activity's to refuse: it checks again on
        # the stored state (not here, in workflow code, where a rule made stricter later would
        # change what a recorded run decided).
        async with self._lock:
            self._updates += 1
            summary = f"{operation.name} requested by {getattr(request, 'requested_by', '') or 'admin'}"
            result = await calls.decide(BillingActivities.apply_change,
                                        ChangeInput(self.org_id, request, key=key, at=workflow.now()), summary,
                                        operation.name)
            for email in result.users_added:
                self.roster.add(email)
            charge = await self._carry_out(result)
            self._changed = True
            self._publish()
            return ChangeOutcome.of(result.message, self.org, charge)

    # ---- usage reports and contact counts -------------------------------------------------------

    @workflow.signal(name=PAYMENT_SIGNAL)
    def payment_settled(self, notice: PaymentNotice) -> None:
        """The dunning invoice's declined charge succeeded later: charged again now, answered with it."""
        if notice.succeeded and self.org is not None and self.org.dunning_invoice == notice.invoice_number:
            self._paid_late = self._changed = True

    @workflow.signal(name="usage_reported")
    def usage_reported(self, payload: Any = None) -> None:
        """A usage report (the fields of `set_usage`): queued, then applied with the reports
        around it (`_apply_reports`). A bad one is dropped with a log line; there is no one to
        answer."""
        self._receive_report("usage_reported", payload)

    @workflow.signal(name="contacts_reported")
    def contacts_reported(self, payload: Any = None) -> None:
        """A contact count (the fields of `set_contacts`), like a usage report."""
        self._receive_report("contacts_reported", payload)

    def _arrived(self, operation: Operation, request: Any) -> Any:
        """A report stamped with its time and identity, or when and in which place it arrived."""
        if operation.name not in reports.REPORT_OPERATIONS:
            return request
        self._reports_received += 1
        return reports.stamped(request, workflow.now(),
                               reports.arrival_id(self._reports_received, workflow.info().run_id))

    def _receive_report(self, signal: str, payload: Any) -> None:
        operation = OPERATIONS[REPORT_SIGNALS[signal]]
        try:
            request = self._arrived(operation, update_json.read_request(operation, payload))
            if self._loaded:  # else the decision checks it (users, bounds) with the batch
                operation.validate(self.org, self.policy, self.catalog, request, workflow.now(), self.roster)
        except DomainError as err:
            workflow.logger.warning("%s dropped: %s", signal, err.message)
            return
        self._reports.append(SentReport(request))

    async def _apply_reports(self) -> None:
        """The reports received so far, decided at once (up to REPORTS_PER_BATCH), under the org's
        lock like any change. The batch is named by its reports, so a retried decision is the
        same decision. An outage leaves the reports queued for a later try; a batch failing on a
        value the database refuses is retried one report at a time, and only that one is dropped."""
        retry_later = False
        async with self._lock:
            size = 1 if self._one_report_at_a_time else REPORTS_PER_BATCH
            batch = self._reports[:size]
            if not batch:
                return
            key = reports_key(batch)
            try:
                result = await calls.decide(BillingActivities.apply_reports,
                                            ReportsInput(self.org_id, batch, key, workflow.now()),
                                            f"apply {len(batch)} report(s)", f"{len(batch)} report(s)")
            except ApplicationError as err:
                if err.type == "unavailable":
                    retry_later = True
                elif len(batch) > 1:
                    self._one_report_at_a_time = len(batch)
                else:
                    del self._reports[:1]
                    workflow.logger.warning("report dropped (%s): %s", batch[0].operation, err.message)
                    self._one_report_at_a_time = max(0, self._one_report_at_a_time - 1)
            else:
                del self._reports[:len(batch)]
                self._one_report_at_a_time = max(0, self._one_report_at_a_time - len(batch))
                self._reports_in_flight = len(batch)
                try:
                    await self._carry_out(result)
                finally:
                    self._reports_in_flight = 0
                if not result.message.endswith(f"{len(batch)} applied"):
                    workflow.logger.info("%s", result.message)
        if retry_later:
            workflow.logger.warning("%d report(s) wait: the database did not answer", len(self._reports))
            await workflow.sleep(REPORTS_RETRY)

    # ---- an Update the workflow does not have --------------------------------------------------

    @workflow.update(dynamic=True)
    async def unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        raise unknown_update(name)

    @unknown_update.validator
    def refuse_unknown_update(self, name: str, args: Sequence[RawValue]) -> None:
        """Refused in one line, final (the SDK's own answer is a retryable RuntimeError)."""
        raise unknown_update(name)

    @workflow.query(name="state")
    def state(self) -> OrgStateView:
        if self._discarded:
            raise ApplicationError(self._opened.message, type="unknown_org")
        if not self._loaded:
            raise ApplicationError("the org workflow is still loading")
        step = self.step or next_step(self.org, self.policy, workflow.now())
        return OrgStateView(snapshot=self.org, next_action=step.summary, next_action_at=step.due,
                            history_length=workflow.info().get_current_history_length(),
                            reports_received=self._reports_received,
                            reports_waiting=len(self._reports) + self._reports_in_flight)

    # ---- helpers -----------------------------------------------------------------------------

    def _plan_name(self, plan_id: str) -> str:
        plan = self.catalog.plan(plan_id) if self.catalog else None
        return plan.name if plan else plan_id

    def _publish(self) -> None:
        """Keep the Temporal UI self-explaining: search attributes, current details, memo."""
        org = self.org
        self.step = self._next_step()
        updates = []
        for key, value in sa.published(org, self.step.due).items():
            if self._published.get(key.name, object()) != value:
                updates.append(key.value_set(value) if value is not None else key.value_unset())
                self._published[key.name] = value
        if updates:
            workflow.upsert_search_attributes(updates)
        when = f"at {self.step.due:%Y-%m-%d %H:%M} UTC" if self.step.due else "no timer"
        workflow.set_current_details(f"**{org.status}** on {org.plan}: next, {self.step.summary} ({when})")


# One Update per operation (workflows/updates.py): the SDK finds them as the class's methods.
for _name, _method in UPDATES.items():
    setattr(OrgWorkflow, _name, _method)
OrgWorkflow = workflow.defn(name="OrgLifecycle")(OrgWorkflow)

