"""Each check_* of domain/rules.py: refusals carry the rule, the numbers and a stable type;
valid requests pass (return None)."""

from dataclasses import replace
from datetime import timedelta

import pytest

from domain import requests as rq
from domain import rules
from domain.operations import OPERATIONS
from domain.catalog import load_catalog
from domain.errors import (BelowUsage, InvalidInput, NotAllowed, OutsideDowngradeWindow, PendingChange,
                           StaffOnly, UnknownPlan)
from domain.subscription import CatalogFacts, Scheduled, StorageHolding, Subscribers, UnitCount, WaitingChange
from domain.states import Cycle, OrgStatus
from tests.domain.builders import ADMIN, RENEWS_AT, STAFF, USD_FACTS, active_org, free_org, policy, trial_org, utc

P = policy()
NOW = utc(2026, 4, 10, 9)   # 20 days before RENEWS_AT (2026-04-30 09:00): inside the downgrade window

PENDING = dict(pending=WaitingChange("add_licences", {"count": 1}, "add 1 licence(s)", NOW, invoice="INV-9"))
PENDING_MSG = ("another change (add 1 licence(s)) is waiting for payment of invoice INV-9; only one change may "
               "wait for payment at a time: pay it (update the card) first")
CANCELLING = dict(status=OrgStatus.CANCELLING, scheduled=Scheduled(cancel=True))
PAST_DUE = dict(status=OrgStatus.PAST_DUE, dunning_invoice="INV-7")
ESCALATED = dict(status=OrgStatus.ESCALATED, dunning_invoice="INV-7")


def refusal(error_type, check, org, req, *, pol=P, facts=USD_FACTS, now=NOW) -> str:
    with pytest.raises(error_type) as err:
        check(org, pol, facts, req, now)
    assert type(err.value) is error_type
    return err.value.message


def accepted(check, org, req, *, pol=P, facts=USD_FACTS, now=NOW) -> None:
    assert check(org, pol, facts, req, now) is None


def capped_facts(plan_id: str, cap: int) -> CatalogFacts:
    return replace(USD_FACTS, plans=[replace(p, user_cap=cap) if p.id == plan_id else p for p in USD_FACTS.plans])


# --- the hand-written facts match the shipped catalog ------------------------------------

def test_hand_written_facts_match_the_shipped_catalog():
    from domain.subscription import catalog_facts
    assert catalog_facts(load_catalog(), "USD") == USD_FACTS


# --- field validators ----------------------------------------------------------------------

def test_check_email_normalises():
    assert rules.check_email("  Admin@Acme.Test ", "email") == "admin@acme.test"


@pytest.mark.parametrize("value", ["not-an-email", "a@b", "a b@c.test", "<a@b.test>", ""])
def test_check_email_rejects(value):
    with pytest.raises(InvalidInput) as err:
        rules.check_email(value, "email")
    assert err.value.message == f"email: {value!r} is not a valid e-mail address"


@pytest.mark.parametrize("value", [None, 42])
def test_check_email_rejects_what_is_not_text(value):
    with pytest.raises(InvalidInput) as err:
        rules.check_email(value, "email")
    assert err.value.message == f"email: expected an e-mail address, got {value!r}"


def test_check_email_refuses_an_address_too_long_for_its_column():
    with pytest.raises(InvalidInput, match=r"^email: an e-mail address has at most 254 characters"):
        rules.check_email("a" * 60 + "@" + "b" * 200 + ".test", "email")
    with pytest.raises(InvalidInput, match=r"and 64 before the @"):
        rules.check_email("a" * 65 + "@acme.test", "email")


def validate(name: str):
    """The whole check of an operation: its fields' bounds (domain.limits), then its rules."""
    return OPERATIONS[name].validate


# --- upgrade -------------------------------------------------------------------------------

def test_upgrade_unknown_plan():
    msg = refusal(UnknownPlan, rules.check_upgrade, active_org(), rq.UpgradeRequest("enterprise"))
    assert msg == ("unknown plan 'enterprise'; known plans: free, mail_lite_5, mail_lite_10, mail_premium, "
                   "standard, professional")


def test_upgrade_bad_cycle():
    msg = refusal(InvalidInput, rules.check_upgrade, active_org(), rq.UpgradeRequest("professional", "weekly"))
    assert msg == "cycle must be 'monthly' or 'yearly', got 'weekly'"


def test_upgrade_to_free_is_refused():
    msg = refusal(NotAllowed, rules.check_upgrade, active_org(), rq.UpgradeRequest("free"))
    assert msg == "the free plan is not an upgrade; cancel the subscription to move to it at the cycle end"


def test_upgrade_while_cancelling():
    msg = refusal(NotAllowed, rules.check_upgrade, active_org(**CANCELLING), rq.UpgradeRequest("professional"))
    assert msg == "cannot upgrade: the subscription is cancelled and ends on 2026-04-30; undo the cancellation first"


