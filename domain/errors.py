"""Business refusals. Each carries a stable `type` so Temporal, the CLI and the simulator
report the same reason; the message names the rule and the numbers involved."""


class DomainError(Exception):
    type = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field   # the request's field it is about, when the check knows it


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


# What a refusal means to whoever asked (the CLI's exit codes follow it): a value that names
# nothing in the catalog (a plan, a storage unit, an add-on) or is out of its bounds is a bad
# value, wrong whatever the org's state, and checked before anything is sent where it can be
# (exit 2); every other type is a refusal by a rule on the org's state: it already exists, the
# downgrade window is closed, only staff may do it (exit 1). InvalidInput raised by a check on the
# org's stored state (an org id taken, a user not in the org) is answered by the workflow or the
# database, after sending, where every refusal is exit 1.
BAD_VALUE_TYPES = frozenset({InvalidInput.type, UnknownPlan.type})


def is_bad_value(err: DomainError) -> bool:
    return err.type in BAD_VALUE_TYPES
