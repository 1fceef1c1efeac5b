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
once units become free (bought, or released). `enforced` applies it inside a decision, to the
users its checks name, read once (`StoredMailboxes`: db.snapshots.StoredOrg); db/storage.py writes
the verdict in bulk."""

from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Protocol

from domain.catalog import Catalog
from domain.decisions import Decision, Effect, EffectKind, Email, Event, StorageCheck, UserChangeKind, send
from domain.states import BlockReason
from domain.subscription import OrgSnapshot, StorageHolding

MB_PER_GB = 1024
_LONG_AGO = datetime.min.replace(tzinfo=timezone.utc)


def gb_to_mb(gb: float) -> int:
    return int(round(gb * MB_PER_GB))


@dataclass(frozen=True)
class MailboxUser:
    email: str
    usage_mb: int
    allocated_mb: int     # every unit allocated to them, by the admin or automatically
    # 1-based place among the org's users: the admin first, then by order of arrival.
    rank: int
    blocked: bool = False
    blocked_reason: BlockReason | None = None
    blocked_at: datetime | None = None    # None while unblocked (or blocked before it was kept)
    auto_units: tuple[int, ...] = ()      # sizes (GB) of the units auto-allocation gave them


@dataclass(frozen=True)
class BlockedUser:
    email: str
    usage_mb: int
    quota_mb: int
    reason: BlockReason


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


def _reason(user: MailboxUser, allocated_mb: int, quota_mb: int, user_cap: int | None) -> BlockReason | None:
    if user.usage_mb > quota_mb + allocated_mb:
        return BlockReason.STORAGE
    if user_cap is not None and user.rank > user_cap:
        return BlockReason.USER_CAP
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
            if _reason(user, allocated[user.email], quota_mb, user_cap) != BlockReason.STORAGE:
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


# ---- inside a decision ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Mailbox:
    """A user as storage enforcement reads them (their row, the units allocated to them)."""
    email: str
    usage_mb: int
    allocated_mb: int
    seq: int                              # order of arrival
    is_admin: bool = False
    blocked: bool = False
    blocked_reason: BlockReason | None = None
    blocked_at: datetime | None = None
    auto_units: tuple[int, ...] = ()


@dataclass(frozen=True)
class Arrival:
    """Every user's place in the org: who keeps a seat under a user cap, who is listed blocked."""
    seq: int
    email: str
    is_admin: bool = False
    blocked: bool = False


@dataclass(frozen=True)
class Mailboxes:
    """What a decision's storage checks read, loaded once (`StoredMailboxes`): the users they name
    (every user for a whole-org check; with auto-allocation, those waiting for a unit too) and
    every user's arrival."""
    users: list[Mailbox]
    arrivals: list[Arrival]


class StoredMailboxes(Protocol):
    def mailboxes(self, only: list[str] | None, waiting: bool) -> Mailboxes:
        """The users `only` names (every user when None) and, `waiting`, those blocked for
        storage (auto-allocation may serve them), with every user's arrival."""
        ...


def enforced(decision: Decision, stored: StoredMailboxes, catalog: Catalog, now: datetime
             ) -> tuple[Decision, list[Verdict]]:
    """The decision with its storage checks carried out on the users they name, read once when
    it has any; and their verdicts, for the database to write."""
    checks = checks_of(decision)
    if not checks:
        return decision, []
    state = decision.state
    plan = catalog.plans[state.plan]
    return carried_out(decision, stored.mailboxes(scope_of(checks), state.auto_allocate_storage), plan.quota_gb,
                       plan.user_cap, now)


def checks_of(decision: Decision) -> list[StorageCheck]:
    """The storage checks a decision asks for, one per occasion (a later one with the same
    occasion repeats the first's e-mails: its outcome is the occasion's)."""
    checks: dict[str, StorageCheck] = {}
    for effect in decision.effects:
        if effect.kind == EffectKind.STORAGE_CHECK:
            checks.setdefault(effect.storage.occasion, effect.storage)
    return list(checks.values())


def scope_of(checks: list[StorageCheck]) -> list[str] | None:
    """The users the checks name; None: every user."""
    named: set[str] = set()
    for check in checks:
        if check.only is None:
            return None
        named.update(check.only)
    return sorted(named)


def _after(mailboxes: Mailboxes, decision: Decision) -> tuple[dict[str, Mailbox], list[Arrival]]:
    """The users and arrivals once the decision's user changes are written (storage enforcement
    runs on the users as the decision leaves them)."""
    users = {user.email: user for user in mailboxes.users}
    arrivals = list(mailboxes.arrivals)
    for change in decision.users:
        if change.kind == UserChangeKind.ADD:
            seq = max((arrival.seq for arrival in arrivals), default=0) + 1
            users[change.email] = Mailbox(change.email, gb_to_mb(change.storage_gb), 0, seq)
            arrivals.append(Arrival(seq, change.email))
        elif change.email in users and change.kind == UserChangeKind.SET_USAGE:
            users[change.email] = replace(users[change.email], usage_mb=gb_to_mb(change.storage_gb))
        elif change.email in users and change.kind == UserChangeKind.ALLOCATE:
            user = users[change.email]
            users[change.email] = replace(user, allocated_mb=user.allocated_mb + change.unit_gb * MB_PER_GB)
    return users, arrivals