@pytest.mark.parametrize("state, status", [(PAST_DUE, "past_due"), (ESCALATED, "escalated")])
def test_upgrade_while_unpaid(state, status):
    msg = refusal(NotAllowed, rules.check_upgrade, active_org(**state), rq.UpgradeRequest("professional"))
    assert msg == f"cannot upgrade: the org is {status} on invoice INV-7; the open invoice must be paid first"


def test_second_pending_change_is_refused():
    msg = refusal(PendingChange, rules.check_upgrade, active_org(**PENDING), rq.UpgradeRequest("professional"))
    assert msg == PENDING_MSG


@pytest.mark.parametrize("target", ["mail_lite_5", "mail_lite_10", "standard"])
def test_upgrade_to_a_cheaper_or_same_plan_is_refused(target):
    msg = refusal(NotAllowed, rules.check_upgrade, active_org(), rq.UpgradeRequest(target))
    assert msg == (f"{target} is not an upgrade from standard; downgrades are requested through billing staff "
                   "and take effect at the cycle end")


def test_upgrade_cannot_change_the_cycle():
    msg = refusal(NotAllowed, rules.check_upgrade, active_org(), rq.UpgradeRequest("professional", "yearly"))
    assert msg == "an upgrade keeps the monthly cycle; switch to yearly separately"


@pytest.mark.parametrize("target, cycle", [("professional", None), ("professional", "monthly"),
                                           ("mail_premium", None)])  # premium 400 > standard 300
def test_upgrade_from_a_paid_plan_accepted(target, cycle):
    accepted(rules.check_upgrade, active_org(), rq.UpgradeRequest(target, cycle))


@pytest.mark.parametrize("target", ["mail_lite_5", "standard", "professional"])
def test_plan_chosen_during_trial_accepted(target):
    accepted(rules.check_upgrade, trial_org(), rq.UpgradeRequest(target, "yearly"))


def test_upgrade_from_free_needs_a_card():
    msg = refusal(NotAllowed, rules.check_upgrade, free_org(), rq.UpgradeRequest("standard"))
    assert msg == "cannot upgrade from the free plan without a card on file; update the card first"


def test_upgrade_from_free_with_card_accepted():
    accepted(rules.check_upgrade, free_org(card_last4="4242", card_brand="visa"), rq.UpgradeRequest("standard", "monthly"))


def test_upgrade_from_free_to_a_capped_plan_below_usage():
    org = free_org(card_last4="4242", user_count=4)
    msg = refusal(BelowUsage, rules.check_upgrade, org, rq.UpgradeRequest("mail_lite_5"), facts=capped_facts("mail_lite_5", 3))
    assert msg == "plan mail_lite_5 allows 3 users; the org has 4"


# --- licences and users ----------------------------------------------------------------

@pytest.mark.parametrize("count", [0, -2, True])
def test_add_licences_bad_count(count):
    msg = refusal(InvalidInput, validate("add_licences"), active_org(), rq.AddLicencesRequest(count))
    assert msg == ("count: expected a whole number, got True" if count is True else
                   f"count: must be at least 1, got {count}")


def test_add_licences_beyond_the_org_maximum():
    org = active_org(licences=99_990)
    assert refusal(NotAllowed, validate("add_licences"), org, rq.AddLicencesRequest(11)) == \
        "count: an org holds at most 100,000 licences; it holds 99,990, so at most 10 more"
    assert refusal(InvalidInput, validate("add_licences"), active_org(), rq.AddLicencesRequest(10**12)) == \
        "count: at most 100,000 licences per org, got 1000000000000"
    accepted(validate("add_licences"), org, rq.AddLicencesRequest(10))


@pytest.mark.parametrize("org, text", [
    (trial_org(), "cannot add licences: the org is on a trial, not a paid plan"),
    (free_org(), "cannot add licences: the org is on the free plan, not a paid plan"),
    (active_org(**CANCELLING), "cannot add licences: the subscription is cancelled and ends on 2026-04-30; "
                               "undo the cancellation first"),
    (active_org(**PAST_DUE), "cannot add licences: the org is past_due on invoice INV-7; the open invoice must be "
                             "paid first"),
])
def test_add_licences_refused(org, text):
    assert refusal(NotAllowed, rules.check_add_licences, org, rq.AddLicencesRequest(1)) == text


def test_add_licences_with_pending_change():
    assert refusal(PendingChange, rules.check_add_licences, active_org(**PENDING), rq.AddLicencesRequest(1)) == PENDING_MSG


def test_add_licences_accepted():
    accepted(rules.check_add_licences, active_org(), rq.AddLicencesRequest(3))


