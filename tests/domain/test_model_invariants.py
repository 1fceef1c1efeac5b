"""A Hypothesis state machine over the pure model (tests/support/model.py): every operation, good
and bad, in any order, with time passing through trial ends, renewals and dunning. After every
step it checks what DOMAIN.md says must hold whatever the order of requests:

- licences >= users on a paid plan;
- no item-day billed twice and every day held billed (quantities, day by day);
- a scheduled change never undoes a change paid after it;
- every quota change is enforced: the blocked users are exactly those over their quota or
  beyond the plan's user cap;
- nothing is charged after a cancellation, until the org upgrades again or undoes it;
- a tier never below the subscribed contacts, and contacts past the tier await an upgrade;
- usage reports and contact counts are facts with a time: whatever the order they are sent in,
  repeated or late, each user has the usage of their newest report, the org its newest count;
- a negative invoice's amount is kept as account credit and used by later invoices: what the card
  paid equals what settled invoices billed plus the credit held or tied up (never overdrawn);
and, at the end of each run, that the amounts invoiced equal the catalog price of what was held,
day by day, within rounding.

CI runs 200 examples; `HYPOTHESIS_PROFILE=thorough` runs 2,000 (and longer runs)."""

import os
from collections import defaultdict
from datetime import date, datetime, timedelta
from fractions import Fraction

from dateutil.relativedelta import relativedelta

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain import requests as rq
from domain.billing import unit_price
from domain.cards import sandbox_tokenise
from domain.catalog import load_catalog
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.policy import Policy
from domain.proration import period_days
from domain.states import FREE_PLAN, InvoiceKind, InvoiceStatus
from domain.storage import MB_PER_GB
from domain.subscription import PAID_STATUSES, Item
from tests.support.model import OpeningDeclined, OrgModel

