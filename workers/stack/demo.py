"""The demo orgs `make run` creates: one table, each org with a line saying what it shows.

No clock is compressed and no state is written by hand. Each org's life starts in the past (or
its renewal falls a minute or two after the start), computed from the moment the demo starts
with the arithmetic the billing itself uses: cycles anchored in calendar months
(domain.periods), trials and dunning retries in days of the configured policy. The workflow's
own timers then bring each org to the state shown, at once or at the promised time, and the
rest (a cancellation, a staff downgrade, purchases) is asked for with the Updates the CLI sends."""

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from dateutil.relativedelta import relativedelta
from temporalio.client import Client

from db.orgs import set_card
from services.orgs import create_org
from db.queries import org_exists
from domain import requests as rq
from domain.cards import CardDetails, sandbox_tokenise
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.periods import anchor_renewing_at, require_utc
from domain.policy import Policy
from domain.states import Cycle
from workers.runtime.operations import OperationRefused, send_operation
from workflows.starter import start_org_workflow

log = logging.getLogger("billing.demo")

GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000341"

# The times the README promises, after the demo starts.
TRIAL_ENDS_AFTER = timedelta(seconds=60)
RENEWS_SOON_AFTER = timedelta(seconds=90)
DECLINES_AFTER = timedelta(seconds=120)
PROMISED_TIMES = (TRIAL_ENDS_AFTER, RENEWS_SOON_AFTER, DECLINES_AFTER)


# ---- when each org's life starts, relative to the demo's start -----------------------------------

@dataclass(frozen=True)
class Started:
    """Its life (a paid cycle, or the free plan) started this long before the demo."""
    ago: relativedelta

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        return now - self.ago, cycle


@dataclass(frozen=True)
class TrialEnds:
    """Its trial ends this long after the demo starts (a negative time: before it)."""
    after: timedelta

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        return now - timedelta(days=policy.trial_days) + self.after, cycle


@dataclass(frozen=True)
class TrialReminderDue:
    """Its trial ends halfway between the first two reminders: the first is due at once (late,
    but within half its lead time, so it is still sent), the next one later."""

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        first, second = (sorted(policy.trial_reminder_days, reverse=True) + [0, 0])[:2]
        return TrialEnds(timedelta(days=(first + second) / 2)).start(now, cycle, policy)


@dataclass(frozen=True)
class Renews:
    """Its first renewal falls this long after the demo starts (negative: before it, so the
    renewal runs at once)."""
    after: timedelta

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        assert cycle is not None
        return anchor_renewing_at(now + self.after, cycle)


@dataclass(frozen=True)
class InDowngradeWindow:
    """Its renewal falls in the middle of the window in which staff may schedule a downgrade."""

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        days = (policy.downgrade_window_min_days + policy.downgrade_window_max_days) / 2
        return Renews(timedelta(days=days)).start(now, cycle, policy)


@dataclass(frozen=True)
class Declined:
    """Its renewal was declined long enough before the demo that `attempts` charges have been
    made by the time its workflow catches up: the renewal's own, then one per retry of the
    dunning ladder already due (policy.retry_days after the renewal), halfway between two rungs.
    Counted from the ladder's end when not positive: 0 is a day after the last retry (the final
    action, free plan or escalation, has run), -1 has the last retry still to come."""
    attempts: int

    def renewal_ago(self, policy: Policy) -> timedelta:
        rungs = [0, *policy.retry_days]
        made = self.attempts if self.attempts > 0 else len(rungs) + self.attempts
        if made < len(rungs):
            return timedelta(days=(rungs[made - 1] + rungs[made]) / 2)
        return timedelta(days=rungs[-1] + 1)

    def start(self, now: datetime, cycle: Cycle | None, policy: Policy) -> tuple[datetime, Cycle | None]:
        return Renews(-self.renewal_ago(policy)).start(now, cycle, policy)


LAST_RETRY_NEXT, ALL_RETRIES_DECLINED = Declined(-1), Declined(0)
Timing = Started | TrialEnds | TrialReminderDue | Renews | InDowngradeWindow | Declined

ADMIN = "admin"   # in a request: the org's admin
STAFF = "staff"   # in a request: the first of the configured billing staff (BILLING_BILLING_STAFF)


