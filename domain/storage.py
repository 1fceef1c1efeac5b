"""Storage blocking (DOMAIN.md, seed 000) as one pure rule, and the e-mails it sends.

A user is blocked when their mailbox usage exceeds their quota (the plan's quota plus the units
allocated to them), or, on a plan with a user cap, when they are beyond it (newest first, never
the admin). Before blocking for storage, auto-allocation (opt-in, seed 004) gives the user the
smallest unallocated unit that covers the excess. A blocked user is unblocked as soon as
nothing blocks them any more. db/storage.py reads the users and writes the verdict in bulk."""

from dataclasses import dataclass, field, replace

from domain.decisions import Email

MB_PER_GB = 1024


@dataclass(frozen=True)
class MailboxUser:
    email: str
    usage_mb: int
    allocated_mb: int
    # 1-based place among the org's users: the admin first, then by order of arrival.
    rank: int
    blocked: bool = False
    blocked_reason: str | None = None


@dataclass(frozen=True)
class BlockedUser:
    email: str
    usage_mb: int
    quota_mb: int
    reason: str  # storage | user_cap


@dataclass(frozen=True)
class AutoAllocation:
    email: str
    unit_gb: int


@dataclass(frozen=True)
class Verdict:
    blocked: list[BlockedUser] = field(default_factory=list)      # newly blocked
    reblocked: list[BlockedUser] = field(default_factory=list)    # still blocked, for another reason
    unblocked: list[str] = field(default_factory=list)
    auto_allocated: list[AutoAllocation] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.blocked or self.reblocked or self.unblocked or self.auto_allocated)


def _reason(user: MailboxUser, allocated_mb: int, quota_mb: int, user_cap: int | None) -> str | None:
    if user.usage_mb > quota_mb + allocated_mb:
        return "storage"
    if user_cap is not None and user.rank > user_cap:
        return "user_cap"
    return None


def enforce(users: list[MailboxUser], plan_quota_gb: int, user_cap: int | None, auto_allocate: bool,
            free_units: dict[int, int]) -> Verdict:
    """The verdict for `users` (all of the org's, or the one a change touched). `free_units`:
    unallocated units per size that are not scheduled for removal, offered to auto-allocation."""
    quota_mb = plan_quota_gb * MB_PER_GB
    pool = dict(free_units)
    blocked, reblocked, unblocked, allocations = [], [], [], []
    for user in users:
        allocated = user.allocated_mb
        reason = _reason(user, allocated, quota_mb, user_cap)
        if reason == "storage" and auto_allocate:
            excess = user.usage_mb - quota_mb - allocated
            size = next((gb for gb in sorted(pool) if pool[gb] > 0 and gb * MB_PER_GB >= excess), None)
            if size is not None:
                pool[size] -= 1
                allocated += size * MB_PER_GB
                allocations.append(AutoAllocation(user.email, size))
                reason = _reason(user, allocated, quota_mb, user_cap)
        if reason is None:
            if user.blocked:
                unblocked.append(user.email)
        elif not user.blocked:
            blocked.append(BlockedUser(user.email, user.usage_mb, quota_mb + allocated, reason))
        elif user.blocked_reason != reason:
            reblocked.append(BlockedUser(user.email, user.usage_mb, quota_mb + allocated, reason))
    return Verdict(blocked, reblocked, unblocked, allocations)


def storage_emails(verdict: Verdict, occasion: str, admin_email: str, announce: Email | None,
                   free_units_left: int) -> list[Email]:
    """The e-mails a verdict sends: the announcement that asked for it (listing who was blocked),
    one storage_blocked to the admin and each blocked user, one per auto-allocation and one per
    unblocked user."""
    emails = []
    if announce is not None:
        emails.append(replace(announce, values={**announce.values, "blocked_users": [b.email for b in verdict.blocked]}))
    if verdict.blocked:
        users = [{"email": b.email, "usage": f"{b.usage_mb / MB_PER_GB:.1f} GB",
                  "quota": f"{b.quota_mb / MB_PER_GB:g} GB", "reason": b.reason} for b in verdict.blocked]
        emails.append(Email("storage_blocked", f"blocked:{occasion}",
                            to=[admin_email] + [b.email for b in verdict.blocked if b.email != admin_email],
                            values={"users": users}))
    for allocation in verdict.auto_allocated:
        emails.append(Email("storage_auto_allocated", f"auto:{occasion}:{allocation.email}:{allocation.unit_gb}",
                            values={"user": allocation.email, "unit_gb": allocation.unit_gb,
                                    "remaining_units": free_units_left}))
    for user in verdict.unblocked:
        emails.append(Email("user_unblocked", f"unblocked:{occasion}:{user}", values={"user": user}))
    return emails