def test_add_user_needs_a_free_licence():
    org = active_org(licences=5, user_count=5)
    msg = refusal(BelowUsage, rules.check_add_user, org, rq.AddUserRequest("f@acme.test"))
    assert msg == ("every user needs a licence: 6 users would need 6 licences, the org holds 5; "
                   "add a licence first")


def test_add_user_while_past_due_still_needs_a_licence():
    org = active_org(licences=4, user_count=4, **PAST_DUE)
    assert refusal(BelowUsage, rules.check_add_user, org, rq.AddUserRequest("f@acme.test")).startswith(
        "every user needs a licence: 5 users would need 5 licences, the org holds 4")


def test_add_user_with_a_free_licence_accepted():
    accepted(rules.check_add_user, active_org(licences=5, user_count=4), rq.AddUserRequest("e@acme.test", 2.5))


def test_add_user_free_plan_cap():
    msg = refusal(BelowUsage, rules.check_add_user, free_org(user_count=5), rq.AddUserRequest("f@acme.test"))
    assert msg == "the free plan allows 5 users; the org already has 5"


def test_add_user_free_plan_below_cap_accepted():
    accepted(rules.check_add_user, free_org(user_count=4), rq.AddUserRequest("e@acme.test"))


def test_add_user_during_trial_has_no_licence_limit():
    accepted(rules.check_add_user, trial_org(user_count=40, licences=0), rq.AddUserRequest("x@acme.test"))


def test_add_user_bad_email_and_storage():
    assert refusal(InvalidInput, validate("add_user"), active_org(), rq.AddUserRequest("nobody")) == \
        "email: 'nobody' is not a valid e-mail address"
    assert refusal(InvalidInput, validate("add_user"), active_org(), rq.AddUserRequest("e@acme.test", -1)) == \
        "storage_gb: must be a number of GB >= 0, got -1"


def test_add_user_beyond_a_scheduled_licence_cut_is_accepted():
    """Later wins (DOMAIN.md): the cut is reduced by the decision (tests/domain/test_decisions.py)."""
    org = active_org(licences=5, user_count=4, scheduled=Scheduled(licences=4))
    accepted(rules.check_add_user, org, rq.AddUserRequest("e@acme.test"))


# --- storage -------------------------------------------------------------------------------

def test_buy_storage_unknown_unit():
    msg = refusal(InvalidInput, rules.check_buy_storage, active_org(), rq.BuyStorageRequest(10))
    assert msg == "unit_gb: no 10 GB storage unit; units are 5, 25, 50, 100, 200 GB"


def test_buy_storage_refusals():
    assert refusal(InvalidInput, validate("buy_storage"), active_org(), rq.BuyStorageRequest(25, 0)) == \
        "count: must be at least 1, got 0"
    assert refusal(InvalidInput, validate("buy_storage"), active_org(), rq.BuyStorageRequest(25, 100_000)) == \
        "count: at most 1,000 units per purchase, got 100000"
    assert refusal(NotAllowed, rules.check_buy_storage, free_org(), rq.BuyStorageRequest(25)) == \
        "cannot buy storage: the org is on the free plan, not a paid plan"
    assert refusal(PendingChange, rules.check_buy_storage, active_org(**PENDING), rq.BuyStorageRequest(25)) == PENDING_MSG


def test_buy_storage_accepted():
    accepted(rules.check_buy_storage, active_org(), rq.BuyStorageRequest(200, 2))


def test_remove_storage_only_unallocated_units():
    # 3 owned, 1 allocated: 2 may go.
    msg = refusal(BelowUsage, rules.check_remove_storage, active_org(), rq.RemoveStorageRequest(25, 3))
    assert msg == "only 2 unallocated 25 GB unit(s) can be removed; 3 requested"
    msg = refusal(BelowUsage, rules.check_remove_storage, active_org(), rq.RemoveStorageRequest(50, 1))
    assert msg == "only 0 unallocated 50 GB unit(s) can be removed; 1 requested"
    accepted(rules.check_remove_storage, active_org(), rq.RemoveStorageRequest(25, 2))


def test_allocate_storage():
    accepted(rules.check_allocate_storage, active_org(), rq.AllocateStorageRequest("b@acme.test", 25))
    full = active_org(storage=[StorageHolding(25, owned=2, allocated=2)])
    assert refusal(NotAllowed, rules.check_allocate_storage, full, rq.AllocateStorageRequest("b@acme.test", 25)) == \
        "no unallocated 25 GB unit left; buy one first"
    assert refusal(InvalidInput, validate("allocate_storage"), active_org(), rq.AllocateStorageRequest("b", 25)) == \
        "user: 'b' is not a valid e-mail address"
    assert refusal(InvalidInput, rules.check_allocate_storage, active_org(),
                   rq.AllocateStorageRequest("b@acme.test", 7)).startswith("unit_gb: no 7 GB storage unit")


