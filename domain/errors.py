"""Business refusals. Each carries a stable `type` so Temporal, the CLI and the simulator
report the same reason; the message names the rule and the numbers involved."""


class DomainError(Exception):
    type = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    type = "invalid_input"


class UnknownPlan(DomainError):
    type = "unknown_plan"


class UnknownOrg(DomainError):
    type = "unknown_org"


class OutsideDowngradeWindow(DomainError):
    type = "outside_downgrade_window"


class BelowUsage(DomainError):
    type = "below_usage"


class PendingChange(DomainError):
    type = "pending_change"


class NotAllowed(DomainError):
    type = "not_allowed"


class StaffOnly(DomainError):
    type = "staff_only"


class CardRejected(DomainError):
    type = "card_rejected"


class CatalogError(DomainError):
    type = "catalog_invalid"


ERROR_TYPES = {cls.type for cls in (DomainError, InvalidInput, UnknownPlan, UnknownOrg,
                                    OutsideDowngradeWindow, BelowUsage, PendingChange,
                                    NotAllowed, StaffOnly, CardRejected, CatalogError)}
