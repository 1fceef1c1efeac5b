"""One table of operations (STYLE.md): every change an admin or billing staff can ask for,
registered once with its request type, its check (domain.rules) and its decision.

The workflow's Updates, the `billing` CLI commands and the `billing simulate` actions are
generated from `OPERATIONS`; a new operation is one entry here plus its decision.

A purchase (something charged now, pro rata) is decided in two steps: `_purchase` prices the
request and leaves it waiting for payment; `apply` re-applies it to the state of the moment
when its invoice is paid (domain.payments), so what is bought is what the org has then."""

from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from typing import Any, Callable

from domain import emails
from domain import reports
from domain import requests as rq
from domain import rules
from domain.billing import Line, charges, held_items, total
from domain.cards import CardDetails, sandbox_tokenise
from domain.decisions import (ChargePurpose, Context, Decision, Draft, InvoiceDraft, UserChange, UserChangeKind,
                              check_storage, collect, send)
from domain.errors import DomainError, InvalidInput
from domain.limits import Limits, check_request_fields
from domain.renewal import (apply_scheduled, downgrade_not_applied, drop_pending, keep_ledger_from, move_to_free, plan_change_effects,
                            plan_name, start_period, tier_floor, void_pending_invoice, write_off_unpaid_cycles)
from domain.states import Cycle, InvoiceKind, InvoiceStatus, OrgStatus, PlanChangeReason, Resolution, Switch
from domain.users import Members, check_member, check_members, check_not_member
from domain.subscription import OrgSnapshot, Scheduled, StorageHolding, Subscribers, UnitCount, WaitingChange

Check = Callable[..., None]
Decide = Callable[[OrgSnapshot, Any, Context], Decision]
Apply = Callable[[Draft, Any, Context], None]


@dataclass(frozen=True)
class Operation:
    name: str
    request: type
    description: str
    check: Check
    decide: Decide
    cli: tuple[str, str]                      # the `billing` command, noun then verb: ("storage", "buy")
    apply: Apply | None = None                # a purchase: applies the bought change once paid
    invoice_kind: InvoiceKind = InvoiceKind.PRORATION
    input: type | None = None                 # what a person types, when it differs (a card number)
    from_input: Callable[[dict[str, Any]], Any] | None = None   # ... and how it becomes the request
    actor_required: bool = False              # `--by` is required on the command line
    reason_required: bool = False             # `--reason` too (the check requires one)
    audited: bool = True                      # False: a measurement (usage, contacts), not a request
    # The field naming a user, and whether that user must exist (True) or be new (False): checked
    # against the workflow's roster (domain.users) in the validator, the database in the decision.
    user_field: str | None = None
    user_exists: bool = True
    # False: no command or scenario action is generated from the fields (a usage file has its own).
    generated: bool = True

    def validate(self, org: OrgSnapshot, policy, facts, request: Any, now, members: Members | None = None) -> None:
        """Whether the org accepts the request: every field within its bounds (domain.limits),
        the users it names (`members`: None when not known), then the operation's rules. The
        Update's validator runs this on the workflow's snapshot, the decision again on the
        stored state."""
        self.check_fields(request, policy.limits)
        if members is not None and self.user_field is not None:
            check = check_member if self.user_exists else check_not_member
            check(members, getattr(request, self.user_field), self.user_field, org.org_id)
        if members is not None and isinstance(request, rq.ImportUsageRequest):
            check_members(members, [row[0].strip().lower() for row in request.rows], "rows[{}]: user", org.org_id)
        self.check(org, policy, facts, request, now)

    def check_fields(self, request: Any, limits: Limits) -> None:
        """What can be checked without the org: every field within its bounds, a staff action's
        reason given. The CLI checks this before it sends anything."""
        check_request_fields(request, limits)
        if self.reason_required and not request.reason.strip():
            raise InvalidInput("reason: required for staff actions (they are audited)")

    def request_from(self, payload: dict[str, Any]) -> Any:
        known = {f.name for f in fields(self.request)}
        return self.request(**{k: v for k, v in payload.items() if k in known})

    @property
    def inputs(self) -> type:
        """The fields a person gives: the CLI's arguments, a scenario action's keys."""
        return self.input or self.request

    def request_from_input(self, values: dict[str, Any]) -> Any:
        """The Update's argument from what a person gave (raises DomainError on a bad value)."""
        return self.from_input(values) if self.from_input else self.request_from(values)


def decide(operation: "Operation", state: OrgSnapshot, request: Any, ctx: Context, facts,
           members: Members | None = None) -> Decision:
    """Check the request against the state, then decide. `facts`: the catalog as checks see it."""
    operation.validate(state, ctx.policy, facts, request, ctx.now, members)
    return operation.decide(state, request, ctx)


# ---- shared steps ------------------------------------------------------------------------------

def _public(request: Any) -> dict[str, Any]:
    data = asdict(request)
    for private in ("requested_by", "reason", "token"):
        data.pop(private, None)
    return data


def _draft(name: str, state: OrgSnapshot, request: Any) -> Draft:
    """Every accepted request is in the audit log: who, when, what and why."""
    draft = Draft(state)
    draft.event("request", by=getattr(request, "requested_by", ""), why=getattr(request, "reason", ""),
                operation=name, **_public(request))
    return draft