settings.register_profile("ci", max_examples=200, stateful_step_count=50, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=2000, stateful_step_count=60, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

CATALOG = load_catalog()
# A low large-account threshold, so escalations happen with small orgs too.
POLICY = Policy(billing_staff=None, large_account_licences=6)
START = datetime.fromisoformat("2026-01-31T09:00:00+00:00")
CARDS = {"good": sandbox_tokenise("4242424242424242"), "declining": sandbox_tokenise("4000000000000341"),
         "no_funds": sandbox_tokenise("4000000000009995")}
PLANS = ["free", "mail_lite_5", "mail_lite_10", "mail_premium", "standard", "professional"]
PAID_PLANS = PLANS[1:]
STAFF = "rina@billing.test"
CYCLE_INVOICES = (InvoiceKind.RENEWAL, InvoiceKind.TRIAL_CONVERSION, InvoiceKind.OPENING)

users = st.sampled_from([f"u{i}@acme.test" for i in range(1, 9)])
gb = st.sampled_from([0, 1, 4.5, 6, 12, 28, 40, 60, 120])
units = st.sampled_from([5, 25, 50])
tiers = st.sampled_from([1000, 2000, 3000, 5000])


class OrgLife(RuleBasedStateMachine):
    org: OrgModel

    @initialize(plan=st.sampled_from(["trial", "trial", "free", "standard", "mail_lite_10", "professional"]),
                cycle=st.sampled_from(["monthly", "monthly", "yearly"]),
                extra=st.lists(gb, min_size=0, max_size=4), card=st.sampled_from([None, "good", "good", "declining"]),
                auto=st.booleans(), spare=st.integers(min_value=0, max_value=2),
                currency=st.sampled_from(["USD", "USD", "IDR"]), new_customer=st.booleans())
    def start(self, plan, cycle, extra, card, auto, spare, currency, new_customer):
        people = [NewUser(f"u{i}@acme.test", usage) for i, usage in enumerate(extra, start=1)]
        paid = plan not in ("trial", "free")
        org = validate_new_org(NewOrg(id="acme", name="Acme", admin_email="admin@acme.test", users=people, plan=plan,
                                      currency=currency, locale="id" if currency == "IDR" else "en",
                                      cycle=cycle if paid else None, auto_allocate_storage=auto,
                                      licences=len(people) + 1 + spare if paid else None), CATALOG)
        if paid and not (new_customer and card):
            org = paid_for_one_cycle(org, START, "tests")   # an existing customer moved in
        token = CARDS[card] if card else None
        try:
            self.org = OrgModel(org, START, POLICY, CATALOG, token.token if token else None,
                                card_last4=token.last4 if token else None)
        except OpeningDeclined:
            # Nothing of the org remains; the admin runs `org create` again with another card.
            event("opening declined, then paid with another card")
            good = CARDS["good"]
            self.org = OrgModel(org, START, POLICY, CATALOG, good.token, card_last4=good.last4, opening_attempt=2)
        if paid and org.paid_through is None:
            event("a new customer paid its first cycle at creation")
            [opening] = self.org.invoices.values()
            assert (opening.kind, opening.status, opening.period_start) == (InvoiceKind.OPENING, InvoiceStatus.PAID,
                                                                            START)
            assert [(c.at, c.invoice, c.outcome) for c in self.org.charges] == [(START, opening.number, "succeeded")]
        self.currency = currency
        self.seen_events = 0
        self.seen_charges = 0
        self.charging_stopped = False
        self.paid_floors: list[tuple[str, object]] = []   # what changes paid this cycle established
        # Reports accepted per subject (a user, or "contacts"): (time, value); explicit ones to send again.
        self.reports: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        self.explicit: list[tuple[str, object]] = []

    # ---- time -------------------------------------------------------------------------------------

    @rule(days=st.integers(min_value=0, max_value=45), hours=st.integers(min_value=0, max_value=23))
    def time_passes(self, days, hours):
        self.org.advance_to(self.org.now + timedelta(days=days, hours=hours))

    @rule()
    def until_the_next_step(self):
        from domain.lifecycle import next_step
        step = next_step(self.org.state, POLICY, self.org.now)
        if step.due is not None:
            self.org.advance_to(max(step.due, self.org.now))

    # ---- requests ---------------------------------------------------------------------------------

    def send(self, name, request):
        decision = self.org.request(name, request)
        if decision is not None and name in ("cancel",):
            self.charging_stopped = True
        if decision is not None and name in ("upgrade", "undo_cancel"):
            self.charging_stopped = False

    @rule(plan=st.sampled_from(PAID_PLANS), cycle=st.sampled_from([None, "monthly", "yearly"]))
    def upgrade(self, plan, cycle):
        self.send("upgrade", rq.UpgradeRequest(plan, cycle))

    @rule(count=st.integers(min_value=-1, max_value=3))
    def add_licences(self, count):
        self.send("add_licences", rq.AddLicencesRequest(count))

    @rule(email=users, usage=gb)
    def add_user(self, email, usage):
        self.send("add_user", rq.AddUserRequest(email, usage))

    def report(self, name, request, subjects: list[tuple[str, float]]):
        """A report accepted is a fact at its time: `reported_at`, or when it arrived."""
        decision = self.org.request(name, request)
        at = datetime.fromisoformat(request.reported_at) if request.reported_at else self.org.now
        if decision is not None:
            for subject, value in subjects:
                self.reports[subject].append((at, value))

    @rule(email=st.sampled_from(["admin@acme.test"]) | users, usage=gb)
    def set_usage(self, email, usage):
        self.report("set_usage", rq.SetUsageRequest(email, usage), [(email, usage)])

    @rule(rows=st.dictionaries(st.sampled_from(["admin@acme.test"]) | users, gb, min_size=1, max_size=3))
    def import_usage(self, rows):
        self.report("import_usage", rq.ImportUsageRequest(list(rows.items())), list(rows.items()))

    # Reports carrying their own id and time, measured a while ago (odd minutes: no two at one instant),
    # some sent again: a late one changes nothing, a repeat is applied once.
    @rule(email=st.sampled_from(["admin@acme.test"]) | users, usage=gb, hours_ago=st.integers(min_value=1, max_value=72),
          again=st.booleans())
    def report_usage_measured_earlier(self, email, usage, hours_ago, again):
        if again and self.explicit:
            name, request = self.explicit[len(self.explicit) // 2]
        else:
            at = self.org.now - timedelta(hours=hours_ago, minutes=37, seconds=len(self.explicit))
            name = "set_usage"
            request = rq.SetUsageRequest(email, usage, report_id=f"meter-{len(self.explicit)}", reported_at=at.isoformat())
            self.explicit.append((name, request))
        if name == "set_usage":
            self.report(name, request, [(request.user, request.storage_gb)])
        else:
            self.report(name, request, [("contacts", request.contacts)])

    @rule(contacts=st.integers(min_value=0, max_value=6000), hours_ago=st.integers(min_value=1, max_value=72))
    def report_contacts_measured_earlier(self, contacts, hours_ago):
        at = self.org.now - timedelta(hours=hours_ago, minutes=41, seconds=len(self.explicit))
        request = rq.SetContactsRequest(contacts, report_id=f"crm-{len(self.explicit)}", reported_at=at.isoformat())
        self.explicit.append(("set_contacts", request))
        self.report("set_contacts", request, [("contacts", contacts)])

    @rule(unit=units, count=st.integers(min_value=1, max_value=2))
    def buy_storage(self, unit, count):
        self.send("buy_storage", rq.BuyStorageRequest(unit, count))

    @rule(unit=units, count=st.integers(min_value=1, max_value=2))
    def remove_storage(self, unit, count):
        self.send("remove_storage", rq.RemoveStorageRequest(unit, count))

    @rule(email=st.sampled_from(["admin@acme.test"]) | users, unit=units)
    def allocate_storage(self, email, unit):
        self.send("allocate_storage", rq.AllocateStorageRequest(email, unit))

    @rule(addon=st.sampled_from(["support_essentials", "support_enhanced"]))
    def buy_addon(self, addon):
        self.send("buy_addon", rq.BuyAddonRequest(addon))

    @rule(addon=st.sampled_from(["support_essentials", "support_enhanced"]))
    def remove_addon(self, addon):
        self.send("remove_addon", rq.RemoveAddonRequest(addon))

    @rule(contacts=tiers)
    def change_tier(self, contacts):
        self.send("change_tier", rq.ChangeTierRequest(contacts))

    @rule(contacts=st.integers(min_value=0, max_value=6000))
    def set_contacts(self, contacts):
        self.report("set_contacts", rq.SetContactsRequest(contacts), [("contacts", contacts)])

    @rule()
    def switch_to_yearly(self):
        self.send("switch_to_yearly", rq.SwitchToYearlyRequest())

    @rule()
    def switch_to_monthly(self):
        self.send("switch_to_monthly", rq.SwitchToMonthlyRequest())

    @rule()
    def cancel_switch_to_monthly(self):
        self.send("cancel_switch_to_monthly", rq.CancelSwitchToMonthlyRequest())

    @rule(setting=st.sampled_from(["on", "off"]))
    def auto_allocate(self, setting):
        self.send("auto_allocate", rq.AutoAllocateRequest(setting, requested_by="admin@acme.test", reason="asked"))

    @rule(card=st.sampled_from(sorted(CARDS)))
    def update_card(self, card):
        token = CARDS[card]
        self.send("update_card", rq.UpdateCardRequest(token.token, token.brand, token.last4))

    @precondition(lambda self: self.org.state.renews_at is not None)
    @rule(plan=st.sampled_from(PAID_PLANS), licences=st.none() | st.integers(min_value=1, max_value=8),
          days_before=st.integers(min_value=14, max_value=31))
    def request_downgrade(self, plan, licences, days_before):
        when = self.org.state.renews_at - timedelta(days=days_before)
        if when > self.org.now:
            self.org.advance_to(when)
        self.send("request_downgrade", rq.DowngradeRequest(plan, licences, requested_by=STAFF, reason="cost"))

    @rule()
    def cancel_downgrade(self):
        self.send("cancel_downgrade", rq.CancelDowngradeRequest(requested_by=STAFF, reason="call"))

    @rule()
    def cancel(self):
        self.send("cancel", rq.CancelRequest("admin@acme.test"))

    @rule()
    def undo_cancel(self):
        self.send("undo_cancel", rq.UndoCancelRequest("admin@acme.test"))

    @rule()
    def retry_payment(self):
        self.send("retry_payment", rq.RetryPaymentRequest(requested_by=STAFF, reason="call"))

    @rule(action=st.sampled_from(["extend", "downgrade", "retry"]))
    def resolve_escalation(self, action):
        self.send("resolve_escalation", rq.ResolveEscalationRequest(action, requested_by=STAFF, reason="call"))

    # ---- invariants -------------------------------------------------------------------------------

    @invariant()
    def licences_follow_users(self):
        state = self.org.state
        if state.status in PAID_STATUSES:
            assert state.licences >= len(self.org.users), (state.licences, len(self.org.users))

    @invariant()
    def every_day_held_is_billed_once(self):
        held, billed, exempt = self._days()
        state = self.org.state
        last = state.renews_at.date() if state.status in PAID_STATUSES and state.renews_at else self.org.now.date()
        for day in sorted(set(held) | set(billed)):
            if day in exempt or day >= last:
                continue
            assert billed.get(day, {}) == held.get(day, {}), (day, held.get(day), billed.get(day))

    @invariant()
    def a_scheduled_change_never_undoes_a_change_paid_after_it(self):
        """What a paid change established (a plan, licences, a tier, an add-on, storage units) holds
        through the next renewal or yearly switch, when what was scheduled takes effect, unless a
        later request lowered it (a downgrade, a tier cut, a removal, a cancellation)."""
        events = self.org.events[self.seen_events:]
        self.seen_events = len(self.org.events)
        for happened in events:
            self._statistics(happened)
            data = happened.data
            if happened.type == "invoice" and data["kind"] == InvoiceKind.RENEWAL:
                self._check_floors(data["state"])
            elif happened.type == "change_applied":
                if data["operation"] == "switch_to_yearly":
                    self._check_floors(self.org.state)
                self.paid_floors.append((data["operation"], self._floor(data["operation"], data["request"])))
            elif happened.type == "request" and data["operation"] in LOWERING:
                lowered = LOWERING[data["operation"]]
                self.paid_floors = [(op, floor) for op, floor in self.paid_floors if op not in lowered]
            elif happened.type == "plan_changed" and data["to"] == FREE_PLAN:
                self.paid_floors = []

    def _floor(self, operation: str, request: dict):
        state = self.org.state
        return {"upgrade": lambda: request["plan"], "add_licences": lambda: state.licences,
                "change_tier": lambda: request["contacts"], "buy_addon": lambda: request["addon"],
                # What stays at the renewal: removals scheduled before are not undone by the purchase.
                "buy_storage": lambda: (request["unit_gb"], state.storage_owned(request["unit_gb"])
                                        - state.scheduled.removing(request["unit_gb"])),
                "switch_to_yearly": lambda: None}[operation]()

    def _check_floors(self, state):
        price = lambda plan: CATALOG.plan_price(plan, self.currency, "monthly")  # noqa: E731
        for operation, floor in self.paid_floors:
            if operation == "upgrade":
                assert price(state.plan) >= price(floor), (state.plan, floor)
            elif operation == "add_licences":
                assert state.licences >= floor, (state.licences, floor)
            elif operation == "change_tier":
                assert state.tier_contacts >= floor, (state.tier_contacts, floor)
            elif operation == "buy_addon":
                assert floor in state.addons, (state.addons, floor)
            elif operation == "buy_storage":
                unit_gb, owned = floor
                assert state.storage_owned(unit_gb) >= owned, (state.storage, floor)
        self.paid_floors = []

    @invariant()
    def blocked_users_are_exactly_those_over_their_quota(self):
        plan = CATALOG.plans[self.org.state.plan]
        ranked = sorted(self.org.users.values(), key=lambda u: (not u.is_admin, u.seq))
        should = {u.email for rank, u in enumerate(ranked, start=1)
                  if u.usage_mb > (plan.quota_gb + sum(u.units)) * MB_PER_GB
                  or (plan.user_cap is not None and rank > plan.user_cap)}
        assert {u.email for u in self.org.users.values() if u.blocked} == should

    @invariant()
    def a_switch_to_monthly_waits_for_the_yearly_renewal(self):
        """Scheduled only on a yearly org; at its renewal the org turns monthly and that renewal
        invoices one month, the next renewal a month later (DOMAIN.md)."""
        state = self.org.state
        if state.scheduled.cycle is not None:
            assert (state.cycle, state.scheduled.cycle) == ("yearly", "monthly"), (state.cycle, state.scheduled)
        events = self.org.events[getattr(self, "seen_switches", 0):]
        self.seen_switches = len(self.org.events)
        for happened in events:
            if happened.type != "cycle_changed":
                continue
            event("switched to monthly at the renewal")
            assert (happened.data["from"], happened.data["to"]) == ("yearly", "monthly")
            [invoice] = [e for e in events if e.type == "invoice" and e.at == happened.at
                         and e.data["kind"] == InvoiceKind.RENEWAL]
            start, end = invoice.data["state"].period_start, invoice.data["state"].renews_at
            assert (start, end) == (happened.at, start + relativedelta(months=1)), (start, end)

    @invariant()
    def nothing_is_charged_after_a_cancellation(self):
        new = [c for c in self.org.charges[self.seen_charges:] if c.outcome == "succeeded"]
        self.seen_charges = len(self.org.charges)
        if self.charging_stopped:
            assert new == [], new

    @invariant()
    def each_report_subject_holds_its_newest_report(self):
        """Whatever the order: the newest report's value (unless two reports share that instant)."""
        for subject, sent in self.reports.items():
            newest = max(at for at, _ in sent)
            values = {value for at, value in sent if at == newest}
            if len(values) > 1:
                continue
            [value] = values
            if subject == "contacts":
                assert self.org.state.subscribers.total == value, (sent, self.org.state.subscribers)
            else:
                assert self.org.users[subject].usage_mb == round(value * MB_PER_GB), (subject, sent)

    @invariant()
    def every_settled_minor_unit_was_paid_by_card_or_credit(self):
        """A credit note's amount is kept, never lost: what the card paid equals what settled
        invoices billed (paid ones, credit notes below zero), plus the credit the org still holds
        and the credit tied up in invoices still open or written off. Never overdrawn."""
        invoices = self.org.invoices.values()
        card = sum(c.amount for c in self.org.charges if c.outcome == "succeeded")
        settled = sum(line.amount for i in invoices if i.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED)
                      for line in i.lines)
        tied_up = sum(i.credit_applied for i in invoices
                      if i.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE))
        assert self.org.state.credit >= 0, self.org.state.credit
        if any(i.status == InvoiceStatus.CREDITED for i in invoices):
            event("credit note issued")
        if any(i.credit_applied for i in invoices):
            event("account credit used")
        assert card == settled + self.org.state.credit + tied_up, (card, settled, self.org.state.credit, tied_up)

    @invariant()
    def the_tier_covers_the_subscribed_contacts(self):
        state = self.org.state
        assert state.tier_contacts >= state.subscribers.subscribed
        assert state.subscribers.subscribed == min(state.subscribers.total, state.tier_contacts)

    def _statistics(self, happened):
        """What the runs reach, for `--hypothesis-show-statistics`."""
        event(f"status {self.org.state.status}")
        if happened.type in ("scheduled_change_adjusted", "change_repriced", "change_dropped", "escalated",
                             "storage_auto_allocated", "storage_auto_released"):
            event(happened.type)
        elif happened.type == "plan_changed":
            event(f"plan changed: {happened.data['reason']}")
        elif happened.type == "change_applied":
            event(f"paid change applied: {happened.data['operation']}")

    def teardown(self):
        """Run the org on to a year after its start (renewals, dunning), check again, then check
        that over that year the amounts invoiced equal the catalog price of what was held, day by
        day, within a minor unit per line."""
        if not hasattr(self, "org"):
            return
        self.org.advance_to(max(self.org.now, START + timedelta(days=366)))
        self.every_day_held_is_billed_once()
        self.a_scheduled_change_never_undoes_a_change_paid_after_it()
        self.blocked_users_are_exactly_those_over_their_quota()
        invoiced, exact, lines = self._amounts()
        assert abs(invoiced - exact) <= lines, (invoiced, float(exact), lines)

    # ---- accounting -------------------------------------------------------------------------------

    def _counted(self):
        """What counts as billed: lines of paid invoices and of a cycle's invoice while it is
        collected, and a first cycle paid before the org reached us."""
        for invoice in self.org.invoices.values():
            if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED) or (
                    invoice.status == InvoiceStatus.OPEN and invoice.kind in CYCLE_INVOICES):
                yield from invoice.lines
        yield from self.org.paid_before

    def _exempt(self) -> set:
        """Days held in grace, never paid: those of a cycle whose invoice was voided or written off,
        and those of a next period not billed yet (the renewal day before the renewal's hour). A
        past-due or escalated org renews on its date like any other: its days are billed too."""
        billed = {(invoice.period_start, invoice.period_end) for invoice in self.org.invoices.values()
                  if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CREDITED, InvoiceStatus.OPEN)}
        # A period may start again at the same instant (cancelled in dunning, then bought again).
        unpaid = {(invoice.period_start, invoice.period_end) for invoice in self.org.invoices.values()
                  if invoice.kind in CYCLE_INVOICES and invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)
                  } - billed
        today = self.org.now.date()
        return {day for day, (_, _, period, next_period) in self._held().items()
                if period in unpaid or (next_period and period not in billed and day >= today)}

    def _held(self):
        """(items, cycle, period, next period?) per day: the days recorded, then the current state to
        the end of its billed period."""
        days = dict(self.org.days)
        state = self.org.state
        if state.status in PAID_STATUSES and state.renews_at and state.plan != FREE_PLAN:
            today = days[self.org.now.date()]
            for day in _dates(self.org.now, state.renews_at):
                days.setdefault(day, today)
        return {day: (self._items_of(state), state.cycle, period, next_period)
                for day, (state, period, next_period) in days.items()}

    def _items_of(self, state) -> dict:
        """_items, once per state (consecutive days share one)."""
        cache = self.__dict__.setdefault("_items_cache", {})
        if id(state) not in cache:
            cache[id(state)] = (state, _items(state))  # the state is kept so its id is not reused
        return cache[id(state)][1]

    def _days(self):
        exempt = self._exempt()
        held = {day: {item: qty for item, qty in items.items() if qty}
                for day, (items, _, _, _) in self._held().items()}
        billed: dict[date, dict] = defaultdict(lambda: defaultdict(int))
        for line in self._counted():
            for day in _dates(line.start, line.end):
                billed[day][line.item] += line.quantity
        billed = {day: {item: q for item, q in items.items() if q} for day, items in billed.items()}
        return held, {day: items for day, items in billed.items() if items}, exempt

    def _amounts(self):
        exempt = self._exempt()
        counted = list(self._counted())
        invoiced = sum(line.amount for line in counted)
        lines = len(counted)
        exact = Fraction(0)
        for day, (items, cycle, period, _) in self._held().items():
            if day in exempt or not items:
                continue
            for item, quantity in items.items():
                exact += Fraction(unit_price(CATALOG, item, self.currency, cycle) * quantity, period_days(*period))
        return invoiced, exact, lines


