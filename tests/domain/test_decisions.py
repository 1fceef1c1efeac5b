"""Decisions without Temporal or a database: single decisions on a built state, and the eight
sequences of requests that meet through the pure model (tests/support/model.py). The same
sequences run through `billing simulate` in tests/simulate/test_requests_meet.py."""

from datetime import timedelta

import pytest

from domain import requests as rq
from domain.cards import sandbox_tokenise
from domain.catalog import load_catalog
from domain.decisions import ChargePurpose, Context, EffectKind
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.operations import OPERATIONS, decide
from domain.payments import Decline, PaidInvoice, charge_declined, invoice_paid
from domain.renewal import renew
from domain.states import InvoiceKind, InvoiceStatus, OrgStatus
from domain.subscription import Item, Scheduled, Subscribers, UnpaidCycle, catalog_facts
from tests.domain.builders import RENEWS_AT, STAFF, active_org, policy, utc
from tests.support.model import OrgModel

CATALOG = load_catalog()
FACTS = catalog_facts(CATALOG, "USD")
P = policy(billing_staff=None)
START = utc(2026, 1, 31, 9)
GOOD, DECLINING = sandbox_tokenise("4242424242424242"), sandbox_tokenise("4000000000000341")


def ctx(now=utc(2026, 4, 10, 9), key="k"):
    return Context(now, P, CATALOG, key)


def decision(name, state, request, now=utc(2026, 4, 10, 9)):
    return decide(OPERATIONS[name], state, request, ctx(now), FACTS)


def model(plan="standard", card=GOOD, users=("b@acme.test",), **fields) -> OrgModel:
    org = validate_new_org(NewOrg(id="acme", name="Acme", admin_email="admin@acme.test", plan=plan,
                                  cycle=None if plan in ("trial", "free") else "monthly",
                                  users=[NewUser(u, 1) for u in users], **fields), CATALOG)
    return OrgModel(paid_for_one_cycle(org, START, "tests"), START, P, CATALOG, card.token if card else None, card_last4=card.last4 if card else None)


def at(days, hours=0):
    return START + timedelta(days=days, hours=hours)


# ---- single decisions -------------------------------------------------------------------------

def test_a_user_added_beyond_a_scheduled_licence_cut_reduces_the_cut_with_a_notice():
    org = active_org(licences=6, user_count=4, scheduled=Scheduled(licences=4))
    made = decision("add_user", org, rq.AddUserRequest("e@acme.test"))
    assert made.state.scheduled.licences == 5 and made.state.user_count == 5
    assert "reduced from 4 to 5" in made.message
    assert [e.type for e in made.events] == ["request", "scheduled_change_adjusted"]
    assert [e.kind for e in made.effects] == [EffectKind.STORAGE_CHECK]


def not_applied(made):
    """The downgrade_not_applied e-mails a decision sends: (why, values)."""
    return [(e.email.values["why"], {k: v for k, v in e.email.values.items() if k in ("users", "user_cap", "bought")
                                     and v is not None})
            for e in made.effects if e.kind == EffectKind.EMAIL and e.email.template == "downgrade_not_applied"]


def test_a_user_added_up_to_the_licences_drops_a_licence_cut_and_the_admin_is_told():
    org = active_org(licences=5, user_count=4, scheduled=Scheduled(licences=4))
    made = decision("add_user", org, rq.AddUserRequest("e@acme.test"))
    assert made.state.scheduled == Scheduled() and made.state.licences == 5
    assert not_applied(made) == [("users", {"users": 5})]


def test_the_renewal_drops_a_downgrade_to_a_plan_capped_below_the_users_and_tells_the_admin():
    from dataclasses import replace
    capped = replace(CATALOG, plans={**CATALOG.plans, "mail_lite_5": replace(CATALOG.plans["mail_lite_5"], user_cap=3)})
    org = active_org(licences=5, user_count=4, scheduled=Scheduled(plan="mail_lite_5"))
    made = renew(org, RENEWS_AT, Context(RENEWS_AT, P, capped, "k"))
    assert (made.state.plan, made.state.licences, made.state.scheduled) == ("standard", 5, Scheduled())
    assert not_applied(made) == [("user_cap", {"user_cap": 3, "users": 4})]
    [email] = [e.email for e in made.effects if e.kind == EffectKind.EMAIL]
    assert (email.values["plan_name"], email.values["to_plan_name"]) == ("Workplace Standard", "Mail Lite 5 GB")