def _monthly_price(ctx: Context, plan: str, currency: str) -> int:
    return ctx.catalog.plan_price(plan, currency, Cycle.MONTHLY)


def _price(before: OrgSnapshot, after: OrgSnapshot, ctx: Context) -> list[Line]:
    """What the change from `before` to `after` costs from now to the end of after's period."""
    return charges(ctx.catalog, after.currency, after.cycle, (after.period_start, after.renews_at), ctx.now,
                   held_items(after, ctx.catalog), before.ledger)


def _applied(operation: Operation, state: OrgSnapshot, request: Any, ctx: Context) -> Draft:
    draft = Draft(state)
    operation.apply(draft, request, ctx)
    return draft


def _purchase(name: str, summary: str):
    """The decision of a purchase: nothing to pay (an item whose removal was scheduled bought
    back, a purchase on the renewal day) applies it now; otherwise it is invoiced, charged at
    once, and waits for that payment."""
    def decision(state: OrgSnapshot, request: Any, ctx: Context) -> Decision:
        operation = OPERATIONS[name]
        draft = _draft(name, state, request)
        after = _applied(operation, state, request, ctx)
        lines = _price(state, after.state, ctx)
        what = summary.format(**asdict(request))
        if not any(line.amount for line in lines):
            draft.absorb(after)
            keep_ledger_from(draft, draft.state.period_start, lines)
            draft.event("change_applied", change=what, operation=name, request=_public(request))
            return draft.decision(f"{what}: nothing to pay, done")
        draft.change(pending=WaitingChange(name, asdict(request), what, ctx.now, total=total(lines)))
        draft.bill(InvoiceDraft(operation.invoice_kind, lines, after.state.period_start, after.state.renews_at),
                   ctx.catalog, ctx.now)
        draft.add(collect(ChargePurpose.CHANGE))
        return draft.decision(f"{what} invoiced")
    return decision


def apply_paid(state: OrgSnapshot, paid_lines: list[Line], invoice: str, ctx: Context) -> Draft:
    """The change that waited for `invoice` takes effect now that it is paid, as it was priced:
    a cycle it starts (an upgrade from free, a yearly switch) starts when its invoice's lines do,
    not seconds later when the payment is confirmed."""
    pending = state.pending
    operation = OPERATIONS[pending.operation]
    draft = Draft(state.with_changes(pending=None))
    operation.apply(draft, operation.request_from(pending.request), replace(ctx, now=pending.priced_at))
    keep_ledger_from(draft, draft.state.period_start, paid_lines, invoice)
    draft.event("change_applied", change=pending.summary, operation=pending.operation,
                request=_public(operation.request_from(pending.request)))
    return draft


def _retry_open_invoice(draft: Draft, ctx: Context) -> None:
    """Charge the open invoice now (card updated, staff retry): the dunning invoice, or the
    change waiting for payment, re-priced if the day or the org changed since it was priced."""
    state = draft.state
    if state.dunning_invoice:
        # Every unpaid cycle, oldest first (the dunning invoice, then the arrears): each one paid
        # moves dunning on to the next (domain.payments.invoice_paid) with its own receipt.
        draft.add(collect(ChargePurpose.EXTRA, state.dunning_invoice, state.dunning_attempts + 1))
        for unpaid in state.arrears:
            draft.add(collect(ChargePurpose.EXTRA, unpaid.invoice, unpaid.attempts + 1))
        return
    pending = state.pending
    if pending is None or not state.has_card:
        return
    operation = OPERATIONS[pending.operation]
    base = state.with_changes(pending=None)
    after = _applied(operation, base, operation.request_from(pending.request), ctx)
    lines = _price(base, after.state, ctx)
    if pending.priced_at.date() == ctx.now.date() and total(lines) == pending.total:
        draft.add(collect(ChargePurpose.CHANGE, pending.invoice, pending.attempts + 1))
        return
    void_pending_invoice(draft)
    draft.event("change_repriced", change=pending.summary, invoice=pending.invoice)
    if not any(line.amount for line in lines):
        draft.absorb(after)
        keep_ledger_from(draft, draft.state.period_start, lines)
        draft.event("change_applied", change=pending.summary, operation=pending.operation,
                    request=_public(operation.request_from(pending.request)))
        return
    draft.change(pending=WaitingChange(pending.operation, pending.request, pending.summary, ctx.now,
                                       total=total(lines)))
    draft.bill(InvoiceDraft(operation.invoice_kind, lines, after.state.period_start, after.state.renews_at),
               ctx.catalog, ctx.now)
    draft.add(collect(ChargePurpose.CHANGE))


# ---- purchases: what each one changes once paid --------------------------------------------------