def test_set_usage():
    accepted(rules.check_set_usage, active_org(), rq.SetUsageRequest("b@acme.test", 40))
    assert refusal(InvalidInput, validate("set_usage"), active_org(), rq.SetUsageRequest("b@acme.test", -3)) == \
        "storage_gb: must be a number of GB >= 0, got -3"
    assert refusal(InvalidInput, validate("set_usage"), active_org(), rq.SetUsageRequest("b@acme.test", float("inf"))) \
        == "storage_gb: must be a finite number of GB, got inf"
    assert refusal(InvalidInput, validate("set_usage"), active_org(), rq.SetUsageRequest("b@acme.test", 1e300)) == \
        "storage_gb: at most 100,000 GB per mailbox, got 1e+300"


# --- flat add-ons --------------------------------------------------------------------------

def test_buy_addon():
    assert refusal(InvalidInput, rules.check_buy_addon, active_org(), rq.BuyAddonRequest("support_gold")) == \
        "addon: unknown add-on 'support_gold'; add-ons are support_enhanced, support_essentials"
    org = active_org(addons=["support_essentials"])
    assert refusal(NotAllowed, rules.check_buy_addon, org, rq.BuyAddonRequest("support_essentials")) == \
        "add-on support_essentials is already active"
    assert refusal(NotAllowed, rules.check_buy_addon, free_org(), rq.BuyAddonRequest("support_essentials")) == \
        "cannot buy an add-on: the org is on the free plan, not a paid plan"
    assert refusal(PendingChange, rules.check_buy_addon, active_org(**PENDING),
                   rq.BuyAddonRequest("support_enhanced")) == PENDING_MSG
    accepted(rules.check_buy_addon, org, rq.BuyAddonRequest("support_enhanced"))
    # one being removed at the cycle end may be bought back
    accepted(rules.check_buy_addon, active_org(addons=["support_essentials"],
                                               scheduled=Scheduled(addons=["support_essentials"])),
             rq.BuyAddonRequest("support_essentials"))


def test_remove_addon():
    assert refusal(NotAllowed, rules.check_remove_addon, active_org(), rq.RemoveAddonRequest("support_essentials")) == \
        "add-on 'support_essentials' is not active"
    removing = active_org(addons=["support_essentials"], scheduled=Scheduled(addons=["support_essentials"]))
    assert refusal(NotAllowed, rules.check_remove_addon, removing, rq.RemoveAddonRequest("support_essentials")) == \
        "add-on 'support_essentials' is not active"
    accepted(rules.check_remove_addon, active_org(addons=["support_essentials"]), rq.RemoveAddonRequest("support_essentials"))


# --- subscriber tier -----------------------------------------------------------------------

def test_change_tier_without_a_tiered_addon():
    facts = replace(USD_FACTS, tier_addon=None)
    assert refusal(NotAllowed, rules.check_change_tier, active_org(), rq.ChangeTierRequest(2000), facts=facts) == \
        "the catalog has no tiered add-on"


@pytest.mark.parametrize("contacts", [1500, 0, 51000, -1000, True])
def test_change_tier_bad_contacts(contacts):
    msg = refusal(InvalidInput, rules.check_change_tier, active_org(), rq.ChangeTierRequest(contacts))
    assert msg == f"contacts must be a multiple of 1000 between 1000 and 50000, got {contacts!r}"


def test_change_tier_refusals():
    assert refusal(NotAllowed, rules.check_change_tier, free_org(), rq.ChangeTierRequest(2000)) == \
        "cannot change the subscriber tier: the org is on the free plan, not a paid plan"
    assert refusal(NotAllowed, rules.check_change_tier, active_org(**CANCELLING), rq.ChangeTierRequest(2000)).startswith(
        "cannot change the subscriber tier: the subscription is cancelled")
    assert refusal(NotAllowed, rules.check_change_tier, active_org(tier_contacts=3000), rq.ChangeTierRequest(3000)) == \
        "the tier is already 3000 contacts"


def test_tier_downgrade_below_usage():
    org = active_org(tier_contacts=5000, subscribers=Subscribers(3500, 0))
    assert refusal(BelowUsage, rules.check_change_tier, org, rq.ChangeTierRequest(3000)) == \
        "a 3000-contact tier is below current usage of 3500 contacts"


def test_tier_downgrade_at_or_above_usage_accepted_even_while_unpaid():
    accepted(rules.check_change_tier, active_org(tier_contacts=5000, subscribers=Subscribers(4000, 0)),
             rq.ChangeTierRequest(4000))
    accepted(rules.check_change_tier, active_org(tier_contacts=5000, subscribers=Subscribers(3500, 0), **PAST_DUE),
             rq.ChangeTierRequest(4000))


