"""Configuration from the environment (prefix BILLING_), via pydantic-settings."""

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
import yaml

from activities.documents import SAMPLE_SELLER, Seller
from domain.delivery import DEFAULT_ENDPOINT, Endpoint, Retry, Webhooks, endpoint, endpoints_from
from domain.errors import InvalidInput
from domain.limits import Limits
from domain.policy import Policy, PolicyError
from workers.runtime.files import MAX_INPUT_FILE_MB


def address_problem(address: str) -> str | None:
    """Why HOST:PORT is not a Temporal address (None: it is one): checked where it is read,
    not at the first connection, where it was a traceback."""
    host, colon, port = address.strip().rpartition(":")
    if not colon or not host:
        return f"must be HOST:PORT (e.g. localhost:7233), got {address!r}"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"the port must be a number from 1 to 65535, got {port!r} in {address!r}"
    return None


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _secret(value: SecretStr | None, file: str | None) -> str | None:
    """A secret from its variable, or from the file its *_FILE variable names (a k8s Secret)."""
    if value is not None:
        return value.get_secret_value().strip() or None
    if file:
        return Path(file).read_text(encoding="utf-8").strip() or None
    return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", env_file=None, extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "billing-orgs"
    temporal_tls: bool = False
    temporal_tls_cert_path: str | None = None
    temporal_tls_key_path: str | None = None
    temporal_tls_ca_path: str | None = None
    temporal_api_key: str | None = None

    database_url: str = "sqlite:///var/billing.db"
    catalog_path: str | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Billing <billing@localhost>"
    # Who issues the invoices: printed on every invoice and statement.
    seller_name: str = SAMPLE_SELLER.name
    seller_address: str = SAMPLE_SELLER.address
    seller_tax_number: str = SAMPLE_SELLER.tax_number

    metrics_port: int = Field(default=9464, gt=0, lt=65536)
    # The HTTP service (python -m workers.api): webhooks in, what the mail platform reads.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, gt=0, lt=65536)
    # The key machines send as `Authorization: Bearer <key>` on /v1 routes; a file for a mounted secret.
    api_key: SecretStr | None = None
    api_key_file: str | None = None
    # The mail platform's entitlement webhooks (docs/operations.md, "Entitlements"): one endpoint
    # here, more in the YAML file BILLING_WEBHOOK_ENDPOINTS_FILE names. Two secrets, space- or
    # comma-separated, while one is rotated: both sign every message.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_endpoints_file: str | None = None
    webhook_retry_first_seconds: float = Field(default=5, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600, gt=0, le=86400)
    webhook_failing_after_hours: float = Field(default=72, gt=0, le=24 * 30)
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=300)
    # How often each worker counts the orgs per status and the overdue escalations (workers/runtime/gauges.py).
    gauge_refresh_seconds: int = Field(default=60, gt=0)
    # The worker creates the nightly reconciliation schedule at start (deploy/ sets it).
    reconcile_schedule: bool = False
    log_format: Literal["text", "json"] = "text"
    graceful_shutdown_seconds: int = 60
    # Where charges go: the sandbox (a table of our own, the default) or Stripe (README, "Against
    # Stripe's test mode"). Stripe's settings keep Stripe's own names; secrets from the
    # environment or a mounted file, never logged (SecretStr prints as '**********').
    gateway: Literal["sandbox", "stripe"] = "sandbox"
    stripe_api_key: SecretStr | None = Field(default=None, validation_alias="STRIPE_API_KEY")
    stripe_api_key_file: str | None = Field(default=None, validation_alias="STRIPE_API_KEY_FILE")
    stripe_webhook_secret: SecretStr | None = Field(default=None, validation_alias="STRIPE_WEBHOOK_SECRET")
    stripe_webhook_secret_file: str | None = Field(default=None, validation_alias="STRIPE_WEBHOOK_SECRET_FILE")
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # Stripe's off-session flag on confirm; a test server that lacks it (localstripe) needs false.
    stripe_off_session: bool = Field(default=True, validation_alias="STRIPE_OFF_SESSION")
    stripe_timeout_seconds: float = Field(default=30, gt=0, le=120, validation_alias="STRIPE_TIMEOUT_SECONDS")
    # Throughput against safety and memory: docs/reliability.md, "What limits throughput".
    workflow_sandbox: bool = True
    max_cached_workflows: int = Field(default=1000, ge=0)
    # Processes that render receipts' PDFs beside the worker's own (0: in the worker's process,
    # where each render holds the event loop's GIL for ~70 ms).
    pdf_processes: int = Field(default=1, ge=0, le=64)
    # E-mails and the invoice PDFs they carry run on a task queue of their own (<task queue>-documents).
    # false: this worker leaves it to `python -m workers.runtime.documents`, run elsewhere.
    serve_documents: bool = True
    documents_concurrency: int = Field(default=8, gt=0, le=256)
    # The SMTP provider's rate, e-mails per second across every documents worker (unset: no limit).
    mail_per_second: float | None = Field(default=None, gt=0)

    trial_days: int = 15
    trial_reminder_days: Annotated[tuple[int, ...], NoDecode] = (3, 1)
    retry_days: Annotated[tuple[int, ...], NoDecode] = (1, 3, 5, 7)
    downgrade_window_min_days: int = 15
    downgrade_window_max_days: int = 30
    large_account_licences: int = 100
    billing_staff: Annotated[tuple[str, ...], NoDecode] = ("billing@localhost",)
    staff_notify_email: str = "billing-staff@localhost"
    # `billing reconcile` reports an org whose activity has failed, or whose due step has waited,
    # this long (activities/reconcile.py).
    stuck_activity_minutes: int = Field(default=15, gt=0)
    # Maxima of what one request may carry (domain.limits): a value beyond them is refused.
    # Each has a ceiling: what the columns and one change's work can carry (a unit is a row).
    max_licences_per_org: int = Field(default=Limits.licences_per_org, gt=0, le=1_000_000)
    max_units_per_purchase: int = Field(default=Limits.units_per_purchase, gt=0, le=10_000)
    max_gb_per_mailbox: int = Field(default=Limits.gb_per_mailbox, gt=0, le=1_000_000)
    max_contacts: int = Field(default=Limits.contacts, gt=0, le=1_000_000_000)
    max_extend_days: int = Field(default=Limits.extend_days, gt=0, le=3650)
    max_users_per_org: int = Field(default=Limits.users_per_org, gt=0, le=1_000_000)
    # The largest file a command reads (billing simulate FILE, billing usage import FILE).
    max_input_file_mb: int = Field(default=MAX_INPUT_FILE_MB, gt=0, le=4096)

    @field_validator("temporal_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        problem = address_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()

    @field_validator("trial_reminder_days", "retry_days", "billing_staff", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @model_validator(mode="after")
    def _policy_holds(self) -> "Settings":
        """A policy that cannot hold stops the process or command at its start, naming the settings,
        as any other setting out of range does (it failed later, with a traceback, where first used)."""
        try:
            self._policy()
        except PolicyError as err:
            named = (f"BILLING_{field.upper()}: {message}" for field, message in err.problems)
            raise ValueError("; ".join(named)) from None
        return self

    @property
    def api_key_value(self) -> str | None:
        """The API key, from BILLING_API_KEY or the file BILLING_API_KEY_FILE names (a k8s Secret)."""
        return _secret(self.api_key, self.api_key_file)

    @property
    def stripe_api_key_value(self) -> str | None:
        return _secret(self.stripe_api_key, self.stripe_api_key_file)

    @property
    def stripe_webhook_secret_value(self) -> str | None:
        return _secret(self.stripe_webhook_secret, self.stripe_webhook_secret_file)

    @cached_property
    def webhooks(self) -> Webhooks:
        """The endpoints and the retry rule; a bad URL, secret or file is an InvalidInput naming it."""
        found: list[Endpoint] = []
        if self.webhook_url or self.webhook_secret:
            if not (self.webhook_url and self.webhook_secret):
                raise InvalidInput("BILLING_WEBHOOK_URL and BILLING_WEBHOOK_SECRET: set both, or neither")
            secrets = [s for s in self.webhook_secret.get_secret_value().replace(",", " ").split() if s]
            found.append(endpoint(DEFAULT_ENDPOINT, self.webhook_url, secrets, "BILLING_WEBHOOK"))
        if self.webhook_endpoints_file:
            where = f"BILLING_WEBHOOK_ENDPOINTS_FILE {self.webhook_endpoints_file}"
            try:
                raw = yaml.safe_load(Path(self.webhook_endpoints_file).read_text(encoding="utf-8"))
            except OSError as err:
                raise InvalidInput(f"{where}: {err.strerror}") from None
            except yaml.YAMLError:
                raise InvalidInput(f"{where}: not valid YAML") from None
            found += endpoints_from(raw, where)
        names = [e.name for e in found]
        if len(set(names)) != len(names):
            raise InvalidInput(f"webhook endpoints: the name {DEFAULT_ENDPOINT!r} is BILLING_WEBHOOK_URL's")
        retry = Retry(first=timedelta(seconds=self.webhook_retry_first_seconds),
                      longest=timedelta(seconds=max(self.webhook_retry_max_seconds, self.webhook_retry_first_seconds)),
                      failing_after=timedelta(hours=self.webhook_failing_after_hours))
        return Webhooks(endpoints=tuple(found), retry=retry, timeout_seconds=self.webhook_timeout_seconds)

    @property
    def seller(self) -> Seller:
        return Seller(self.seller_name, self.seller_address.replace("\\n", "\n"), self.seller_tax_number)

    @cached_property
    def policy(self) -> Policy:
        return self._policy()

    def _policy(self) -> Policy:
        return Policy(trial_days=self.trial_days, trial_reminder_days=tuple(self.trial_reminder_days),
                      retry_days=tuple(self.retry_days), downgrade_window_min_days=self.downgrade_window_min_days,
                      downgrade_window_max_days=self.downgrade_window_max_days,
                      large_account_licences=self.large_account_licences,
                      billing_staff=tuple(s.lower() for s in self.billing_staff),
                      staff_notify_email=self.staff_notify_email,
                      limits=Limits(licences_per_org=self.max_licences_per_org,
                                    units_per_purchase=self.max_units_per_purchase,
                                    gb_per_mailbox=self.max_gb_per_mailbox, contacts=self.max_contacts,
                                    extend_days=self.max_extend_days, users_per_org=self.max_users_per_org))


def setting_error(err: ValidationError) -> str:
    """A settings error in one line naming the setting: `BILLING_SMTP_PORT: Input should be less than 65536`."""
    problem = err.errors()[0]
    message = problem['msg'].removeprefix('Value error, ')
    if not problem.get("loc"):
        return message  # a check across settings (the policy) names them itself
    return f"BILLING_{str(problem['loc'][0]).upper()}: {message}"


def load_settings() -> "Settings":
    """The settings of a process (worker, HTTP service, embedded stack): a bad one stops it in one
    line naming it, exit 2."""
    import sys
    try:
        return Settings()
    except ValidationError as err:
        sys.stderr.write(f"cannot start: {setting_error(err)}\n")
        raise SystemExit(2) from None