def _apply_upgrade(draft: Draft, req: rq.UpgradeRequest, ctx: Context) -> None:
    state = draft.state
    if state.status == OrgStatus.FREE:
        # Seed 000: a licence for every user the org has when the upgrade applies; a new cycle.
        draft.set_plan(req.plan, PlanChangeReason.UPGRADE)
        draft.set_status(OrgStatus.ACTIVE)
        draft.change(licences=state.user_count)
        start_period(draft, ctx.now, Cycle(req.cycle or Cycle.MONTHLY))
    else:
        draft.set_plan(req.plan, PlanChangeReason.UPGRADE)
        draft.change(licences=max(state.licences, state.user_count))
        scheduled = state.scheduled.plan
        if scheduled and _monthly_price(ctx, scheduled, state.currency) < _monthly_price(ctx, req.plan, state.currency):
            draft.change(scheduled=_replace(state.scheduled, plan=None))
            cut = state.scheduled.licences
            draft.notice(f"the downgrade to {scheduled} scheduled for {state.renews_at:%Y-%m-%d} is dropped: it "
                         f"would undo the upgrade to {req.plan}"
                         + (f"; the cut to {cut} licences stays" if cut is not None else ""))
            if cut is None:
                downgrade_not_applied(draft, ctx, state.scheduled, "upgrade")
    plan_change_effects(draft, state, PlanChangeReason.UPGRADE, ctx)


def _apply_add_licences(draft: Draft, req: rq.AddLicencesRequest, ctx: Context) -> None:
    state = draft.state
    draft.change(licences=state.licences + req.count)
    if state.scheduled.licences is not None:
        draft.change(scheduled=_replace(state.scheduled, licences=None))
        draft.notice(f"the licence cut to {state.scheduled.licences} scheduled for {state.renews_at:%Y-%m-%d} is "
                     f"dropped: it would undo the {req.count} licence(s) just bought")
        if state.scheduled.plan is None:
            downgrade_not_applied(draft, ctx, state.scheduled, "licences_bought", bought=req.count)


def _apply_buy_storage(draft: Draft, req: rq.BuyStorageRequest, ctx: Context) -> None:
    """Units whose removal is scheduled are kept first (already paid to the renewal). With
    auto-allocation, the units now free go to the users waiting for one (DOMAIN.md)."""
    state = draft.state
    kept = min(req.count, state.scheduled.removing(req.unit_gb))
    storage = {h.unit_gb: h for h in state.storage}
    holding = storage.get(req.unit_gb, StorageHolding(req.unit_gb, 0, 0))
    storage[req.unit_gb] = StorageHolding(req.unit_gb, holding.owned + req.count - kept, holding.allocated)
    draft.change(storage=[storage[size] for size in sorted(storage)],
                 scheduled=_replace(state.scheduled, storage=_minus(state.scheduled.storage, req.unit_gb, kept)))
    if state.auto_allocate_storage:
        draft.add(check_storage(ctx.key))


def _apply_buy_addon(draft: Draft, req: rq.BuyAddonRequest, ctx: Context) -> None:
    state = draft.state
    if req.addon in state.scheduled.addons:
        draft.change(scheduled=_replace(state.scheduled, addons=[a for a in state.scheduled.addons if a != req.addon]))
    else:
        draft.change(addons=sorted([*state.addons, req.addon]))


def _apply_tier(draft: Draft, req: rq.ChangeTierRequest, ctx: Context) -> None:
    state = draft.state
    cut = state.scheduled.tier
    draft.change(tier_contacts=req.contacts, scheduled=_replace(state.scheduled, tier=None))
    draft.set_subscribers(Subscribers.within(state.contacts, req.contacts))
    if cut is not None and req.contacts != state.tier_contacts:
        draft.notice(f"the tier cut to {cut} contacts scheduled for {state.renews_at:%Y-%m-%d} is dropped: it "
                     f"would undo the tier raise to {req.contacts}")


def _apply_yearly(draft: Draft, req: rq.SwitchToYearlyRequest, ctx: Context) -> None:
    """The switch ends the monthly cycle now: what was scheduled for its end happens now, and the
    year is billed for what the org keeps (DOMAIN.md)."""
    before = draft.state
    apply_scheduled(draft, ctx)
    start_period(draft, ctx.now, Cycle.YEARLY)
    plan_change_effects(draft, before, PlanChangeReason.DOWNGRADE, ctx)


# ---- the other decisions --------------------------------------------------------------------------

def _add_user(state: OrgSnapshot, req: rq.AddUserRequest, ctx: Context) -> Decision:
    draft = _draft("add_user", state, req)
    email = req.email.strip().lower()
    draft.users.append(UserChange(UserChangeKind.ADD, email, storage_gb=float(req.storage_gb)))
    users = state.user_count + 1
    draft.change(user_count=users)
    cut = state.scheduled.licences
    if cut is not None and cut < users:
        left = users if users < state.licences or state.scheduled.plan else None   # None: nothing left to cut
        draft.change(scheduled=_replace(state.scheduled, licences=left))
        draft.notice(f"the licence cut scheduled for {state.renews_at:%Y-%m-%d} is "
                     + (f"reduced from {cut} to {users}" if left else f"dropped (it was to {cut})")
                     + ": every user needs a licence")
        if left is None and state.scheduled.plan is None:
            downgrade_not_applied(draft, ctx, state.scheduled, "users", users=users)
    draft.add(check_storage(ctx.key, user=email))
    return draft.decision(f"user {email} added")