@dataclass(frozen=True)
class DemoOrg:
    org: NewOrg
    shows: str
    timing: Timing
    card: str | None = None
    # Updates sent once its workflow runs, as `billing` sends them; requested_by ADMIN or STAFF.
    requests: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        return self.org.id


def _org(org_id: str, name: str, domain: str, *users: tuple[str, float], **fields: Any) -> NewOrg:
    return NewOrg(id=org_id, name=name, admin_email=f"admin@{domain}",
                  users=[NewUser(f"{user}@{domain}", gb) for user, gb in (("admin", 1.0), *users)], **fields)


def _paid(org_id: str, name: str, domain: str, plan: str, *users: tuple[str, float], cycle: str = "monthly",
          **fields: Any) -> NewOrg:
    return _org(org_id, name, domain, *users, plan=plan, cycle=cycle, **fields)


def _request(request_type: type, who: str, reason: str, **fields: Any) -> Any:
    return request_type(requested_by=who, reason=f"demo: {reason}", **fields)


DEMO_ORGS: list[DemoOrg] = [
    # -- trials
    DemoOrg(_org("demo-new-trial", "Hooli", "hooli.test", ("bob", 2.0)),
            "a trial that has just begun: 15 days of Professional", Started(relativedelta())),
    DemoOrg(_org("demo-trial-reminder", "Pied Piper", "piedpiper.test", ("gilfoyle", 9.0)),
            "a trial ending in 2 days: its 3-day reminder (trial_ending) goes out at once",
            TrialReminderDue()),
    DemoOrg(_org("demo-trial-chose-plan", "Stark Mail", "stark.test", ("pepper", 3.0)),
            "a trial whose admin chose Standard, yearly: converted and charged when the trial ends in 5 days",
            TrialEnds(timedelta(days=5)), GOOD_CARD,
            (("upgrade", _request(rq.UpgradeRequest, ADMIN, "keep the mail after the trial", plan="standard",
                             cycle="yearly")),)),
    DemoOrg(_org("demo-trial-ending", "Warung Kopi <Demo>", "kopi.test", ("sari", 3.0), ("budi", 5.1), ("dewi", 12.0),
                 locale="id", currency="IDR"),
            "its trial ends ~60 s after the start: free plan, budi and dewi (over 5 GB) blocked; e-mails in "
            "Indonesian", TrialEnds(TRIAL_ENDS_AFTER)),
    DemoOrg(_org("demo-trial-expired", "Umbrella", "umbrella.test", ("alice", 2.0), ("carlos", 7.5), ("jill", 1.0),
                 ("leon", 0.5), ("ada", 0.2)),
            "its trial ended just before the start: free plan at once, carlos (over 5 GB) and ada (the 6th "
            "user, beyond the free plan's 5) blocked", TrialEnds(timedelta(minutes=-1))),
    # -- paid plans
    DemoOrg(_paid("demo-renews-soon", "Globex", "globex.test", "standard", ("hank", 20.0)),
            "renews ~90 s after the start with a good card: receipt with the invoice PDF",
            Renews(RENEWS_SOON_AFTER), GOOD_CARD),
    DemoOrg(_paid("demo-ppn", "Toko Sejahtera", "sejahtera.test", "standard", ("rina", 2.0), locale="id",
                  currency="IDR", country="ID", tax_id="09.876.543.2-123.000"),
            "an Indonesian buyer (country ID, its NPWP on the invoice) renewing ~90 s after the start: its receipt "
            "and invoice show DPP, PPN 12% and the total with tax, which is what is charged",
            Renews(RENEWS_SOON_AFTER), GOOD_CARD),
    DemoOrg(_paid("demo-card-declines", "Initech", "initech.test", "mail_premium", ("peter", 8.0)),
            "renews ~2 min after the start with a declining card: past_due, payment_failed e-mail",
            Renews(DECLINES_AFTER), DECLINING_CARD),
    DemoOrg(_paid("acme", "Acme Field Services", "acme.test", "professional", ("wile", 40.0), ("road", 110.0)),
            "the org the docs' examples name: two 25 GB storage units, one allocated to road (110 GB, over "
            "Professional's 100 GB: blocked until then), premium support and a 5,000-contact subscriber tier, "
            "each bought at the start (receipts)",
            Started(relativedelta(days=10)), GOOD_CARD,
            (("buy_storage", _request(rq.BuyStorageRequest, ADMIN, "room for the archive", unit_gb=25, count=2)),
             ("allocate_storage", _request(rq.AllocateStorageRequest, ADMIN, "road's archive", user="road@acme.test",
                                      unit_gb=25)),
             ("buy_addon", _request(rq.BuyAddonRequest, ADMIN, "faster answers", addon="support_essentials")),
             ("change_tier", _request(rq.ChangeTierRequest, ADMIN, "newsletter", contacts=5000)))),
    DemoOrg(_paid("demo-yearly", "Cyberdyne", "cyberdyne.test", "standard", ("miles", 4.0), cycle="yearly"),
            "a yearly customer, two months into its year", Started(relativedelta(months=2)), GOOD_CARD),
    DemoOrg(_paid("demo-large", "Massive Dynamic", "massive.test", "professional", ("nina", 30.0), licences=150),
            "a large account (150 licences) in good standing, renewing 3 days after the start",
            Renews(timedelta(days=3)), GOOD_CARD),
    DemoOrg(_org("demo-free", "Bluth Company", "bluth.test", ("gob", 1.0), plan="free"),
            "on the free plan for three months", Started(relativedelta(months=3))),
    # -- dunning: each renewal was declined long enough ago that its retries so far have run
    DemoOrg(_paid("demo-dunning-1", "Vandelay Industries", "vandelay.test", "standard"),
            "past_due: its renewal 12 hours before the start was declined (attempt 1); retry 1 of 4 in 12 hours",
            Declined(1), DECLINING_CARD),
    DemoOrg(_paid("demo-dunning-2", "Dunder Mifflin", "dunder.test", "mail_lite_10", ("dwight", 2.0)),
            "past_due after 2 declined attempts; retry 2 of 4 a day after the start", Declined(2), DECLINING_CARD),
    DemoOrg(_paid("demo-dunning-3", "Soylent", "soylent.test", "mail_premium", ("sol", 3.0)),
            "past_due after 3 declined attempts; retry 3 of 4 a day after the start", Declined(3), DECLINING_CARD),
    DemoOrg(_paid("demo-dunning-last", "Oceanic Airlines", "oceanic.test", "standard"),
            "past_due after 4 declined attempts: the next retry is the last (its e-mail says the free plan "
            "follows)", LAST_RETRY_NEXT, DECLINING_CARD),
    DemoOrg(_paid("demo-escalated", "Tyrell Corp", "tyrell.test", "professional", ("rachael", 6.0), licences=120),
            "a large account (120 licences) whose last retry was declined: escalated S1-Critical, billing "
            "staff e-mailed, never downgraded", ALL_RETRIES_DECLINED, DECLINING_CARD),
    DemoOrg(_paid("demo-written-off", "Prestige Worldwide", "prestige.test", "standard", ("dale", 2.0)),
            "a small account whose last retry was declined: invoice written off (uncollectible), free plan",
            ALL_RETRIES_DECLINED, DECLINING_CARD),
    # -- changes at the cycle end, and one waiting for payment
    DemoOrg(_paid("demo-cancelling", "Wonka Industries", "wonka.test", "mail_lite_5", ("charlie", 1.0)),
            "cancelled by its admin: paid service until the cycle end, then the free plan",
            Started(relativedelta(days=12)), GOOD_CARD,
            (("cancel", _request(rq.CancelRequest, ADMIN, "moving to another provider")),)),
    DemoOrg(_paid("demo-downgrade", "Gringotts", "gringotts.test", "professional", ("griphook", 10.0), licences=12),
            "billing staff scheduled a downgrade to Standard with 8 licences at its renewal (~22 days after "
            "the start)", InDowngradeWindow(), GOOD_CARD,
            (("request_downgrade", _request(rq.DowngradeRequest, STAFF, "fewer seats after the reorganisation",
                                       plan="standard", licences=8)),)),
    DemoOrg(_paid("demo-scheduled-removals", "Sirius Cybernetics", "sirius.test", "standard", ("marvin", 3.0)),
            "bought a storage unit and premium support, then scheduled both to end at the renewal",
            Started(relativedelta(days=4)), GOOD_CARD,
            (("buy_storage", _request(rq.BuyStorageRequest, ADMIN, "a spare unit", unit_gb=5, count=1)),
             ("buy_addon", _request(rq.BuyAddonRequest, ADMIN, "launch week", addon="support_enhanced")),
             ("remove_storage", _request(rq.RemoveStorageRequest, ADMIN, "not needed after all", unit_gb=5, count=1)),
             ("remove_addon", _request(rq.RemoveAddonRequest, ADMIN, "launch is over", addon="support_enhanced")))),
    DemoOrg(_paid("demo-waiting-payment", "Hooli XYZ", "hoolixyz.test", "standard"),
            "bought 5 licences with a declining card: the change waits for payment (update the card to pay it)",
            Started(relativedelta(days=6)), DECLINING_CARD,
            (("add_licences", _request(rq.AddLicencesRequest, ADMIN, "new team", count=5)),)),
]


