"""Database schema: the source of truth for every org. Lifecycle states are stored as strings
(native_enum=False) to spare PostgreSQL enum migrations."""

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Enum, ForeignKey, Index, Integer, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from domain.states import BlockReason, ChargeOutcome, Cycle, InvoiceKind, InvoiceStatus, OrgStatus


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (which forgets the zone) as on PostgreSQL."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC")
        from datetime import timezone
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        from datetime import timezone
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _enum(cls: type, length: int = 32) -> Enum:
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


# A report's identity: a sender's report_id (at most 100 characters), or a decision's business key.
REPORT_ID_COLUMN = 200
# Business keys longer than their column keep their start and end with a digest (domain.limits.bounded).
DEDUPE_KEY_COLUMN = 240
# The org event holding a step's answer, by org and business key: db/events writes it, db/snapshots reads it.
OUTCOME_KEY = "op:{org_id}:{key}"
BUSINESS_KEY_COLUMN = 200
# INV-<org id>-<sequence>: the longest org id (63) and a sequence of up to 12 digits.
INVOICE_NUMBER_COLUMN = 80


class Base(DeclarativeBase):
    pass


class PlanRow(Base):
    """A mirror of the catalog's plans, kept in sync at start-up so the database can be read
    and joined on its own (quotas for set-based storage enforcement)."""
    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    quota_mb: Mapped[int] = mapped_column(BigInteger)
    user_cap: Mapped[int | None] = mapped_column(Integer)


class Organisation(Base):
    __tablename__ = "organisations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    admin_email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    auto_allocate_storage: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seed 003: marketing contacts within the subscriber tier, and those awaiting a tier raise.
    contacts_subscribed: Mapped[int] = mapped_column(Integer, default=0)
    contacts_awaiting: Mapped[int] = mapped_column(Integer, default=0)
    billing_address: Mapped[str | None] = mapped_column(Text)   # printed on invoices when set
    # The buyer's country (ISO 3166 alpha-2: its tax rules) and tax number (NPWP); None: none, no tax.
    country: Mapped[str | None] = mapped_column(String(2))
    tax_id: Mapped[str | None] = mapped_column(String(40))
    # The newest contact count applied (domain.reports): an older one changes nothing.
    contacts_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    contacts_report_id: Mapped[str | None] = mapped_column(String(REPORT_ID_COLUMN))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    subscription: Mapped["Subscription"] = relationship(back_populates="org", uselist=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email"), Index("ix_users_org_blocked", "org_id", "blocked"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # Megabytes, an integer: 5.1 GB is 5223 MB (1 GB = 1024 MB).
    storage_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    blocked_reason: Mapped[BlockReason | None] = mapped_column(_enum(BlockReason, length=20))
    # When the user was blocked: auto-allocation serves who has waited longest first.
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Order of arrival; "newest first" for the free plan's user cap.
    seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The newest usage report applied (domain.reports): an older one changes nothing.
    usage_reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    usage_report_id: Mapped[str | None] = mapped_column(String(REPORT_ID_COLUMN))


class Subscription(Base):
    __tablename__ = "subscriptions"
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[OrgStatus] = mapped_column(_enum(OrgStatus))
    cycle: Mapped[Cycle | None] = mapped_column(_enum(Cycle))
    cycle_anchor: Mapped[datetime | None] = mapped_column(UtcDateTime)
    period_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    renews_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    trial_ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    trial_choice_plan: Mapped[str | None] = mapped_column(String(40))
    trial_choice_cycle: Mapped[Cycle | None] = mapped_column(_enum(Cycle))
    trial_choice_tier: Mapped[int | None] = mapped_column(Integer)
    # The trial reminders sent (days before the trial end), recorded when each e-mail is sent.
    trial_reminders_sent: Mapped[list[int]] = mapped_column(JSON, default=list, server_default="[]")
    licences: Mapped[int] = mapped_column(Integer, default=0)
    card_token: Mapped[str | None] = mapped_column(String(80))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # A downgrade for the renewal: no plan for a licence-only cut.
    scheduled_plan: Mapped[str | None] = mapped_column(String(40))
    scheduled_licences: Mapped[int | None] = mapped_column(Integer)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    # A yearly org's switch to monthly, at its yearly renewal.
    scheduled_cycle: Mapped[Cycle | None] = mapped_column(_enum(Cycle))
    pending_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", use_alter=True))
    # The Update waiting for payment: {"operation", "request", "summary", "priced_at", "total"}.
    pending_change: Mapped[dict | None] = mapped_column(JSON)
    dunning_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", use_alter=True))
    dunning_attempts: Mapped[int] = mapped_column(Integer, default=0)
    dunning_retries_done: Mapped[int] = mapped_column(Integer, default=0)
    dunning_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    determination_due: Mapped[datetime | None] = mapped_column(UtcDateTime)
    tier_contacts: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_tier_contacts: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=0)
    org: Mapped[Organisation] = relationship(back_populates="subscription")