def test_the_renewal_that_applies_a_downgrade_sends_no_not_applied_e_mail():
    made = renew(active_org(licences=5, user_count=4, scheduled=Scheduled(licences=4)), RENEWS_AT, ctx(RENEWS_AT))
    assert made.state.licences == 4 and not_applied(made) == []


def test_a_purchase_waits_for_payment_with_its_invoice_and_a_charge_to_make():
    made = decision("add_licences", active_org(), rq.AddLicencesRequest(2))
    assert made.state.licences == 5 and made.state.pending.operation == "add_licences"
    assert made.invoice.kind == InvoiceKind.PRORATION
    # Apr 10 to Apr 29: 20 of April's 30 days, 2 x 300.
    assert [(line.item, line.quantity, line.amount) for line in made.invoice.lines] == [
        (Item.licence("standard"), 2, 400)]
    [charge] = made.effects
    assert (charge.kind, charge.charge.purpose, charge.charge.invoice) == (EffectKind.CHARGE, ChargePurpose.CHANGE, None)


def test_the_renewal_reduces_a_licence_cut_to_the_users_the_org_has_then():
    org = active_org(licences=5, user_count=4, scheduled=Scheduled(licences=3))
    made = renew(org, RENEWS_AT, ctx(RENEWS_AT))
    assert made.state.licences == 4 and made.state.scheduled == Scheduled()
    assert made.invoice.total == 4 * 300 + 3 * 400   # 4 licences, 3 storage units of 25 GB


def test_a_renewal_drops_the_change_waiting_for_payment_and_voids_its_invoice():
    waiting = decision("add_licences", active_org(), rq.AddLicencesRequest(1)).state
    waiting = waiting.with_changes(pending=waiting.pending.__class__(**{**waiting.pending.__dict__, "invoice": "INV-9"}))
    made = renew(waiting, RENEWS_AT, ctx(RENEWS_AT))
    assert made.state.pending is None and made.state.licences == 5
    assert [(u.number, u.status) for u in made.invoice_updates] == [("INV-9", InvoiceStatus.VOID)]


def test_a_decline_at_the_last_retry_of_a_large_account_escalates_instead_of_downgrading():
    org = active_org(status=OrgStatus.PAST_DUE, licences=150, user_count=150, dunning_invoice="INV-7",
                     dunning_attempts=4, dunning_retries_done=3, dunning_started_at=utc(2026, 3, 31, 9))
    made = charge_declined(org, Decline("INV-7", 5, 45000, "card_declined"), ChargePurpose.RETRY,
                           ctx(utc(2026, 4, 7, 9)))
    assert [(e.kind, e.final_action) for e in made.effects] == [(EffectKind.FINAL_DUNNING_ACTION, "escalate")]


def told_next(made) -> list[tuple[str, str | None, str | None]]:
    """Each payment_failed e-mail's invoice, next retry (ISO day) and what it says follows it."""
    return [(e.email.values["invoice_number"], e.email.dates["next_retry_on"].date().isoformat()
             if "next_retry_on" in e.email.dates else None, e.email.values["final_action"])
            for e in made.effects if e.kind == EffectKind.EMAIL and e.email.template == "payment_failed"]


def in_dunning(licences: int, retries_done: int, next_retry_at, **changes):
    """Past due on INV-7 since March 31 (retries on days 1, 3, 5, 7), `retries_done` retries declined."""
    return active_org(**{**dict(status=OrgStatus.PAST_DUE, licences=licences, user_count=licences,
                                dunning_invoice="INV-7", dunning_attempts=retries_done + 1,
                                dunning_retries_done=retries_done, dunning_started_at=utc(2026, 3, 31, 9),
                                next_retry_at=next_retry_at), **changes})