def test_tier_raise():
    accepted(rules.check_change_tier, active_org(tier_contacts=3000), rq.ChangeTierRequest(10000))
    accepted(rules.check_change_tier, active_org(), rq.ChangeTierRequest(1000))   # first tier
    assert refusal(NotAllowed, rules.check_change_tier, active_org(tier_contacts=3000, **PAST_DUE),
                   rq.ChangeTierRequest(4000)) == ("cannot raise the subscriber tier: the org is past_due on invoice "
                                                   "INV-7; the open invoice must be paid first")
    assert refusal(PendingChange, rules.check_change_tier, active_org(tier_contacts=3000, **PENDING),
                   rq.ChangeTierRequest(4000)) == PENDING_MSG


def test_set_contacts():
    accepted(validate("set_contacts"), active_org(), rq.SetContactsRequest(0))
    accepted(validate("set_contacts"), free_org(), rq.SetContactsRequest(60000))
    assert refusal(InvalidInput, validate("set_contacts"), active_org(), rq.SetContactsRequest(-1)) == \
        "contacts: must be at least 0, got -1"
    for bad in (True, 2.5):
        assert refusal(InvalidInput, validate("set_contacts"), active_org(), rq.SetContactsRequest(bad)) == \
            f"contacts: expected a whole number, got {bad!r}"


# --- switch to yearly, card ------------------------------------------------------------------

@pytest.mark.parametrize("org, error, text", [
    (free_org(), NotAllowed, "cannot switch to yearly: the org is on the free plan, not a paid plan"),
    (active_org(cycle=Cycle.YEARLY), NotAllowed, "the org is already billed yearly"),
    (active_org(**CANCELLING), NotAllowed, "cannot switch to yearly: the subscription is cancelled and ends on "
                                           "2026-04-30; undo the cancellation first"),
    (active_org(**PAST_DUE), NotAllowed, "cannot switch to yearly: the org is past_due on invoice INV-7; the open "
                                         "invoice must be paid first"),
    (active_org(**PENDING), PendingChange, PENDING_MSG),
    (active_org(card_last4=None, card_brand=None), NotAllowed, "cannot switch to yearly without a card on file"),
])
def test_switch_to_yearly_refused(org, error, text):
    assert refusal(error, rules.check_switch_to_yearly, org, rq.SwitchToYearlyRequest()) == text


def test_switch_to_yearly_accepted():
    accepted(rules.check_switch_to_yearly, active_org(), rq.SwitchToYearlyRequest())


YEARLY = dict(cycle=Cycle.YEARLY)
SWITCHING = dict(cycle=Cycle.YEARLY, scheduled=Scheduled(cycle=Cycle.MONTHLY))


def test_a_yearly_org_switching_to_monthly_may_stay_yearly():
    accepted(rules.check_switch_to_yearly, active_org(**SWITCHING), rq.SwitchToYearlyRequest())


@pytest.mark.parametrize("org, error, text", [
    (active_org(), NotAllowed, "the org is already billed monthly; only a yearly org can switch to monthly"),
    (free_org(), NotAllowed, "cannot switch to monthly: the org is on the free plan, not a paid plan"),
    (trial_org(), NotAllowed, "cannot switch to monthly: the org is on a trial, not a paid plan"),
    (active_org(**SWITCHING), NotAllowed, "a switch to monthly is already scheduled for 2026-04-30"),
    (active_org(**YEARLY, status=OrgStatus.CANCELLING, scheduled=Scheduled(cancel=True)), NotAllowed,
     "cannot switch to monthly: the subscription is cancelled and ends on 2026-04-30; undo the cancellation first"),
])
def test_switch_to_monthly_refused(org, error, text):
    assert refusal(error, rules.check_switch_to_monthly, org, rq.SwitchToMonthlyRequest()) == text


@pytest.mark.parametrize("org", [active_org(**YEARLY), active_org(**YEARLY, **PENDING),
                                 active_org(**YEARLY, **PAST_DUE)])
def test_switch_to_monthly_accepted_at_any_time_in_the_year(org):
    accepted(rules.check_switch_to_monthly, org, rq.SwitchToMonthlyRequest())


def test_cancel_switch_to_monthly():
    accepted(rules.check_cancel_switch_to_monthly, active_org(**SWITCHING), rq.CancelSwitchToMonthlyRequest())
    assert refusal(NotAllowed, rules.check_cancel_switch_to_monthly, active_org(**YEARLY),
                   rq.CancelSwitchToMonthlyRequest()) == "no switch to monthly is scheduled"


