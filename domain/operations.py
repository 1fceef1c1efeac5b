"""One table of operations (STYLE.md): every change an admin or billing staff can ask for,
registered once with its request type, its check (domain.rules) and its decision
(domain.changes; a purchase's in domain.purchases).

The workflow's Updates, the `billing` CLI commands and the `billing simulate` actions are
generated from `OPERATIONS`; a new operation is one entry here plus its decision."""

from dataclasses import dataclass
from typing import Any, Callable

from domain import changes
from domain import reports
from domain import requests as rq
from domain import rules
from domain.decisions import Context, Decision, Draft
from domain.errors import DomainError, InvalidInput
from domain.limits import Limits, check_request_fields
from domain.purchases import purchase
from domain.users import Members, check_member, check_members, check_not_member
from domain.subscription import OrgSnapshot

Check = Callable[..., None]
Decide = Callable[[OrgSnapshot, Any, Context], Decision]


@dataclass(frozen=True)
class Operation:
    name: str
    request: type
    description: str
    check: Check
    decide: Decide
    cli: tuple[str, str]                      # the `billing` command, noun then verb: ("storage", "buy")
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
        return rq.request_from(self.request, payload)

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
    sorted_out = changes.apply_reports(draft, found, ctx)
    changes.usage_check(draft, sorted_out, ctx)
    message = f"reports: {sorted_out.describe()}"
    if refused:
        message += f", {len(refused)} refused ({refused[0]}{'; ...' if len(refused) > 1 else ''})"
    return draft.decision(message)


# ---- the table ------------------------------------------------------------------------------------

def _operations() -> dict[str, Operation]:
    ops = [
        Operation("upgrade", rq.UpgradeRequest, "Upgrade the plan (during a trial: from the trial end)",
                  rules.check_upgrade, changes.upgrade, ("org", "upgrade")),
        Operation("add_licences", rq.AddLicencesRequest, "Buy licences, charged pro rata to the renewal date",
                  rules.check_add_licences, purchase("add_licences"), ("org", "add-licences")),
        Operation("add_user", rq.AddUserRequest, "Add a user (a paid plan needs a free licence)",
                  rules.check_add_user, changes.add_user, ("org", "add-user"), user_field="email", user_exists=False),
        Operation("buy_storage", rq.BuyStorageRequest, "Buy storage units, charged pro rata",
                  rules.check_buy_storage, purchase("buy_storage"), ("storage", "buy")),
        Operation("remove_storage", rq.RemoveStorageRequest, "Remove unallocated storage units at the renewal",
                  rules.check_remove_storage, changes.remove_storage, ("storage", "remove")),
        Operation("allocate_storage", rq.AllocateStorageRequest, "Allocate a storage unit to a user",
                  rules.check_allocate_storage, changes.allocate_storage, ("storage", "allocate"), user_field="user"),
        Operation("auto_allocate", rq.AutoAllocateRequest,
                  "Turn auto-allocation of storage on or off (on: a user over quota is given free units)",
                  rules.check_auto_allocate, changes.auto_allocate, ("storage", "auto-allocate")),
        Operation("set_usage", rq.SetUsageRequest, "Report a user's mailbox usage",
                  rules.check_set_usage, changes.set_usage, ("usage", "set"), audited=False, user_field="user"),
        Operation("import_usage", rq.ImportUsageRequest,
                  "Report many users' mailbox usage at once (a usage file), all or nothing",
                  rules.check_import_usage, changes.import_usage, ("usage", "import"), audited=False, generated=False),
        Operation("buy_addon", rq.BuyAddonRequest, "Buy a flat add-on, charged pro rata",
                  rules.check_buy_addon, purchase("buy_addon"), ("addon", "buy")),
        Operation("remove_addon", rq.RemoveAddonRequest, "Remove a flat add-on at the renewal",
                  rules.check_remove_addon, changes.remove_addon, ("addon", "remove")),
        Operation("change_tier", rq.ChangeTierRequest,
                  "Raise the subscriber tier (now, pro rata) or lower it (from the renewal)",
                  rules.check_change_tier, changes.change_tier, ("tier", "change")),
        Operation("set_contacts", rq.SetContactsRequest, "Report the number of marketing contacts",
                  rules.check_set_contacts, changes.set_contacts, ("tier", "contacts"), audited=False),
        Operation("switch_to_yearly", rq.SwitchToYearlyRequest,
                  "Switch a monthly org to yearly billing now (a yearly org: withdraw its switch to monthly)",
                  rules.check_switch_to_yearly, changes.switch_to_yearly, ("org", "switch-to-yearly")),
        Operation("switch_to_monthly", rq.SwitchToMonthlyRequest,
                  "Switch a yearly org to monthly billing from its yearly renewal (nothing credited)",
                  rules.check_switch_to_monthly, changes.switch_to_monthly, ("org", "switch-to-monthly")),
        Operation("cancel_switch_to_monthly", rq.CancelSwitchToMonthlyRequest,
                  "Withdraw a scheduled switch to monthly billing: the org stays yearly",
                  rules.check_cancel_switch_to_monthly, changes.cancel_switch_to_monthly,
                  ("org", "cancel-switch-to-monthly")),
        Operation("update_card", rq.UpdateCardRequest, "Store a new card; an open invoice is charged at once",
                  rules.check_update_card, changes.update_card, ("org", "update-card"), input=rq.UpdateCardInput,
                  from_input=changes.tokenised_card),
        Operation("request_downgrade", rq.DowngradeRequest,
                  "Staff: schedule a downgrade for the cycle end (15-30 days before the renewal)",
                  rules.check_request_downgrade, changes.request_downgrade, ("org", "downgrade"),
                  actor_required=True, reason_required=True),
        Operation("cancel_downgrade", rq.CancelDowngradeRequest, "Staff: cancel a scheduled downgrade",
                  rules.check_cancel_downgrade, changes.cancel_downgrade, ("org", "cancel-downgrade"),
                  actor_required=True, reason_required=True),
        Operation("cancel", rq.CancelRequest,
                  "Cancel at the cycle end (during a trial: withdraw the chosen plan)",
                  rules.check_cancel, changes.cancel, ("org", "cancel"), actor_required=True),
        Operation("undo_cancel", rq.UndoCancelRequest, "Undo a cancellation before the cycle end",
                  rules.check_undo_cancel, changes.undo_cancel, ("org", "undo-cancel"), actor_required=True),
        Operation("retry_payment", rq.RetryPaymentRequest, "Staff: charge the open invoice now",
                  rules.check_retry_payment, changes.retry_payment, ("dunning", "retry-payment"),
                  actor_required=True, reason_required=True),
        Operation("resolve_escalation", rq.ResolveEscalationRequest,
                  "Staff: resolve an escalation (extend, downgrade or retry)",
                  rules.check_resolve_escalation, changes.resolve_escalation, ("escalation", "resolve"),
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