@dataclass(frozen=True)
class Planned:
    demo: DemoOrg
    org: NewOrg          # the cycle may differ from the table's (anchor_renewing_at)
    started: datetime


def sooner(timing: Timing, promised_times_divided_by: int) -> Timing:
    """The timing with a time the README promises (PROMISED_TIMES) divided: the timed orgs come
    true that many times sooner (`python -m workers.stack.embedded --promised-times-divided-by`,
    for a quicker look, as the demo's own test does); every other timing is left as it is."""
    if isinstance(timing, (TrialEnds, Renews)) and timing.after in PROMISED_TIMES:
        return replace(timing, after=timing.after / promised_times_divided_by)
    return timing


def plan_demo(now: datetime, policy: Policy, demos: list[DemoOrg] = DEMO_ORGS,
              promised_times_divided_by: int = 1) -> list[Planned]:
    """Each demo org as it is created when the demo starts at `now`."""
    planned = []
    for demo in demos:
        cycle = Cycle(demo.org.cycle) if demo.org.cycle else None
        timing = sooner(demo.timing, promised_times_divided_by)
        started, cycle = timing.start(require_utc(now), cycle, policy)
        org = replace(demo.org, cycle=str(cycle)) if cycle is not None else demo.org
        planned.append(Planned(demo, org, started))
    return planned