@pytest.mark.parametrize("licences, final", [(3, "free"), (150, "escalated")])
def test_every_decline_before_the_last_retry_says_what_its_failure_means(licences, final):
    """DOMAIN.md: a large account is escalated, any other moved to the free plan; the admin is told
    so before the last retry, whichever charge was declined (it was said only after the ladder's
    third retry: not after a card update declined, nor during a grace staff gave)."""
    last_rung = in_dunning(licences, 3, utc(2026, 4, 7, 9))
    card_update = charge_declined(last_rung, Decline("INV-7", 5, 45000, "card_declined"), ChargePurpose.EXTRA,
                                  ctx(utc(2026, 4, 6, 9)))
    assert told_next(card_update) == [("INV-7", "2026-04-07", final)]
    grace = in_dunning(licences, 4, utc(2026, 4, 22, 9), dunning_attempts=6)
    during_grace = charge_declined(grace, Decline("INV-7", 7, 45000, "card_declined"), ChargePurpose.EXTRA,
                                   ctx(utc(2026, 4, 15, 9)))
    assert told_next(during_grace) == [("INV-7", "2026-04-22", final)]
    earlier = in_dunning(licences, 1, utc(2026, 4, 3, 9))
    card_update_earlier = charge_declined(earlier, Decline("INV-7", 3, 45000, "card_declined"), ChargePurpose.EXTRA,
                                          ctx(utc(2026, 4, 2, 9)))
    assert told_next(card_update_earlier) == [("INV-7", "2026-04-03", None)]   # more retries follow


@pytest.mark.parametrize("licences, final", [(3, "free"), (150, "escalated")])
def test_a_later_cycle_declined_at_the_last_retry_says_what_comes_next(licences, final):
    """The last retry charges the later unpaid cycles after the dunning invoice: their e-mails say
    the final action that follows (they said only "update your card")."""
    org = in_dunning(licences, 4, utc(2026, 4, 22, 9), dunning_attempts=6, arrears=[UnpaidCycle("INV-8", 1)])
    now = ctx(utc(2026, 4, 22, 9))
    last = charge_declined(org, Decline("INV-7", 7, 45000, "card_declined"), ChargePurpose.RETRY, now)
    assert [e.kind for e in last.effects] == [EffectKind.FINAL_DUNNING_ACTION]
    later = charge_declined(last.state, Decline("INV-8", 2, 45000, "card_declined"), ChargePurpose.RETRY, now)
    assert told_next(later) == [("INV-8", None, final)]


def escalated_with_arrears(**changes):
    """Escalated on INV-7 (March 31's cycle), then served April 30's cycle, invoiced as INV-8 and unpaid."""
    return active_org(**{**dict(status=OrgStatus.ESCALATED, licences=150, user_count=150, dunning_invoice="INV-7",
                                dunning_attempts=5, dunning_retries_done=4, dunning_started_at=utc(2026, 3, 31, 9),
                                arrears=[UnpaidCycle("INV-8", 1)]), **changes})


def test_a_staff_retry_charges_every_unpaid_cycle_oldest_first():
    made = decision("resolve_escalation", escalated_with_arrears(),
                    rq.ResolveEscalationRequest("retry", requested_by=STAFF, reason="paid in"))
    assert [(e.charge.purpose, e.charge.invoice, e.charge.attempt) for e in made.effects] == [
        (ChargePurpose.EXTRA, "INV-7", 6), (ChargePurpose.EXTRA, "INV-8", 2)]


def test_a_grace_extension_records_its_days_and_when_the_retry_comes():
    made = decision("resolve_escalation", escalated_with_arrears(),
                    rq.ResolveEscalationRequest("extend", requested_by=STAFF, reason="promised", extend_days=12))
    [extended] = [e for e in made.events if e.type == "grace_extended"]
    assert (extended.actor, extended.data) == (STAFF, {"extend_days": 12, "retry_at": "2026-04-22T09:00:00+00:00",
                                                       "invoices": ["INV-7", "INV-8"]})
    assert made.state.next_retry_at == utc(2026, 4, 22, 9)


def test_the_dunning_invoice_paid_with_a_later_cycle_unpaid_keeps_the_org_escalated_on_that_one():
    paid = PaidInvoice("INV-7", InvoiceKind.RENEWAL, 45000)
    made = invoice_paid(escalated_with_arrears(), paid, ctx())
    assert (made.state.status, made.state.dunning_invoice, made.state.dunning_attempts, made.state.arrears) == (
        OrgStatus.ESCALATED, "INV-8", 1, [])
    recovered = invoice_paid(made.state, PaidInvoice("INV-8", InvoiceKind.RENEWAL, 45000), ctx())
    assert (recovered.state.status, recovered.state.dunning_invoice) == (OrgStatus.ACTIVE, None)