@pytest.mark.parametrize("req, text", [
    (rq.UpdateCardRequest("4242424242424242", "visa", "4242"),
     "token: a gateway card token (tok_... or a Stripe PaymentMethod pm_...) is required; card numbers are never "
     "accepted here"),
    (rq.UpdateCardRequest("", "visa", "4242"),
     "token: a gateway card token (tok_... or a Stripe PaymentMethod pm_...) is required; card numbers are never "
     "accepted here"),
    (rq.UpdateCardRequest("tok_sandbox_ok_4242", "visa", "42"), "last4 must be four digits, got '42'"),
    (rq.UpdateCardRequest("tok_sandbox_ok_4242", "visa", "42a2"), "last4 must be four digits, got '42a2'"),
    (rq.UpdateCardRequest("card_1Nv0", "visa", "4242"),
     "token: a gateway card token (tok_... or a Stripe PaymentMethod pm_...) is required; card numbers are never "
     "accepted here"),
])
def test_update_card_refused(req, text):
    assert refusal(InvalidInput, rules.check_update_card, free_org(), req) == text


def test_update_card_accepted():
    accepted(rules.check_update_card, active_org(**PAST_DUE), rq.UpdateCardRequest("tok_sandbox_ok_4242", "visa", "4242"))


# --- downgrade -----------------------------------------------------------------------------

def downgrade(plan="mail_lite_5", licences=None, by=STAFF):
    return rq.DowngradeRequest(plan, licences, requested_by=by, reason="cost")


def test_downgrade_is_staff_only():
    assert refusal(StaffOnly, rules.check_request_downgrade, active_org(), downgrade(by=ADMIN)) == \
        "only billing staff may request a downgrade; admin@acme.test is not billing staff"
    assert refusal(InvalidInput, rules.check_request_downgrade, active_org(), downgrade(by="")) == \
        "requested_by is required to request a downgrade"


def test_anyone_is_staff_when_the_policy_says_so():
    accepted(rules.check_request_downgrade, active_org(), downgrade(by=ADMIN), pol=policy(billing_staff=None))


def test_downgrade_unknown_plan():
    assert refusal(UnknownPlan, rules.check_request_downgrade, active_org(), downgrade("basic")).startswith(
        "unknown plan 'basic'; known plans: free, mail_lite_5")


def test_downgrade_bad_licence_count():
    assert refusal(InvalidInput, validate("request_downgrade"), active_org(), downgrade(licences=0)) == \
        "licences: must be at least 1, got 0"


@pytest.mark.parametrize("state, status", [(PAST_DUE, "past_due"), (ESCALATED, "escalated")])
def test_downgrade_while_unpaid(state, status):
    assert refusal(NotAllowed, rules.check_request_downgrade, active_org(**state), downgrade()) == (
        f"cannot schedule a downgrade while the org is {status}: the current cycle is unpaid; "
        "resolve the open invoice first")


@pytest.mark.parametrize("org, text", [
    (trial_org(), "cannot downgrade: the org is on a trial, not a paid plan"),
    (free_org(), "cannot downgrade: the org is on the free plan, not a paid plan"),
    (active_org(**CANCELLING), "cannot downgrade: the subscription is cancelled and ends on 2026-04-30; "
                               "undo the cancellation first"),
])
def test_downgrade_needs_an_active_paid_plan(org, text):
    assert refusal(NotAllowed, rules.check_request_downgrade, org, downgrade()) == text


def test_second_downgrade_is_refused():
    org = active_org(scheduled=Scheduled(plan="mail_lite_10", licences=5))
    assert refusal(PendingChange, rules.check_request_downgrade, org, downgrade()) == \
        "a downgrade to mail_lite_10 is already scheduled; cancel it first"


@pytest.mark.parametrize("licences", [None, 5, 7])
def test_downgrade_to_the_same_plan_without_fewer_licences(licences):
    assert refusal(NotAllowed, rules.check_request_downgrade, active_org(), downgrade("standard", licences)) == \
        "the org is already on standard with 5 licences; nothing to downgrade"


@pytest.mark.parametrize("target", ["professional", "mail_premium"])
def test_downgrade_to_a_dearer_plan(target):
    assert refusal(NotAllowed, rules.check_request_downgrade, active_org(), downgrade(target)) == \
        f"{target} costs more than standard; that is an upgrade, not a downgrade"


def test_downgrade_to_free_is_a_cancellation():
    assert refusal(NotAllowed, rules.check_request_downgrade, active_org(), downgrade("free")) == \
        "a downgrade to the free plan is a cancellation; cancel the subscription instead"


def test_downgrade_below_users_vs_licences():
    # 4 users cannot fit on 3 licences.
    assert refusal(BelowUsage, rules.check_request_downgrade, active_org(), downgrade("mail_lite_5", 3)) == \
        "3 licences is below usage: the org has 4 users, and every user needs a licence"
    assert refusal(BelowUsage, rules.check_request_downgrade, active_org(), downgrade("standard", 3)).startswith(
        "3 licences is below usage")


def test_downgrade_below_the_plan_user_cap():
    msg = refusal(BelowUsage, rules.check_request_downgrade, active_org(), downgrade("mail_lite_5"),
                  facts=capped_facts("mail_lite_5", 3))
    assert msg == "plan mail_lite_5 allows 3 users; the org has 4"