def _ranks(arrivals: list[Arrival]) -> tuple[int, list[int]]:
    """The admins' count and the others' arrivals, sorted: "newest first, never the admin"."""
    return sum(a.is_admin for a in arrivals), sorted(a.seq for a in arrivals if not a.is_admin)


def _rank(user: Mailbox, admins: int, others: list[int]) -> int:
    """1-based place among the org's users: the admin first, then by order of arrival."""
    return 1 if user.is_admin else admins + bisect_left(others, user.seq) + 1


def carried_out(decision: Decision, mailboxes: Mailboxes, quota_gb: int, user_cap: int | None, now: datetime
                ) -> tuple[Decision, list[Verdict]]:
    """The decision with its storage checks carried out (DOMAIN.md, storage blocking): each
    replaced by the e-mails its verdict sends, the state saying who is blocked and which units
    auto-allocation moved; the verdicts, for the database to write."""
    state = decision.state
    auto = state.auto_allocate_storage
    users, arrivals = _after(mailboxes, decision)
    admins, others = _ranks(arrivals)
    pool = state.free_units
    sent: dict[str, list[Effect]] = {}
    effects, verdicts = [], []
    for effect in decision.effects:
        if effect.kind != EffectKind.STORAGE_CHECK:
            effects.append(effect)
            continue
        check = effect.storage
        if check.occasion not in sent:
            only = check.only
            checked = [MailboxUser(u.email, u.usage_mb, u.allocated_mb, _rank(u, admins, others), u.blocked,
                                   u.blocked_reason, u.blocked_at, u.auto_units if auto else ())
                       for u in sorted(users.values(), key=lambda u: _rank(u, admins, others))
                       if only is None or u.email in only or (auto and u.blocked_reason == BlockReason.STORAGE)]
            verdict = enforce(checked, quota_gb, user_cap, auto, pool)
            users, pool = _applied(verdict, users, pool, now)
            verdicts.append(verdict)
            sent[check.occasion] = [send(email) for email in storage_emails(
                verdict, check.occasion, state.admin_email, check.announce, sum(pool.values()))]
        effects += sent[check.occasion]
    return replace(decision, state=_state_after(state, verdicts, users, arrivals), effects=effects), verdicts


def _applied(verdict: Verdict, users: dict[str, Mailbox], pool: dict[int, int], now: datetime
             ) -> tuple[dict[str, Mailbox], dict[int, int]]:
    """The users and the free units once `verdict` is carried out."""
    users, pool = dict(users), dict(pool)
    for moved, sign in [(a, -1) for a in verdict.released] + [(a, 1) for a in verdict.auto_allocated]:
        user = users[moved.email]
        units = list(user.auto_units)
        if sign > 0:
            units.append(moved.unit_gb)
        else:
            units.remove(moved.unit_gb)
        users[moved.email] = replace(user, allocated_mb=user.allocated_mb + sign * moved.unit_gb * MB_PER_GB,
                                     auto_units=tuple(sorted(units)))
        pool[moved.unit_gb] = pool.get(moved.unit_gb, 0) - sign
    for blocked in verdict.blocked:
        users[blocked.email] = replace(users[blocked.email], blocked=True, blocked_reason=blocked.reason,
                                       blocked_at=now)
    for blocked in verdict.reblocked:
        users[blocked.email] = replace(users[blocked.email], blocked_reason=blocked.reason)
    for email in verdict.unblocked:
        users[email] = replace(users[email], blocked=False, blocked_reason=None, blocked_at=None)
    return users, {size: count for size, count in pool.items() if count > 0}


def _state_after(state: OrgSnapshot, verdicts: list[Verdict], users: dict[str, Mailbox],
                 arrivals: list[Arrival]) -> OrgSnapshot:
    """Who is blocked (in order of arrival) and how many units of each size are allocated."""
    if not verdicts:
        return state
    blocked = [a.email for a in sorted(arrivals, key=lambda a: a.seq)
               if (users[a.email].blocked if a.email in users else a.blocked)]
    moved: dict[int, int] = {}
    for verdict in verdicts:
        for allocation in verdict.auto_allocated:
            moved[allocation.unit_gb] = moved.get(allocation.unit_gb, 0) + 1
        for release in verdict.released:
            moved[release.unit_gb] = moved.get(release.unit_gb, 0) - 1
    storage = [StorageHolding(h.unit_gb, h.owned, h.allocated + moved.get(h.unit_gb, 0)) for h in state.storage]
    return state.with_changes(blocked_users=blocked, storage=storage)


def verdict_events(verdict: Verdict) -> list[Event]:
    """The audit log's entries for a verdict, in the order it is carried out."""
    return ([Event("storage_auto_released", {"user": r.email, "unit_gb": r.unit_gb}) for r in verdict.released]
            + [Event("storage_auto_allocated", {"user": a.email, "unit_gb": a.unit_gb})
               for a in verdict.auto_allocated]
            + [Event("user_blocked", {"user": b.email, "reason": str(b.reason)}) for b in verdict.blocked]
            + [Event("user_unblocked", {"user": email}) for email in verdict.unblocked])