def test_cancelling_while_past_due_writes_off_the_cycles_served_and_voids_the_one_in_progress():
    past_due = escalated_with_arrears(status=OrgStatus.PAST_DUE, licences=3, user_count=3)
    made = decision("cancel", past_due, rq.CancelRequest(requested_by="admin@acme.test"))
    assert [(u.number, u.status) for u in made.invoice_updates] == [
        ("INV-7", InvoiceStatus.UNCOLLECTIBLE), ("INV-8", InvoiceStatus.VOID)]
    assert made.state.status == OrgStatus.FREE


def test_cancelling_an_escalated_org_writes_off_every_cycle_it_was_served_and_voids_none():
    """DOMAIN.md, large accounts: an escalated org keeps its service; no decision voids a served cycle."""
    made = decision("cancel", escalated_with_arrears(), rq.CancelRequest(requested_by="admin@acme.test"))
    assert [(u.number, u.status) for u in made.invoice_updates] == [
        ("INV-7", InvoiceStatus.UNCOLLECTIBLE), ("INV-8", InvoiceStatus.UNCOLLECTIBLE)]
    assert made.state.status == OrgStatus.FREE and made.state.arrears == []
    assert "INV-7, INV-8 written off" in made.message


def test_refusals_name_the_rule_and_change_nothing():
    from domain.errors import BelowUsage
    with pytest.raises(BelowUsage, match="every user needs a licence"):
        decision("add_user", active_org(licences=4, user_count=4), rq.AddUserRequest("e@acme.test"))


# ---- the eight sequences, through the pure model ------------------------------------------------

def test_1_trial_choice_with_a_tier_and_a_smaller_plan():
    org = model(plan="trial", card=None, users=("big@acme.test",))
    org.users["big@acme.test"].usage_mb = 40 * 1024
    org.advance_to(at(5))
    org.request("upgrade", rq.UpgradeRequest("standard", "monthly"))
    org.request("change_tier", rq.ChangeTierRequest(2000))
    org.request("set_contacts", rq.SetContactsRequest(2500))
    org.request("update_card", rq.UpdateCardRequest(GOOD.token, GOOD.brand, GOOD.last4))
    org.advance_to(at(50))
    assert org.rejections == []
    assert org.paid() == [(utc(2026, 2, 15, 9), 1600), (utc(2026, 3, 15, 9), 1600)]
    assert org.final()["blocked_users"] == ["big@acme.test"]
    assert org.final()["contacts"] == {"tier": 2000, "subscribed": 2000, "awaiting_upgrade": 500}


def test_2_licence_cut_then_a_paid_upgrade():
    org = model(plan="mail_lite_10", users=("b@acme.test", "c@acme.test"), licences=5)
    org.advance_to(at(5))
    org.request("request_downgrade", rq.DowngradeRequest("mail_lite_10", 3, requested_by=STAFF, reason="cost"))
    org.advance_to(at(10))
    org.request("upgrade", rq.UpgradeRequest("standard"))
    org.advance_to(at(65))
    assert org.paid() == [(at(10), 562), (utc(2026, 2, 28, 9), 900), (utc(2026, 3, 31, 9), 900)]
    assert (org.state.plan, org.state.licences) == ("standard", 3)


def test_3_user_added_while_an_upgrade_waits():
    org = model(plan="free", card=DECLINING)
    org.advance_to(at(2))
    org.request("upgrade", rq.UpgradeRequest("standard", "monthly"))
    org.advance_to(at(3))
    org.request("add_user", rq.AddUserRequest("c@acme.test"))
    org.advance_to(at(4))
    org.request("update_card", rq.UpdateCardRequest(GOOD.token, GOOD.brand, GOOD.last4))
    org.advance_to(at(35))
    assert [(c.at, c.amount, c.outcome) for c in org.charges] == [
        (at(2), 600, "declined"), (at(4), 900, "succeeded"), (utc(2026, 3, 4, 9), 900, "succeeded")]
    assert (org.state.licences, len(org.users)) == (3, 3)


def test_4_addon_bought_back():
    org = model()
    for day, name, request in ((7, "buy_addon", rq.BuyAddonRequest("support_essentials")),
                               (10, "remove_addon", rq.RemoveAddonRequest("support_essentials")),
                               (12, "buy_addon", rq.BuyAddonRequest("support_essentials"))):
        org.advance_to(at(day))
        org.request(name, request)
    org.advance_to(at(30))
    assert org.paid() == [(at(7), 3750), (utc(2026, 2, 28, 9), 5600)]