@pytest.mark.parametrize("now, days", [
    (utc(2026, 4, 16, 0), "14"),      # the renewal date (Apr 30) is 14 days away
    (utc(2026, 4, 29, 9), "1"),
    (utc(2026, 3, 30, 23), "31"),
    (utc(2026, 3, 20), "41"),
])
def test_downgrade_outside_the_window(now, days):
    msg = refusal(OutsideDowngradeWindow, rules.check_request_downgrade, active_org(), downgrade(), now=now)
    assert msg == ("downgrades are accepted only 15 to 30 days before the renewal date (2026-04-30); "
                   f"it is {days} days away")


@pytest.mark.parametrize("now", [RENEWS_AT - timedelta(days=15), RENEWS_AT - timedelta(days=30), NOW,
                                 utc(2026, 4, 15, 8, 59),
                                 utc(2026, 4, 15, 23, 59),   # 15 days before by date, though 14.4 by the hour
                                 utc(2026, 3, 31, 0, 1)])    # 30 days before by date, though 30.4 by the hour
def test_downgrade_inside_the_window_accepted(now):
    accepted(rules.check_request_downgrade, active_org(), downgrade(), now=now)


def test_downgrade_window_is_configurable():
    pol = policy(downgrade_window_min_days=1, downgrade_window_max_days=5)
    accepted(rules.check_request_downgrade, active_org(), downgrade(), pol=pol, now=utc(2026, 4, 27, 9))
    assert "accepted only 1 to 5 days" in refusal(OutsideDowngradeWindow, rules.check_request_downgrade,
                                                  active_org(), downgrade(), pol=pol, now=NOW)


@pytest.mark.parametrize("req", [
    downgrade("mail_lite_5"),             # keeps 5 licences
    downgrade("mail_lite_5", 4),          # exactly the 4 users
    downgrade("standard", 4),             # same plan, fewer licences
    downgrade("mail_lite_10", 6),         # cheaper plan; more licences is not below usage
])
def test_downgrade_accepted(req):
    accepted(rules.check_request_downgrade, active_org(), req)


def test_downgrade_from_premium_to_standard_accepted():
    accepted(rules.check_request_downgrade, active_org(plan="mail_premium"), downgrade("standard"))


def test_cancel_downgrade():
    assert refusal(StaffOnly, rules.check_cancel_downgrade, active_org(scheduled=Scheduled(plan="mail_lite_5")),
                   rq.CancelDowngradeRequest(requested_by=ADMIN)) == \
        "only billing staff may cancel a scheduled downgrade; admin@acme.test is not billing staff"
    assert refusal(NotAllowed, rules.check_cancel_downgrade, active_org(),
                   rq.CancelDowngradeRequest(requested_by=STAFF, reason="call")) == "no downgrade is scheduled"
    accepted(rules.check_cancel_downgrade, active_org(scheduled=Scheduled(plan="mail_lite_5")),
             rq.CancelDowngradeRequest(requested_by=STAFF, reason="call"))


# --- cancellation ----------------------------------------------------------------------------

@pytest.mark.parametrize("org, req, error, text", [
    (active_org(), rq.CancelRequest(), InvalidInput, "requested_by is required to cancel"),
    (active_org(**CANCELLING), rq.CancelRequest(ADMIN), NotAllowed,
     "the subscription is already cancelled; it ends on 2026-04-30"),
    (trial_org(), rq.CancelRequest(ADMIN), NotAllowed,
     "no plan is chosen for the trial end, so there is nothing to cancel: the trial ends on 2026-02-15 and the "
     "org moves to the free plan by itself"),
    (free_org(), rq.CancelRequest(ADMIN), NotAllowed,
     "the org is on the free plan; there is no subscription to cancel"),
])
def test_cancel_refused(org, req, error, text):
    assert refusal(error, rules.check_cancel, org, req) == text


@pytest.mark.parametrize("state", [{}, PAST_DUE])
def test_cancel_accepted(state):
    accepted(rules.check_cancel, active_org(**state), rq.CancelRequest(ADMIN))


def test_cancel_during_a_trial_withdraws_the_chosen_plan():
    accepted(rules.check_cancel, trial_org(trial_choice_plan="standard"), rq.CancelRequest(ADMIN))


def test_undo_cancel():
    assert refusal(NotAllowed, rules.check_undo_cancel, active_org(), rq.UndoCancelRequest(ADMIN)) == \
        "the subscription is not cancelled; nothing to undo"
    accepted(rules.check_undo_cancel, active_org(**CANCELLING), rq.UndoCancelRequest(ADMIN))


# --- staff: payment retry and escalation ------------------------------------------------------

