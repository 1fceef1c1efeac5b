"""Storage blocking (DOMAIN.md, seed 000) and auto-allocation (seed 004) as one pure rule, and
the e-mails it sends.

A user is blocked when their mailbox usage exceeds their quota (the plan's quota plus the units
allocated to them), or, on a plan with a user cap, when they are beyond it (newest first, never
the admin). A blocked user is unblocked as soon as nothing blocks them any more.

Auto-allocation (opt-in; our choice in DOMAIN.md): a unit it gave goes back to the pool as soon
as its user no longer needs it; then every user over their storage quota, the one who has waited
longest first, is given as many free units as it takes to cover their usage, the smallest first
(a unit the others already cover without is given back), or none when all the free units
together cannot cover it. It runs whenever enforcement runs: on a usage report, a plan change, and
once units become free (bought, or released). db/storage.py reads the users and writes the
verdict in bulk."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from domain.decisions import Email

MB_PER_GB = 1024
_LONG_AGO = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class MailboxUser:
    email: str
    usage_mb: int
    allocated_mb: int     # every unit allocated to them, by the admin or automatically
    # 1-based place among the org's users: the admin first, then by order of arrival.
    rank: int
    blocked: bool = False
    blocked_reason: str | None = None
    blocked_at: datetime | None = None    # None while unblocked (or blocked before it was kept)
    auto_units: tuple[int, ...] = ()      # sizes (GB) of the units auto-allocation gave them


@dataclass(frozen=True)
class BlockedUser:
    email: str
    usage_mb: int
    quota_mb: int
    reason: str  # storage | user_cap


@dataclass(frozen=True)
class AutoAllocation:
    """One unit of `unit_gb` given to (or, released, taken back from) `email`."""
    email: str
    unit_gb: int


@dataclass(frozen=True)
class Verdict:
    blocked: list[BlockedUser] = field(default_factory=list)      # newly blocked
    reblocked: list[BlockedUser] = field(default_factory=list)    # still blocked, for another reason
    unblocked: list[str] = field(default_factory=list)
    auto_allocated: list[AutoAllocation] = field(default_factory=list)
    released: list[AutoAllocation] = field(default_factory=list)  # back to the pool: no longer needed

    @property
    def changed(self) -> bool:
        return bool(self.blocked or self.reblocked or self.unblocked or self.auto_allocated or self.released)


def _reason(user: MailboxUser, allocated_mb: int, quota_mb: int, user_cap: int | None) -> str | None:
    if user.usage_mb > quota_mb + allocated_mb:
        return "storage"
    if user_cap is not None and user.rank > user_cap:
        return "user_cap"
    return None


def _waiting_order(user: MailboxUser) -> tuple:
    """Who has waited longest: the users blocked earliest, then those over quota only now."""
    return (0, user.blocked_at or _LONG_AGO, user.rank) if user.blocked else (1, _LONG_AGO, user.rank)


def units_covering(pool: dict[int, int], excess_mb: int) -> list[int] | None:
    """The free units to give for `excess_mb`: the smallest first until it is covered, then any
    the others cover without given back (the smallest first); None when all of them fall short."""
    taken: list[int] = []
    covered = 0
    for size in sorted(pool):
        for _ in range(pool[size]):
            if covered >= excess_mb:
                break
            taken.append(size)
            covered += size * MB_PER_GB
    if covered < excess_mb:
        return None
    for size in list(taken):
        if covered - size * MB_PER_GB >= excess_mb:
            taken.remove(size)
            covered -= size * MB_PER_GB
    return taken


def enforce(users: list[MailboxUser], plan_quota_gb: int, user_cap: int | None, auto_allocate: bool,
            free_units: dict[int, int]) -> Verdict:
    """The verdict for `users`: all of the org's, or the one a change touched (with
    auto-allocation, also those waiting for a unit: the users blocked for storage). `free_units`:
    unallocated units per size that are not scheduled for removal, offered to auto-allocation."""
    quota_mb = plan_quota_gb * MB_PER_GB
    pool = {size: count for size, count in free_units.items() if count > 0}
    allocated = {user.email: user.allocated_mb for user in users}
    released, allocations = [], []
    if auto_allocate:
        for user in users:
            for size in sorted(user.auto_units, reverse=True):   # the largest first: the smallest stay
                if user.usage_mb <= quota_mb + allocated[user.email] - size * MB_PER_GB:
                    allocated[user.email] -= size * MB_PER_GB
                    pool[size] = pool.get(size, 0) + 1
                    released.append(AutoAllocation(user.email, size))
        for user in sorted(users, key=_waiting_order):
            if _reason(user, allocated[user.email], quota_mb, user_cap) != "storage":
                continue
            if user_cap is not None and user.rank > user_cap:
                continue  # beyond the user cap a unit would unblock nothing
            units = units_covering(pool, user.usage_mb - quota_mb - allocated[user.email])
            for size in units or []:
                pool[size] -= 1
                allocated[user.email] += size * MB_PER_GB
                allocations.append(AutoAllocation(user.email, size))
    blocked, reblocked, unblocked = [], [], []
    for user in users:
        reason = _reason(user, allocated[user.email], quota_mb, user_cap)
        if reason is None:
            if user.blocked:
                unblocked.append(user.email)
        elif not user.blocked:
            blocked.append(BlockedUser(user.email, user.usage_mb, quota_mb + allocated[user.email], reason))
        elif user.blocked_reason != reason:
            reblocked.append(BlockedUser(user.email, user.usage_mb, quota_mb + allocated[user.email], reason))
    return Verdict(blocked, reblocked, unblocked, allocations, released)


def storage_emails(verdict: Verdict, occasion: str, admin_email: str, announce: Email | None,
                   free_units_left: int) -> list[Email]:
    """The e-mails a verdict sends: the announcement that asked for it (listing who was blocked),
    one storage_blocked to the admin and each blocked user, one per user given units and one per
    unblocked user. Sizes are megabytes: the mailer writes them in the org's language."""
    emails = []
    if announce is not None:
        emails.append(replace(announce, values={**announce.values, "blocked_users": [b.email for b in verdict.blocked]}))
    if verdict.blocked:
        users = [{"email": b.email, "usage": b.usage_mb, "quota": b.quota_mb, "reason": b.reason}
                 for b in verdict.blocked]
        emails.append(Email("storage_blocked", f"blocked:{occasion}",
                            to=[admin_email] + [b.email for b in verdict.blocked if b.email != admin_email],
                            values={"users": users}))
    given: dict[str, list[int]] = {}
    for allocation in verdict.auto_allocated:
        given.setdefault(allocation.email, []).append(allocation.unit_gb)
    for user, units in given.items():
        emails.append(Email("storage_auto_allocated", f"auto:{occasion}:{user}",
                            values={"user": user, "units_gb": units, "unblocked": user in verdict.unblocked,
                                    "remaining_units": free_units_left}))
    for user in verdict.unblocked:
        emails.append(Email("user_unblocked", f"unblocked:{occasion}:{user}", values={"user": user}))
    return emails