LOWERING = {  # requests that may lower what a paid change established, and the changes they may lower
    "request_downgrade": {"upgrade", "add_licences"}, "change_tier": {"change_tier"},
    "remove_addon": {"buy_addon"}, "remove_storage": {"buy_storage"},
    "cancel": {"upgrade", "add_licences", "change_tier", "buy_addon", "buy_storage"},
}


def _items(state) -> dict:
    """What a state holds, counted here from its fields (not with domain.billing.held_items, the
    code under test): plan licences, storage units, tier steps of 1,000 contacts, flat add-ons."""
    if state.status not in PAID_STATUSES or state.plan == FREE_PLAN:
        return {}
    items = {Item.licence(state.plan): state.licences,
             **{Item.storage(h.unit_gb): h.owned for h in state.storage},
             Item.tier("campaigns_contacts"): state.tier_contacts // 1000,
             **{Item.addon(addon): 1 for addon in state.addons}}
    return {item: quantity for item, quantity in items.items() if quantity}


def _dates(start: datetime, end: datetime):
    day, last = start.date(), end.date()
    while day < last:
        yield day
        day += timedelta(days=1)


OrgLife.TestCase.settings = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TestOrgLife = OrgLife.TestCase


def test_every_operation_has_a_rule():
    """A new operation of the table is exercised here, or this fails."""
    from domain.operations import OPERATIONS
    assert set(OPERATIONS) <= set(dir(OrgLife))