def test_retry_payment():
    assert refusal(StaffOnly, rules.check_retry_payment, active_org(**PAST_DUE), rq.RetryPaymentRequest(ADMIN, "call")) == \
        "only billing staff may retry a payment; admin@acme.test is not billing staff"
    assert refusal(NotAllowed, rules.check_retry_payment, active_org(), rq.RetryPaymentRequest(STAFF, "call")) == \
        "no open invoice to retry"
    assert refusal(NotAllowed, rules.check_retry_payment, active_org(card_last4=None, **PAST_DUE),
                   rq.RetryPaymentRequest(STAFF, "call")) == "no card on file to charge"
    accepted(rules.check_retry_payment, active_org(**PAST_DUE), rq.RetryPaymentRequest(STAFF, "call"))
    accepted(rules.check_retry_payment, active_org(**PENDING), rq.RetryPaymentRequest(STAFF, "call"))


def resolve(action="extend", reason="customer promised payment", by=STAFF, days=7):
    return rq.ResolveEscalationRequest(action, requested_by=by, reason=reason, extend_days=days)


@pytest.mark.parametrize("org, req, error, text", [
    (active_org(**ESCALATED), resolve(by=ADMIN), StaffOnly,
     "only billing staff may resolve an escalation; admin@acme.test is not billing staff"),
    (active_org(**ESCALATED), resolve(reason="  "), InvalidInput,
     "reason: required for staff actions (they are audited)"),
    (active_org(), resolve(), NotAllowed, "the org is not escalated (status active)"),
    (active_org(**ESCALATED), resolve("refund"), InvalidInput,
     "action must be extend, downgrade or retry, got 'refund'"),
    (active_org(**ESCALATED), resolve(days=0), InvalidInput, "extend_days: must be at least 1, got 0"),
    (active_org(**ESCALATED), resolve(days=91), InvalidInput, "extend_days: at most 90 days of grace, got 91"),
])
def test_resolve_escalation_refused(org, req, error, text):
    assert refusal(error, validate("resolve_escalation"), org, req) == text


@pytest.mark.parametrize("action", ["extend", "downgrade", "retry"])
def test_resolve_escalation_accepted(action):
    accepted(rules.check_resolve_escalation, active_org(**ESCALATED), resolve(action))


# --- error types are stable ------------------------------------------------------------------

def test_error_types():
    assert (InvalidInput.type, UnknownPlan.type, OutsideDowngradeWindow.type, BelowUsage.type, PendingChange.type,
            NotAllowed.type, StaffOnly.type) == ("invalid_input", "unknown_plan", "outside_downgrade_window",
                                                 "below_usage", "pending_change", "not_allowed", "staff_only")


# --- requests that meet (DOMAIN.md): accepted here, resolved by the decisions ------------------

def test_a_tier_may_be_chosen_during_the_trial():
    accepted(rules.check_change_tier, trial_org(), rq.ChangeTierRequest(2000))
    assert refusal(NotAllowed, rules.check_change_tier, trial_org(trial_choice_tier=2000),
                   rq.ChangeTierRequest(2000)) == "a 2000-contact tier is already chosen for the trial end"


def test_asking_for_todays_tier_cancels_a_scheduled_cut():
    accepted(rules.check_change_tier, active_org(tier_contacts=3000, scheduled=Scheduled(tier=2000)),
             rq.ChangeTierRequest(3000))


def test_removing_units_already_ending_is_refused():
    org = active_org(scheduled=Scheduled(storage=[UnitCount(25, 2)]))
    assert refusal(BelowUsage, rules.check_remove_storage, org, rq.RemoveStorageRequest(25, 1)) == \
        "only 0 unallocated 25 GB unit(s) can be removed; 1 requested"


def test_nothing_is_bought_while_an_overdue_renewal_waits_to_run():
    """Dunning outlasted the cycle; the card was just fixed: the renewal runs first (found by the
    stateful test: a purchase priced on the ended cycle cost nothing, then was billed for days
    not held)."""
    org = active_org(renews_at=utc(2026, 4, 30, 9))
    assert refusal(NotAllowed, rules.check_add_licences, org, rq.AddLicencesRequest(1), now=utc(2026, 5, 3)) == (
        "cannot add licences: the renewal due on 2026-04-30 is being processed; try again in a moment")


def test_a_downgrade_that_would_raise_the_bill_is_refused():
    # 5 Professional licences cost 3000 a month; 11 Standard ones would cost 3300.
    assert refusal(NotAllowed, rules.check_request_downgrade, active_org(plan="professional", licences=5),
                   downgrade("standard", 11)) == (
        "standard with 11 licences costs more than professional with 5; a downgrade lowers the bill: buy licences "
        "instead")


def test_a_free_org_may_cancel_the_upgrade_waiting_for_payment():
    accepted(rules.check_cancel, free_org(**PENDING), rq.CancelRequest(ADMIN))
