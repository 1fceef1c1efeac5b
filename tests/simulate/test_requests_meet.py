"""The eight sequences of requests that used to end with a wrong bill or a wrong state, run as a
new user would: through `billing simulate` (real workflows, database, SMTP). Amounts are worked
out by hand from domain/catalog.yaml, by days (DOMAIN.md): per month Standard $3.00 a licence,
Mail Lite 10 $1.25, tier $5.00 per 1,000 contacts, Premium support Essentials $50.00; February
2026 has 28 days, so Feb 10 leaves 18 of them (Feb 10 to Feb 27)."""

from pathlib import Path

import pytest

from tests.simulate.conftest import at, brief, events, simulate

MEET = Path(__file__).resolve().parent / "meet"


@pytest.fixture(scope="module")
def runs():
    cache: dict[str, dict] = {}

    def doc(name: str) -> dict:
        if name not in cache:
            [path] = MEET.glob(f"{name}-*.yaml")
            cache[name] = simulate(path, "--json").doc
        return cache[name]
    return doc


def charges(doc) -> list[tuple[str, int, str]]:
    return [(e["at"], e["amount"], e["outcome"]) for e in events(doc, "charge")]


def test_1_a_tier_chosen_during_the_trial_applies_and_a_smaller_plan_blocks_at_the_trial_end(runs):
    doc = runs("1")
    assert events(doc, "action_rejected") == []
    # 2 Standard licences ($6.00) + a 2,000-contact tier ($10.00), from the trial end, monthly.
    assert charges(doc) == [(at("2026-02-15 09:00"), 1600, "succeeded"), (at("2026-03-15 09:00"), 1600, "succeeded")]
    assert events(doc, "user_blocked") == [{"at": at("2026-02-15 09:00"), "type": "user_blocked",
                                            "user": "big@meet1.test", "reason": "storage"}]   # 40 GB > 30 GB
    templates = [e["template"] for e in events(doc, "email") if e["at"] == at("2026-02-15 09:00")]
    assert templates.index("plan_changed") < templates.index("receipt")   # announced once paid
    assert doc["final"] == {**doc["final"], "plan": "standard", "status": "active", "licences": 2,
                            "blocked_users": ["big@meet1.test"],
                            "contacts": {"tier": 2000, "subscribed": 2000, "awaiting_upgrade": 500}}


def test_2_an_upgrade_paid_after_a_licence_cut_is_not_undone_at_the_renewal(runs):
    doc = runs("2")
    # Feb 10: 5 Standard licences for 18/28 days (964) less the Mail Lite 10 ones' unused days (402).
    [upgrade] = events(doc, "invoice", status="open", kind="upgrade")
    assert (upgrade["at"], upgrade["total"]) == (at("2026-02-10 09:00"), 964 - 402)
    # The cut to 3 licences stands; the plan stays Standard: 3 x $3.00 each renewal.
    assert charges(doc) == [(at("2026-02-10 09:00"), 562, "succeeded"), (at("2026-02-28 09:00"), 900, "succeeded"),
                            (at("2026-03-31 09:00"), 900, "succeeded")]
    assert [(e["from"], e["to"]) for e in events(doc, "plan_changed")] == [("mail_lite_10", "standard")]
    assert (doc["final"]["plan"], doc["final"]["licences"], doc["final"]["users"]) == ("standard", 3, 3)


def test_3_an_upgrade_that_waited_for_payment_buys_a_licence_for_every_user_it_finds(runs):
    doc = runs("3")
    assert charges(doc) == [(at("2026-02-02 09:00"), 600, "declined"),      # 2 users: waits for payment
                            (at("2026-02-04 09:00"), 900, "succeeded"),     # re-priced for 3 users
                            (at("2026-03-04 09:00"), 900, "succeeded")]     # and renewed for 3
    assert [(e["number"], e["status"]) for e in events(doc, "invoice") if e["status"] != "open"] == [
        ("INV-meet3-0001", "void"), ("INV-meet3-0002", "paid"), ("INV-meet3-0003", "paid")]
    final = doc["final"]
    assert (final["plan"], final["licences"], final["users"], final["renews_at"]) == (
        "standard", 3, 3, at("2026-04-04 09:00"))   # the cycle starts when the upgrade applies


def test_4_an_add_on_bought_back_before_its_removal_costs_nothing(runs):
    doc = runs("4")
    # Feb 7: $50.00 x 21/28 days; Feb 12: bought back, nothing to pay; Feb 28: 2 licences + the add-on.
    assert charges(doc) == [(at("2026-02-07 09:00"), 3750, "succeeded"),
                            (at("2026-02-28 09:00"), 2 * 300 + 5000, "succeeded")]
    assert [e["action"] for e in events(doc, "action")] == ["buy_addon", "remove_addon", "buy_addon"]


def test_5_cancelling_during_the_trial_withdraws_the_chosen_plan(runs):
    doc = runs("5")
    assert events(doc, "action_rejected") == [] and [e["action"] for e in events(doc, "action")][-1] == "cancel"
    assert events(doc, "charge") == [] and events(doc, "invoice") == []
    assert [(e["at"], e["to"], e["reason"]) for e in events(doc, "plan_changed")] == [
        (at("2026-02-15 09:00"), "free", "trial_expired")]
    assert (doc["final"]["plan"], doc["final"]["status"]) == ("free", "free")


