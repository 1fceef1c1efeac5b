"""Requests to change an org: one frozen dataclass per operation, the Temporal Update's argument.

Each field says what kind of value it takes and how it is written on the command line; the CLI
commands and the `billing simulate` actions are generated from these fields (domain.operations
registers each request with its check and decision)."""

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from domain.states import Resolution


class Kind(StrEnum):
    """What a field holds: how the CLI and the scenario parser read and check it."""
    TEXT = "text"
    EMAIL = "email"            # an e-mail address: a malformed one is a bad value, refused before sending
    COUNT = "count"            # a whole number
    GB = "gb"                  # a number of GB
    PLAN = "plan"              # a plan id of the catalog
    CYCLE = "cycle"            # monthly | yearly
    UNIT_GB = "unit_gb"        # a storage unit size of the catalog
    ADDON = "addon"            # a flat add-on id of the catalog
    CARD = "card"              # a card number, tokenised before it leaves the CLI or the simulator
    RESOLUTION = "resolution"  # domain.states.Resolution
    SWITCH = "switch"          # on | off (domain.states.Switch)
    USAGE_ROWS = "usage_rows"  # (user e-mail, GB) pairs: a usage file, read by its own command
    INSTANT = "instant"        # a moment, ISO 8601 with its UTC offset (a scenario: a duration after start)


_REQUIRED = object()


def request_from(request_type: type, payload: dict[str, Any]) -> Any:
    """A request of `request_type` from its JSON form; keys it has no field for are left out."""
    known = {f.name for f in fields(request_type)}
    return request_type(**{k: v for k, v in payload.items() if k in known})


def arg(help: str, kind: Kind = Kind.TEXT, *, positional: bool = False, flag: str | None = None,
        default: Any = _REQUIRED, maximum: str | None = None, minimum: int = 1) -> Any:
    """A request field: `positional` on the command line, else an option (`flag`, by default
    the field's name). A count is bounded by `minimum` and the limit named `maximum`
    (domain.limits.Limits)."""
    metadata = {"help": help, "kind": kind, "positional": positional, "flag": flag, "maximum": maximum,
                "minimum": minimum}
    if default is _REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


def _by() -> Any:
    return arg("Who asks (an e-mail; billing staff for staff actions)", flag="--by", default="")


def _reason() -> Any:
    return arg("Why (kept in the audit log)", default="")


def _report_id() -> Any:
    return arg("The report's own id: a report sent again with the same id and time is applied once "
               "(default: its place in the order of arrival)", default="")


def _reported_at() -> Any:
    return arg("When it was measured (ISO 8601 with its offset); a report older than one already applied "
               "changes nothing (default: when it arrives)", Kind.INSTANT, default="")


@dataclass(frozen=True)
class UpgradeRequest:
    plan: str = arg("Plan to move to", Kind.PLAN)
    cycle: str | None = arg("monthly or yearly (from the free plan or a trial)", Kind.CYCLE, default=None)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class AddLicencesRequest:
    count: int = arg("Licences to buy", Kind.COUNT, positional=True, maximum="licences_per_org")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class AddUserRequest:
    email: str = arg("The new user's e-mail", Kind.EMAIL, positional=True)
    storage_gb: float = arg("Mailbox usage in GB", Kind.GB, default=0.0)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class BuyStorageRequest:
    unit_gb: int = arg("Unit size in GB", Kind.UNIT_GB, flag="--unit")
    count: int = arg("Units to buy", Kind.COUNT, default=1, maximum="units_per_purchase")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class RemoveStorageRequest:
    unit_gb: int = arg("Unit size in GB", Kind.UNIT_GB, flag="--unit")
    count: int = arg("Unallocated units to remove at the renewal", Kind.COUNT, default=1,
                     maximum="units_per_purchase")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class AllocateStorageRequest:
    user: str = arg("The user's e-mail", Kind.EMAIL, positional=True)
    unit_gb: int = arg("Unit size in GB", Kind.UNIT_GB, flag="--unit")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class SetUsageRequest:
    """A usage report (DOMAIN.md, "Usage reports"): a fact with a time, as the `set_usage` Update
    or the `usage_reported` signal (domain.reports)."""
    user: str = arg("The user's e-mail", Kind.EMAIL, positional=True)
    storage_gb: float = arg("Mailbox usage in GB", Kind.GB, positional=True)
    requested_by: str = _by()
    reason: str = _reason()
    report_id: str = _report_id()
    reported_at: str = _reported_at()


@dataclass(frozen=True)
class ImportUsageRequest:
    """A usage file, applied whole or not at all: one Update carries every row, so a large org's
    daily import is one history event, not thousands."""
    # A bare list: Temporal's converter would inspect 50,000 typed pairs one by one, longer than a
    # workflow task may take; the bounds check (domain.limits.check_usage_rows) checks each pair.
    rows: list = arg("[user e-mail, GB] pairs; every user must exist", Kind.USAGE_ROWS)
    report_id: str = _report_id()
    reported_at: str = _reported_at()


@dataclass(frozen=True)
class BuyAddonRequest:
    addon: str = arg("Flat add-on id", Kind.ADDON, positional=True)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class RemoveAddonRequest:
    addon: str = arg("Flat add-on id", Kind.ADDON, positional=True)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class ChangeTierRequest:
    contacts: int = arg("Subscriber tier in contacts (a multiple of 1,000)", Kind.COUNT, positional=True,
                        maximum="contacts")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class SetContactsRequest:
    """A contact count report: a fact with a time, like a usage report (the `set_contacts` Update or
    the `contacts_reported` signal)."""
    contacts: int = arg("Marketing contacts the org has now", Kind.COUNT, positional=True, maximum="contacts",
                        minimum=0)
    requested_by: str = _by()
    reason: str = _reason()
    report_id: str = _report_id()
    reported_at: str = _reported_at()


@dataclass(frozen=True)
class SwitchToYearlyRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class SwitchToMonthlyRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class CancelSwitchToMonthlyRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class UpdateCardRequest:
    """A gateway token, never a card number: the number is tokenised before it reaches us."""
    token: str = arg("Gateway card token (tok_...)")
    brand: str = arg("Card brand")
    last4: str = arg("Last four digits")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class UpdateCardInput:
    """What a person types: the number, tokenised by the CLI or the simulator (domain.cards)."""
    card: str = arg("Card number (tokenised here, never stored)", Kind.CARD)
    payment_method: str | None = arg("A Stripe PaymentMethod id (pm_...) from the console's card form, instead "
                                     "of a number (BILLING_GATEWAY=stripe); its brand and last four are read "
                                     "back from Stripe", default=None)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class DowngradeRequest:
    plan: str = arg("Plan from the next cycle", Kind.PLAN, flag="--to")
    licences: int | None = arg("Licences from the next cycle", Kind.COUNT, default=None, maximum="licences_per_org")
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class CancelDowngradeRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class CancelRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class AutoAllocateRequest:
    """Turn auto-allocation of storage on or off (DOMAIN.md, add-ons: opt-in)."""
    setting: str = arg("on or off", Kind.SWITCH, positional=True)
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class UndoCancelRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class RetryPaymentRequest:
    requested_by: str = _by()
    reason: str = _reason()


@dataclass(frozen=True)
class ResolveEscalationRequest:
    action: str = arg(Resolution.choices(), Kind.RESOLUTION)   # a Resolution, as sent (the rule checks it)
    requested_by: str = _by()
    reason: str = _reason()
    extend_days: int = arg("Days of grace for extend", Kind.COUNT, default=7, maximum="extend_days")
