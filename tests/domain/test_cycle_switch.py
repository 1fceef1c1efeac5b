"""Yearly -> monthly (DOMAIN.md, Renewal and payment): scheduled for the yearly renewal, nothing
credited or refunded, shown as a scheduled change, withdrawable until then; from that date the
org renews monthly. Through the pure model (tests/support/model.py). Prices from
domain/catalog.yaml: Standard $3.00 a licence a month, $30.00 a year; Mail Lite 10 $1.25 a month."""

from datetime import timedelta

from domain import requests as rq
from domain.catalog import load_catalog
from domain.lifecycle import next_step
from domain.onboarding import NewOrg, NewUser, paid_for_one_cycle, validate_new_org
from domain.states import Cycle, InvoiceKind
from tests.domain.builders import policy, utc
from tests.domain.test_decisions import GOOD
from tests.support.model import OrgModel
from workflows.search_attributes import scheduled_change

CATALOG = load_catalog()
P = policy(billing_staff=None)
START = utc(2026, 1, 31, 9)
YEAR_END = utc(2027, 1, 31, 9)
STAFF = "rina@billing.test"


def yearly_org() -> OrgModel:
    org = validate_new_org(NewOrg(id="acme", name="Acme", admin_email="admin@acme.test", plan="standard",
                                  cycle="yearly", users=[NewUser("b@acme.test", 1)]), CATALOG)
    return OrgModel(paid_for_one_cycle(org, START, "tests"), START, P, CATALOG, GOOD.token, card_last4=GOOD.last4)


def renewals(org: OrgModel) -> list[tuple]:
    return [(i.period_start, i.period_end, i.total) for i in org.invoices.values() if i.kind == InvoiceKind.RENEWAL]


def test_a_switch_asked_mid_year_takes_effect_at_the_yearly_renewal_and_the_org_then_renews_monthly():
    org = yearly_org()
    org.advance_to(START + timedelta(days=100))
    made = org.request("switch_to_monthly", rq.SwitchToMonthlyRequest(requested_by="admin@acme.test"))
    assert made.message == ("switch to monthly billing scheduled for 2027-01-31: the yearly cycle runs to its end "
                            "(nothing credited), then the org renews monthly")
    assert made.invoice is None and org.charges == []                     # nothing credited, nothing charged
    assert scheduled_change(org.state) == "switch to monthly on 2027-01-31"
    assert next_step(org.state, P, org.now).summary.endswith(
        "billing switches to monthly: renewal charge for a monthly cycle")
    org.advance_to(YEAR_END - timedelta(minutes=1))
    assert org.state.cycle == Cycle.YEARLY
    org.advance_to(utc(2027, 3, 31, 12))
    # 2 Standard licences, a month each: Jan 31 -> Feb 28 -> Mar 31 -> Apr 30 (the anniversary day).
    assert renewals(org) == [(YEAR_END, utc(2027, 2, 28, 9), 600), (utc(2027, 2, 28, 9), utc(2027, 3, 31, 9), 600),
                             (utc(2027, 3, 31, 9), utc(2027, 4, 30, 9), 600)]
    assert org.paid() == [(YEAR_END, 600), (utc(2027, 2, 28, 9), 600), (utc(2027, 3, 31, 9), 600)]
    assert (org.state.cycle, org.state.renews_at, org.state.scheduled.cycle) == (Cycle.MONTHLY, utc(2027, 4, 30, 9),
                                                                                 None)


def test_a_withdrawn_switch_renews_yearly():
    org = yearly_org()
    org.advance_to(START + timedelta(days=100))
    org.request("switch_to_monthly", rq.SwitchToMonthlyRequest())
    made = org.request("cancel_switch_to_monthly", rq.CancelSwitchToMonthlyRequest())
    assert made.message == "the switch to monthly scheduled for 2027-01-31 is withdrawn: the org stays yearly"
    assert scheduled_change(org.state) is None
    org.advance_to(YEAR_END + timedelta(hours=1))
    assert renewals(org) == [(YEAR_END, utc(2028, 1, 31, 9), 6000)]


def test_asking_to_switch_to_yearly_again_withdraws_the_switch_for_nothing():
    org = yearly_org()
    org.advance_to(START + timedelta(days=200))
    org.request("switch_to_monthly", rq.SwitchToMonthlyRequest())
    made = org.request("switch_to_yearly", rq.SwitchToYearlyRequest())
    assert made.message == "the switch to monthly scheduled for 2027-01-31 is withdrawn: the org stays yearly"
    assert made.invoice is None and org.charges == [] and org.state.scheduled.cycle is None


def test_a_monthly_org_is_refused_in_one_line():
    org = validate_new_org(NewOrg(id="m", name="M", admin_email="admin@m.test", plan="standard", cycle="monthly",
                                  users=[]), CATALOG)
    model = OrgModel(paid_for_one_cycle(org, START, "tests"), START, P, CATALOG, GOOD.token, card_last4=GOOD.last4)
    assert model.request("switch_to_monthly", rq.SwitchToMonthlyRequest()) is None
    assert model.rejections == [(START, "switch_to_monthly",
                                 "the org is already billed monthly; only a yearly org can switch to monthly")]


def test_a_downgrade_scheduled_for_the_same_renewal_applies_with_it():
    org = yearly_org()
    org.advance_to(START + timedelta(days=100))
    org.request("switch_to_monthly", rq.SwitchToMonthlyRequest())
    org.advance_to(YEAR_END - timedelta(days=20))
    org.request("request_downgrade", rq.DowngradeRequest("mail_lite_10", requested_by=STAFF, reason="cost"))
    assert scheduled_change(org.state) == "downgrade to mail_lite_10 on 2027-01-31; switch to monthly on 2027-01-31"
    org.advance_to(YEAR_END + timedelta(hours=1))
    assert renewals(org) == [(YEAR_END, utc(2027, 2, 28, 9), 2 * 125)]   # Mail Lite 10, a month
    assert (org.state.plan, org.state.cycle) == ("mail_lite_10", Cycle.MONTHLY)


def test_a_cancellation_wins_over_the_switch():
    org = yearly_org()
    org.advance_to(START + timedelta(days=100))
    org.request("switch_to_monthly", rq.SwitchToMonthlyRequest())
    org.request("cancel", rq.CancelRequest(requested_by="admin@acme.test"))
    assert org.request("switch_to_monthly", rq.SwitchToMonthlyRequest()) is None   # refused while cancelling
    org.advance_to(YEAR_END + timedelta(hours=1))
    assert (org.state.plan, org.state.cycle, renewals(org)) == ("free", None, [])
