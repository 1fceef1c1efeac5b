"""Requests to change an org. One frozen dataclass per operation: the CLI, the Temporal UI
and the simulator send the same shapes as Temporal Update arguments."""

from dataclasses import dataclass


@dataclass(frozen=True)
class UpgradeRequest:
    plan: str
    cycle: str | None = None
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class AddLicencesRequest:
    count: int
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class AddUserRequest:
    email: str
    storage_gb: float = 0.0
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class BuyStorageRequest:
    unit_gb: int
    count: int = 1
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RemoveStorageRequest:
    unit_gb: int
    count: int = 1
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class AllocateStorageRequest:
    user: str
    unit_gb: int
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SetUsageRequest:
    user: str
    storage_gb: float
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class BuyAddonRequest:
    addon: str
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RemoveAddonRequest:
    addon: str
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ChangeTierRequest:
    contacts: int
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SetContactsRequest:
    contacts: int
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SwitchToYearlyRequest:
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class UpdateCardRequest:
    """A gateway token, never a card number: the number is tokenised before it reaches us."""
    token: str
    brand: str
    last4: str
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class DowngradeRequest:
    plan: str
    licences: int | None = None
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CancelDowngradeRequest:
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class CancelRequest:
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class UndoCancelRequest:
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class RetryPaymentRequest:
    requested_by: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ResolveEscalationRequest:
    action: str  # extend | downgrade | retry
    requested_by: str = ""
    reason: str = ""
    extend_days: int = 7


STAFF_ONLY = (DowngradeRequest, CancelDowngradeRequest, RetryPaymentRequest, ResolveEscalationRequest)

# Operation name (the Temporal Update's name) -> its request type.
OPERATIONS: dict[str, type] = {
    "upgrade": UpgradeRequest, "add_licences": AddLicencesRequest, "add_user": AddUserRequest,
    "buy_storage": BuyStorageRequest, "remove_storage": RemoveStorageRequest,
    "allocate_storage": AllocateStorageRequest, "set_usage": SetUsageRequest, "buy_addon": BuyAddonRequest,
    "remove_addon": RemoveAddonRequest, "change_tier": ChangeTierRequest, "set_contacts": SetContactsRequest,
    "switch_to_yearly": SwitchToYearlyRequest, "update_card": UpdateCardRequest,
    "request_downgrade": DowngradeRequest, "cancel_downgrade": CancelDowngradeRequest, "cancel": CancelRequest,
    "undo_cancel": UndoCancelRequest, "retry_payment": RetryPaymentRequest,
    "resolve_escalation": ResolveEscalationRequest,
}