def _reported(draft: Draft, name: str, request: Any, ctx: Context) -> reports.Sorted:
    """Apply what a report operation's request reports that is newer than what was applied
    (domain.reports): usage to its users, a contact count to the org."""
    return _apply_reports(draft, reports.reports_in(name, request, ctx.now, ctx.key), ctx)


def _apply_reports(draft: Draft, found: list[reports.Report], ctx: Context) -> reports.Sorted:
    sorted_out = reports.sort_out(found, ctx.reported)
    for report in sorted_out.fresh:
        if report.subject == reports.CONTACTS:
            _count_contacts(draft, int(report.value), ctx)
        else:
            draft.users.append(UserChange(UserChangeKind.SET_USAGE, report.subject, storage_gb=report.value))
        draft.reported[report.subject] = report.stamp
    return sorted_out


# Above this many users a storage check reads the whole org rather than a list of names.
USERS_CHECKED_BY_NAME = 500


def _usage_check(draft: Draft, sorted_out: reports.Sorted, ctx: Context) -> None:
    """Storage enforcement for the users whose usage changed (the whole org for a large batch:
    one query either way)."""
    users = [report.subject for report in sorted_out.fresh if report.subject != reports.CONTACTS]
    if len(users) == 1:
        draft.add(check_storage(ctx.key, user=users[0]))
    elif users:
        draft.add(check_storage(ctx.key, users=users if len(users) <= USERS_CHECKED_BY_NAME else None))


def _not_applied(report: reports.Report, sorted_out: reports.Sorted, ctx: Context) -> str:
    who = "the contact count" if report.subject == reports.CONTACTS else report.subject
    stored = ctx.reported.get(report.subject)
    if report in sorted_out.repeated:
        return f"{who}: this report was already applied; nothing changed"
    return (f"{who}: a newer report is already applied (from {stored}); this one, from {report.stamp}, "
            "changes nothing")