def test_5_trial_choice_cancelled():
    org = model(plan="trial", card=None)
    org.advance_to(at(5))
    org.request("upgrade", rq.UpgradeRequest("standard", "monthly"))
    org.request("update_card", rq.UpdateCardRequest(GOOD.token, GOOD.brand, GOOD.last4))
    org.advance_to(at(6))
    assert org.request("cancel", rq.CancelRequest("admin@acme.test")) is not None
    org.advance_to(at(20))
    assert org.charges == [] and org.invoices == {} and org.state.plan == "free"


def test_6_removal_then_yearly():
    org = model()
    for day, name, request in ((7, "buy_addon", rq.BuyAddonRequest("support_essentials")),
                               (10, "remove_addon", rq.RemoveAddonRequest("support_essentials")),
                               (14, "switch_to_yearly", rq.SwitchToYearlyRequest())):
        org.advance_to(at(day))
        org.request(name, request)
    org.advance_to(at(40))
    assert org.paid() == [(at(7), 3750), (at(14), 3200)]
    assert org.state.addons == [] and org.state.renews_at == utc(2027, 2, 14, 9)


def test_7_tier_cut_then_contacts_grow():
    org = model(users=())
    org.advance_to(at(2))
    org.request("change_tier", rq.ChangeTierRequest(3000))
    org.request("set_contacts", rq.SetContactsRequest(1500))
    org.advance_to(at(5))
    org.request("change_tier", rq.ChangeTierRequest(2000))
    org.advance_to(at(8))
    org.request("set_contacts", rq.SetContactsRequest(2500))
    org.advance_to(at(30))
    assert org.invoices["INV-acme-0002"].total == 300 + 1500 and org.state.tier_contacts == 3000


def test_8_awaiting_upgrade():
    org = model(users=())
    org.advance_to(at(2))
    org.request("change_tier", rq.ChangeTierRequest(2000))
    org.advance_to(at(3))
    org.request("set_contacts", rq.SetContactsRequest(2600))
    assert org.state.subscribers == Subscribers(2000, 600)
    org.advance_to(at(5))
    org.request("change_tier", rq.ChangeTierRequest(3000))
    assert org.state.subscribers == Subscribers(2600, 0)


def test_a_cycle_started_by_a_paid_change_starts_when_it_was_priced_not_when_paid():
    """Found in review: the yearly switch was applied at the payment's instant, seconds after its
    lines were priced; nothing in the new period matched the ledger and a unit bought back
    (its removal scheduled) was invoiced again instead of costing nothing."""
    from domain.decisions import numbered
    from domain.payments import PaidInvoice, invoice_paid
    priced = utc(2026, 4, 10, 9)
    switched = decision("switch_to_yearly", active_org(), rq.SwitchToYearlyRequest(), now=priced)
    waiting = numbered(switched.state, "INV-2")
    paid = invoice_paid(waiting, PaidInvoice("INV-2", InvoiceKind.CYCLE_SWITCH, switched.invoice.total, [],
                                             switched.invoice.lines), ctx(priced + timedelta(seconds=2))).state
    assert (paid.period_start, paid.renews_at) == (priced, utc(2027, 4, 10, 9))
    later = priced + timedelta(days=3)
    removed = decision("remove_storage", paid, rq.RemoveStorageRequest(25, 1), now=later).state
    bought_back = decision("buy_storage", removed, rq.BuyStorageRequest(25, 1), now=later)
    assert bought_back.invoice is None and bought_back.state.pending is None
    assert "nothing to pay" in bought_back.message


def test_cancelling_a_free_org_withdraws_the_upgrade_waiting_for_payment():
    """Found trying it as a user: a free org's upgrade waiting for payment could not be withdrawn,
    and was charged whenever a card came, weeks later (DOMAIN.md: a cancellation drops it)."""
    org = model(plan="free", card=DECLINING)
    org.advance_to(at(2))
    org.request("upgrade", rq.UpgradeRequest("professional", "yearly"))
    org.advance_to(at(3))
    assert org.request("cancel", rq.CancelRequest("admin@acme.test")) is not None
    org.advance_to(at(35))
    org.request("update_card", rq.UpdateCardRequest(GOOD.token, GOOD.brand, GOOD.last4))
    assert [c.outcome for c in org.charges] == ["declined"]
    assert org.invoices["INV-acme-0001"].status == InvoiceStatus.VOID and org.state.plan == "free"
