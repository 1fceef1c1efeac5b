"""The configurable business policy (DOMAIN.md defaults). Frozen data: the workflow receives
it from an activity at the start of each run, so a policy change applies from the next run
and replay stays deterministic."""

from dataclasses import dataclass, field

from domain.errors import InvalidInput
from domain.limits import Limits, check_email


class PolicyError(ValueError):
    """A policy that cannot hold, with the field each problem is about (a setting names it)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(message for _, message in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Policy:
    trial_days: int = 15
    trial_reminder_days: tuple[int, ...] = (3, 1)
    # Dunning ladder: retries this many days after the failed renewal.
    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    downgrade_window_min_days: int = 15
    downgrade_window_max_days: int = 30
    large_account_licences: int = 100
    # None means "anyone counts as billing staff" (only the simulator uses that).
    billing_staff: tuple[str, ...] | None = field(default=())
    staff_notify_email: str = "billing-staff@localhost"
    # Seed 002, S1-Critical: first response within 1-3 h, determination within 2-8 h. We record
    # the outer bound as the deadline.
    escalation_first_response_hours: int = 3
    escalation_determination_hours: int = 8
    # Maxima of counts and sizes a request may carry (domain.limits).
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        problems = []
        if self.trial_days <= 0:
            problems.append(("trial_days", f"trial_days must be positive, got {self.trial_days}"))
        if any(d <= 0 or d >= self.trial_days for d in self.trial_reminder_days):
            problems.append(("trial_reminder_days", "trial_reminder_days must each be between 1 and trial_days - 1"))
        if not self.retry_days or any(d <= 0 for d in self.retry_days) or list(self.retry_days) != sorted(set(self.retry_days)):
            problems.append(("retry_days",
                             f"retry_days must be positive, strictly increasing days, got {list(self.retry_days)}"))
        if not 0 <= self.downgrade_window_min_days <= self.downgrade_window_max_days:
            problems.append(("downgrade_window_min_days", "downgrade window must satisfy 0 <= min days <= max days"))
        if self.large_account_licences <= 0:
            problems.append(("large_account_licences", "large_account_licences must be positive"))
        # The escalation e-mail goes to staff_notify_email: to no address it would be retried for ever.
        for name, addresses in (("staff_notify_email", (self.staff_notify_email,)),
                                ("billing_staff", self.billing_staff or ())):
            for address in addresses:
                try:
                    check_email(address, name, local=True)
                except InvalidInput as err:
                    problems.append((name, err.message))
                    break
        if problems:
            raise PolicyError(problems)

    def is_staff(self, email: str) -> bool:
        if self.billing_staff is None:
            return True
        return email.strip().lower() in {s.lower() for s in self.billing_staff}
