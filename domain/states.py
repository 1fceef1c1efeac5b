"""Lifecycle vocabulary shared by the database, the workflow and the CLI."""

from enum import StrEnum


class OrgStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLING = "cancelling"
    FREE = "free"
    ESCALATED = "escalated"


class Cycle(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    # Written off after the last dunning retry: the grace-period service was given, the debt is
    # kept on the books for finance instead of being erased (which "void" would mean).
    UNCOLLECTIBLE = "uncollectible"
    # Never collectable: a pending change dropped before it was paid.
    VOID = "void"
    # A credit note (its total is below zero): nothing was charged, its amount became the org's
    # account credit (domain.credit).
    CREDITED = "credited"


class InvoiceKind(StrEnum):
    RENEWAL = "renewal"
    TRIAL_CONVERSION = "trial_conversion"
    UPGRADE = "upgrade"
    PRORATION = "proration"
    CYCLE_SWITCH = "cycle_switch"
    OPENING = "opening"       # the first cycle of a new customer on a paid plan, paid at creation


class ChargeOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


class IntentStage(StrEnum):
    """Where one charge attempt's Stripe PaymentIntent is on our side (db.models.StripeIntent): each
    step a guarded update, so two workers never both create-and-store or confirm."""
    CREATING = "creating"       # the row written; Stripe asked (or about to be asked) to create it
    CREATED = "created"         # its id stored: only this intent is ever confirmed
    CONFIRMING = "confirming"   # one worker claimed the confirm
    SETTLED = "settled"         # its outcome known
    REFUNDED = "refunded"       # a second payment of a paid invoice, refunded in full


class Switch(StrEnum):
    """A setting turned on or off (auto-allocation of storage)."""
    ON = "on"
    OFF = "off"


class Resolution(StrEnum):
    """How billing staff resolve an escalation (DOMAIN.md, large accounts): charge the unpaid
    invoices now, give the org more days before the next retry, or write them off and move the
    org to the free plan."""
    EXTEND = "extend"
    DOWNGRADE = "downgrade"
    RETRY = "retry"

    @classmethod
    def choices(cls) -> str:
        """"extend, downgrade or retry": for help texts and refusals."""
        *first, last = cls
        return f"{', '.join(first)} or {last}"


class BlockReason(StrEnum):
    """Why a user is blocked (DOMAIN.md, storage blocking)."""
    STORAGE = "storage"       # over their storage quota
    USER_CAP = "user_cap"     # beyond the plan's user cap


class PlanChangeReason(StrEnum):
    TRIAL_EXPIRED = "trial_expired"
    TRIAL_CONVERTED = "trial_converted"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CANCELLED = "cancelled"
    PAYMENT_FAILED = "payment_failed"
    STAFF_DOWNGRADE = "staff_downgrade"


FREE_PLAN = "free"
TRIAL_PLAN = "professional"