def test_6_a_yearly_switch_bills_what_continues_and_credits_what_ends(runs):
    doc = runs("6")
    # Feb 14: a year of 2 Standard licences (6000), less the unused half of February for the licences
    # (600 x 14/28) and for the add-on ending at the switch (3750 for 21 days, 14 of them unused).
    [switch] = events(doc, "invoice", status="open", kind="cycle_switch")
    assert (switch["at"], switch["total"]) == (at("2026-02-14 09:00"), 6000 - 300 - 2500)
    assert charges(doc) == [(at("2026-02-07 09:00"), 3750, "succeeded"), (at("2026-02-14 09:00"), 3200, "succeeded")]
    assert (doc["final"]["cycle"], doc["final"]["renews_at"]) == ("yearly", at("2027-02-14 09:00"))


def test_7_a_tier_cut_never_lands_below_the_contacts_held(runs):
    doc = runs("7")
    [notice] = events(doc, "scheduled_change_adjusted")
    assert notice["at"] == at("2026-02-08 09:00") and "dropped" in notice["notice"]
    # The renewal keeps the 3,000 tier: a licence ($3.00) + 3 steps ($15.00).
    [renewal] = events(doc, "invoice", status="open", kind="renewal")
    assert (renewal["at"], renewal["total"]) == (at("2026-02-28 09:00"), 300 + 1500)
    assert doc["final"]["contacts"] == {"tier": 3000, "subscribed": 2500, "awaiting_upgrade": 0}


def test_8_contacts_past_the_tier_await_an_upgrade_that_subscribes_them(runs):
    doc = runs("8")
    assert [(e["at"], e["subscribed"], e["awaiting_upgrade"]) for e in events(doc, "contacts")] == [
        (at("2026-02-03 09:00"), 2000, 600),   # 2,600 contacts on a 2,000 tier
        (at("2026-02-05 09:00"), 2600, 0),     # the raise to 3,000 subscribes them
        (at("2026-02-06 09:00"), 3000, 400),
    ]
    assert doc["final"]["contacts"] == {"tier": 3000, "subscribed": 3000, "awaiting_upgrade": 400}


def test_9_a_large_account_given_more_time_and_declined_again_is_escalated_again(runs):
    """Found trying it as a user: the second escalation on the same invoice was taken for a retry
    of the first, and the org stayed past_due with no one told."""
    doc = runs("9")
    assert [(e["at"], e["status"]) for e in events(doc, "status")] == [
        (at("2026-03-01 09:00"), "active"), (at("2026-04-01 09:00"), "past_due"),
        (at("2026-04-08 09:00"), "escalated"), (at("2026-04-09 09:00"), "past_due"),   # grace extended
        (at("2026-04-14 09:00"), "escalated"), (at("2026-04-20 09:00"), "free")]       # then written off
    assert [e["at"] for e in events(doc, "email", template="escalation")] == [
        at("2026-04-08 09:00"), at("2026-04-14 09:00")]
    assert [e["resolution"] for e in events(doc, "action", action="resolve_escalation")] == ["extend", "downgrade"]


def test_10_units_bought_while_users_are_blocked_go_to_them_as_many_as_each_needs(runs):
    """Issue 22: a unit bought while a user was blocked was never allocated; a user over quota by
    more than one unit got one and stayed blocked."""
    doc = runs("10")
    assert brief(doc, "user_blocked", "user_unblocked", "storage_auto_allocated", "storage_auto_released") == [
        ("2026-01-31 09:00", "user_blocked", "b@meet10.test"), ("2026-01-31 09:00", "user_blocked", "c@meet10.test"),
        # 2 x 5 GB: b is 8 GB over; c (10 GB over) waits, the pool cannot cover it.
        ("2026-02-01 09:00", "storage_auto_allocated", "b@meet10.test"),
        ("2026-02-01 09:00", "storage_auto_allocated", "b@meet10.test"),
        ("2026-02-01 09:00", "user_unblocked", "b@meet10.test"),
        ("2026-02-02 09:00", "storage_auto_allocated", "c@meet10.test"),
        ("2026-02-02 09:00", "user_unblocked", "c@meet10.test"),
        ("2026-02-03 09:00", "user_blocked", "d@meet10.test"),
        # c shrinks: its unit goes back to the pool and on to d.
        ("2026-02-04 09:00", "storage_auto_released", "c@meet10.test"),
        ("2026-02-04 09:00", "storage_auto_allocated", "d@meet10.test"),
        ("2026-02-04 09:00", "user_unblocked", "d@meet10.test")]
    assert [e["unit_gb"] for e in events(doc, "storage_auto_allocated")] == [5, 5, 25, 25]
    # 2 x $1.00 x 27/28 and $4.00 x 26/28, charged at once.
    assert charges(doc) == [(at("2026-02-01 09:00"), 193, "succeeded"), (at("2026-02-02 09:00"), 371, "succeeded")]
    assert [e["at"] for e in events(doc, "email", template="storage_auto_allocated")] == [
        at("2026-02-01 09:00"), at("2026-02-02 09:00"), at("2026-02-04 09:00")]     # one e-mail per user given units
    assert doc["final"]["blocked_users"] == []


def test_11_a_yearly_org_switches_to_monthly_at_its_yearly_renewal(runs):
    doc = runs("11")
    assert [(e["at"], e["action"], e["error"]) for e in events(doc, "action_rejected")] == [
        (at("2026-06-01 09:00"), "switch_to_monthly", "a switch to monthly is already scheduled for 2027-01-31")]
    # Nothing credited or charged when asked; from the yearly renewal, 2 Standard licences a month.
    assert charges(doc) == [(at("2027-01-31 09:00"), 600, "succeeded"), (at("2027-02-28 09:00"), 600, "succeeded")]
    assert [(e["at"], e["from"], e["to"]) for e in events(doc, "cycle_changed")] == [
        (at("2027-01-31 09:00"), "yearly", "monthly")]
    assert (doc["final"]["cycle"], doc["final"]["renews_at"]) == ("monthly", at("2027-03-31 09:00"))