class StorageUnit(Base):
    __tablename__ = "storage_units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    size_gb: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    remove_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    purchased_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Given by auto-allocation (not by the admin): it goes back to the pool once its user no
    # longer needs it.
    auto_allocated: Mapped[bool] = mapped_column(Boolean, default=False)


class OrgAddon(Base):
    __tablename__ = "org_addons"
    __table_args__ = (UniqueConstraint("org_id", "addon_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    addon_id: Mapped[str] = mapped_column(String(40))
    remove_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(INVOICE_NUMBER_COLUMN), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    # What the invoice is for, unique per org: a renewal period, a change request.
    business_key: Mapped[str] = mapped_column(String(BUSINESS_KEY_COLUMN), unique=True)
    kind: Mapped[InvoiceKind] = mapped_column(_enum(InvoiceKind))
    status: Mapped[InvoiceStatus] = mapped_column(_enum(InvoiceStatus))
    currency: Mapped[str] = mapped_column(String(3))
    # Its lines (credits included) before tax, and its tax as issued (domain.tax), never recomputed:
    # the rule's name and rate (a decimal string, "0.12"; "0" untaxed), the base and the tax.
    subtotal: Mapped[int] = mapped_column(BigInteger)
    tax_name: Mapped[str | None] = mapped_column(String(40))
    tax_rate: Mapped[str] = mapped_column(String(20), default="0", server_default="0")
    tax_base: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # What is charged: subtotal + tax, less the account credit it used (below zero: a credit note).
    total: Mapped[int] = mapped_column(BigInteger)
    credit_applied: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    period_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When it left `open`, one column per status it can take (its documents and statements show it).
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    uncollectible_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    credited_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lines: Mapped[list["InvoiceLine"]] = relationship(back_populates="invoice", order_by="InvoiceLine.id")

    @property
    def status_at(self) -> datetime | None:
        """When it took its status; None while open."""
        return getattr(self, STATUS_AT[self.status]) if self.status in STATUS_AT else None


# The column that keeps when an invoice took each status but `open` (its created_at).
STATUS_AT = {InvoiceStatus.PAID: "paid_at", InvoiceStatus.VOID: "voided_at",
             InvoiceStatus.UNCOLLECTIBLE: "uncollectible_at", InvoiceStatus.CREDITED: "credited_at"}


class InvoicePdf(Base):
    """An invoice's PDF as rendered once for one state of it: the e-mails that carry it and
    `billing invoice render` read it back instead of rendering it again. `state` is a digest of
    the invoice's HTML, which holds everything its PDF shows (a payment, a status, the seller, a
    changed template: a new state, a new PDF)."""
    __tablename__ = "invoice_pdfs"
    __table_args__ = (UniqueConstraint("invoice_id", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    state: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    description: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_amount: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    # What the line bills, over which days (null on lines written before the billing model).
    item_kind: Mapped[str | None] = mapped_column(String(16))
    item_code: Mapped[str | None] = mapped_column(String(40))
    period_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class BilledSpanRow(Base):
    """The ledger (domain.subscription.BilledSpan): what each item was billed over which days,
    for the spans that can still overlap something billed later."""
    __tablename__ = "billed_spans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    item_kind: Mapped[str] = mapped_column(String(16))
    item_code: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    amount: Mapped[int] = mapped_column(BigInteger)
    # Null: a cycle paid before the org reached us.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))


class Payment(Base):
    """One charge attempt; the idempotency key (org:invoice:attempt) is what the gateway sees."""
    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[ChargeOutcome] = mapped_column(_enum(ChargeOutcome))
    decline_reason: Mapped[str | None] = mapped_column(String(60))
    gateway_charge_id: Mapped[str | None] = mapped_column(String(80))
    # The card charged, as it was then (the org may change card later).
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GatewayCharge(Base):
    """The sandbox gateway's own ledger (a real gateway keeps this on its side): one row per
    idempotency key, so a repeated key returns the first result."""
    __tablename__ = "sandbox_gateway_charges"
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(80), unique=True)
    token: Mapped[str] = mapped_column(String(80))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[ChargeOutcome] = mapped_column(_enum(ChargeOutcome))
    decline_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StripeCustomer(Base):
    """The Stripe gateway's record of an org: its Customer, created once, and the PaymentMethod
    last attached to it, with the card as Stripe described it (never the number)."""
    __tablename__ = "stripe_customers"
    org_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(80), unique=True)
    # The org's card token (a pm_ id, or a test id such as pm_card_visa that Stripe turns into a
    # new PaymentMethod when attached) and the PaymentMethod attached for it.
    payment_method_token: Mapped[str | None] = mapped_column(String(80))
    payment_method_id: Mapped[str | None] = mapped_column(String(80))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_exp_month: Mapped[int | None] = mapped_column(Integer)
    card_exp_year: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StripeIntent(Base):
    """One charge attempt's PaymentIntent, written before Stripe is asked to create it, so a
    retried attempt reads it back instead of creating another. `stage` (domain.states.IntentStage)
    moves forward only (creating -> created -> confirming -> settled, and settled -> refunded for a
    second payment of a paid invoice), each step a guarded update: two workers never both confirm."""
    __tablename__ = "stripe_payment_intents"
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(80), index=True)
    invoice_number: Mapped[str] = mapped_column(String(INVOICE_NUMBER_COLUMN))
    attempt: Mapped[int] = mapped_column(Integer)
    intent_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    stage: Mapped[str] = mapped_column(String(20))
    status: Mapped[str | None] = mapped_column(String(40))   # Stripe's, as last read
    decline_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (UniqueConstraint("org_id", "invoice_number", "attempt", name="uq_stripe_intent_attempt"),)


class StripeEvent(Base):
    """A webhook event applied: a delivery of the same event id again is ignored."""
    __tablename__ = "stripe_events"
    event_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    intent_id: Mapped[str | None] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EmailMessage(Base):
    """The outbox: one row per (org, template, occasion). The unique key is what keeps an
    e-mail from being sent twice when the mailer activity is retried."""
    __tablename__ = "emails"
    __table_args__ = (UniqueConstraint("org_id", "template", "occasion", "recipient"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    template: Mapped[str] = mapped_column(String(60))
    occasion: Mapped[str] = mapped_column(String(200))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)   # names users: as long as their addresses
    message_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(12))  # pending | sending (SMTP conversation begun) | sent
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrgEvent(Base):
    """Audit and event log: what happened to an org, when (workflow time), who asked and why."""
    __tablename__ = "org_events"
    __table_args__ = (Index("ix_org_events_org_at", "org_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    actor: Mapped[str | None] = mapped_column(String(254))
    reason: Mapped[str | None] = mapped_column(Text)
    # Deduplicates events written by a retried activity.
    dedupe_key: Mapped[str | None] = mapped_column(String(DEDUPE_KEY_COLUMN), unique=True)


class OpeningAttempt(Base):
    """Each attempt to open an org on a paid plan with a first payment (domain.onboarding.open_paid),
    kept whatever its outcome: a declined attempt leaves nothing of the org but this row, so the
    next attempt's charge gets an idempotency key of its own (org:invoice:attempt)."""
    __tablename__ = "opening_attempts"
    __table_args__ = (UniqueConstraint("org_id", "attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64), index=True)   # no foreign key: the org may be gone
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(12))              # pending | paid | declined
    decline_reason: Mapped[str | None] = mapped_column(String(60))
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class EntitlementVersion(Base):
    """Each version of an org's entitlements (domain.entitlements), written in the transaction of
    the decision that made it: the outbox the delivery reads. No foreign key: the versions of an
    org whose opening was declined stay, so an org opened again under that id counts on."""
    __tablename__ = "entitlement_versions"
    __table_args__ = (UniqueConstraint("org_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebhookEndpoint(Base):
    """A mail platform endpoint's delivery health: retried with backoff while it fails, marked
    `failing` after three days of failures."""
    __tablename__ = "webhook_endpoints"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="healthy")
    attempts: Mapped[int] = mapped_column(Integer, default=0)      # failed attempts in a row
    failures: Mapped[int] = mapped_column(BigInteger, default=0)   # every failed attempt
    last_error: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EntitlementDelivery(Base):
    """The highest version of an org's entitlements an endpoint has confirmed."""
    __tablename__ = "entitlement_deliveries"
    endpoint: Mapped[str] = mapped_column(String(100), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivered_version: Mapped[int] = mapped_column(Integer)
    delivered_at: Mapped[datetime] = mapped_column(UtcDateTime)