def _requester(who: str, org: NewOrg, policy: Policy) -> str | None:
    if who == ADMIN:
        return org.admin_email
    if who == STAFF:
        return policy.billing_staff[0] if policy.billing_staff else None
    return who


async def seed_demo(client: Client, components, task_queue: str, now: datetime,  # noqa: ANN001
                    demos: list[DemoOrg] = DEMO_ORGS,
                    card_for: Callable[[str], CardDetails] = sandbox_tokenise,
                    promised_times_divided_by: int = 1) -> list[str]:
    """Create the demo orgs missing from the database, start their workflows and send their
    Updates (one org's in order, the orgs side by side). An org already there (a second
    `make run`) is left as it is. `card_for`: a test number as the gateway keeps it (the
    sandbox's token, or Stripe's test PaymentMethod). Returns the ids created."""
    created: list[Planned] = []
    # The oldest first: an org begun longest ago has the most history to catch up (demo-escalated
    # runs five charges and its escalation before its row shows), so it starts while the rest are made.
    plans = sorted(plan_demo(now.replace(microsecond=0), components.policy, demos, promised_times_divided_by),
                   key=lambda plan: plan.started)
    for plan in plans:
        org = validate_new_org(plan.org, components.catalog)
        with components.db.transaction() as session:
            if org_exists(session, org.id):
                continue
            create_org(session, paid_for_one_cycle(org, plan.started, "demo"), components.catalog, components.policy,
                       plan.started)
            if plan.demo.card:
                card = card_for(plan.demo.card)
                set_card(session, org.id, card.token, card.brand, card.last4)
        await start_org_workflow(client, org.id, task_queue, org.name, org.admin_email)
        created.append(plan)
    await asyncio.gather(*(_send_requests(client, plan, components.policy) for plan in created))
    return [plan.demo.id for plan in created]


async def _send_requests(client: Client, plan: Planned, policy: Policy) -> None:
    for operation, request in plan.demo.requests:
        by = _requester(request.requested_by, plan.org, policy)
        if by is None:
            log.warning("demo org %s: no billing staff configured (BILLING_BILLING_STAFF) to send %s",
                        plan.demo.id, operation)
            return
        try:
            await send_operation(client, plan.demo.id, replace(request, requested_by=by))
        except OperationRefused as refusal:
            log.warning("demo org %s: %s refused: %s", plan.demo.id, operation, refusal)
            return