def _set_usage(state: OrgSnapshot, req: rq.SetUsageRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # a usage report is a measurement, not a request: not audited
    sorted_out = _reported(draft, "set_usage", req, ctx)
    _usage_check(draft, sorted_out, ctx)
    if not sorted_out.fresh:
        return draft.decision(_not_applied((sorted_out.repeated + sorted_out.older)[0], sorted_out, ctx))
    return draft.decision(f"{req.user.strip().lower()} uses {req.storage_gb:g} GB")


def _import_usage(state: OrgSnapshot, req: rq.ImportUsageRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # measurements, like a single usage report: not audited
    sorted_out = _reported(draft, "import_usage", req, ctx)
    if sorted_out.fresh:
        draft.add(check_storage(ctx.key))  # one check of the whole org, not one per row
    message = f"usage of {len(req.rows)} user(s) imported"
    if sorted_out.older or sorted_out.repeated:
        message += (f"; {len(sorted_out.older) + len(sorted_out.repeated)} left as they were (a report as new "
                    "or newer was already applied)")
    return draft.decision(message)


def decide_reports(state: OrgSnapshot, sent: list[tuple[str, Any]], ctx: Context, facts,
                   members: Members | None = None) -> Decision:
    """A batch of reports as the workflow received them (signals): each checked on its own (a bad
    one is left out, named in the message), then the newest per subject applied at once, with one
    storage check for the users whose usage changed."""
    draft = Draft(state)
    found, refused = [], []
    for name, request in sent:
        try:
            OPERATIONS[name].validate(state, ctx.policy, facts, request, ctx.now, members)
            found += reports.reports_in(name, request, ctx.now, ctx.key)
        except DomainError as err:
            refused.append(err.message)
    sorted_out = _apply_reports(draft, found, ctx)
    _usage_check(draft, sorted_out, ctx)
    message = f"reports: {sorted_out.describe()}"
    if refused:
        message += f", {len(refused)} refused ({refused[0]}{'; ...' if len(refused) > 1 else ''})"
    return draft.decision(message)


def _allocate_storage(state: OrgSnapshot, req: rq.AllocateStorageRequest, ctx: Context) -> Decision:
    draft = _draft("allocate_storage", state, req)
    email = req.user.strip().lower()
    draft.users.append(UserChange(UserChangeKind.ALLOCATE, email, unit_gb=req.unit_gb))
    if state.storage_removable(req.unit_gb) < 1:  # the only free unit was ending: it stays
        draft.change(scheduled=_replace(state.scheduled, storage=_minus(state.scheduled.storage, req.unit_gb, 1)))
    draft.change(storage=[StorageHolding(h.unit_gb, h.owned, h.allocated + (h.unit_gb == req.unit_gb))
                          for h in state.storage])
    draft.add(check_storage(ctx.key, user=email))
    return draft.decision(f"{req.unit_gb} GB allocated to {email}")


def _remove_storage(state: OrgSnapshot, req: rq.RemoveStorageRequest, ctx: Context) -> Decision:
    draft = _draft("remove_storage", state, req)
    draft.change(scheduled=_replace(state.scheduled, storage=_minus(state.scheduled.storage, req.unit_gb, -req.count)))
    return draft.decision(f"{req.count} x {req.unit_gb} GB removed from the renewal on {state.renews_at:%Y-%m-%d}")


def _remove_addon(state: OrgSnapshot, req: rq.RemoveAddonRequest, ctx: Context) -> Decision:
    draft = _draft("remove_addon", state, req)
    draft.change(scheduled=_replace(state.scheduled, addons=sorted([*state.scheduled.addons, req.addon])))
    return draft.decision(f"add-on {req.addon} stays until {state.renews_at:%Y-%m-%d}, then ends")


def _change_tier(state: OrgSnapshot, req: rq.ChangeTierRequest, ctx: Context) -> Decision:
    if state.status == OrgStatus.TRIALING:
        draft = _draft("change_tier", state, req)
        draft.change(trial_choice_tier=req.contacts)
        return draft.decision(f"a {req.contacts}-contact tier starts when the trial ends on "
                              f"{state.trial_ends_at:%Y-%m-%d}")
    if req.contacts <= state.tier_contacts:
        draft = _draft("change_tier", state, req)
        if req.contacts == state.tier_contacts:
            draft.change(scheduled=_replace(state.scheduled, tier=None))
            return draft.decision(f"the tier cut to {state.scheduled.tier} contacts is cancelled: the tier stays at "
                                  f"{req.contacts} contacts")
        draft.change(scheduled=_replace(state.scheduled, tier=req.contacts))
        return draft.decision(f"tier lowered to {req.contacts} contacts from {state.renews_at:%Y-%m-%d}")
    return _buy_tier(state, req, ctx)


_buy_tier = _purchase("change_tier", "tier {contacts} contacts")
_upgrade_purchase = _purchase("upgrade", "upgrade to {plan}")


def _upgrade(state: OrgSnapshot, req: rq.UpgradeRequest, ctx: Context) -> Decision:
    if state.status == OrgStatus.TRIALING:
        draft = _draft("upgrade", state, req)
        draft.change(trial_choice_plan=req.plan, trial_choice_cycle=Cycle(req.cycle or Cycle.MONTHLY))
        return draft.decision(f"{req.plan} ({draft.state.trial_choice_cycle}) starts when the trial ends on "
                              f"{state.trial_ends_at:%Y-%m-%d}")
    return _upgrade_purchase(state, req, ctx)


def _set_contacts(state: OrgSnapshot, req: rq.SetContactsRequest, ctx: Context) -> Decision:
    draft = Draft(state)  # a measurement, like usage
    sorted_out = _reported(draft, "set_contacts", req, ctx)
    if not sorted_out.fresh:
        return draft.decision(_not_applied((sorted_out.repeated + sorted_out.older)[0], sorted_out, ctx))
    subscribers = draft.state.subscribers
    message = f"{subscribers.subscribed} contacts subscribed"
    if subscribers.awaiting:
        message += f", {subscribers.awaiting} awaiting upgrade"
    return draft.decision(message)


def _count_contacts(draft: Draft, contacts: int, ctx: Context) -> None:
    """The org now has `contacts`: those within the tier are subscribed, the rest await a raise;
    a scheduled tier cut never lands below the subscribed ones."""
    state = draft.state
    subscribers = Subscribers.within(contacts, state.tier_contacts)
    draft.set_subscribers(subscribers)
    cut = state.scheduled.tier
    if cut is not None:
        floor = tier_floor(subscribers.subscribed, ctx.catalog)
        if floor > cut:
            landing = floor if floor < state.tier_contacts else None
            draft.change(scheduled=_replace(state.scheduled, tier=landing))
            draft.notice(f"the tier cut to {cut} contacts " + (f"is reduced to {landing}" if landing else "is dropped")
                         + f": {subscribers.subscribed} contacts are subscribed")


def _tokenised_card(values: dict[str, Any]) -> rq.UpdateCardRequest:
    """A card number is tokenised here, as the gateway's card form would: it never goes further
    (raises CardRejected or InvalidInput)."""
    if values.get("payment_method"):   # Stripe's card form gave an id; its card was read back from Stripe
        card = CardDetails(str(values["payment_method"]), values.get("brand") or "", values.get("last4") or "")
    else:
        card = sandbox_tokenise(str(values["card"]))
    return rq.UpdateCardRequest(card.token, card.brand, card.last4, values.get("requested_by", ""),
                                values.get("reason", ""))


def _update_card(state: OrgSnapshot, req: rq.UpdateCardRequest, ctx: Context) -> Decision:
    draft = _draft("update_card", state, req)
    draft.change(card_brand=req.brand, card_last4=req.last4)
    draft.card_token = req.token
    draft.event("card_updated", by=req.requested_by, brand=req.brand, last4=req.last4)
    _retry_open_invoice(draft, ctx)
    return draft.decision(f"card {req.brand} ending {req.last4} saved")


def _request_downgrade(state: OrgSnapshot, req: rq.DowngradeRequest, ctx: Context) -> Decision:
    draft = _draft("request_downgrade", state, req)
    plan = req.plan if req.plan != state.plan else None
    licences = req.licences if req.licences is not None and req.licences != state.licences else None
    draft.change(scheduled=_replace(state.scheduled, plan=plan, licences=licences))
    final_licences = licences if licences is not None else state.licences
    draft.event("downgrade_scheduled", by=req.requested_by, why=req.reason, to=req.plan,
                licences=final_licences, effective_at=state.renews_at.isoformat())
    catalog = ctx.catalog
    draft.add(send(emails.downgrade_scheduled(ctx.key, plan_name(catalog, state.plan), plan_name(catalog, req.plan),
                                              final_licences, req.requested_by, state.renews_at)))
    return draft.decision(f"downgrade to {req.plan} with {final_licences} licences scheduled for "
                          f"{state.renews_at:%Y-%m-%d}")


def _cancel_downgrade(state: OrgSnapshot, req: rq.CancelDowngradeRequest, ctx: Context) -> Decision:
    draft = _draft("cancel_downgrade", state, req)
    scheduled = state.scheduled
    was = scheduled.plan or f"{scheduled.licences} licences"
    draft.change(scheduled=_replace(scheduled, plan=None, licences=None))
    # The downgrade_scheduled e-mail announced it: the admin is told it will not happen.
    catalog = ctx.catalog
    draft.add(send(emails.downgrade_cancelled(
        ctx.key, plan_name(catalog, state.plan), state.licences, plan_name(catalog, scheduled.plan or state.plan),
        scheduled.licences if scheduled.licences is not None else state.licences, req.requested_by,
        state.renews_at)))
    return draft.decision(f"scheduled downgrade to {was} cancelled")


def _cancel(state: OrgSnapshot, req: rq.CancelRequest, ctx: Context) -> Decision:
    draft = _draft("cancel", state, req)
    if state.status == OrgStatus.TRIALING:
        # DOMAIN.md: cancelling during a trial withdraws the chosen plan; nothing is charged.
        draft.change(trial_choice_plan=None, trial_choice_cycle=None, trial_choice_tier=None)
        return draft.decision(f"the {state.trial_choice_plan} plan chosen for the trial end is withdrawn: the trial "
                              f"ends on {state.trial_ends_at:%Y-%m-%d} on the free plan and nothing is charged")
    if state.status == OrgStatus.FREE:
        # DOMAIN.md: a cancellation drops the change waiting for payment (an upgrade from free).
        drop_pending(draft, "withdrawn by a cancellation")
        return draft.decision(f"the {state.pending.summary} waiting for payment is withdrawn; invoice "
                              f"{state.pending.invoice} is void")
    if state.status == OrgStatus.ESCALATED:
        # DOMAIN.md, large accounts: an escalated org kept its service, so every cycle it was
        # invoiced for was served; ending it never voids one: each is written off.
        unpaid = state.unpaid_cycles
        write_off_unpaid_cycles(draft)
        move_to_free(draft, PlanChangeReason.CANCELLED, ctx, req.requested_by)
        return draft.decision(f"cancelled while escalated: moved to the free plan now; {', '.join(unpaid)} "
                              "written off as uncollectible")
    if state.status == OrgStatus.PAST_DUE:
        # Our choice (README): the unpaid cycle was never delivered as paid, so a cancellation
        # during dunning ends the subscription at once; the open invoice of the cycle in progress
        # is void. Cycles that ended unpaid were served: written off, never voided (DOMAIN.md).
        *ended, current = state.unpaid_cycles
        for number in ended:
            draft.set_invoice_status(number, InvoiceStatus.UNCOLLECTIBLE)
        draft.set_invoice_status(current, InvoiceStatus.VOID)
        move_to_free(draft, PlanChangeReason.CANCELLED, ctx, req.requested_by)
        return draft.decision("cancelled during dunning: moved to the free plan now; the open invoice is void"
                              + (f"; {', '.join(ended)} written off" if ended else ""))
    drop_pending(draft, "the subscription is cancelled")
    draft.change(scheduled=_replace(draft.state.scheduled, cancel=True))
    draft.set_status(OrgStatus.CANCELLING)
    draft.add(send(emails.cancellation_scheduled(ctx.key, plan_name(ctx.catalog, state.plan), state.renews_at)))
    return draft.decision(f"cancelled: paid service continues until {state.renews_at:%Y-%m-%d}, then the free plan")


def _undo_cancel(state: OrgSnapshot, req: rq.UndoCancelRequest, ctx: Context) -> Decision:
    draft = _draft("undo_cancel", state, req)
    draft.change(scheduled=_replace(state.scheduled, cancel=False))
    draft.set_status(OrgStatus.ACTIVE)
    # The cancellation_scheduled e-mail announced the end: the admin is told it will not come.
    draft.add(send(emails.cancellation_undone(ctx.key, plan_name(ctx.catalog, state.plan), state.renews_at)))
    return draft.decision(f"cancellation undone: the subscription renews on {state.renews_at:%Y-%m-%d}")


_switch_to_yearly_purchase = _purchase("switch_to_yearly", "switch to yearly")


def _switch_to_yearly(state: OrgSnapshot, req: rq.SwitchToYearlyRequest, ctx: Context) -> Decision:
    if state.cycle == Cycle.YEARLY:
        # A yearly org whose switch to monthly is scheduled stays yearly (DOMAIN.md, "later wins").
        return _withdraw_switch_to_monthly("switch_to_yearly", state, req)
    return _switch_to_yearly_purchase(state, req, ctx)


def _switch_to_monthly(state: OrgSnapshot, req: rq.SwitchToMonthlyRequest, ctx: Context) -> Decision:
    """DOMAIN.md: scheduled for the yearly renewal, nothing credited or refunded; from then the
    org renews monthly (domain.renewal.renew)."""
    draft = _draft("switch_to_monthly", state, req)
    draft.change(scheduled=_replace(state.scheduled, cycle=Cycle.MONTHLY))
    return draft.decision(f"switch to monthly billing scheduled for {state.renews_at:%Y-%m-%d}: the yearly cycle "
                          "runs to its end (nothing credited), then the org renews monthly")


def _cancel_switch_to_monthly(state: OrgSnapshot, req: rq.CancelSwitchToMonthlyRequest, ctx: Context) -> Decision:
    return _withdraw_switch_to_monthly("cancel_switch_to_monthly", state, req)


def _withdraw_switch_to_monthly(name: str, state: OrgSnapshot, req: Any) -> Decision:
    draft = _draft(name, state, req)
    draft.change(scheduled=_replace(state.scheduled, cycle=None))
    return draft.decision(f"the switch to monthly scheduled for {state.renews_at:%Y-%m-%d} is withdrawn: the org "
                          "stays yearly")


def _retry_payment(state: OrgSnapshot, req: rq.RetryPaymentRequest, ctx: Context) -> Decision:
    draft = _draft("retry_payment", state, req)
    _retry_open_invoice(draft, ctx)
    return draft.decision("payment retry requested")


def _auto_allocate(state: OrgSnapshot, req: rq.AutoAllocateRequest, ctx: Context) -> Decision:
    draft = _draft("auto_allocate", state, req)
    on = req.setting == Switch.ON
    draft.change(auto_allocate_storage=on)
    if not on:
        return draft.decision("auto-allocation of storage turned off: units already given stay allocated")
    # A user already blocked is given free units now, as when units become free (DOMAIN.md).
    draft.add(check_storage(ctx.key))
    return draft.decision("auto-allocation of storage turned on: a user over quota is given free units")


def _resolve_escalation(state: OrgSnapshot, req: rq.ResolveEscalationRequest, ctx: Context) -> Decision:
    draft = _draft("resolve_escalation", state, req)
    if req.action == Resolution.DOWNGRADE:
        unpaid = state.unpaid_cycles
        write_off_unpaid_cycles(draft)
        move_to_free(draft, PlanChangeReason.STAFF_DOWNGRADE, ctx, req.requested_by)
        return draft.decision(f"escalation resolved: {', '.join(unpaid)} written off, org moved to the free plan")
    if req.action == Resolution.EXTEND:
        retry_at = ctx.now + timedelta(days=req.extend_days)
        # The audit log says how long the grace runs and when it ends, not only that it was extended.
        draft.event("grace_extended", by=req.requested_by, extend_days=req.extend_days, retry_at=retry_at.isoformat(),
                    invoices=state.unpaid_cycles)
        draft.change(escalated_at=None, first_response_due=None, determination_due=None, next_retry_at=retry_at)
        draft.set_status(OrgStatus.PAST_DUE)
        return draft.decision(f"escalation resolved: grace extended, payment retried on {retry_at:%Y-%m-%d}")
    _retry_open_invoice(draft, ctx)
    return draft.decision("escalation resolved: retrying the payment now")


# ---- helpers ----------------------------------------------------------------------------------------

def _replace(scheduled: Scheduled, **changes: Any) -> Scheduled:
    return replace(scheduled, **changes)


def _minus(units: list[UnitCount], unit_gb: int, count: int) -> list[UnitCount]:
    """Scheduled removals with `count` fewer units of that size (more, when negative)."""
    counts = {u.unit_gb: u.count for u in units}
    counts[unit_gb] = counts.get(unit_gb, 0) - count
    return [UnitCount(size, n) for size, n in sorted(counts.items()) if n > 0]


# ---- the table ------------------------------------------------------------------------------------

def _operations() -> dict[str, Operation]:
    ops = [
        Operation("upgrade", rq.UpgradeRequest, "Upgrade the plan (during a trial: from the trial end)",
                  rules.check_upgrade, _upgrade, ("org", "upgrade"), _apply_upgrade, InvoiceKind.UPGRADE),
        Operation("add_licences", rq.AddLicencesRequest, "Buy licences, charged pro rata to the renewal date",
                  rules.check_add_licences, _purchase("add_licences", "add {count} licence(s)"),
                  ("org", "add-licences"), _apply_add_licences),
        Operation("add_user", rq.AddUserRequest, "Add a user (a paid plan needs a free licence)",
                  rules.check_add_user, _add_user, ("org", "add-user"), user_field="email", user_exists=False),
        Operation("buy_storage", rq.BuyStorageRequest, "Buy storage units, charged pro rata",
                  rules.check_buy_storage, _purchase("buy_storage", "{count} x {unit_gb} GB storage"),
                  ("storage", "buy"), _apply_buy_storage),
        Operation("remove_storage", rq.RemoveStorageRequest, "Remove unallocated storage units at the renewal",
                  rules.check_remove_storage, _remove_storage, ("storage", "remove")),
        Operation("allocate_storage", rq.AllocateStorageRequest, "Allocate a storage unit to a user",
                  rules.check_allocate_storage, _allocate_storage, ("storage", "allocate"), user_field="user"),
        Operation("auto_allocate", rq.AutoAllocateRequest,
                  "Turn auto-allocation of storage on or off (on: a user over quota is given free units)",
                  rules.check_auto_allocate, _auto_allocate, ("storage", "auto-allocate")),
        Operation("set_usage", rq.SetUsageRequest, "Report a user's mailbox usage",
                  rules.check_set_usage, _set_usage, ("usage", "set"), audited=False, user_field="user"),
        Operation("import_usage", rq.ImportUsageRequest,
                  "Report many users' mailbox usage at once (a usage file), all or nothing",
                  rules.check_import_usage, _import_usage, ("usage", "import"), audited=False, generated=False),
        Operation("buy_addon", rq.BuyAddonRequest, "Buy a flat add-on, charged pro rata",
                  rules.check_buy_addon, _purchase("buy_addon", "add-on {addon}"), ("addon", "buy"),
                  _apply_buy_addon),
        Operation("remove_addon", rq.RemoveAddonRequest, "Remove a flat add-on at the renewal",
                  rules.check_remove_addon, _remove_addon, ("addon", "remove")),
        Operation("change_tier", rq.ChangeTierRequest,
                  "Raise the subscriber tier (now, pro rata) or lower it (from the renewal)",
                  rules.check_change_tier, _change_tier, ("tier", "change"), _apply_tier),
        Operation("set_contacts", rq.SetContactsRequest, "Report the number of marketing contacts",
                  rules.check_set_contacts, _set_contacts, ("tier", "contacts"), audited=False),
        Operation("switch_to_yearly", rq.SwitchToYearlyRequest,
                  "Switch a monthly org to yearly billing now (a yearly org: withdraw its switch to monthly)",
                  rules.check_switch_to_yearly, _switch_to_yearly, ("org", "switch-to-yearly"), _apply_yearly,
                  InvoiceKind.CYCLE_SWITCH),
        Operation("switch_to_monthly", rq.SwitchToMonthlyRequest,
                  "Switch a yearly org to monthly billing from its yearly renewal (nothing credited)",
                  rules.check_switch_to_monthly, _switch_to_monthly, ("org", "switch-to-monthly")),
        Operation("cancel_switch_to_monthly", rq.CancelSwitchToMonthlyRequest,
                  "Withdraw a scheduled switch to monthly billing: the org stays yearly",
                  rules.check_cancel_switch_to_monthly, _cancel_switch_to_monthly,
                  ("org", "cancel-switch-to-monthly")),
        Operation("update_card", rq.UpdateCardRequest, "Store a new card; an open invoice is charged at once",
                  rules.check_update_card, _update_card, ("org", "update-card"), input=rq.UpdateCardInput,
                  from_input=_tokenised_card),
        Operation("request_downgrade", rq.DowngradeRequest,
                  "Staff: schedule a downgrade for the cycle end (15-30 days before the renewal)",
                  rules.check_request_downgrade, _request_downgrade, ("org", "downgrade"),
                  actor_required=True, reason_required=True),
        Operation("cancel_downgrade", rq.CancelDowngradeRequest, "Staff: cancel a scheduled downgrade",
                  rules.check_cancel_downgrade, _cancel_downgrade, ("org", "cancel-downgrade"),
                  actor_required=True, reason_required=True),
        Operation("cancel", rq.CancelRequest,
                  "Cancel at the cycle end (during a trial: withdraw the chosen plan)",
                  rules.check_cancel, _cancel, ("org", "cancel"), actor_required=True),
        Operation("undo_cancel", rq.UndoCancelRequest, "Undo a cancellation before the cycle end",
                  rules.check_undo_cancel, _undo_cancel, ("org", "undo-cancel"), actor_required=True),
        Operation("retry_payment", rq.RetryPaymentRequest, "Staff: charge the open invoice now",
                  rules.check_retry_payment, _retry_payment, ("dunning", "retry-payment"),
                  actor_required=True, reason_required=True),
        Operation("resolve_escalation", rq.ResolveEscalationRequest,
                  "Staff: resolve an escalation (extend, downgrade or retry)",
                  rules.check_resolve_escalation, _resolve_escalation, ("escalation", "resolve"),
                  actor_required=True, reason_required=True),
    ]
    return {op.name: op for op in ops}


OPERATIONS = _operations()
# Each operation has a request type of its own: a request names its operation.
_BY_REQUEST = {operation.request: operation for operation in OPERATIONS.values()}
assert len(_BY_REQUEST) == len(OPERATIONS), "two operations share a request type"


def operation_of(request: Any) -> Operation:
    """The operation `request` asks for (a domain.requests dataclass)."""
    try:
        return _BY_REQUEST[type(request)]
    except KeyError:
        raise TypeError(f"{type(request).__name__} is not an operation's request") from None
